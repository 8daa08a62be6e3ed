"""Full posteriors of (π, A, emission): how sure are the learned parameters?

`sample_posterior` draws from p(π, A, θ | x) of the same model the learners fit (`hmm_model`:
the family's priors). Two samplers: Gibbs with the state path drawn by forward filtering,
backward sampling (`hmmblog.learning.gibbs`; the default where the family has conjugate
conditionals), and Pyro's No-U-Turn sampler over the continuous parameters with the states
summed out exactly by `DiscreteHMM` (any family). Diagnostics are ArviZ's: rank-normalised
split r-hat, bulk and tail effective sample sizes (Vehtari et al., 2021), and
`Posterior.to_arviz()` gives the draws to ArviZ as an `InferenceData`.

Label switching: renaming the states leaves the likelihood (and these exchangeable priors)
unchanged, so the posterior has K! copies of every mode and a chain may visit several. Every
draw is relabelled to a reference, the MAP fit from `learn` (or one the caller gives): the
renaming that brings the draw's per-state emission parameters closest to the reference's
(`align_states`, L1 distance, optimal assignment), applied to π, A and θ alike
(`permute_states`). Diagnostics are computed on the relabelled draws.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyro
import torch
from pyro.infer import MCMC, NUTS
from pyro.infer.autoguide import init_to_value

from hmmblog.alignment import align_states, permute_states
from hmmblog.inference.forward_backward import log_likelihood
from hmmblog.inference.rows import one_torch_thread
from hmmblog.learning.em import em_fit
from hmmblog.learning.engine import (
    FAMILIES,
    EmissionFamily,
    HMMFit,
    filled,
    hmm_model,
    learn,
    nanstd,
    pad_as_missing,
    prior_start,
    provides,
)
from hmmblog.learning.gaussian import kmeans_init
from hmmblog.learning.gibbs import gibbs_chains
from hmmblog.validation import check_positive_int, check_seed

__all__ = ["SAMPLERS", "Posterior", "SummaryTable", "converged_fit", "diagnostics",
           "emission_log_lik", "exact_log_likelihood", "interval", "sample_posterior"]

with warnings.catch_warnings():  # ArviZ warns once a day about its coming 1.0 on import
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

#: The samplers `sample_posterior` offers.
SAMPLERS = ("gibbs", "nuts")

#: The short names a summary gives each quantity (the notation of `hmmblog`).
SYMBOLS = {"initial": "π", "transition": "A", "emission": "B", "loc": "μ", "scale": "σ",
           "rate": "λ"}


def resolve_family(emission: str | EmissionFamily) -> EmissionFamily:
    """The registered family called `emission` (or `emission` itself)."""
    if isinstance(emission, EmissionFamily):
        return emission
    if isinstance(emission, str) and emission in FAMILIES:
        return FAMILIES[emission]
    raise ValueError(f"emission: expected one of {sorted(FAMILIES)} or an EmissionFamily, "
                     f"got {emission!r}")


@contextlib.contextmanager
def kept_global_state() -> Iterator[None]:
    """Run a block that seeds RNGs and clears Pyro's param store, then give the caller back
    the torch, Python and numpy RNG states and the param store it had."""
    # pyro.set_rng_seed seeds numpy's legacy global RNG too: that is the state to give back
    torch_state, py_state = torch.get_rng_state(), random.getstate()
    np_state = np.random.get_state()  # noqa: NPY002
    store = pyro.get_param_store().get_state()
    try:
        yield
    finally:
        torch.set_rng_state(torch_state)
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002
        pyro.clear_param_store()  # set_state adds to the store; drop what the call made
        pyro.get_param_store().set_state(store)


class SummaryTable(list):
    """Rows (dicts) of a posterior summary; `str()` formats them as a plain-text table, and
    `pandas.DataFrame(table)` makes a data frame of them."""

    def __str__(self) -> str:
        if not self:
            return "(empty)"
        keys = list(self[0])
        cells = [[str(k) for k in keys]] + [
            [f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()]
            for row in self]
        widths = [max(len(r[i]) for r in cells) for i in range(len(keys))]
        lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
        return "\n".join(lines)


@dataclass(frozen=True)
class Posterior:
    """Posterior draws of a K-state HMM, relabelled to `reference` (see the module docstring).

    `initial [S, K]`, `transition [S, K, K]` and the emission parameters by name in
    `emission_params` (each also an attribute: `emission [S, K, M]`, `loc` / `scale [S, K]`,
    `rate [S, K]`); S = chains x draws per chain, chain after chain (a categorical batch of
    datasets `[..., N, T]` adds its dims after S). `r_hat`, `ess` and `ess_tail` give, by
    the same names, every entry's rank-normalised split r-hat, bulk ESS and tail ESS (the
    smaller of the 5 % and 95 % quantiles' ESS), ArviZ's over the chains. `divergences`
    counts NUTS's divergent transitions after warm-up, `seconds` the chains' wall time (the
    reference fit not included).
    """

    family: str
    K: int
    chains: int
    sampler: str
    initial: torch.Tensor
    transition: torch.Tensor
    emission_params: dict[str, torch.Tensor]
    r_hat: dict[str, torch.Tensor]
    ess: dict[str, torch.Tensor]
    ess_tail: dict[str, torch.Tensor]
    reference: HMMFit | None
    divergences: int
    seconds: float
    relabelled: int = 0  # draws whose states were renamed to match the reference
    raw: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def __getattr__(self, name: str) -> torch.Tensor:
        params = vars(self).get("emission_params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def draws(self) -> dict[str, torch.Tensor]:
        """Every quantity by its result name (`initial`, `transition`, then the emission's)."""
        return {"initial": self.initial, "transition": self.transition, **self.emission_params}

    def to_arviz(self) -> az.InferenceData:
        """The relabelled draws as an ArviZ `InferenceData`: one variable per quantity
        (``initial``, ``transition``, the emission's), dims ``(chain, draw, ...)``; the
        sampler's own labels are in the ``raw_`` variables of group `sample_stats`."""
        return az.from_dict(
            posterior={k: _by_chain(v, self.chains) for k, v in self.draws().items()},
            sample_stats={f"raw_{k}": _by_chain(v, self.chains) for k, v in self.raw.items()},
            attrs={"sampler": self.sampler, "family": self.family, "K": self.K})

    def summary(self, prob: float = 0.9) -> SummaryTable:
        """One row per scalar parameter: its name (``μ[1]``, ``A[0,1]``; a batch of datasets
        puts their index first), posterior mean, sd, the equal-tailed `prob` credible interval
        (keys such as ``5%`` and ``95%``), r-hat, bulk and tail ESS."""
        if not 0 < prob < 1:
            raise ValueError(f"prob: expected a probability in (0, 1), got {prob!r}")
        lo_q, hi_q = (1 - prob) / 2, (1 + prob) / 2
        lo_key, hi_key = f"{100 * lo_q:g}%", f"{100 * hi_q:g}%"
        rows = SummaryTable()
        for name, value in self.draws().items():
            flat = value.reshape(value.shape[0], -1).double()
            qs = torch.quantile(flat, torch.tensor([lo_q, hi_q], dtype=flat.dtype), dim=0)
            r_hat, ess = self.r_hat[name].reshape(-1), self.ess[name].reshape(-1)
            ess_tail = self.ess_tail[name].reshape(-1)
            for i, index in enumerate(np.ndindex(*value.shape[1:])):
                rows.append({
                    "parameter": f"{SYMBOLS.get(name, name)}[{','.join(map(str, index))}]",
                    "mean": float(flat[:, i].mean()), "sd": float(flat[:, i].std()),
                    lo_key: float(qs[0, i]), hi_key: float(qs[1, i]),
                    "r_hat": float(r_hat[i]), "ess": float(ess[i]),
                    "ess_tail": float(ess_tail[i]),
                })
        return rows


def _state_rows(theta: Sequence[torch.Tensor], batch_dims: int) -> torch.Tensor:
    """The per-state emission parameters side by side: ``[*batch, K, D]``."""
    return torch.cat([t.reshape(*t.shape[:batch_dims + 1], -1) for t in theta], -1)


def relabel(initial: torch.Tensor, transition: torch.Tensor, theta: list[torch.Tensor],
            reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor],
                                              int]:
    """Rename the states of every draw so that its emission rows best match `reference`
    ``[*batch, K, D]`` (`align_states`); draws ``[S, *batch, K, ...]``. Returns the renamed
    draws and how many (draw, dataset) pairs changed."""
    batch = reference.shape[:-2]
    K = reference.shape[-2]
    rows = _state_rows(theta, 1 + len(batch))  # [S, *batch, K, D]
    pi, A = initial.clone(), transition.clone()
    th = [t.clone() for t in theta]
    changed = 0
    identity = torch.arange(K)
    for s in range(rows.shape[0]):
        for b in np.ndindex(*batch):
            perm = align_states(rows[(s, *b)], reference[b])
            if torch.equal(perm, identity):
                continue
            changed += 1
            at = (s, *b)
            new = permute_states(perm, initial[at], transition[at], *(t[at] for t in theta))
            pi[at], A[at] = new[0], new[1]
            for t, v in zip(th, new[2:], strict=True):
                t[at] = v
    return pi, A, th, changed


def _by_chain(x: torch.Tensor, chains: int) -> np.ndarray:
    """Draws ``[chains * S, ...]`` as ArviZ's ``[chain, draw, ...]`` (float64)."""
    return x.detach().double().reshape(chains, -1, *x.shape[1:]).numpy()


def diagnostics(draws: dict[str, torch.Tensor], chains: int
                ) -> tuple[dict[str, torch.Tensor], ...]:
    """ArviZ's rank-normalised split r-hat, bulk ESS and tail ESS of every entry of every
    quantity in `draws` (each ``[chains * S, ...]``), by the same names. An entry constant
    across every draw (π with K = 1) has NaN r-hat and ESS."""
    data = az.convert_to_dataset({k: _by_chain(v, chains) for k, v in draws.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant entries: NaN, said so in the docstring
        found = (az.rhat(data), az.ess(data, method="bulk"), az.ess(data, method="tail"))
    return tuple({k: torch.from_numpy(np.asarray(d[k].values, dtype=np.float64))
                  for k in draws} for d in found)


def emission_log_lik(family: EmissionFamily, fit: HMMFit, x: torch.Tensor) -> torch.Tensor:
    """ℓ_t(k) = log p(x_t | z_t = k) ``[N, T, K]`` under `fit`, zero rows at missing steps
    (no evidence), from the family's own distribution."""
    theta = {s: fit.emission_params[f] for s, f in zip(family.sites, family.fields, strict=True)}
    x_filled, _, missing = filled(family, x)
    ll = family.distribution(**theta).log_prob(x_filled.unsqueeze(-1))
    return ll if missing is None else ll.masked_fill(missing, 0.0)


def exact_log_likelihood(family: EmissionFamily, fit: HMMFit, x: torch.Tensor) -> float:
    """log p(x | θ̂) summed over the sequences of `x [N, T]`, by the forward algorithm."""
    ll = emission_log_lik(family, fit, x).double()
    return float(log_likelihood(fit.initial.double(), fit.transition.double(), ll).sum())


def converged_fit(family: EmissionFamily, x: torch.Tensor, K: int, M: int | None, *,
                  seed: int, init: str | dict[str, torch.Tensor], standardize: bool,
                  restarts: int = 1) -> HMMFit:
    """`learn`'s MAP estimate run to convergence: by EM where the family has an `m_step`
    (`hmmblog.learning.em`, milliseconds); else `learn` with L-BFGS (step 1, at most 300
    iterations, gradient tolerance 1e-4) and, if its line search fails on a hard start (a
    non-finite loss, which happens when a MAP estimate sits on the edge of the simplex),
    Adam's 400 default steps from the same start instead."""
    if provides(family, "m_step"):
        return em_fit(family, x, K, M, seed=seed, init=init, standardize=standardize,
                      restarts=restarts)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Encountered NaN")  # handled below
            fit = learn(x, K, family, M=M, seed=seed, init=init, standardize=standardize,
                        restarts=restarts, optimizer="lbfgs", lr=1.0, steps=300, tol=1e-4)
        values = [fit.initial, fit.transition, *fit.emission_params.values()]
        if all(bool(torch.isfinite(v).all()) for v in values):
            return fit
    except ValueError:  # a distribution refused the NaN parameters of a failed line search
        pass
    return learn(x, K, family, M=M, seed=seed, init=init, standardize=standardize,
                 restarts=restarts)


def _reference_fit(family: EmissionFamily, x: torch.Tensor, K: int, M: int | None,
                   seed: int, standardize: bool) -> HMMFit:
    """The MAP fit every draw is relabelled to and every chain starts from, run to
    convergence (`converged_fit`): for Gaussian emissions the better (exact log-likelihood)
    of two k-means starts, from quantiles and from farthest points (quantile starts can put
    two levels on one cluster and miss a distant one); for another family with a data-driven
    start, that start; else the best of three prior draws."""
    if not provides(family, "start"):
        return converged_fit(family, x, K, M, seed=seed, init="prior",
                             standardize=standardize, restarts=3)
    fits = [converged_fit(family, x, K, M, seed=seed, init="kmeans", standardize=standardize)]
    if family.name == "gaussian" and not standardize:
        seen = family.observed(x)
        far = kmeans_init(x.masked_fill(~seen, float(x[seen].median())), K, starts="farthest")
        fits.append(converged_fit(family, x, K, M, seed=seed, init=far, standardize=False))
    return max(fits, key=lambda fit: exact_log_likelihood(family, fit, x))


def _nuts_chain(family: EmissionFamily, x: torch.Tensor, K: int, M: int | None,
                start: dict[str, torch.Tensor], seed: int, num_samples: int, warmup: int,
                max_tree_depth: int, jit_compile: bool) -> tuple[dict[str, torch.Tensor], int]:
    """One NUTS chain from `start`: its draws by site and its divergent transitions."""
    def model(obs: torch.Tensor) -> None:
        hmm_model(family, obs, K, M)

    pyro.set_rng_seed(seed)
    kernel = NUTS(model, max_tree_depth=max_tree_depth, jit_compile=jit_compile,
                  ignore_jit_warnings=True, init_strategy=init_to_value(values=start),
                  max_plate_nesting=x.dim() - 1)
    mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=warmup, disable_progbar=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mcmc.run(x)
    draws = {k: v.detach() for k, v in mcmc.get_samples().items()}
    return draws, sum(len(v) for v in mcmc.diagnostics()["divergences"].values())


def _gibbs_chains(family: EmissionFamily, x: torch.Tensor, K: int, M: int | None,
                  starts: list[dict[str, torch.Tensor]], seed: int, num_samples: int,
                  warmup: int, thin: int, moves: int) -> list[dict[str, torch.Tensor]]:
    """Gibbs chains (`hmmblog.learning.gibbs`) in lockstep on `x [..., N, T]`, datasets
    flattened: each chain's draws by site."""
    batch = x.shape[:-2]
    D = math.prod(batch)
    flat = [{k: v.double().reshape(D, *v.shape[len(batch):]) for k, v in start.items()}
            for start in starts]
    draws = gibbs_chains(family, x.reshape(D, *x.shape[-2:]), K, M, flat, warmup=warmup,
                         num_samples=num_samples, thin=thin, moves=moves,
                         rng=np.random.default_rng(seed))
    return [{k: torch.from_numpy(v[c]).reshape(num_samples, *batch, *v.shape[3:])
             for k, v in draws.items()} for c in range(len(starts))]


@one_torch_thread
def sample_posterior(
    observations: torch.Tensor,
    K: int,
    emission: str | EmissionFamily = "categorical",
    *,
    M: int | None = None,
    num_samples: int = 500,
    warmup: int = 500,
    num_chains: int = 4,
    seed: int = 0,
    lengths: torch.Tensor | None = None,
    standardize: bool = False,
    sampler: str | None = None,
    thin: int = 5,
    moves: int = 1,
    init: str | Sequence[dict[str, torch.Tensor]] = "prior",
    reference: HMMFit | None = None,
    relabel_draws: bool = True,
    max_tree_depth: int = 6,
    jit_compile: bool = False,
) -> Posterior:
    """Posterior draws of (π, A, θ) of a K-state HMM with `emission` emissions.

    The model is `hmm_model`, the one `learn` fits (flat Dirichlet priors on π and the rows
    of A, the family's prior on θ), so the posterior mode is what `learn` estimates. Data as
    `learn` takes them: `observations [N, T]` (categorical also `[..., N, T]`, datasets side
    by side, each with its own parameters), missing values (NaN, or -1 for symbols) and
    `lengths [..., N]` for a ragged batch. `standardize=True` (Gaussian) samples the model
    of (x - mean) / std, as `learn` fits it, and maps every draw back to data units.

    `sampler`: ``"gibbs"`` (the default where the family has a `conditional`) or ``"nuts"``.
    Gibbs draws the path by forward filtering, backward sampling, then π, A and θ given it,
    and adds `moves` random-walk Metropolis steps on the marginal posterior a sweep (see
    `hmmblog.learning.gibbs`); its chains run in lockstep. NUTS is Pyro's No-U-Turn sampler
    with the states summed out (`max_tree_depth` caps a trajectory at 2**depth - 1 leapfrog
    steps; `jit_compile` is Pyro's); its chains run one after another, chain c seeded
    `seed + c`. Each of `num_chains` chains takes `warmup` discarded steps (Gibbs tunes its
    Metropolis steps in them, NUTS its step size and a diagonal mass matrix), then keeps
    `num_samples` draws, one every `thin` steps.

    `init="prior"` starts each chain at its own draw from the prior (dispersed starts, so
    that r-hat can see chains that disagree), ``"map"`` every chain at the reference fit, or
    give one dict of start values (by site: ``pi``, ``A``, ``locs``, ...; missing sites from
    the prior) per chain. `reference`: the fit draws are relabelled to (default: a MAP fit
    by `learn`, k-means start where the family has one; none is fitted when
    `relabel_draws=False` keeps the sampler's labels and no chain starts at it).

    Deterministic given `seed`; the caller's RNG states and Pyro param store are left as
    they were, and torch runs on one thread inside the call.
    """
    family = resolve_family(emission)
    check_positive_int("K", K)
    if M is not None:
        check_positive_int("M", M)
    check_positive_int("num_samples", num_samples)
    check_positive_int("warmup", warmup)
    check_positive_int("num_chains", num_chains)
    check_positive_int("max_tree_depth", max_tree_depth)
    seed = check_seed("seed", seed)
    check_positive_int("thin", thin)
    if not isinstance(moves, int) or isinstance(moves, bool) or moves < 0:
        raise ValueError(f"moves: expected an integer >= 0 (Metropolis steps a sweep), "
                         f"got {moves!r}")
    if sampler is None:
        sampler = "gibbs" if provides(family, "conditional") else "nuts"
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler: expected one of {SAMPLERS} or None, got {sampler!r}")
    if sampler == "gibbs" and not provides(family, "conditional"):
        raise ValueError(f"sampler: 'gibbs' is not available for {family.name} emissions "
                         f"(the family has no conditional); use 'nuts'")
    if standardize and not family.standardizable:
        raise ValueError(f"standardize: not available for {family.name} emissions")
    if isinstance(init, str):
        if init not in ("map", "prior"):
            raise ValueError(f"init: expected 'map', 'prior' or one dict of start values per "
                             f"chain, got {init!r}")
    elif len(init) != num_chains or not all(isinstance(v, dict) for v in init):
        raise ValueError(f"init: expected one dict of start values per chain ({num_chains}), "
                         f"got {type(init).__name__} of length {len(init)}")
    if reference is not None and not isinstance(reference, HMMFit):
        raise ValueError(f"reference: expected an HMMFit (from learn) or None, "
                         f"got {type(reference).__name__}")
    if lengths is not None:
        observations = pad_as_missing(family, observations, lengths)
    x = family.check(observations, M)
    M = family.symbols(x, M)
    batch_dims = x.dim() - 2
    center, spread = (torch.nanmean(x), nanstd(x)) if standardize else (None, None)
    if standardize and not spread > 0:
        raise ValueError("observations: all values are equal, nothing to learn")
    x_fit = (x - center) / spread if standardize else x

    with kept_global_state():
        if reference is None and (relabel_draws or init == "map"):
            reference = _reference_fit(family, x, K, M, seed, standardize)
        if reference is not None:
            ref_theta = [reference.emission_params[f] for f in family.fields]
            if tuple(reference.initial.shape) != (*x.shape[:-2], K):
                raise ValueError(f"reference: expected a fit with K = {K} states for these "
                                 f"observations, got initial of shape "
                                 f"{tuple(reference.initial.shape)}")
            if standardize:  # the reference in the units the sampler works in
                ref_sites = {"locs": (ref_theta[0] - center) / spread,
                             "scales": ref_theta[1] / spread}
            else:
                ref_sites = dict(zip(family.sites, ref_theta, strict=True))
            at_map = {"pi": reference.initial, "A": reference.transition, **ref_sites}

        divergences = 0
        began = time.perf_counter()
        if init == "map":
            starts = [at_map] * num_chains
        else:
            starts = [prior_start(family, x_fit, K, M, seed + chain)
                      for chain in range(num_chains)]
            if not isinstance(init, str):  # the caller's values, the prior's for the rest
                starts = [{**start, **given} for start, given in zip(starts, init, strict=True)]
        if sampler == "gibbs":
            runs = _gibbs_chains(family, x_fit, K, M, starts, seed, num_samples, warmup, thin,
                                 moves)
        else:
            runs = []
            for chain, start in enumerate(starts):
                draws, diverged = _nuts_chain(family, x_fit, K, M, start, seed + chain,
                                              num_samples * thin, warmup, max_tree_depth,
                                              jit_compile)
                runs.append({k: v[thin - 1::thin] for k, v in draws.items()})
                divergences += diverged
        seconds = time.perf_counter() - began

    draws = {k: torch.cat([r[k] for r in runs]) for k in runs[0]}
    theta = {site: draws[site] for site in family.sites}
    if standardize:
        theta = family.to_data_units(theta, center, spread)
    pi, A, th = draws["pi"], draws["A"], [theta[s] for s in family.sites]
    raw = {"initial": pi, "transition": A, **dict(zip(family.fields, th, strict=True))}
    changed = 0
    if relabel_draws:
        ref_rows = _state_rows(ref_theta, batch_dims)
        pi, A, th, changed = relabel(pi, A, th, ref_rows)
    params = {"initial": pi, "transition": A, **dict(zip(family.fields, th, strict=True))}
    r_hat, ess, ess_tail = diagnostics(params, num_chains)
    return Posterior(
        family=family.name, K=K, chains=num_chains, sampler=sampler, initial=pi,
        transition=A, emission_params=dict(zip(family.fields, th, strict=True)),
        r_hat=r_hat, ess=ess, ess_tail=ess_tail, reference=reference,
        divergences=divergences, seconds=seconds, relabelled=changed, raw=raw,
    )


def interval(draws: torch.Tensor, prob: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """The equal-tailed `prob` credible interval of every entry of `draws [S, ...]`."""
    qs = torch.tensor([(1 - prob) / 2, (1 + prob) / 2], dtype=torch.float64)
    lo, hi = torch.quantile(draws.double().reshape(draws.shape[0], -1), qs, dim=0)
    return lo.reshape(draws.shape[1:]), hi.reshape(draws.shape[1:])

