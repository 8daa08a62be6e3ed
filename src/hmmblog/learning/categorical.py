"""Categorical emissions: K hidden states, M symbols, B_k ~ Dirichlet(1) (post 2).

The family plug-in for the shared learner, and post 2's names for it: `learn_discrete`,
`discrete_model`, `discrete_model_enumerated` and `prior_draw`.
"""

from __future__ import annotations

import numpy as np
import pyro
import pyro.distributions as dist
import torch

from hmmblog.emissions import MISSING
from hmmblog.learning.engine import (
    EmissionFamily,
    HMMFit,
    dirichlet_draw,
    hmm_model,
    hmm_model_enumerated,
    learn,
    normalise_rows,
    pad_as_missing,
    register,
)
from hmmblog.validation import check_positive_int

__all__ = ["Categorical", "discrete_model", "discrete_model_enumerated", "learn_discrete",
           "prior_draw"]


class Categorical(EmissionFamily):
    """x_t | z_t = k ~ Categorical(B_k), B ``[..., K, M]``; the site `B` is the result's
    `emission`. Observations are integer symbols ``[..., N, T]``; leading dims are
    independent datasets, each with its own π, A, B (Adam is elementwise, so fitting them side
    by side equals separate fits). The symbol -1 (`hmmblog.emissions.MISSING`) marks a
    missing observation."""

    name = "categorical"
    sites = ("B",)
    fields = ("emission",)
    event_dims = 1
    gap = MISSING

    def check(self, observations: torch.Tensor, M: int | None,
              name: str = "observations") -> torch.Tensor:
        x = torch.as_tensor(observations)
        if x.dim() < 2 or x.dtype.is_floating_point or x.dtype == torch.bool:
            raise ValueError(
                f"{name}: expected an integer tensor [..., N, T] of symbols, "
                f"got dtype {x.dtype} and shape {tuple(x.shape)}"
            )
        if x.numel() == 0:
            raise ValueError(f"{name}: expected at least one symbol, got shape {tuple(x.shape)}")
        lo, hi = int(x.min()), int(x.max())
        if lo < MISSING or (M is not None and hi >= M):
            top = "" if M is None else f"0..{M - 1}"
            raise ValueError(f"{name}: expected symbols in {top or '0, 1, ...'} "
                             f"(or {MISSING}: missing), got values in {lo}..{hi}")
        if hi < 0:
            raise ValueError(f"{name}: every symbol is missing ({MISSING}), nothing to learn")
        return x.long()

    def observed(self, observations: torch.Tensor) -> torch.Tensor:
        return observations != MISSING

    def symbols(self, observations: torch.Tensor, M: int | None) -> int:
        return int(observations.max()) + 1 if M is None else M

    def prior(self, observations: torch.Tensor, K: int, M: int | None
              ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        batch = observations.shape[:-2]
        nb = len(batch)
        pi = pyro.sample("pi", dist.Dirichlet(torch.ones(*batch, K)).to_event(nb))
        A = pyro.sample("A", dist.Dirichlet(torch.ones(*batch, K, K)).to_event(nb + 1))
        B = pyro.sample("B", dist.Dirichlet(torch.ones(*batch, K, M)).to_event(nb + 1))
        return pi, A, {"B": B}

    def distribution(self, B: torch.Tensor) -> dist.Categorical:
        return dist.Categorical(probs=B)

    def conditional(self, x: np.ndarray, observed: np.ndarray, z: np.ndarray,
                    theta: dict[str, np.ndarray], K: int, M: int | None,
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
        """B_k | x, z ~ Dirichlet(1 + the counts of each symbol emitted in state k)."""
        D = x.shape[0]
        cell = ((np.arange(D)[:, None, None] * K + z) * M + x)[observed]
        counts = np.bincount(cell, minlength=D * K * M).reshape(D, K, M)
        return {"B": dirichlet_draw(rng, 1.0 + counts)}

    def m_step(self, x: np.ndarray, observed: np.ndarray, weights: np.ndarray,
               theta: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """B_km ∝ Σ_t p(z_t = k | x) [x_t = m] (the flat prior's MAP is the ML estimate); a
        state with no weight keeps its row."""
        M = theta["B"].shape[-1]
        onehot = (x[..., None] == np.arange(M)) & observed[..., None]  # [D, N, T, M]
        counts = np.einsum("dntk,dntm->dkm", weights, onehot.astype(np.float64))
        return {"B": normalise_rows(counts, theta["B"])}


CATEGORICAL = register(Categorical())


def discrete_model(sequences: torch.Tensor, K: int, M: int) -> None:
    """π ~ Dir(1), A_i ~ Dir(1), B_i ~ Dir(1); z_1 ~ π, z_t ~ A[z_{t-1}], x_t ~ B[z_t], with
    the states summed out by the forward algorithm (`DiscreteHMM`): sites `pi`, `A`, `B`, `x`.
    `sequences [..., N, T]`; leading dims are independent datasets, each with its own π, A, B."""
    hmm_model(CATEGORICAL, sequences, K, M)


def discrete_model_enumerated(sequences: torch.Tensor, K: int, M: int) -> None:
    """The same story one site per day, states enumerated by Pyro (the original's literal
    model); `sequences [N, T]`, slow (use `discrete_model`)."""
    hmm_model_enumerated(CATEGORICAL, sequences, K, M)


def prior_draw(K: int, M: int, seed: int) -> dict[str, torch.Tensor]:
    """The start values `learn_discrete` draws with `init_to_sample` after
    `pyro.set_rng_seed(seed)`: π ~ Dir(1) `[K]`, A ~ Dir(1) `[K, K]`, B ~ Dir(1) `[K, M]`,
    in the model's site order. Stack them to start a batch of fits as separate runs would."""
    pyro.set_rng_seed(seed)
    return {
        "pi": dist.Dirichlet(torch.ones(K)).sample(),
        "A": dist.Dirichlet(torch.ones(K, K)).sample(),
        "B": dist.Dirichlet(torch.ones(K, M)).sample(),
    }


def learn_discrete(
    sequences: torch.Tensor,
    K: int,
    M: int,
    steps: int = 400,
    lr: float = 0.05,
    seed: int = 0,
    *,
    restarts: int = 1,
    tol: float | None = None,
    check_every: int = 50,
    enumerate_states: bool = False,
    init: dict[str, torch.Tensor] | None = None,
    optimizer: str = "adam",
    lengths: torch.Tensor | None = None,
) -> HMMFit:
    """MAP estimate of (π, A, B) of a K-state, M-symbol HMM from `sequences [..., N, T]`:
    `learn(sequences, K, "categorical", M=M, ...)` with post 2's defaults (the original's
    recipe: seed 0, a prior draw, Adam(0.05), 400 steps). The result's `emission` is B.
    `init` gives start values for the sites "pi", "A", "B". `lengths [..., N]`: a ragged
    batch (see `learn`); -1 marks a missing symbol."""
    K = check_positive_int("K", K)
    M = check_positive_int("M", M)
    if lengths is not None:
        sequences = pad_as_missing(CATEGORICAL, sequences, lengths)
    x = CATEGORICAL.check(sequences, M, "sequences")
    if enumerate_states and x.dim() != 2:
        raise ValueError("sequences: the enumerated model takes one dataset [N, T], "
                         f"got shape {tuple(x.shape)}")
    return learn(x, K, CATEGORICAL, M=M, steps=steps, lr=lr, seed=seed, restarts=restarts,
                 init="prior" if init is None else init, tol=tol, check_every=check_every,
                 enumerate_states=enumerate_states, optimizer=optimizer)
