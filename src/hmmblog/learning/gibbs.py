"""Gibbs sampling of (π, A, θ) with the state path as an auxiliary variable.

The model is `hmm_model`'s (π ~ Dirichlet(1), A_i ~ Dirichlet(1), θ_k ~ the family's prior).
One sweep draws, in turn,

    z ~ p(z | π, A, θ, x)                      forward filtering, backward sampling
    π ~ Dirichlet(1 + n_1),  A_i ~ Dirichlet(1 + n_i·)      n: counts of the path's starts
    θ ~ p(θ | z, x)                             and moves; the family's `conditional`

and the chain's stationary law is p(π, A, θ, z | x), so (π, A, θ) alone are draws from the
posterior NUTS samples (Chib, 1996; Scott, 2002). Each step is exact or, where the family's
conditional has no closed form (a Gaussian's σ), a Metropolis step that leaves it invariant.
A sweep costs one pass over the data, with no gradient, which is why it is fast here; the
price is that the path and the parameters move one after the other, so successive draws are
more correlated than NUTS's, which the effective sample size accounts for.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from hmmblog.inference.filtering import ffbs_rows, scaled_likelihoods
from hmmblog.learning.engine import EmissionFamily, dirichlet_draw, filled, state_log_lik
from hmmblog.learning.metropolis import TARGET_ACCEPTANCE, MarginalTarget, metropolis_step

__all__ = ["gibbs_chains"]


def gibbs_chains(family: EmissionFamily, x: torch.Tensor, K: int, M: int | None,
                 starts: list[dict[str, torch.Tensor]], *, warmup: int, num_samples: int,
                 thin: int, moves: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Gibbs chains, one per start, in lockstep on datasets ``x [D, N, T]`` (each with its
    own π, A, θ). A start gives every site (``pi [D, K]``, ``A [D, K, K]``, the family's θ
    ``[D, K, ...]``); `warmup` sweeps are discarded, then `num_samples` kept, one every
    `thin` sweeps. Returns every site's draws ``[chains, num_samples, D, ...]``.

    `moves` > 0 adds that many random-walk Metropolis steps on the marginal posterior after
    every sweep (`hmmblog.learning.metropolis`), shaped by the covariance of the chain's
    draws in the second quarter of warm-up and scaled in its second half; 0 is plain Gibbs.

    The chains are independent (the datasets of chain c are rows c·D … c·D + D − 1 of one
    stacked batch), so each sweep is one pass of the compiled filter over all of them."""
    C = len(starts)
    xs = x.repeat(C, 1, 1)  # [C·D, N, T]
    D, N, T = xs.shape
    x_filled, observed, missing = filled(family, xs)
    x_np = x_filled.numpy()
    stacked = {s: np.concatenate([st[s].double().numpy() for st in starts])
               for s in ("pi", "A", *family.sites)}
    pi, A = stacked["pi"], stacked["A"]
    theta = {s: stacked[s] for s in family.sites}
    kept: dict[str, list[np.ndarray]] = {s: [] for s in stacked}
    paths = np.empty((D * N, T), np.int64)
    log_px = np.empty(D * N)
    firsts = np.arange(D)[:, None] * K  # offsets that give each dataset its own counts
    pairs = np.arange(D)[:, None, None] * K * K
    walk = _Walk(family, x_filled, missing, K, M, warmup) if moves and warmup >= 8 else None
    for sweep in range(warmup + num_samples * thin):
        ll = state_log_lik(family, x_filled, missing, theta)
        lik, _ = scaled_likelihoods(ll.reshape(D * N, T, K))
        ffbs_rows(np.repeat(pi, N, axis=0), np.repeat(A, N, axis=0), lik,
                  rng.random((D * N, T)), paths, log_px)
        z = paths.reshape(D, N, T)
        first = np.bincount((firsts + z[:, :, 0]).ravel(), minlength=D * K).reshape(D, K)
        steps = pairs + z[:, :, :-1] * K + z[:, :, 1:]
        counts = np.bincount(steps.ravel(), minlength=D * K * K).reshape(D, K, K)
        pi = dirichlet_draw(rng, 1.0 + first)
        A = dirichlet_draw(rng, 1.0 + counts)
        theta = family.conditional(x_np, observed, z, theta, K, M, rng)
        if walk is not None:
            pi, A, theta = walk.move(sweep, pi, A, theta, moves, rng)
        if sweep >= warmup and (sweep - warmup + 1) % thin == 0:
            kept["pi"].append(pi)
            kept["A"].append(A)
            for s in family.sites:
                kept[s].append(theta[s])
    return {s: np.stack(v).reshape(num_samples, C, -1, *v[0].shape[1:]).swapaxes(0, 1)
            for s, v in kept.items()}


class _Walk:
    """The Metropolis moves of `gibbs_chains`: records each chain's warm-up draws in its
    second quarter, then walks with their covariance, the scale tuned until warm-up ends."""

    def __init__(self, family: EmissionFamily, x: torch.Tensor, missing: torch.Tensor | None,
                 K: int, M: int | None, warmup: int):
        self.target = MarginalTarget(family, x, missing, K, M)
        self.sites = family.sites
        self.record = range(warmup // 4, warmup // 2)
        self.tune = range(warmup // 2, warmup)
        self.seen: list[np.ndarray] = []
        self.chol: np.ndarray | None = None
        self.log_scale = np.full(self.target.D, math.log(2.38**2 / self.target.P))
        self.cov: np.ndarray | None = None

    def _factor(self) -> None:
        P = self.target.P
        scaled = np.exp(self.log_scale)[:, None, None] * self.cov
        self.chol = np.linalg.cholesky(scaled + 1e-10 * np.eye(P))

    def move(self, sweep: int, pi: np.ndarray, A: np.ndarray, theta: dict[str, np.ndarray],
             moves: int, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """After sweep `sweep`'s Gibbs updates: record or walk; the (possibly) moved values."""
        values = {"pi": pi, "A": A, **theta}
        if sweep < self.record.start:
            return pi, A, theta
        u = self.target.pack(values)
        if sweep in self.record:
            self.seen.append(u)
            return pi, A, theta
        if self.chol is None:  # the recorded draws' covariance, per chain and dataset
            seen = np.stack(self.seen, 1)  # [D, S, P]
            centred = seen - seen.mean(1, keepdims=True)
            P = self.target.P
            self.cov = (np.einsum("dsi,dsj->dij", centred, centred) / max(len(self.seen) - 1, 1)
                        + 1e-6 * np.eye(P))

            self.seen = []
            self._factor()
        lp, _ = self.target(u)
        for _ in range(moves):
            u, lp, proposed, take, alpha = metropolis_step(self.target, u, lp, self.chol, rng)
            if take.any():
                values = {k: np.where(take.reshape(-1, *([1] * (v.ndim - 1))),
                                      proposed[k].reshape(v.shape), v)
                          for k, v in values.items()}
            if sweep in self.tune:
                gain = (sweep - self.tune.start + 1) ** -0.6
                self.log_scale += gain * (alpha - TARGET_ACCEPTANCE)
                self._factor()
        return values["pi"], values["A"], {s: values[s] for s in self.sites}
