"""Drawing hidden state paths and observations from an HMM.

Two samplers:

* `sample` — vectorised over sequences (one batched draw per time step), any emission
  distribution with batch shape `[K]`; the one to use.
* `sample_stepwise` — the literal recipe of the original blog series: one sequence at a
  time, one step at a time, every draw from one `torch.Generator`. It exists so that the
  posts can reproduce the original's data bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.distributions import Distribution

from hmmblog.validation import (
    as_tensor,
    check_emission,
    check_parameters,
    check_positive_int,
    check_seed,
)


def sample(
    initial: torch.Tensor,
    transition: torch.Tensor,
    emission: Distribution,
    num_seqs: int,
    T: int,
    seed: int,
    *,
    lengths: Sequence[int] | torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw `num_seqs` sequences of length `T`: states `[num_seqs, T]` and observations
    `[num_seqs, T, *event_shape]`, with z_1 ~ π, z_t ~ A[z_{t-1}], x_t ~ emission[z_t].

    `emission` has batch shape `[K]` (e.g. `Categorical(probs=B)` or `Normal(mu, sigma)`).
    The global RNG is left untouched; the same `seed` gives the same draw.

    `lengths` (`num_seqs` ints in 1..T) draws a ragged batch padded to T, as `log_likelihood`
    and friends take it: sequence n is the first `lengths[n]` steps of the same draw without
    `lengths`, and past its end the states are -1 and the observations NaN (real values) or
    -1 (integer ones, e.g. categorical symbols).
    """
    initial, transition = check_parameters(initial, transition)
    K = initial.shape[0]
    check_emission(emission, K)
    num_seqs = check_positive_int("num_seqs", num_seqs)
    T = check_positive_int("T", T)
    check_seed("seed", seed)
    if lengths is not None:
        lengths = as_tensor("lengths", lengths)
        if (lengths.is_floating_point() or lengths.dtype == torch.bool
                or tuple(lengths.shape) != (num_seqs,)
                or (lengths.numel() and (lengths.min() < 1 or lengths.max() > T))):
            raise ValueError(f"lengths: expected {num_seqs} ints in 1..{T} (num_seqs and T), "
                             f"got {lengths.tolist()}")
    gen = torch.Generator().manual_seed(seed)
    states = torch.empty(num_seqs, T, dtype=torch.long)
    states[:, 0] = torch.multinomial(initial.expand(num_seqs, K), 1, generator=gen)[:, 0]
    for t in range(1, T):
        states[:, t] = torch.multinomial(transition[states[:, t - 1]], 1, generator=gen)[:, 0]
    # Draw every state's emission at every step, then keep the one the path visits:
    # K times the draws, but one vectorised call for any distribution family.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        every = emission.sample((num_seqs, T))  # [N, T, K, *event]
    event_dims = every.dim() - 3
    index = states.reshape(num_seqs, T, 1, *([1] * event_dims))
    index = index.expand(num_seqs, T, 1, *every.shape[3:])
    observations = every.gather(2, index).squeeze(2)
    if lengths is not None:
        past = torch.arange(T) >= lengths.unsqueeze(-1)  # [N, T]
        states = states.masked_fill(past, -1)
        fill = float("nan") if observations.is_floating_point() else -1
        observations = observations.masked_fill(
            past.reshape(*past.shape, *([1] * event_dims)), fill)
    return states, observations


def sample_stepwise(
    initial: torch.Tensor,
    transition: torch.Tensor,
    draw_observation: Callable[[int, torch.Generator], torch.Tensor],
    num_seqs: int,
    T: int,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The original series' sampler: for each sequence, for each step, draw the state
    (z_1 from π, then z_t from row z_{t-1} of A, each with `torch.multinomial(probs, 1)`)
    and then the observation `draw_observation(z_t, generator)`, all from one generator
    seeded with `seed`. Returns states `[num_seqs, T]` and observations `[num_seqs, T, ...]`.
    """
    initial, transition = check_parameters(initial, transition)
    num_seqs = check_positive_int("num_seqs", num_seqs)
    T = check_positive_int("T", T)
    check_seed("seed", seed)
    g = torch.Generator().manual_seed(seed)
    states = torch.empty(num_seqs, T, dtype=torch.long)
    observations = []
    for n in range(num_seqs):
        row = []
        z = int(torch.multinomial(initial, 1, generator=g))
        for t in range(T):
            if t > 0:
                z = int(torch.multinomial(transition[z], 1, generator=g))
            states[n, t] = z
            row.append(torch.as_tensor(draw_observation(z, g)).reshape(-1)[0])
        observations.append(torch.stack(row))
    return states, torch.stack(observations)
