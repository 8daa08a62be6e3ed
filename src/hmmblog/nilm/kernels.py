"""The NILM decoder's compiled inner loops (numba), on numpy arrays.

`near` and `windows` turn "which steps changed" into the time windows a block update refits;
`sums_held` finds where a sum trap may hold; `window_terms` lays a block's per-step
log-likelihoods over those windows end to end, with the transitions into and out of each
window. `hmmblog.nilm.decoder` is their only caller.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["near", "sums_held", "window_terms", "windows"]


@numba.njit(cache=True, nogil=True)
def near(hits: np.ndarray, margin: int) -> np.ndarray:  # pragma: no cover - compiled
    """`[T]` mask of the steps within `margin` steps of a True of `hits [T]`."""
    T = hits.shape[0]
    out = np.zeros(T, np.bool_)
    last = -margin - 1  # the latest hit so far, then (going back) the next one
    for t in range(T):
        last = t if hits[t] else last
        out[t] = t - last <= margin
    last = T + margin
    for t in range(T - 1, -1, -1):
        last = t if hits[t] else last
        out[t] |= last - t <= margin
    return out


@numba.njit(cache=True, nogil=True)
def windows(covered: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """The runs [a, b) of True in `covered [T]` as rows of `[W, 2]`; one window over
    everything once they cover half of it."""
    T = covered.shape[0]
    if 2 * covered.sum() > T:
        return np.array([[0, T]], np.int64)
    W = int(covered[0]) + np.sum(covered[1:] & ~covered[:-1])
    out = np.empty((W, 2), np.int64)
    w = -1
    for t in range(T):
        if covered[t] and (t == 0 or not covered[t - 1]):
            w += 1
            out[w, 0] = t
        if covered[t] and (t == T - 1 or not covered[t + 1]):
            out[w, 1] = t + 1
    return out


@numba.njit(cache=True, nogil=True)
def sums_held(states, sites):  # pragma: no cover - compiled
    """`[T]` mask of the steps where, in some restart of `states [R, C, T]`, a site (c, k, i,
    a, j, b) of `sites [S, 6]` holds on one side: chain c at level k, or chains i and j at
    levels a and b together."""
    R, _, T = states.shape
    hit = np.zeros(T, np.bool_)
    for r in range(R):
        for s in range(sites.shape[0]):
            c, k, i, a, j, b = sites[s]
            for t in range(T):
                if states[r, c, t] == k or (states[r, i, t] == a and states[r, j, t] == b):
                    hit[t] = True
    return hit


@numba.njit(cache=True, nogil=True)
def window_terms(gap, rest_var, joint, windows, power, var, log_pi, log_A):  # pragma: no cover
    """A block's per-step log-likelihoods over `windows [W, 2]` ([a, b) each) laid end to end,
    P steps in all: `log_lik [R, P, K]` = log Normal(gap; power_k, sqrt(v)) up to a constant,
    v = rest_var + var_k, for `gap [R, T]` (reading minus background minus the other chains;
    NaN where the reading is missing: a zero row) and `rest_var [R, T]` (the meter's and the
    other chains' variance; `[1, 1]` if it is one number), plus the way into each window
    (log π at step 0, else log A from the block's joint state `joint [R, T]` just before it)
    and out of it (log A into the state just after it); `start [R, P]`, True where a window
    begins; `steps [P]`."""
    R, T = gap.shape
    K = power.shape[0]
    one = rest_var.shape[0] == 1 and rest_var.shape[1] == 1
    P = 0
    for w in range(windows.shape[0]):
        P += windows[w, 1] - windows[w, 0]
    log_lik = np.empty((R, P, K))
    start = np.zeros((R, P), np.bool_)
    steps = np.empty(P, np.int64)
    wanders = False  # does any joint state add variance? (if not, log v is one constant)
    for k in range(K):
        wanders |= var[k] > 0
    scale = -0.5 / rest_var[0, 0]
    log_v = np.zeros(K)  # log(rv + var_k) for the last rv seen: the other chains' variance
    seen = np.nan  # changes only where one of them switches, so most steps reuse it
    p = 0  # where the current window begins, end to end
    for w in range(windows.shape[0]):
        a, b = windows[w, 0], windows[w, 1]
        for t in range(a, b):
            steps[p + t - a] = t
        for r in range(R):
            for t in range(a, b):
                g = gap[r, t]
                if g != g:  # a missing reading: no evidence
                    for k in range(K):
                        log_lik[r, p + t - a, k] = 0.0
                    continue
                if one and not wanders:  # one variance for all: a constant scale
                    for k in range(K):
                        d = g - power[k]
                        log_lik[r, p + t - a, k] = d * d * scale
                    continue
                rv = rest_var[0, 0] if one else rest_var[r, t]
                if wanders and rv != seen:
                    for k in range(K):
                        log_v[k] = np.log(rv + var[k])
                    seen = rv
                for k in range(K):
                    d = g - power[k]
                    v = rv + var[k]
                    log_lik[r, p + t - a, k] = -0.5 * (d * d / v + log_v[k])
            start[r, p] = True
            for k in range(K):
                log_lik[r, p, k] += log_pi[k] if a == 0 else log_A[joint[r, a - 1], k]
            if b < T:
                for k in range(K):
                    log_lik[r, p + b - a - 1, k] += log_A[k, joint[r, b]]
        p += b - a
    return log_lik, start, steps
