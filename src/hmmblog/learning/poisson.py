"""Poisson emissions: K hidden states, one count a step, x_t | z_t = k ~ Poisson(λ_k).

The whole plug-in for a new emission family: checks, prior, distribution and a k-means start.
Fit it with `learn(counts, K, "poisson")`; the result's `rate` is λ.
"""

from __future__ import annotations

import numpy as np
import pyro
import pyro.distributions as dist
import torch

from hmmblog.learning.engine import (
    EmissionFamily,
    register,
    state_prior,
    state_sums,
    weighted_sums,
)
from hmmblog.learning.kmeans import chain_counts, kmeans_segmentation

__all__ = ["Poisson"]


class Poisson(EmissionFamily):
    """λ_k ~ Gamma(1, 1 / mean(x)) (an exponential prior with the data's mean): the site
    `rates` is the result's `rate`. Observations: counts `[N, T]` (integers >= 0)."""

    name = "poisson"
    sites = ("rates",)
    fields = ("rate",)

    def check(self, observations: torch.Tensor, M: int | None,
              name: str = "observations") -> torch.Tensor:
        x = torch.as_tensor(observations)
        if x.dim() != 2 or x.numel() < 2 or x.dtype == torch.bool:
            raise ValueError(f"{name}: expected counts [N, T], got dtype {x.dtype} and shape "
                             f"{tuple(x.shape)}")
        x = x if x.is_floating_point() else x.to(torch.get_default_dtype())
        if not (torch.isfinite(x).all() and (x >= 0).all() and (x == x.round()).all()):
            raise ValueError(f"{name}: expected whole numbers >= 0 (counts)")
        if not x.sum() > 0:
            raise ValueError(f"{name}: all counts are 0, nothing to learn")
        return x

    def prior(self, observations: torch.Tensor, K: int, M: int | None
              ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        x = observations
        with state_prior(K, x) as (pi, A):
            rates = pyro.sample("rates", dist.Gamma(x.new_ones(()), 1 / x.mean()))
        return pi, A, {"rates": rates}

    def distribution(self, rates: torch.Tensor) -> dist.Poisson:
        return dist.Poisson(rates)

    def conditional(self, x: np.ndarray, observed: np.ndarray, z: np.ndarray,
                    theta: dict[str, np.ndarray], K: int, M: int | None,
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
        """λ_k | x, z ~ Gamma(1 + Σ x_t, 1 / mean(x) + n_k) over the steps in state k."""
        n, total = state_sums(x, observed, z, K)[:2]
        rate = n.sum(-1, keepdims=True) / total.sum(-1, keepdims=True) + n
        return {"rates": rng.standard_gamma(1.0 + total) / rate}

    def m_step(self, x: np.ndarray, observed: np.ndarray, weights: np.ndarray,
               theta: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """λ_k = Σ_t w_tk x_t / (Σ_t w_tk + 1 / mean(x)): the MAP under the exponential
        prior."""
        n, total, _ = weighted_sums(x, observed, weights)
        return {"rates": total / (n + n.sum(-1, keepdims=True) / total.sum(-1, keepdims=True))}

    def start(self, observations: torch.Tensor, K: int) -> dict[str, torch.Tensor]:
        centers, labels = kmeans_segmentation(observations, K)
        pi, A = chain_counts(labels, K, observations.dtype)
        return {"pi": pi, "A": A, "rates": centers.clamp_min(1e-3 * observations.mean())}


POISSON = register(Poisson())
