"""Random-walk Metropolis moves on p(π, A, θ | x) with the states summed out.

The Gibbs sampler (`hmmblog.learning.gibbs`) moves the path and the parameters in turn;
where the path pins the parameters down much more tightly than the data do (states whose
emissions overlap), each sweep moves them only a little. A move on the *marginal* posterior
has no such tie. In unconstrained coordinates u (a simplex by stick-breaking, a positive
value by its log) a step proposes

    u' = u + L ε,   ε ~ N(0, I),   L Lᵀ = λ Σ,

and accepts it with probability min(1, p(u' | x) / p(u | x)): the prior density in u (with
the transforms' Jacobians) times the exact likelihood p(x | π, A, θ) from the compiled
forward filter. Σ is the covariance of the chain's own warm-up draws, so the step follows the
posterior's shape, and λ is tuned during warm-up towards an acceptance rate of 0.234
(Roberts, Gelman & Gilks, 1997); both are frozen before the kept draws.
"""

from __future__ import annotations

import math

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample
from torch.distributions import Distribution, Independent, constraints

from hmmblog.inference.filtering import log_likelihood_rows, scaled_likelihoods
from hmmblog.learning.engine import EmissionFamily, state_log_lik

__all__ = ["TARGET_ACCEPTANCE", "MarginalTarget", "metropolis_step"]

#: The acceptance rate warm-up tunes the step towards (random-walk proposals, many dims).
TARGET_ACCEPTANCE = 0.234


class _Site:
    """One site of the prior: its distribution (without `to_event`), the map from
    unconstrained coordinates, and where its coordinates sit in a row of u ``[D, P]``.

    The maps are numpy's: a simplex by the additive log-ratio y = softmax(u, 0), whose
    Jacobian determinant is ∏_k y_k; a positive value by y = exp(u); a real one as is. The
    log densities of the priors used here (Dirichlet, normal, log-normal, gamma) are numpy's
    too, up to constants (a Metropolis ratio needs no more); any other prior is torch's."""

    def __init__(self, name: str, fn: Distribution, value: torch.Tensor, at: int):
        while isinstance(fn, Independent):
            fn = fn.base_dist
        self.name, self.fn, self.dtype = name, fn, value.dtype
        support = fn.support
        if support is constraints.simplex:
            self.kind = "simplex"
        elif support in (constraints.positive, constraints.nonnegative):
            self.kind = "positive"
        elif support is constraints.real:
            self.kind = "real"
        else:
            raise ValueError(f"sampler: the prior of {name!r} has support {support}, which "
                             f"the Metropolis moves do not map; use moves=0 or 'nuts'")
        self.shape = tuple(value.shape)  # one dataset's value
        self.free = self.shape[:-1] + (self.shape[-1] - 1,) if self.kind == "simplex" \
            else self.shape
        self.at = slice(at, at + math.prod(self.free))
        self.params = {k: getattr(fn, k).detach().double().numpy()
                       for k in _PARAMS.get(type(fn).__name__, ())}

    def inverse(self, y: np.ndarray) -> np.ndarray:
        """Coordinates ``[D, size]`` of values ``[D, *shape]``."""
        if self.kind == "simplex":
            with np.errstate(divide="ignore"):
                logs = np.log(y)
            u = logs[..., :-1] - logs[..., -1:]
        else:
            u = np.log(y) if self.kind == "positive" else y
        return u.reshape(len(y), -1)

    def value(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values ``[D, *shape]`` at coordinates ``u [D, P]`` and their log prior density in
        those coordinates ``[D]``, up to a constant."""
        D = len(u)
        free = u[:, self.at].reshape(D, *self.free)
        if self.kind == "simplex":
            full = np.concatenate([free, np.zeros((*free.shape[:-1], 1))], -1)
            log_y = full - np.logaddexp.reduce(full, -1, keepdims=True)
            y, jac = np.exp(log_y), log_y.sum(-1)
        elif self.kind == "positive":
            y, jac, log_y = np.exp(free), free, free
        else:
            y, jac, log_y = free, np.zeros(()), None
        lp = self._log_density(y, log_y)
        return y, (lp + jac).reshape(D, -1).sum(-1)

    def _log_density(self, y: np.ndarray, log_y: np.ndarray | None) -> np.ndarray:
        p, kind = self.params, type(self.fn).__name__
        if kind == "Dirichlet":
            return ((p["concentration"] - 1) * log_y).sum(-1)
        if kind == "Normal":
            return -0.5 * ((y - p["loc"]) / p["scale"]) ** 2
        if kind == "LogNormal":
            return -log_y - 0.5 * ((log_y - p["loc"]) / p["scale"]) ** 2
        if kind == "Gamma":
            return (p["concentration"] - 1) * log_y - p["rate"] * y
        with pyro.validation_enabled(False):
            return self.fn.log_prob(torch.from_numpy(y).to(self.dtype)).double().numpy()


#: The parameters `_Site` reads of each prior it evaluates in numpy.
_PARAMS = {"Dirichlet": ("concentration",), "Normal": ("loc", "scale"),
           "LogNormal": ("loc", "scale"), "Gamma": ("concentration", "rate")}


class MarginalTarget:
    """log p(u | x) + const of the model `hmm_model` for D datasets in lockstep, as a
    function of unconstrained coordinates ``u [D, P]``.

    `x [D, N, T]` and `missing` as `filled` gives them. The prior is traced once on the
    first dataset: every family here has the same prior for every dataset of a batch (its
    hyperparameters depend on the data, if at all, through that one dataset)."""

    def __init__(self, family: EmissionFamily, x: torch.Tensor, missing: torch.Tensor | None,
                 K: int, M: int | None):
        one = x[0]  # one dataset [N, T]; a real-valued family reads its gaps as NaN
        if missing is not None and one.is_floating_point():
            one = one.masked_fill(missing[0, ..., 0], float("nan"))
        with poutine.block():
            trace = poutine.trace(family.prior).get_trace(one, K, M)
        self.family, self.K = family, K
        self.D, self.N, self.T = x.shape
        self.sites: list[_Site] = []
        at = 0
        for name, node in trace.nodes.items():
            if node["type"] == "sample" and not site_is_subsample(node):
                site = _Site(name, node["fn"], node["value"].detach(), at)
                self.sites.append(site)
                at = site.at.stop
        self.P = at
        self.x, self.missing = x, missing
        self.log_px = np.empty(self.D * self.N)

    def pack(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """Unconstrained coordinates ``[D, P]`` of site values ``[D, ...]`` by name."""
        return np.concatenate([s.inverse(values[s.name].reshape(self.D, *s.shape))
                               for s in self.sites], -1)

    def __call__(self, u: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """log p(u | x) + const ``[D]`` (−inf where not finite) and the site values at u."""
        values, total = {}, np.zeros(self.D)
        for site in self.sites:
            values[site.name], lp = site.value(u)
            total = total + lp
        ll = state_log_lik(self.family, self.x, self.missing,
                           {s: values[s] for s in self.family.sites})
        lik, shift = scaled_likelihoods(ll.reshape(self.D * self.N, self.T, self.K))
        pi = np.repeat(values["pi"].reshape(self.D, self.K), self.N, axis=0)
        A = np.repeat(values["A"].reshape(self.D, self.K, self.K), self.N, axis=0)
        log_likelihood_rows(pi, A, lik, self.log_px)
        out = total + (self.log_px + shift).reshape(self.D, self.N).sum(-1)
        return np.where(np.isfinite(out), out, -np.inf), values


def metropolis_step(target: MarginalTarget, u: np.ndarray, lp: np.ndarray, chol: np.ndarray,
                    rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray,
                               np.ndarray]:
    """One random-walk step for every dataset: proposal u + chol ε (``chol [D, P, P]``).
    Returns the new u and lp, the proposal's site values, which datasets accepted, and each
    dataset's acceptance probability."""
    proposal = u + np.einsum("dij,dj->di", chol, rng.standard_normal(u.shape))
    lp_new, values = target(proposal)
    with np.errstate(invalid="ignore"):  # both -inf: nan, a refusal
        log_alpha = np.nan_to_num(np.minimum(lp_new - lp, 0.0), nan=-np.inf)
    take = np.log(rng.random(len(lp))) < log_alpha
    u = np.where(take[:, None], proposal, u)
    lp = np.where(take, lp_new, lp)
    return u, lp, values, take, np.exp(log_alpha)
