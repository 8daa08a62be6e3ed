"""MAP estimates by expectation-maximisation (Baum-Welch), for families with an `m_step`.

The objective is `learn`'s, log p(x | π, A, θ) + log p(π, A, θ) of `hmm_model`, and EM climbs
it monotonically: the E-step computes p(z_t | x) and the expected transitions by the compiled
forward-backward (`hmmblog.inference.filtering.smooth_rows`), the M-step sets

    π ∝ Σ_n p(z_1 = k | x_n),   A_ij ∝ Σ_t p(z_t = i, z_{t+1} = j | x)

(the MAP under flat Dirichlet priors) and θ by the family's `m_step`. An iteration costs one
pass over the data with no gradient, so a fit to convergence takes milliseconds where
`learn`'s L-BFGS takes seconds; restarts run side by side. `converged_fit` uses it when the
family has an `m_step`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from hmmblog.inference.filtering import scaled_likelihoods, smooth_rows
from hmmblog.learning.engine import (
    EmissionFamily,
    HMMFit,
    filled,
    nanstd,
    normalise_rows,
    prior_start,
    state_log_lik,
)

__all__ = ["EMResult", "em", "em_fit"]

#: The floor under π and A inside the E-step (see `em`).
TINY = 1e-300


class EMResult(NamedTuple):
    """Each run's parameters by site (numpy, ``[D, ...]``), its final log p(x | θ) ``[D]``,
    the log-likelihood of every iteration ``[iterations, D]`` and whether every run met the
    tolerance."""

    values: dict[str, np.ndarray]
    log_likelihood: np.ndarray
    trace: np.ndarray
    converged: bool


def em(family: EmissionFamily, x: torch.Tensor, K: int, start: dict[str, np.ndarray], *,
       max_iter: int = 500, tol: float = 1e-8) -> EMResult:
    """EM from `start` (by site, ``[D, ...]``) on datasets ``x [D, N, T]`` (each its own
    π, A, θ), until every run's log-likelihood changes by less than `tol` relative to its
    size, or `max_iter` iterations."""
    D, N, T = x.shape
    x_filled, observed, missing = filled(family, x)
    x_np = x_filled.numpy()
    pi, A = start["pi"].copy(), start["A"].copy()
    theta = {s: start[s].copy() for s in family.sites}
    gamma = np.empty((D * N, T, K))
    xi = np.empty((D * N, K, K))
    log_px = np.empty(D * N)
    trace = []
    converged = False
    for iteration in range(max_iter):
        ll = state_log_lik(family, x_filled, missing, theta)
        lik, shift = scaled_likelihoods(ll.reshape(D * N, T, K))
        # an M-step can set a probability to exactly 0; a tiny floor keeps every step's
        # normaliser positive when the data then visit that move (it changes nothing else)
        smooth_rows(np.repeat(np.maximum(pi, TINY), N, axis=0),
                    np.repeat(np.maximum(A, TINY), N, axis=0), lik, gamma, xi, log_px)
        current = (log_px + shift).reshape(D, N).sum(-1)
        trace.append(current)
        if len(trace) > 1 and (np.abs(current - trace[-2]) <= tol * np.abs(current)).all():
            converged = True
        if converged or iteration == max_iter - 1:  # the values returned are the last scored
            break
        weights = gamma.reshape(D, N, T, K)
        first = weights[:, :, 0].sum(1)
        pi = first / first.sum(-1, keepdims=True)
        A = normalise_rows(xi.reshape(D, N, K, K).sum(1), A)
        theta = family.m_step(x_np, observed, weights, theta)
    return EMResult({"pi": pi, "A": A, **theta}, trace[-1], np.stack(trace), converged)


def em_fit(family: EmissionFamily, x: torch.Tensor, K: int, M: int | None, *, seed: int,
           init: str | dict[str, torch.Tensor], standardize: bool, restarts: int = 1,
           max_iter: int = 500, tol: float = 1e-8) -> HMMFit:
    """`learn`'s MAP estimate by EM: `restarts` starts side by side (``init="kmeans"``: the
    family's start, ``"prior"``: prior draws seeded seed, seed + 1, ..., or a dict of start
    values by site), the one with the highest log-likelihood kept for each dataset of
    ``x [..., N, T]`` (checked, in data units; `standardize` fits (x − mean) / std and maps
    back)."""
    batch = x.shape[:-2]
    D = math.prod(batch)
    center, spread = (torch.nanmean(x), nanstd(x)) if standardize else (None, None)
    x_fit = (x - center) / spread if standardize else x
    starts = []
    for r in range(restarts):
        if isinstance(init, dict):
            start = {**prior_start(family, x_fit, K, M, seed + r), **init}
        elif init == "kmeans":
            start = family.start(x_fit, K)
        else:
            start = prior_start(family, x_fit, K, M, seed + r)
        starts.append({k: torch.as_tensor(v).double().reshape(D, *v.shape[len(batch):])
                       .numpy() for k, v in start.items()})
    stacked = {k: np.concatenate([s[k] for s in starts]) for k in starts[0]}
    result = em(family, x_fit.reshape(D, *x.shape[-2:]).repeat(restarts, 1, 1), K, stacked,
                max_iter=max_iter, tol=tol)
    by_run = result.log_likelihood.reshape(restarts, D)
    by_run = np.where(np.isfinite(by_run), by_run, -np.inf)
    best = by_run.argmax(0)  # [D]
    pick = best * D + np.arange(D)
    dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
    values = {k: torch.from_numpy(v[pick]).reshape(*batch, *v.shape[1:]).to(dtype)
              for k, v in result.values.items()}
    theta = {s: values[s] for s in family.sites}
    if standardize:
        theta = family.to_data_units(theta, center, spread)
    trace = result.trace.reshape(len(result.trace), restarts, D)
    return HMMFit(
        family=family.name, initial=values["pi"], transition=values["A"],
        emission_params={f: theta[s] for s, f in zip(family.sites, family.fields, strict=True)},
        losses=[-float(t[best, np.arange(D)].sum()) for t in trace],
        converged=result.converged, restart=int(best[0]),
        final_losses=[-float(v.sum()) for v in by_run])
