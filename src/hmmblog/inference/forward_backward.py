"""Forward-backward: log p(x) and the smoothed marginals p(z_t | x) of an HMM, exactly.

Both functions take π ``[K]``, A ``[K, K]`` and per-step log-likelihoods ``log_lik [..., T, K]``
and are batched over the leading dimensions ``...`` (many sequences at once).

No evidence at a step (a missing observation) is a zero row, ℓ_t(k) = 0 for every k: the
step's emission factor is 1, so the results are those of the model with that factor dropped
(the emission helpers in `hmmblog.emissions` give zero rows for NaN and -1).

Ragged batches: ``lengths [...]`` (ints, 1 <= length <= T) gives each sequence's own length in
a batch padded to the longest T. Each sequence's results equal running it alone; the padding's
values are ignored, and posterior rows past a sequence's end are zeros.

How the recursions are fast without giving up exactness: the forward recursion

    α_t = (α_{t-1} A) ∘ p(x_t | ·)

is a product of K x K matrices, and matrix products are associative. So time is cut into B
blocks of L steps: every block first computes its own transfer matrix (the recursion started
from each of the K states at once, all blocks in parallel), a parallel scan over the B block
matrices gives the message entering each block, and a second pass runs the ordinary vector
recursion inside all blocks at once. That is ~2L batched tensor operations instead of T
Python steps (Särkkä & García-Fernández, 2021, do the same with a scan over single steps).
Messages are rescaled every step, so T = 10⁶ neither underflows nor overflows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from hmmblog.inference.rows import one_torch_thread
from hmmblog.validation import check_hmm, check_lengths

__all__ = ["MAX_BLOCK_WORK", "MIN_BLOCK", "PARALLEL_ROWS", "associative_scan", "log_likelihood",
           "posterior"]


# ---------------------------------------------------------------------------------------------
# The parallel scan and the sum-product semiring


def associative_scan(
    combine: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    elems: torch.Tensor,
    reverse: bool = False,
) -> torch.Tensor:
    """Inclusive scan along dim 0: out[t] = e[0] ∘ e[1] ∘ … ∘ e[t] (or e[t] ∘ … ∘ e[-1] if
    ``reverse``) for an associative, batched ``combine(earlier, later)``; depth log₂ T."""
    if reverse:
        flipped = associative_scan(lambda a, b: combine(b, a), elems.flip(0))
        return flipped.flip(0)
    n = elems.shape[0]
    if n < 2:
        return elems
    # Combine neighbours pairwise, scan the half-length sequence, then fill in the gaps.
    pairs = combine(elems[0 : n - 1 : 2], elems[1::2])
    odd = associative_scan(combine, pairs)  # prefixes ending at 1, 3, 5, ...
    even = torch.cat([elems[:1], combine(odd[: (n - 1) // 2], elems[2::2])])  # at 0, 2, 4, ...
    out = torch.empty_like(elems)
    out[0::2] = even
    out[1::2] = odd
    return out


def _logmatmulexp(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Sum-product: log(exp(a) @ exp(b)) for batches of matrices, stable by max-shifting."""
    a_max = a.amax(-1, keepdim=True).clamp_min(torch.finfo(a.dtype).min)
    b_max = b.amax(-2, keepdim=True).clamp_min(torch.finfo(b.dtype).min)
    return ((a - a_max).exp() @ (b - b_max).exp()).log() + a_max + b_max


# ---------------------------------------------------------------------------------------------
# Blocking time


class _Blocks(NamedTuple):
    """Steps 2..T cut into B blocks of L steps: ``step[..., b, s, :]`` is ℓ at time 2 + bL + s;
    ``pad[b, s]`` marks the steps past T that fill the last block (they act as the identity)."""

    step: torch.Tensor  # [..., B, L, K]
    pad: torch.Tensor  # [B, L] bool
    padded: list[bool]  # [L]: does step l of any block fall past T?


# How time is blocked (tuning, not semantics: any values give the same answers; the
# measurements behind them are in benchmarks/NOTES.md).
PARALLEL_ROWS = 1000  # aim for about this many independent recursions per tensor operation
MIN_BLOCK = 8  # but keep blocks at least this long
MAX_BLOCK_WORK = 100_000  # rows · K³ past which block matrices cost more than the loop saves


def _blocks(log_lik: torch.Tensor, fill: float) -> _Blocks:
    n, K = log_lik.shape[-2] - 1, log_lik.shape[-1]
    rows = math.prod(log_lik.shape[:-2])
    B = max(1, min(-(-PARALLEL_ROWS // rows), n // MIN_BLOCK))
    if rows * K**3 > MAX_BLOCK_WORK:  # the block matrices would cost more than the loop saves
        B = 1
    L = -(-n // B) if n else 0
    B = -(-n // L) if n else 1
    extra = B * L - n
    steps = log_lik[..., 1:, :]
    if extra:
        filler = steps.new_full((*steps.shape[:-2], extra, steps.shape[-1]), fill)
        steps = torch.cat([steps, filler], -2)
    pad = torch.arange(B * L, device=log_lik.device).reshape(B, L) >= n
    blocked = steps.reshape(*steps.shape[:-2], B, L, steps.shape[-1])
    return _Blocks(blocked, pad, pad.any(0).tolist())


def _rescale(x: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Divide by the max over ``dims`` (left as is where all zero); return (x / s, log s)."""
    s = x.amax(dims, keepdim=True)
    s = torch.where(s > 0, s, torch.ones_like(s))
    return x / s, s.log()


# ---------------------------------------------------------------------------------------------
# Forward (sum-product), in rescaled probability space inside blocks


def _emission_scale(ll: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """p(x_t | k) / c_t with c_t = max_k p(x_t | k): returns (scaled [..., K], log c_t [...])."""
    c = ll.amax(-1, keepdim=True).clamp_min(torch.finfo(ll.dtype).min)
    return (ll - c).exp(), c.squeeze(-1)


def _block_matrices_sum(A: torch.Tensor, blocks: _Blocks) -> tuple[torch.Tensor, torch.Tensor]:
    """Each block's transfer matrix Π_l A diag(p(x_l | ·)) as (R ``[..., B, K, K]`` with max 1,
    log of its scale ``[..., B]``). No log of R is taken, so gradients stay finite."""
    e, log_c = _emission_scale(blocks.step)  # [..., B, L, K], [..., B, L]
    K = A.shape[-1]
    R = torch.eye(K, dtype=A.dtype).expand(*e.shape[:-2], K, K).clone()
    log_scale = log_c.sum(-1)
    for s in range(e.shape[-2]):
        new = (R @ A) * e[..., s, None, :]
        if blocks.padded[s]:
            new = torch.where(blocks.pad[:, s, None, None], R, new)
        R, log_s = _rescale(new, (-2, -1))
        log_scale = log_scale + log_s[..., 0, 0]
    return R, log_scale


def _entering(first: torch.Tensor, block_mats: torch.Tensor, combine) -> torch.Tensor:
    """Messages entering each block ``[..., B, K]`` (the last one leaving the final block is
    appended: ``[..., B + 1, K]``), from the message at t = 1 and the block matrices."""
    prefix = associative_scan(combine, block_mats.movedim(-3, 0)).movedim(0, -3)  # [..., B, K, K]
    after = combine(first.unsqueeze(-2).unsqueeze(-3), prefix).squeeze(-2)  # [..., B, K]
    return torch.cat([first.unsqueeze(-2), after], -2)


def _normalised_exp(x: torch.Tensor) -> torch.Tensor:
    """exp(x - max_k x) over the last dim: a rescaled message with max 1 (0s if all -inf)."""
    return (x - x.amax(-1, keepdim=True).clamp_min(torch.finfo(x.dtype).min)).exp()


def _forward_pass(
    A: torch.Tensor, log_in: torch.Tensor, blocks: _Blocks
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rescaled α inside every block at once, ``[..., B, L, K]``, from the entering log-messages
    ``[..., B, K]``: α_t ∝ (α_{t-1} A) ∘ p(x_t | ·). Also returns log Σ_k α(k) at each block's
    end ``[..., B]`` (the scales put back)."""
    e, log_c = _emission_scale(blocks.step)
    log_c = log_c.masked_fill(blocks.pad, 0.0)
    alpha = _normalised_exp(log_in)
    log_scale = log_in.amax(-1).clamp_min(torch.finfo(log_in.dtype).min)
    out = torch.empty_like(e)
    for s in range(e.shape[-2]):
        new = (alpha @ A) * e[..., s, :]
        if blocks.padded[s]:
            new = torch.where(blocks.pad[:, s, None], alpha, new)
        alpha, log_s = _rescale(new, (-1,))
        log_scale = log_scale + log_s[..., 0] + log_c[..., s]
        out[..., s, :] = alpha
    return out, log_scale + alpha.sum(-1).log()


def _backward_pass(
    A: torch.Tensor, log_end: torch.Tensor, blocks: _Blocks
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rescaled β inside every block, ``[..., B, L, K]``, from β at each block's last step
    ``[..., B, K]``: β_{t-1} ∝ A (p(x_t | ·) ∘ β_t). Also returns β just before each block."""
    e, _ = _emission_scale(blocks.step)
    beta = _normalised_exp(log_end)
    out = torch.empty_like(e)
    for s in reversed(range(e.shape[-2])):
        out[..., s, :] = beta
        new = (e[..., s, :] * beta) @ A.T
        if blocks.padded[s]:
            new = torch.where(blocks.pad[:, s, None], beta, new)
        beta, _ = _rescale(new, (-1,))
    return out, beta


# ---------------------------------------------------------------------------------------------
# Public API


def _past_end(ll: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor | None:
    """``[..., T]`` True at the steps past each sequence's length (None if none)."""
    if lengths is None:
        return None
    past = torch.arange(ll.shape[-2], device=ll.device) >= lengths.unsqueeze(-1)
    return past if past.any() else None


@one_torch_thread
def log_likelihood(
    initial: torch.Tensor,
    transition: torch.Tensor,
    log_lik: torch.Tensor,
    lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """log p(x_1..x_T) = log Σ_z π_{z_1} Π_t A_{z_{t-1} z_t} Π_t p(x_t | z_t), shape ``[...]``;
    with ``lengths [...]``, each sequence's own log p(x_1..x_{length})."""
    log_pi, A, ll = check_hmm(initial, transition, log_lik)
    lengths = check_lengths(lengths, ll)
    past = _past_end(ll, lengths)
    if past is not None:  # the rows past the end become "no evidence": exact for log p(x)
        ll = ll.masked_fill(past.unsqueeze(-1), 0.0)
    first = log_pi + ll[..., 0, :]
    if ll.shape[-2] == 1:
        return first.logsumexp(-1)
    blocks = _blocks(ll, 0.0)
    if blocks.pad.shape[0] == 1:  # a large batch is parallel enough: one forward pass
        return _forward_pass(A, first.unsqueeze(-2), blocks)[1][..., 0]
    # Multiply the block matrices together as a balanced tree, rescaling as we go.
    R, log_scale = _block_matrices_sum(A, blocks)
    R, log_scale = R.movedim(-3, 0), log_scale.movedim(-1, 0)  # blocks first
    while R.shape[0] > 1:
        n = R.shape[0]
        pair, log_s = _rescale(R[0 : n - 1 : 2] @ R[1::2], (-2, -1))
        pair_scale = log_scale[0 : n - 1 : 2] + log_scale[1::2] + log_s[..., 0, 0]
        R = torch.cat([pair, R[-1:]]) if n % 2 else pair
        log_scale = torch.cat([pair_scale, log_scale[-1:]]) if n % 2 else pair_scale
    offset = first.amax(-1).clamp_min(torch.finfo(first.dtype).min)
    total = (_normalised_exp(first).unsqueeze(-2) @ R[0]).sum((-2, -1))
    return total.log() + offset + log_scale[0]


@one_torch_thread
def posterior(
    initial: torch.Tensor,
    transition: torch.Tensor,
    log_lik: torch.Tensor,
    lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """Smoothed marginals p(z_t = k | x_1..x_T) ∝ α_t(k) β_t(k), shape ``[..., T, K]``; with
    ``lengths [...]``, each sequence's own marginals and zero rows past its end."""
    log_pi, A, ll = check_hmm(initial, transition, log_lik)
    lengths = check_lengths(lengths, ll)
    past = _past_end(ll, lengths)
    if past is not None:
        # No evidence past the end leaves the marginals before it exact (β sums to 1 over the
        # padding); the rows past the end are then set to zero.
        ll = ll.masked_fill(past.unsqueeze(-1), 0.0)
        return posterior(initial, transition, ll).masked_fill(past.unsqueeze(-1), 0.0)
    T = ll.shape[-2]
    first = log_pi + ll[..., 0, :]
    if T == 1:
        unnormalised = _normalised_exp(first).unsqueeze(-2)
    else:
        blocks = _blocks(ll, 0.0)
        B = blocks.pad.shape[0]
        log_in = first.unsqueeze(-2)
        log_end = torch.zeros_like(ll[..., :B, :])  # β = 1 after the last step
        if B > 1:
            R, log_scale = _block_matrices_sum(A, blocks)
            mats = R.log() + log_scale[..., None, None]
            log_in = _entering(first, mats, _logmatmulexp)[..., :B, :]
            suffix = associative_scan(_logmatmulexp, mats.movedim(-3, 0), reverse=True)
            log_end[..., :-1, :] = suffix[1:].movedim(0, -3).logsumexp(-1)
        alpha, _ = _forward_pass(A, log_in, blocks)
        beta, beta_before = _backward_pass(A, log_end, blocks)
        inside = (alpha * beta).flatten(-3, -2)[..., : T - 1, :]
        start = _normalised_exp(first) * beta_before[..., 0, :]
        unnormalised = torch.cat([start.unsqueeze(-2), inside], -2)
    norm = unnormalised.sum(-1, keepdim=True)
    if (norm == 0).any():
        raise ValueError(
            "log_lik: the observations have probability zero under the model "
            "(log-likelihood -inf), so the posterior is undefined"
        )
    return unnormalised / norm
