"""Viterbi for one chain: the most probable state path of an HMM, and the score of a path.

The recursion (Rabiner, 1989) keeps, for every state j, the log-probability δ_t(j) of the best
path that ends in j at step t, and the state it came from:

    δ_1(j) = log π_j + ℓ_1(j)
    δ_t(j) = max_i [δ_{t-1}(i) + log A_ij] + ℓ_t(j),      ψ_t(j) = argmax_i [...]

then reads the path backwards from the best last state. It is K² work a step. Max-plus matrix
products have no BLAS kernel (blocking time as forward-backward does would cost K³ a step), so
the loop is compiled with numba, like hmmlearn's C loop; independent sequences are shared out
over threads (`hmmblog.inference.rows`).

A step with no evidence (a missing observation) is a zero row of ``log_lik``: the path is then
the MAP path of the model with that step's emission factor dropped. Padding is different: a
sequence shorter than the batch is given by ``lengths`` (each row's loop stops at its own
length, and its path entries past the end are -1), because zero rows past the end would still
let where a state could go next choose the sequence's last states.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
import torch

from hmmblog.inference.rows import for_rows, one_torch_thread
from hmmblog.validation import check_hmm, check_lengths

__all__ = ["ViterbiResult", "path_log_joint", "path_log_prior", "viterbi", "viterbi_rows"]


class ViterbiResult(NamedTuple):
    """The most probable state path ``[..., T]`` (int64) and log p(path, x) ``[...]``."""

    path: torch.Tensor
    log_joint: torch.Tensor


@numba.njit(cache=True, nogil=True)
def viterbi_rows(log_pi, into, log_lik, lengths, paths, back):  # pragma: no cover - compiled
    """Fill ``paths [R, T]`` with the most probable path of each row of ``log_lik [R, T, K]``
    (float64), row r cut at ``lengths[r]`` steps (entries past it are -1), under log π
    ``[K]`` and ``into [K, K]``, log A transposed: into[j, i] = log A_ij, the ways into state
    j, so that the max over predecessors reads memory in order (it matters once log A
    outgrows the cache). ``back [T, K]`` is scratch space for ψ. Ties go to the lowest
    state."""
    R, T, K = log_lik.shape
    delta = np.empty(K)  # δ_{t-1}
    new = np.empty(K)  # δ_t
    for r in range(R):
        n = lengths[r]
        for j in range(K):
            delta[j] = log_pi[j] + log_lik[r, 0, j]
        for t in range(1, n):
            for j in range(K):
                best, arg = delta[0] + into[j, 0], 0
                for i in range(1, K):
                    v = delta[i] + into[j, i]
                    if v > best:
                        best, arg = v, i
                new[j] = best + log_lik[r, t, j]
                back[t, j] = arg
            delta, new = new, delta
        z = 0  # the best last state, then back through the predecessors
        for j in range(1, K):
            if delta[j] > delta[z]:
                z = j
        for t in range(n, T):
            paths[r, t] = -1
        paths[r, n - 1] = z
        for t in range(n - 1, 0, -1):
            z = back[t, z]
            paths[r, t - 1] = z


def path_log_prior(log_pi: torch.Tensor, log_A: torch.Tensor, path: torch.Tensor) -> torch.Tensor:
    """log p(z) = log π_{z_1} + Σ_t log A_{z_{t-1} z_t} of paths ``[..., T]``, shape ``[...]``."""
    return log_pi[path[..., 0]] + log_A[path[..., :-1], path[..., 1:]].sum(-1)


def path_log_joint(
    log_pi: torch.Tensor, log_A: torch.Tensor, log_lik: torch.Tensor, path: torch.Tensor
) -> torch.Tensor:
    """log p(z, x) = log p(z) + Σ_t ℓ_t(z_t) of paths ``[..., T]``, shape ``[...]``
    (differentiable in all three inputs)."""
    emitted = log_lik.gather(-1, path.unsqueeze(-1)).squeeze(-1).sum(-1)
    return path_log_prior(log_pi, log_A, path) + emitted


@one_torch_thread
def viterbi(
    initial: torch.Tensor,
    transition: torch.Tensor,
    log_lik: torch.Tensor,
    lengths: torch.Tensor | None = None,
) -> ViterbiResult:
    """The MAP path argmax_z log p(z, x) ``[..., T]`` and its log p(z, x) ``[...]``, for π
    ``[K]``, A ``[K, K]`` and per-step log-likelihoods ``log_lik [..., T, K]``. With
    ``lengths [...]`` (a ragged batch padded to T), each sequence's own path and score, the
    path entries past its end being -1."""
    log_pi, A, ll = check_hmm(initial, transition, log_lik)
    lengths = check_lengths(lengths, ll)
    log_A = A.log()
    *batch, T, K = ll.shape
    if lengths is None:
        steps = np.full(math.prod(batch), T, np.int64)
    else:
        steps = np.ascontiguousarray(lengths.cpu().numpy().reshape(-1), np.int64)
    scores = np.ascontiguousarray(ll.detach().to(torch.float64).numpy().reshape(-1, T, K))
    lp = log_pi.detach().double().numpy()
    into = np.ascontiguousarray(log_A.detach().double().numpy().T)
    paths = np.empty(scores.shape[:2], np.int64)
    back_type = np.uint8 if K <= 256 else np.int32

    def run(a: int, b: int) -> None:
        viterbi_rows(lp, into, scores[a:b], steps[a:b], paths[a:b], np.empty((T, K), back_type))

    for_rows(run, scores.shape[0], T * K * K)
    path = torch.from_numpy(paths.reshape(*batch, T))
    if lengths is None:
        return ViterbiResult(path, path_log_joint(log_pi, log_A, ll, path))
    inside = path >= 0
    z = path.clamp_min(0)
    emitted = ll.gather(-1, z.unsqueeze(-1)).squeeze(-1).where(inside, 0.0).sum(-1)
    moves = log_A[z[..., :-1], z[..., 1:]].where(inside[..., 1:], 0.0).sum(-1)
    return ViterbiResult(path, log_pi[z[..., 0]] + moves + emitted)
