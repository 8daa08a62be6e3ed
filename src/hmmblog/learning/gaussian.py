"""Gaussian emissions: K hidden states, one real number a step, x_t | z_t = k ~ N(μ_k, σ_k)
(post 3).

The family plug-in for the shared learner, and post 3's names for it: `learn_gaussian`,
`gaussian_model`, `gaussian_model_enumerated` and `kmeans_init`.
"""

from __future__ import annotations

import numpy as np
import pyro
import pyro.distributions as dist
import torch

from hmmblog.learning.engine import (
    EmissionFamily,
    HMMFit,
    hmm_model,
    hmm_model_enumerated,
    learn,
    nanstd,
    register,
    state_prior,
    state_sums,
    weighted_sums,
)
from hmmblog.learning.kmeans import chain_counts, farthest_point_centers, kmeans_segmentation
from hmmblog.validation import check_positive_int

__all__ = ["Gaussian", "gaussian_model", "gaussian_model_enumerated", "kmeans_init",
           "learn_gaussian"]


def check_real_sequences(observations: torch.Tensor, name: str = "observations",
                         missing: bool = False) -> torch.Tensor:
    """`observations` as a floating tensor [N, T] of at least two finite values (and, if
    `missing`, NaN for missing ones)."""
    x = torch.as_tensor(observations)
    if x.dim() != 2 or not x.is_floating_point():
        raise ValueError(
            f"{name}: expected a floating tensor [N, T] (N sequences of T real values), "
            f"got dtype {x.dtype} and shape {tuple(x.shape)}"
        )
    finite = torch.isfinite(x)
    allowed = finite | torch.isnan(x) if missing else finite
    if int(finite.sum()) < 2 or not allowed.all():
        raise ValueError(
            f"{name}: expected at least two finite values"
            f"{' (NaN: missing)' if missing else ''}, "
            f"got shape {tuple(x.shape)} with {'inf' if missing else 'NaN/inf'} or too few values"
        )
    return x


class Gaussian(EmissionFamily):
    """x_t | z_t = k ~ N(μ_k, σ_k) with μ_k ~ N(mean(x), 3·std(x)) and σ_k ~ LogNormal(0, 1):
    the sites `locs`, `scales` are the result's `loc`, `scale`. Observations `[N, T]`, NaN
    where missing (the prior's mean and spread, and the k-means start, use the others)."""

    name = "gaussian"
    sites = ("locs", "scales")
    fields = ("loc", "scale")
    standardizable = True
    gap = float("nan")

    def check(self, observations: torch.Tensor, M: int | None,
              name: str = "observations") -> torch.Tensor:
        return check_real_sequences(observations, name, missing=True)

    def observed(self, observations: torch.Tensor) -> torch.Tensor:
        return ~torch.isnan(observations)

    def prior(self, observations: torch.Tensor, K: int, M: int | None
              ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        x = observations
        with state_prior(K, x) as (pi, A):
            locs = pyro.sample("locs", dist.Normal(torch.nanmean(x), 3 * nanstd(x)))
            scales = pyro.sample("scales", dist.LogNormal(x.new_zeros(()), x.new_ones(())))
        return pi, A, {"locs": locs, "scales": scales}

    def distribution(self, locs: torch.Tensor, scales: torch.Tensor) -> dist.Normal:
        return dist.Normal(locs, scales)

    def conditional(self, x: np.ndarray, observed: np.ndarray, z: np.ndarray,
                    theta: dict[str, np.ndarray], K: int, M: int | None,
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
        """μ_k | σ_k, x, z: normal (conjugate to the prior N(m, s)); then σ_k | μ_k, x, z by
        an independence Metropolis step on u = log σ_k, whose log density
        f(u) = −n u − SS e^{−2u} / 2 − u² / 2 (SS = Σ (x_t − μ_k)²) is concave: the proposal
        is a Student-t (4 degrees of freedom) at f's mode with f's curvature there."""
        n, total, squares = state_sums(x, observed, z, K)
        m, s = prior_center_spread(x, observed)
        sigma = theta["scales"]
        precision = 1 / s**2 + n / sigma**2
        mean = (m / s**2 + total / sigma**2) / precision
        mu = mean + rng.standard_normal(mean.shape) / np.sqrt(precision)
        ss = np.maximum(squares - 2 * mu * total + n * mu**2, 0.0)

        def f(u: np.ndarray) -> np.ndarray:
            return -n * u - 0.5 * ss * np.exp(-2 * u) - 0.5 * u**2

        u = log_scale_mode(n, ss)
        width = 1 / np.sqrt(2 * ss * np.exp(-2 * u) + 1)
        proposal = u + width * rng.standard_t(4, size=u.shape)

        def log_q(v: np.ndarray) -> np.ndarray:  # the t proposal's log density, up to a constant
            return -2.5 * np.log1p(((v - u) / width) ** 2 / 4)

        current = np.log(sigma)
        log_ratio = f(proposal) - f(current) + log_q(current) - log_q(proposal)
        accept = np.log(rng.random(u.shape)) < log_ratio
        return {"locs": mu, "scales": np.where(accept, np.exp(proposal), sigma)}

    def m_step(self, x: np.ndarray, observed: np.ndarray, weights: np.ndarray,
               theta: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The MAP update given p(z_t = k | x): μ_k, the prior's normal times the weighted
        readings (given σ_k); then σ_k, the maximum of −(n + 1) log σ − SS / 2σ² − (log σ)²
        / 2 (the log-normal prior's density in σ; SS = Σ_t w_tk (x_t − μ_k)²)."""
        n, total, squares = weighted_sums(x, observed, weights)
        m, s = prior_center_spread(x, observed)
        sigma = theta["scales"]
        mu = (m / s**2 + total / sigma**2) / (1 / s**2 + n / sigma**2)
        ss = np.maximum(squares - 2 * mu * total + n * mu**2, 0.0)
        return {"locs": mu, "scales": np.exp(log_scale_mode(n + 1, ss))}

    def start(self, observations: torch.Tensor, K: int) -> dict[str, torch.Tensor]:
        # k-means needs a value at every step: a gap takes the median reading (a start only)
        gaps = torch.isnan(observations)
        if gaps.any():
            observations = observations.masked_fill(gaps, observations[~gaps].median())
        return kmeans_init(observations, K)

    def to_data_units(self, theta: dict[str, torch.Tensor], center: torch.Tensor,
                      spread: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"locs": center + spread * theta["locs"], "scales": spread * theta["scales"]}


GAUSSIAN = register(Gaussian())


def prior_center_spread(x: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The prior's N(mean, 3 std) of μ for each dataset of ``x [D, N, T]``: ``[D, 1]`` each."""
    count = observed.sum((1, 2))[:, None]
    seen = np.where(observed, x, 0.0)
    m = seen.sum((1, 2))[:, None] / count
    squares = np.where(observed, (x - m[:, :, None]) ** 2, 0.0).sum((1, 2))[:, None]
    return m, 3 * np.sqrt(squares / (count - 1))


def log_scale_mode(n: np.ndarray, ss: np.ndarray) -> np.ndarray:
    """argmax_u −n u − SS e^{−2u} / 2 − u² / 2 (a concave function), by Newton's method."""
    u = np.where(n > 0, 0.5 * np.log(np.maximum(ss, 1e-300) / np.maximum(n, 1)), 0.0)
    u = np.clip(u, -30.0, 30.0)
    for _ in range(50):  # f'(u) = −n + SS e^{−2u} − u is decreasing
        grad = -n + ss * np.exp(-2 * u) - u
        u = u + np.clip(grad / (2 * ss * np.exp(-2 * u) + 1), -2.0, 2.0)
    return u


def gaussian_model(observations: torch.Tensor, K: int) -> None:
    """π ~ Dir(1), A_i ~ Dir(1), μ_k ~ N(mean(y), 3·std(y)), σ_k ~ LogNormal(0, 1);
    z_1 ~ π, z_t ~ A[z_{t-1}], y_t ~ N(μ_{z_t}, σ_{z_t}), the states summed out exactly
    (`DiscreteHMM`): sites `pi`, `A`, `locs`, `scales`, `x`. `observations [N, T]`."""
    hmm_model(GAUSSIAN, observations, K)


def gaussian_model_enumerated(observations: torch.Tensor, K: int) -> None:
    """The same story one site per step, states enumerated by Pyro (the original's literal
    model); `observations [N, T]`, slow (use `gaussian_model`)."""
    hmm_model_enumerated(GAUSSIAN, observations, K)


def kmeans_init(
    observations: torch.Tensor, K: int, iters: int = 100, starts: str = "quantiles"
) -> dict[str, torch.Tensor]:
    """A deterministic, data-driven start for every site of `gaussian_model`, from the
    k-means segmentation of `observations [N, T]` (`hmmblog.learning.kmeans`; Lloyd from the
    quantiles or, with ``starts="farthest"``, from farthest-point starts): `locs`, `scales` =
    mean and standard deviation of each cluster (sorted by mean), `pi` and `A` from the
    counts of the labels, add-one smoothed."""
    K = check_positive_int("K", K)
    y = check_real_sequences(observations)
    if starts not in ("quantiles", "farthest"):
        raise ValueError(f"starts: expected 'quantiles' or 'farthest', got {starts!r}")
    flat = y.reshape(-1)
    centers = farthest_point_centers(flat, K) if starts == "farthest" else None
    centers, labels = kmeans_segmentation(y, K, iters, centers=centers)
    counts = torch.bincount(labels.reshape(-1), minlength=K).to(y.dtype)
    sq = torch.zeros(K, dtype=y.dtype).index_add_(
        0, labels.reshape(-1), (flat - centers[labels.reshape(-1)]) ** 2
    )
    spread = torch.where(counts > 1, (sq / (counts - 1).clamp_min(1)).sqrt(), flat.std())
    floor = 1e-3 * flat.std()  # a cluster of one value (or none) still needs a positive scale
    pi, A = chain_counts(labels, K, y.dtype)
    return {"pi": pi, "A": A, "locs": centers, "scales": spread.clamp_min(floor)}


def learn_gaussian(
    observations: torch.Tensor,
    K: int,
    steps: int = 250,
    lr: float = 0.05,
    seed: int = 0,
    restarts: int = 1,
    *,
    init: str = "prior",
    standardize: bool = False,
    tol: float | None = None,
    check_every: int = 50,
    enumerate_states: bool = False,
    lengths: torch.Tensor | None = None,
) -> HMMFit:
    """MAP estimate of (π, A, μ, σ) of a K-state Gaussian-emission HMM from `observations
    [N, T]`: `learn(observations, K, "gaussian", ...)` with post 3's defaults (the original's
    recipe: a prior draw, Adam(0.05), 250 steps). The result's `loc`, `scale` are μ, σ.
    `init="kmeans"` starts at `kmeans_init` (which avoids the local optima where two states
    share one cluster; its restarts all coincide). `standardize=True` fits (y - mean) / std
    and maps μ, σ back (Adam's step is in data units, so use it when the data are far from
    unit scale; the priors then act on the standardised values). NaN readings are missing;
    `lengths [N]` gives a ragged batch (see `learn`)."""
    if init not in ("prior", "kmeans"):
        raise ValueError(f"init: expected 'prior' or 'kmeans', got {init!r}")
    return learn(observations, K, GAUSSIAN, steps=steps, lr=lr, seed=seed, restarts=restarts,
                 init=init, standardize=standardize, tol=tol, check_every=check_every,
                 enumerate_states=enumerate_states, lengths=lengths)
