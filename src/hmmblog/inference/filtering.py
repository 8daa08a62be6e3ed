"""State paths drawn from p(z | x) by forward filtering, backward sampling (FFBS), compiled.

`sample_paths` takes π, A and ℓ like every function of `hmmblog.inference`; the loops under
it, `ffbs_rows`, `log_likelihood_rows` (the filter alone) and `smooth_rows` (forward-backward
for EM), let every row (sequence) have its own π and A, which is what the posterior sampler
and EM need (`hmmblog.learning.gibbs`, `hmmblog.learning.em`: many datasets, chains or
restarts in lockstep). The forward filter keeps

    α_t(j) = p(z_t = j | x_{1:t}) ∝ Σ_i α_{t-1}(i) A_ij · p(x_t | z_t = j),

and log p(x) is the sum of the normalisers' logs. The posterior over whole paths factorises
backwards (Chib, 1996; Frühwirth-Schnatter, 2006):

    p(z | x) = p(z_T | x_{1:T}) ∏_{t<T} p(z_t | z_{t+1}, x_{1:t}),
    p(z_t = i | z_{t+1} = j, x_{1:t}) ∝ α_t(i) A_ij,

so one forward pass keeps α and one backward pass draws z_T, then z_{T-1} given z_T, and so
on. α is rescaled every step (and ℓ_t shifted by its maximum), so long sequences neither
underflow nor overflow. A zero row of ``log_lik`` is a step without evidence.

The loops are compiled with numba; randomness comes in as uniforms drawn by the caller, so a
call is deterministic given them and touches no global random state.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
import torch

from hmmblog.inference.rows import one_torch_thread
from hmmblog.validation import check_hmm, check_seed

__all__ = ["PathDraws", "ffbs_rows", "filter_row", "log_likelihood_rows", "sample_paths",
           "scaled_likelihoods", "smooth_rows"]


class PathDraws(NamedTuple):
    """Paths drawn from p(z | x) ``[S, ..., T]`` (int64) and log p(x) ``[...]``."""

    paths: torch.Tensor
    log_likelihood: torch.Tensor


@numba.njit(cache=True, nogil=True)
def filter_row(pi, A, lik, alpha, norms):  # pragma: no cover - compiled
    """Fill ``alpha [T, K]`` with the filtered p(z_t | x_{1:t}) of one row and ``norms [T]``
    with each step's normaliser, and return log p(x) less the shifts: π ``[K]``,
    A ``[K, K]``, ``lik [T, K]`` = p(x_t | z_t) up to a factor per step
    (`scaled_likelihoods`)."""
    T, K = lik.shape
    total = 0.0
    scale = 1.0  # the product of the normalisers since the last log, kept within range
    for t in range(T):
        norm = 0.0
        for j in range(K):
            if t == 0:
                prior = pi[j]
            else:
                prior = 0.0
                for i in range(K):
                    prior += alpha[t - 1, i] * A[i, j]
            v = prior * lik[t, j]
            alpha[t, j] = v
            norm += v
        for j in range(K):
            alpha[t, j] /= norm
        norms[t] = norm
        scale *= norm
        if scale < 1e-250 or t == T - 1:
            total += math.log(scale)
            scale = 1.0
    return total


def scaled_likelihoods(log_lik: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """exp(ℓ_t(k) − max_k ℓ_t(k)) ``[..., T, K]`` (each step's largest is 1) and the shifts
    Σ_t max_k ℓ_t(k) ``[...]`` that log p(x) adds back."""
    top = log_lik[..., 0]
    for k in range(1, log_lik.shape[-1]):  # faster than max(-1) over a short last axis
        top = np.maximum(top, log_lik[..., k])
    return np.exp(log_lik - top[..., None]), top.sum(-1)


@numba.njit(cache=True, nogil=True)
def log_likelihood_rows(pi, A, lik, log_px):  # pragma: no cover - compiled
    """Set ``log_px[r]`` = log p(x) (less its shift) of each row r of ``lik [R, T, K]``
    (`scaled_likelihoods`) under its own π ``pi [R, K]`` and A ``A [R, K, K]``."""
    R, T, K = lik.shape
    alpha = np.empty((T, K))
    norms = np.empty(T)
    for r in range(R):
        log_px[r] = filter_row(pi[r], A[r], lik[r], alpha, norms)


@numba.njit(cache=True, nogil=True)
def smooth_rows(pi, A, lik, gamma, xi, log_px):  # pragma: no cover - compiled
    """Forward-backward for each row r of ``lik [R, T, K]`` (`scaled_likelihoods`) under its
    own π ``[R, K]`` and A ``[R, K, K]``: fills the smoothed marginals ``gamma [R, T, K]`` =
    p(z_t | x), the expected transitions ``xi [R, K, K]`` = Σ_t p(z_t = i, z_{t+1} = j | x)
    and ``log_px [R]`` (less its shift). The E-step of EM (`hmmblog.learning.em`)."""
    R, T, K = lik.shape
    alpha = np.empty((T, K))
    norms = np.empty(T)
    beta = np.empty(K)
    before = np.empty(K)
    for r in range(R):
        log_px[r] = filter_row(pi[r], A[r], lik[r], alpha, norms)
        for i in range(K):
            for j in range(K):
                xi[r, i, j] = 0.0
            beta[i] = 1.0
            gamma[r, T - 1, i] = alpha[T - 1, i]
        for t in range(T - 2, -1, -1):  # β_t(i) = Σ_j A_ij ℓ_{t+1}(j) β_{t+1}(j) / c_{t+1}
            for i in range(K):
                acc = 0.0
                for j in range(K):
                    w = A[r, i, j] * lik[r, t + 1, j] * beta[j] / norms[t + 1]
                    xi[r, i, j] += alpha[t, i] * w
                    acc += w
                before[i] = acc
            for i in range(K):
                beta[i] = before[i]
                gamma[r, t, i] = alpha[t, i] * beta[i]


@numba.njit(cache=True, nogil=True)
def ffbs_rows(pi, A, lik, uniforms, paths, log_px):  # pragma: no cover - compiled
    """For each row r: draw ``paths[r] [T]`` from p(z | x) by FFBS and set ``log_px[r]``
    (less its shift). Each row has its own π ``pi [R, K]`` and A ``A [R, K, K]`` (rows of
    different datasets may differ), ``lik [R, T, K]`` from `scaled_likelihoods`,
    ``uniforms [R, T]`` in [0, 1): step t's state is the first i whose cumulative
    probability exceeds u_t."""
    R, T, K = lik.shape
    alpha = np.empty((T, K))
    norms = np.empty(T)
    w = np.empty(K)
    for r in range(R):
        log_px[r] = filter_row(pi[r], A[r], lik[r], alpha, norms)
        for t in range(T - 1, -1, -1):  # z_T ~ α_T, then z_t ~ α_t(i) A[i, z_{t+1}]
            norm = 0.0
            for i in range(K):
                w[i] = alpha[t, i] if t == T - 1 else alpha[t, i] * A[r, i, paths[r, t + 1]]
                norm += w[i]
            u, acc, z = uniforms[r, t] * norm, 0.0, K - 1
            for i in range(K):
                acc += w[i]
                if u < acc:
                    z = i
                    break
            paths[r, t] = z


@one_torch_thread
def sample_paths(initial: torch.Tensor, transition: torch.Tensor, log_lik: torch.Tensor,
                 num_samples: int = 1, *, seed: int = 0) -> PathDraws:
    """`num_samples` state paths drawn from p(z | x) ``[num_samples, ..., T]`` and log p(x)
    ``[...]``, for π ``[K]``, A ``[K, K]`` and per-step log-likelihoods ``log_lik [..., T, K]``.
    Deterministic given `seed` (a numpy generator of its own; no global state is used)."""
    log_pi, A, ll = check_hmm(initial, transition, log_lik)
    seed = check_seed("seed", seed)
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise ValueError(f"num_samples: expected an integer >= 1, got {num_samples!r}")
    *batch, T, K = ll.shape
    rows = math.prod(batch)
    lik, shift = scaled_likelihoods(ll.detach().double().numpy().reshape(rows, T, K))
    lik = np.ascontiguousarray(np.broadcast_to(lik, (num_samples, rows, T, K)).reshape(-1, T, K))
    R = lik.shape[0]
    pi = np.ascontiguousarray(np.broadcast_to(log_pi.detach().double().exp().numpy(), (R, K)))
    A_rows = np.ascontiguousarray(np.broadcast_to(A.detach().double().numpy(), (R, K, K)))
    uniforms = np.random.default_rng(seed).random((R, T))
    paths = np.empty((R, T), np.int64)
    log_px = np.empty(R)
    ffbs_rows(pi, A_rows, lik, uniforms, paths, log_px)
    return PathDraws(torch.from_numpy(paths.reshape(num_samples, *batch, T)),
                     torch.from_numpy((log_px[:rows] + shift).reshape(batch)))
