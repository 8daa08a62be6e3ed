"""One learner for every emission family: MAP estimates of (π, A, emission) with Pyro SVI.

The model is the same for every family (see `hmm_model`):

    π ~ Dirichlet(1),  A_i ~ Dirichlet(1),  θ_k ~ the family's prior
    z_1 ~ π,  z_t ~ A[z_{t-1}],  x_t ~ family(θ_{z_t})

with the states summed out exactly by `DiscreteHMM` (or enumerated step by step by Pyro with
`enumerate_states=True`, the original posts' literal story). What changes from family to family
is a small plug-in, an `EmissionFamily`: how to check the data, the prior of θ, the
distribution of x given θ and, optionally, a data-driven start and a change of units.
Adding a family is one short module (`hmmblog.learning.poisson` is the example).

Missing observations (NaN for real values, -1 for categorical symbols, as in
`hmmblog.emissions`) are steps without evidence: the model masks their emission factor out
(`observed`), so they still move the chain but say nothing about the state. The enumerated
story does not take them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO, TraceEnum_ELBO
from pyro.infer.autoguide import init_to_sample, init_to_value
from pyro.poutine.util import site_is_subsample
from torch.distributions import Distribution

from hmmblog.learning.fit import fit_map
from hmmblog.models import hmm_story, start_transition_logits
from hmmblog.validation import as_tensor, check_lengths, check_positive_int

__all__ = ["FAMILIES", "EmissionFamily", "HMMFit", "hmm_model", "hmm_model_enumerated", "learn",
           "dirichlet_draw", "filled", "nanstd", "normalise_rows", "pad_as_missing",
           "prior_start", "provides", "register", "state_log_lik", "state_prior", "state_sums",
           "weighted_sums"]


class EmissionFamily:
    """An emission family as the learner sees it. A subclass sets `name`, `sites` (the Pyro
    sample sites of θ, in the order the prior draws them) and `fields` (the names the result
    gives them), and implements `check`, `prior` and `distribution`; `start` (for
    ``init="kmeans"``), `to_data_units` (for ``standardize=True``), `conditional` (for
    Gibbs sampling) and `m_step` (for EM) are optional."""

    name: ClassVar[str]
    sites: ClassVar[tuple[str, ...]]
    fields: ClassVar[tuple[str, ...]]
    event_dims: ClassVar[int] = 0  # dims after the state axis in each θ site (B [K, M]: 1)
    standardizable: ClassVar[bool] = False  # does `to_data_units` exist?
    gap: ClassVar[float | int | None] = None  # the missing value `observed` reads, if any

    def check(self, observations: torch.Tensor, M: int | None,
              name: str = "observations") -> torch.Tensor:
        """The observations `[N, T]` (`[..., N, T]` if the family fits datasets side by side)
        as the model reads them; a ValueError naming `name` if they do not fit."""
        raise NotImplementedError

    def observed(self, observations: torch.Tensor) -> torch.Tensor:
        """``[..., N, T]`` True where there is an observation (default: everywhere). A
        family that takes missing values marks them False here; the model masks them out."""
        return torch.ones_like(observations, dtype=torch.bool)

    def symbols(self, observations: torch.Tensor, M: int | None) -> int | None:
        """M, the size of the observation alphabet, if the family has one (else None)."""
        return None

    def prior(self, observations: torch.Tensor, K: int, M: int | None
              ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Sample π, A and θ (a dict by site name) from their priors, as Pyro sites."""
        raise NotImplementedError

    def distribution(self, **theta: torch.Tensor) -> Distribution:
        """The emission distribution of every state: batch shape ``[..., K]``."""
        raise NotImplementedError

    def conditional(self, x: np.ndarray, observed: np.ndarray, z: np.ndarray,
                    theta: dict[str, np.ndarray], K: int, M: int | None,
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Draw θ from p(θ | x, z) under the family's prior, or take a step that leaves it
        invariant (Gibbs sampling, `sample_posterior`): datasets ``x``, ``observed`` and the
        path ``z [D, N, T]``, the current θ by site ``[D, K, ...]``. Optional."""
        raise ValueError(f"Gibbs sampling is not available for {self.name} emissions "
                         f"(no conditional)")

    def m_step(self, x: np.ndarray, observed: np.ndarray, weights: np.ndarray,
               theta: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The θ that maximises E[log p(x, z | θ)] + log p(θ) given the E-step's weights
        ``[D, N, T, K]`` = p(z_t = k | x) (EM, `hmmblog.learning.em`): data ``x``,
        ``observed [D, N, T]``, the current θ by site ``[D, K, ...]``. Optional."""
        raise ValueError(f"EM is not available for {self.name} emissions (no m_step)")

    def start(self, observations: torch.Tensor, K: int) -> dict[str, torch.Tensor]:
        """A deterministic, data-driven start for every site (``init="kmeans"``)."""
        raise ValueError(f"init: 'kmeans' is not available for {self.name} emissions")

    def to_data_units(self, theta: dict[str, torch.Tensor], center: torch.Tensor,
                      spread: torch.Tensor) -> dict[str, torch.Tensor]:
        """θ fitted to (x - center) / spread, in the units of x (``standardize=True``)."""
        raise NotImplementedError


FAMILIES: dict[str, EmissionFamily] = {}


def register(family: EmissionFamily) -> EmissionFamily:
    """Make `family` available as ``learn(..., emission=family.name)``."""
    FAMILIES[family.name] = family
    return family


@contextlib.contextmanager
def state_prior(K: int, like: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """π ~ Dirichlet(1) and, inside a plate over the K states, each row A_k ~ Dirichlet(1):
    yields (π, A) with the plate still open, so that a family samples its per-state θ_k
    next to A_k (the sites `pi`, `A`, then the family's, in this order)."""
    ones = like.new_ones(K)
    pi = pyro.sample("pi", dist.Dirichlet(ones))
    with pyro.plate("states", K):
        yield pi, pyro.sample("A", dist.Dirichlet(ones))


def state_sums(x: np.ndarray, observed: np.ndarray, z: np.ndarray, K: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n_k, Σ x_t and Σ x_t² over the observed steps in state k of each dataset: three
    ``[D, K]`` arrays, from ``x``, ``observed`` and a path ``z [D, N, T]``."""
    D = x.shape[0]
    cell = (np.arange(D)[:, None, None] * K + z)[observed]
    values = x[observed].astype(np.float64)
    return tuple(np.bincount(cell, weights=w, minlength=D * K).reshape(D, K)
                 for w in (None, values, values * values))


def prior_start(family: EmissionFamily, x: torch.Tensor, K: int, M: int | None,
                seed: int) -> dict[str, torch.Tensor]:
    """One draw of every site of `hmm_model` from its prior (a dispersed start for a chain or
    a restart), seeded; torch's global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with poutine.block():
            trace = poutine.trace(hmm_model).get_trace(family, x, K, M)
    return {name: site["value"].detach() for name, site in trace.nodes.items()
            if site["type"] == "sample" and not site["is_observed"]
            and not site_is_subsample(site)}


def provides(family: EmissionFamily, method: str) -> bool:
    """Does `family` implement the optional `method` (``"start"``, ``"conditional"``,
    ``"m_step"``, ``"to_data_units"``), rather than inherit the base class's refusal?"""
    return getattr(type(family), method) is not getattr(EmissionFamily, method)


def filled(family: EmissionFamily, x: torch.Tensor
           ) -> tuple[torch.Tensor, np.ndarray, torch.Tensor | None]:
    """Observations ``x [..., N, T]`` with a valid stand-in value (0) at missing steps,
    where they are observed (numpy, same shape), and the mask ``[..., N, T, 1]`` of missing
    steps (None if there are none) that `state_log_lik` takes."""
    observed = family.observed(x)
    if observed.all():
        return x, observed.numpy(), None
    return x.masked_fill(~observed, 0), observed.numpy(), ~observed.unsqueeze(-1)


def state_log_lik(family: EmissionFamily, x: torch.Tensor, missing: torch.Tensor | None,
                  theta: dict[str, np.ndarray]) -> np.ndarray:
    """ℓ_t(k) = log p(x_t | θ_k) ``[D, N, T, K]`` (float64) of `filled` datasets
    ``x [D, N, T]`` under each dataset's θ by site ``[D, K, ...]``; zero rows (no evidence)
    where `missing`. θ comes from a sampler or an M-step, inside the support: not checked."""
    per_state = {s: torch.from_numpy(v).reshape(v.shape[0], 1, 1, *v.shape[1:])
                 for s, v in theta.items()}
    with pyro.validation_enabled(False):
        ll = family.distribution(**per_state).log_prob(x.unsqueeze(-1))
    if missing is not None:
        ll = ll.masked_fill(missing, 0.0)
    return ll.double().numpy()


def dirichlet_draw(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """One Dirichlet(`alpha`) draw along the last axis, for every leading index."""
    g = rng.standard_gamma(alpha)
    return g / g.sum(-1, keepdims=True)


def normalise_rows(weights: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """`weights` divided by their sums along the last axis; a row of zero weight takes
    `fallback`'s row (an M-step for a state no step visits keeps its parameters)."""
    rows = weights.sum(-1, keepdims=True)
    return np.where(rows > 0, weights / np.where(rows > 0, rows, 1), fallback)


def weighted_sums(x: np.ndarray, observed: np.ndarray, weights: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Σ_t w_tk, Σ_t w_tk x_t and Σ_t w_tk x_t² over the observed steps of each dataset:
    three ``[D, K]`` arrays, from ``x``, ``observed [D, N, T]`` and ``weights [D, N, T, K]``
    (p(z_t = k | x), EM's E-step)."""
    w = np.where(observed[..., None], weights, 0.0)
    xs = np.where(observed, x, 0.0)[..., None].astype(np.float64)
    return w.sum((1, 2)), (w * xs).sum((1, 2)), (w * xs * xs).sum((1, 2))


def _per_state(theta: torch.Tensor, event_dims: int) -> torch.Tensor:
    """θ ``[..., K, *event]`` as ``[..., 1, 1, K, *event]``: broadcast over sequences and steps."""
    at = theta.dim() - 1 - event_dims  # the state axis
    return theta.reshape(*theta.shape[:at], 1, 1, *theta.shape[at:])


def hmm_model(family: EmissionFamily, observations: torch.Tensor, K: int,
              M: int | None = None) -> None:
    """The HMM with priors, states summed out exactly by `DiscreteHMM` over the whole
    sequence; `observations [..., N, T]`, leading dims (if the family allows them) being
    independent datasets, each with its own π, A, θ."""
    batch, (N, T) = observations.shape[:-2], observations.shape[-2:]
    N, T = int(N), int(T)  # sizes, also under `torch.jit.trace` (NUTS with jit_compile)
    pi, A, theta = family.prior(observations, K, M)
    emission = family.distribution(
        **{k: _per_state(v, family.event_dims) for k, v in theta.items()})  # [..., 1, 1, K]
    observed = family.observed(observations)
    if not observed.all():  # missing steps: a valid stand-in value, its factor masked to 1
        observations = observations.masked_fill(~observed, 0)
        emission = emission.mask(observed.unsqueeze(-1))  # [..., N, T, K]
    hmm = dist.DiscreteHMM(
        initial_logits=torch.zeros(K, dtype=pi.dtype),  # irrelevant: every row of step 0 is π
        transition_logits=start_transition_logits(pi, A, T).unsqueeze(-4),  # [..., 1, T, K, K]
        observation_dist=emission,
    )
    with contextlib.ExitStack() as stack:
        for i, size in enumerate(batch):
            stack.enter_context(pyro.plate(f"datasets_{i}", size, dim=i - len(batch) - 1))
        stack.enter_context(pyro.plate("sequences", N, dim=-1))
        pyro.sample("x", hmm, obs=observations)


def hmm_model_enumerated(family: EmissionFamily, observations: torch.Tensor, K: int,
                         M: int | None = None) -> None:
    """The same model told step by step (`hmmblog.models.hmm_story`), the states enumerated by
    Pyro: the original posts' literal story, slow (a Python loop over time). One dataset
    `observations [N, T]`."""
    pi, A, theta = family.prior(observations, K, M)
    hmm_story(pi, A, family.distribution(**theta), observations)


def pad_as_missing(family: EmissionFamily, observations: object,
                    lengths: object) -> torch.Tensor:
    """`observations [..., N, T]` with the steps past each sequence's length set to the
    family's missing value (`gap`)."""
    if family.gap is None:
        raise ValueError(f"lengths: not available for {family.name} emissions (they take no "
                         f"missing values)")
    x = as_tensor("observations", observations)
    if x.dim() < 2:
        raise ValueError(f"observations: expected [..., N, T], got shape {tuple(x.shape)}")
    lengths = check_lengths(lengths, x.unsqueeze(-1))
    past = torch.arange(x.shape[-1]) >= lengths.unsqueeze(-1)
    if family.gap != family.gap and not x.is_floating_point():
        return x  # NaN marks gaps in real values: the family's check refuses these
    return x.masked_fill(past, family.gap)


def nanstd(x: torch.Tensor) -> torch.Tensor:
    """The standard deviation (n - 1) of the values of `x` that are not NaN (`x.std()`
    itself if none is); torch has `nanmean` but no `nanstd`."""
    gaps = torch.isnan(x)
    return x[~gaps].std() if gaps.any() else x.std()


@dataclass(frozen=True)
class HMMFit:
    """A learned HMM: π `initial [..., K]`, A `transition [..., K, K]` (leading dims = the
    batch of datasets) and the emission parameters by name in `emission_params`, each also an
    attribute (categorical: `fit.emission` = B ``[..., K, M]``; Gaussian: `fit.loc`,
    `fit.scale` ``[K]``; Poisson: `fit.rate` ``[K]``); the loss −log p(x, θ) at every step of
    the kept restart, whether the convergence rule fired, which restart was kept and every
    restart's final loss."""

    family: str
    initial: torch.Tensor
    transition: torch.Tensor
    emission_params: dict[str, torch.Tensor]
    losses: list[float]
    converged: bool
    restart: int
    final_losses: list[float]

    def __getattr__(self, name: str) -> torch.Tensor:
        params = vars(self).get("emission_params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")


def learn(
    observations: torch.Tensor,
    K: int,
    emission: str | EmissionFamily = "categorical",
    *,
    M: int | None = None,
    steps: int = 400,
    lr: float = 0.05,
    seed: int = 0,
    restarts: int = 1,
    init: str | dict[str, torch.Tensor] = "prior",
    standardize: bool = False,
    tol: float | None = None,
    check_every: int = 50,
    enumerate_states: bool = False,
    optimizer: str = "adam",
    lengths: torch.Tensor | None = None,
) -> HMMFit:
    """MAP estimate of (π, A, θ) of a K-state HMM with `emission` emissions from
    `observations [N, T]` (categorical: `[..., N, T]`, leading dims independent datasets fitted
    side by side; M symbols, by default one more than the largest symbol seen). Missing
    observations (NaN, or -1 for symbols) are steps without evidence. `lengths [..., N]`
    gives each sequence's length in a ragged batch padded to T: the padding, whatever its
    values, is read as missing, which leaves each sequence's likelihood exactly its own.

    SVI with an AutoDelta guide (`fit_map`): `steps` Adam(`lr`) steps (``optimizer="lbfgs"``
    to converge), restart r seeded with `seed + r`, the lowest final loss kept, and the rule
    `tol` / `check_every` to stop early. `init`: ``"prior"`` (a draw from the prior),
    ``"kmeans"`` (the family's data-driven start; deterministic, so its restarts coincide) or a
    dict of start values by site name. `standardize` fits (x - mean) / std and maps θ back
    (Gaussian). `enumerate_states` fits the step-by-step story instead of `DiscreteHMM`.
    """
    if isinstance(emission, str) and emission in FAMILIES:
        family = FAMILIES[emission]
    elif isinstance(emission, EmissionFamily):
        family = emission
    else:
        raise ValueError(f"emission: expected one of {sorted(FAMILIES)} or an EmissionFamily, "
                         f"got {emission!r}")
    K = check_positive_int("K", K)
    if M is not None:
        M = check_positive_int("M", M)
    if lengths is not None:
        observations = pad_as_missing(family, observations, lengths)
    x = family.check(observations, M)
    M = family.symbols(x, M)
    if enumerate_states and x.dim() != 2:
        raise ValueError(f"observations: the enumerated model takes one dataset [N, T], "
                         f"got shape {tuple(x.shape)}")
    if enumerate_states and not family.observed(x).all():
        raise ValueError("enumerate_states: the enumerated model takes no missing "
                         "observations (the default model does)")
    if isinstance(init, str) and init not in ("prior", "kmeans"):
        raise ValueError(f"init: expected 'prior', 'kmeans' or a dict of start values, "
                         f"got {init!r}")
    if standardize and not family.standardizable:
        raise ValueError(f"standardize: not available for {family.name} emissions")
    center, spread = (torch.nanmean(x), nanstd(x)) if standardize else (None, None)
    if standardize and not spread > 0:
        raise ValueError("observations: all values are equal, nothing to learn")
    x_fit = (x - center) / spread if standardize else x
    init_loc_fn: Callable[[dict], torch.Tensor] = init_to_sample
    if init == "kmeans":
        init_loc_fn = init_to_value(values=family.start(x_fit, K), fallback=init_to_sample)
    elif isinstance(init, dict):
        init_loc_fn = init_to_value(values=init, fallback=init_to_sample)
    if enumerate_states:
        model, elbo = hmm_model_enumerated, TraceEnum_ELBO(max_plate_nesting=1)
    else:
        model, elbo = hmm_model, Trace_ELBO(max_plate_nesting=x.dim() - 1)
    fit = fit_map(
        lambda obs, K, M: model(family, obs, K, M), x_fit, K, M,
        steps=steps, lr=lr, seed=seed, restarts=restarts, tol=tol, check_every=check_every,
        elbo=elbo, expose=["pi", "A", *family.sites], init_loc_fn=init_loc_fn,
        optimizer=optimizer,
    )
    theta = {site: fit.params[site] for site in family.sites}
    if standardize:
        theta = family.to_data_units(theta, center, spread)
    return HMMFit(
        family=family.name,
        initial=fit.params["pi"],
        transition=fit.params["A"],
        emission_params=dict(zip(family.fields, theta.values(), strict=True)),
        losses=fit.losses,
        converged=fit.converged,
        restart=fit.restart,
        final_losses=fit.final_losses,
    )
