"""Exact Viterbi for C independent chains that share one emission (a factorial HMM).

Chain c has π⁽ᶜ⁾ ``[K_c]`` and A⁽ᶜ⁾ ``[K_c, K_c]``; together they are one HMM over the Π K_c
joint states (the *product chain*, π = ⊗π⁽ᶜ⁾, A = ⊗A⁽ᶜ⁾, chain 0 slowest). Plain Viterbi on
it costs (Π K_c)² a step. Because A factorises, the max over a predecessor
i = (i_1..i_C) can be taken one chain's coordinate at a time,

    max_i δ(i) + Σ_c log A⁽ᶜ⁾_{i_c j_c},

which is Π K_c · Σ K_c work a step. `factorial_viterbi` does that from tensors;
`viterbi_paths` is the compiled loop behind it (numpy in and out), which can also cut each
row into several sequences (the NILM decoder's time windows).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numba
import numpy as np
import torch

from hmmblog.inference.chain_viterbi import ViterbiResult, path_log_prior
from hmmblog.inference.rows import for_rows
from hmmblog.validation import check_log_lik, check_parameters

__all__ = [
    "FactorialChains",
    "factorial_chains",
    "factorial_viterbi",
    "joint_states",
    "product_chain",
    "viterbi_paths",
]


def joint_states(sizes: Sequence[int]) -> np.ndarray:
    """The per-chain states of every joint state, ``[C, Π K_c]`` (row-major: chain 0
    slowest)."""
    return np.indices(sizes).reshape(len(sizes), -1)


def product_chain(
    initials: Sequence[torch.Tensor], transitions: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """π = π⁽¹⁾ ⊗ … ⊗ π⁽ᶜ⁾ ``[Π K_c]`` and A = A⁽¹⁾ ⊗ … ⊗ A⁽ᶜ⁾ ``[Π K_c, Π K_c]``: the C chains
    as one HMM over joint states (Kronecker products, chain 0 slowest, as `joint_states`)."""
    dtype = torch.as_tensor(initials[0]).dtype
    initial, transition = torch.ones(1, dtype=dtype), torch.ones(1, 1, dtype=dtype)
    for p, a in zip(initials, transitions, strict=True):
        initial, transition = torch.kron(initial, p), torch.kron(transition, a)
    return initial, transition


@numba.njit(cache=True, nogil=True)
def _factorial_loop(log_pi, into, sizes, ll, start, path, psi):  # pragma: no cover - compiled
    """Compiled Viterbi over the product of C chains for sequences laid end to end: ``ll
    [P, K]`` (float64, K = Π sizes), a new sequence wherever ``start [P]`` is True (it must be
    at 0). Fills ``path [P]`` with joint states (row-major, chain 0 slowest).

    ``into[c, j, i]`` = log A⁽ᶜ⁾_ij (padded to the largest chain). Maximises over one chain's
    coordinate at a time, keeping each chain's argmax (the first on ties) in ``psi [P, C, K]``
    to step back through the chains in reverse."""
    P, K = ll.shape
    C = sizes.shape[0]
    stride = np.empty(C, np.int64)
    s = 1
    for c in range(C - 1, -1, -1):
        stride[c] = s
        s *= sizes[c]
    # After chain c's pass, entry o holds states j for chains <= c and i for the others; it
    # reads entries src[c, o, i] (o with chain c's state set to i) with weights log A⁽ᶜ⁾_{i j}.
    src = np.zeros((C, K, into.shape[1]), np.int32)
    weight = np.full((C, K, into.shape[1]), -np.inf)
    for c in range(C):
        for o in range(K):
            j = (o // stride[c]) % sizes[c]
            for i in range(sizes[c]):
                src[c, o, i] = o + (i - j) * stride[c]
                weight[c, o, i] = into[c, j, i]
    delta = np.empty((2, K))  # δ and the next pass, by turns (no array swaps)
    cur = 0
    for t in range(P):
        if start[t]:
            for k in range(K):
                delta[cur, k] = log_pi[k] + ll[t, k]
        else:
            for c in range(C):
                nxt, size = 1 - cur, sizes[c]
                if size == 2:  # chains of two and three states, the usual, written out
                    for o in range(K):
                        v0 = delta[cur, src[c, o, 0]] + weight[c, o, 0]
                        v1 = delta[cur, src[c, o, 1]] + weight[c, o, 1]
                        better = v1 > v0
                        delta[nxt, o] = v1 if better else v0
                        psi[t, c, o] = 1 if better else 0
                elif size == 3:
                    for o in range(K):
                        v0 = delta[cur, src[c, o, 0]] + weight[c, o, 0]
                        v1 = delta[cur, src[c, o, 1]] + weight[c, o, 1]
                        v2 = delta[cur, src[c, o, 2]] + weight[c, o, 2]
                        better = v1 > v0
                        best = v1 if better else v0
                        arg = 1 if better else 0
                        better = v2 > best
                        delta[nxt, o] = v2 if better else best
                        psi[t, c, o] = 2 if better else arg
                else:
                    for o in range(K):
                        best, arg = delta[cur, src[c, o, 0]] + weight[c, o, 0], 0
                        for i in range(1, size):
                            v = delta[cur, src[c, o, i]] + weight[c, o, i]
                            better = v > best
                            best = v if better else best
                            arg = i if better else arg
                        delta[nxt, o] = best
                        psi[t, c, o] = arg
                cur = nxt
            for k in range(K):
                delta[cur, k] += ll[t, k]
        if t == P - 1 or start[t + 1]:  # a sequence ends: its best last state
            z = 0
            for k in range(1, K):
                if delta[cur, k] > delta[cur, z]:
                    z = k
            path[t] = z
    for t in range(P - 2, -1, -1):
        if not start[t + 1]:
            z = path[t + 1]
            for c in range(C - 1, -1, -1):  # replace chain c's state by its best predecessor
                z = src[c, z, psi[t + 1, c, z]]
            path[t] = z


class FactorialChains(NamedTuple):
    """C independent chains as the compiled loop reads them (numpy, float64): ``log_pi
    [Π K_c]`` (log ⊗π⁽ᶜ⁾), ``into [C, K_max, K_max]`` with into[c, j, i] = log A⁽ᶜ⁾_ij (padded
    with -inf), ``sizes [C]`` and ``digits [C, Π K_c]``, the per-chain states of each joint
    state (`joint_states`)."""

    log_pi: np.ndarray
    into: np.ndarray
    sizes: np.ndarray
    digits: np.ndarray

    @staticmethod
    def from_logs(log_pis: Sequence[np.ndarray], log_As: Sequence[np.ndarray]) -> FactorialChains:
        """The tables from each chain's log π⁽ᶜ⁾ ``[K_c]`` and log A⁽ᶜ⁾ ``[K_c, K_c]``, as they
        are (`factorial_chains` checks them first)."""
        sizes = np.array([len(p) for p in log_pis], np.int64)
        digits = joint_states(sizes)
        into = np.full((len(sizes), sizes.max(), sizes.max()), -np.inf)
        log_pi = np.zeros(digits.shape[1])
        for c, (p, a) in enumerate(zip(log_pis, log_As, strict=True)):
            into[c, : sizes[c], : sizes[c]] = a.T
            log_pi += p[digits[c]]
        return FactorialChains(log_pi, into, sizes, digits)


def factorial_chains(
    initials: Sequence[torch.Tensor], transitions: Sequence[torch.Tensor]
) -> FactorialChains:
    """Validate each chain's π⁽ᶜ⁾ ``[K_c]`` and A⁽ᶜ⁾ ``[K_c, K_c]`` and build the tables of
    their product chain (built once, reused by every `viterbi_paths` call)."""
    if len(initials) != len(transitions) or not initials:
        raise ValueError(
            f"initials, transitions: expected one π and one A per chain (C >= 1), got "
            f"{len(initials)} and {len(transitions)}"
        )
    log_pis, log_As = [], []
    for c, (p, a) in enumerate(zip(initials, transitions, strict=True)):
        try:
            p, a = check_parameters(p, a)
        except ValueError as error:
            raise ValueError(f"chain {c}: {error}" if len(initials) > 1 else str(error)) from None
        log_pis.append(p.detach().double().log().numpy())
        log_As.append(a.detach().double().log().numpy())
    return FactorialChains.from_logs(log_pis, log_As)


def viterbi_paths(
    chains: FactorialChains,
    log_lik: torch.Tensor | np.ndarray,
    start: torch.Tensor | np.ndarray | None = None,
) -> np.ndarray:
    """Joint-state MAP paths ``[..., T]`` (int64 numpy, index into ``chains.digits``) for
    per-step log-likelihoods ``log_lik [..., T, Π K_c]`` of joint states; no checks on
    ``log_lik``. ``start [..., T]`` (bool) may cut each row into several sequences: each True
    begins a new one (from π), and the step before it ends one (default: one sequence per
    row). Rows are independent, so they are shared out over threads."""
    if isinstance(log_lik, torch.Tensor):
        log_lik = log_lik.detach().to(torch.float64).numpy()
    *batch, T, K = log_lik.shape
    flat = np.ascontiguousarray(log_lik.reshape(-1, T, K), np.float64)
    if start is None:
        first = np.zeros(flat.shape[:2], np.bool_)
    else:
        first = np.array(np.asarray(start).reshape(-1, T), np.bool_)  # a copy: set below
    first[:, 0] = True
    path = np.empty(flat.shape[:2], np.int64)
    dtype = np.uint8 if chains.into.shape[1] <= 256 else np.int32  # largest chain

    def run(a: int, b: int) -> None:
        psi = np.empty(((b - a) * T, len(chains.sizes), K), dtype)
        _factorial_loop(chains.log_pi, chains.into, chains.sizes, flat[a:b].reshape(-1, K),
                        first[a:b].reshape(-1), path[a:b].reshape(-1), psi)

    for_rows(run, flat.shape[0], T * K * int(chains.sizes.sum()))
    return path.reshape(*batch, T)


def factorial_viterbi(
    initials: Sequence[torch.Tensor],
    transitions: Sequence[torch.Tensor],
    log_lik: torch.Tensor,
) -> ViterbiResult:
    """Exact MAP paths of C independent chains that share one emission (a factorial HMM):
    chain c has π⁽ᶜ⁾ ``[K_c]`` and A⁽ᶜ⁾ ``[K_c, K_c]``, and ``log_lik [..., T, K_1, ..., K_C]``
    scores every joint state. Returns ``path [..., C, T]`` (one row per chain) and
    log p(z, x) ``[...]``. Equals `viterbi` on the product chain (π = ⊗π⁽ᶜ⁾, A = ⊗A⁽ᶜ⁾), at
    Π K_c · Σ K_c work a step instead of (Π K_c)²."""
    chains = factorial_chains(initials, transitions)
    sizes = tuple(chains.sizes.tolist())
    log_lik = torch.as_tensor(log_lik)
    if log_lik.dim() < len(sizes) + 1 or tuple(log_lik.shape[-len(sizes):]) != sizes:
        raise ValueError(
            f"log_lik: expected shape [..., T, {', '.join(map(str, sizes))}] (one axis per "
            f"chain), got {tuple(log_lik.shape)}"
        )
    ll = check_log_lik(log_lik.flatten(-len(sizes)), math.prod(sizes))
    joint = torch.from_numpy(viterbi_paths(chains, ll))  # [..., T]
    states = torch.from_numpy(chains.digits)[:, joint].movedim(0, -2)  # [..., C, T]
    log_joint = ll.gather(-1, joint.unsqueeze(-1)).squeeze(-1).sum(-1)
    for c, (p, a) in enumerate(zip(initials, transitions, strict=True)):
        log_p, log_a = torch.as_tensor(p).to(ll.dtype).log(), torch.as_tensor(a).to(ll.dtype).log()
        log_joint = log_joint + path_log_prior(log_p, log_a, states[..., c, :])
    return ViterbiResult(states, log_joint)
