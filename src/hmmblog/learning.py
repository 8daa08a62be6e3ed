"""Learning HMM parameters from data with Pyro: MAP estimates by stochastic variational inference.

Shared machinery first (`MAPFit`, `fit_map`): any learner supplies a Pyro model whose global
parameters are sample sites with priors, and gets back the MAP estimate found by SVI with an
`AutoDelta` guide (initialised by a draw from the prior), `Adam`, per-step losses, optional
restarts (the lowest final loss wins) and an optional convergence rule. Then the learners.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import ELBO, SVI, Trace_ELBO, TraceEnum_ELBO
from pyro.infer.autoguide import AutoDelta, init_to_sample, init_to_value
from pyro.optim import Adam


@dataclass(frozen=True)
class MAPFit:
    """Result of `fit_map`: MAP estimates by site name (constrained space), the loss
    (-log p(x, θ)) recorded at every SVI step of the kept restart, and how the run ended."""

    params: dict[str, torch.Tensor]
    losses: list[float]
    converged: bool
    restart: int
    final_losses: list[float]


def _check_schedule(steps: int, lr: float, restarts: int, tol: float | None, check_every: int):
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: expected a positive int, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr: expected a positive learning rate, got {lr!r}")
    if not isinstance(restarts, int) or restarts < 1:
        raise ValueError(f"restarts: expected a positive int, got {restarts!r}")
    if tol is not None and not tol > 0:
        raise ValueError(f"tol: expected None or a positive float, got {tol!r}")
    if not isinstance(check_every, int) or check_every < 1:
        raise ValueError(f"check_every: expected a positive int, got {check_every!r}")


def fit_map(
    model: Callable[..., None],
    *args: object,
    steps: int = 400,
    lr: float = 0.05,
    seed: int = 0,
    restarts: int = 1,
    tol: float | None = None,
    check_every: int = 50,
    elbo: ELBO | None = None,
    expose: Sequence[str] | None = None,
    init_loc_fn: Callable[[dict], torch.Tensor] = init_to_sample,
    optimizer: str = "adam",
) -> MAPFit:
    """MAP estimate of the latent sites of `model(*args)` by SVI with an AutoDelta guide.

    Restart r runs `pyro.clear_param_store(); pyro.set_rng_seed(seed + r)`, initialises every
    guided site with a draw from its prior (`init_to_sample`, in the order the model runs its
    sample sites) and takes up to `steps` Adam(lr) steps on the ELBO (default `Trace_ELBO()`),
    which for a point-mass guide is -log p(x, θ). The restart with the lowest final loss is kept.
    Convergence rule (only if `tol` is given): every `check_every` steps, stop once no
    estimate moved by more than `tol` (max abs change, constrained space) since the last check.
    `expose` restricts the guide to the named sites (e.g. hide enumerated discrete states).
    `init_loc_fn` replaces the prior draw as the initialisation (e.g. `init_to_value`).
    `optimizer="lbfgs"` minimises the same loss with L-BFGS instead (at most `steps`
    iterations, step size `lr`, strong Wolfe line search; `losses` has one entry per loss
    evaluation); it is converged when the largest gradient entry (unconstrained space) is
    at most `tol`. Deterministic, so use it to run fits to convergence.
    """
    _check_schedule(steps, lr, restarts, tol, check_every)
    if optimizer not in ("adam", "lbfgs"):
        raise ValueError(f"optimizer: expected 'adam' or 'lbfgs', got {optimizer!r}")
    elbo = Trace_ELBO() if elbo is None else elbo
    guided = model if expose is None else poutine.block(model, expose=list(expose))
    best: MAPFit | None = None
    final_losses: list[float] = []
    for restart in range(restarts):
        pyro.clear_param_store()
        pyro.set_rng_seed(seed + restart)
        guide = AutoDelta(guided, init_loc_fn=init_loc_fn)
        if optimizer == "lbfgs":
            losses, converged = _run_lbfgs(model, guide, elbo, args, steps, lr, tol)
        else:
            losses, converged = _run_adam(model, guide, elbo, args, steps, lr, tol, check_every)
        final_losses.append(losses[-1])
        if best is None or losses[-1] < best.losses[-1]:
            params = {k: v.detach().clone() for k, v in guide.median(*args).items()}
            best = MAPFit(params, losses, converged, restart, [])
    assert best is not None
    return MAPFit(best.params, best.losses, best.converged, best.restart, final_losses)


def _run_adam(
    model: Callable[..., None], guide: AutoDelta, elbo: ELBO, args: tuple, steps: int,
    lr: float, tol: float | None, check_every: int,
) -> tuple[list[float], bool]:
    svi = SVI(model, guide, Adam({"lr": lr}), elbo)
    losses: list[float] = []
    previous: dict[str, torch.Tensor] | None = None
    for step in range(1, steps + 1):
        losses.append(float(svi.step(*args)))
        if tol is not None and step % check_every == 0:
            current = {k: v.detach().clone() for k, v in guide.median(*args).items()}
            if previous is not None and all(
                (current[k] - previous[k]).abs().max() <= tol for k in current
            ):
                return losses, True
            previous = current
    return losses, False


def _run_lbfgs(
    model: Callable[..., None], guide: AutoDelta, elbo: ELBO, args: tuple, steps: int,
    lr: float, tol: float | None,
) -> tuple[list[float], bool]:
    guide(*args)  # creates the parameters at their start values
    params = list(guide.parameters())
    opt = torch.optim.LBFGS(params, lr=lr, max_iter=steps, tolerance_grad=tol or 1e-7,
                            tolerance_change=0.0, history_size=20, line_search_fn="strong_wolfe")
    losses: list[float] = []

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = elbo.differentiable_loss(model, guide, *args)
        loss.backward()
        losses.append(float(loss.detach()))
        return loss

    opt.step(closure)
    closure()  # loss and gradient at the final parameters
    largest = max(float(p.grad.abs().max()) for p in params)
    return losses, tol is not None and largest <= tol


# ---------------------------------------------------------------------------------------------
# Discrete emissions: K hidden states, M symbols.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiscreteFit:
    """A learned discrete HMM: `initial [..., K]`, `transition [..., K, K]`, `emission [..., K, M]`
    (probabilities; leading dims = the batch of datasets), the loss at every SVI step, whether
    the convergence rule fired, which restart was kept and every restart's final loss."""

    initial: torch.Tensor
    transition: torch.Tensor
    emission: torch.Tensor
    losses: list[float]
    converged: bool
    restart: int
    final_losses: list[float]


def _check_sequences(sequences: torch.Tensor, K: int, M: int) -> torch.Tensor:
    for name, value in (("K", K), ("M", M)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    sequences = torch.as_tensor(sequences)
    if sequences.dim() < 2 or sequences.dtype.is_floating_point or sequences.dtype == torch.bool:
        raise ValueError(
            "sequences: expected an integer tensor [..., N, T] of symbols, "
            f"got dtype {sequences.dtype} and shape {tuple(sequences.shape)}"
        )
    if sequences.numel() == 0:
        raise ValueError(
            f"sequences: expected at least one symbol, got shape {tuple(sequences.shape)}"
        )
    lo, hi = int(sequences.min()), int(sequences.max())
    if lo < 0 or hi >= M:
        raise ValueError(f"sequences: expected symbols in 0..{M - 1}, got values in {lo}..{hi}")
    return sequences.long()


def discrete_model_enumerated(sequences: torch.Tensor, K: int, M: int) -> None:
    """The original's literal generative story, one site per day, states enumerated by Pyro:
    π ~ Dir(1), A_i ~ Dir(1), B_i ~ Dir(1); z_1 ~ π, z_t ~ A[z_{t-1}], x_t ~ B[z_t].
    `sequences [N, T]`; Python loop over time, so it is slow (use `discrete_model`)."""
    N, T = sequences.shape
    pi = pyro.sample("pi", dist.Dirichlet(torch.ones(K)))
    A = pyro.sample("A", dist.Dirichlet(torch.ones(K, K)).to_event(1))
    B = pyro.sample("B", dist.Dirichlet(torch.ones(K, M)).to_event(1))
    with pyro.plate("sequences", N):
        z = None
        for t in pyro.markov(range(T)):
            probs = pi if z is None else A[z]
            z = pyro.sample(f"z_{t}", dist.Categorical(probs), infer={"enumerate": "parallel"})
            pyro.sample(f"x_{t}", dist.Categorical(B[z]), obs=sequences[:, t])


def discrete_model(sequences: torch.Tensor, K: int, M: int) -> None:
    """The same story with the states summed out by the forward algorithm over the whole
    sequence (`DiscreteHMM`): same sites, same priors, p(x | π, A, B) computed exactly.
    `sequences [..., N, T]`; leading dims are independent datasets, each with its own π, A, B."""
    batch = sequences.shape[:-2]
    N = sequences.shape[-2]
    nb = len(batch)
    pi = pyro.sample("pi", dist.Dirichlet(torch.ones(*batch, K)).to_event(nb))
    A = pyro.sample("A", dist.Dirichlet(torch.ones(*batch, K, K)).to_event(nb + 1))
    B = pyro.sample("B", dist.Dirichlet(torch.ones(*batch, K, M)).to_event(nb + 1))
    T = sequences.shape[-1]
    # DiscreteHMM starts from a state z_0 *before* the first observation, so step 0 gets a
    # transition matrix whose every row is π (then z_1 ~ π whatever z_0 was), steps 1.. get A.
    first = pi.log().unsqueeze(-2).expand(*batch, K, K).unsqueeze(-3)
    rest = A.log().unsqueeze(-3).expand(*batch, T - 1, K, K)
    hmm = dist.DiscreteHMM(
        initial_logits=torch.zeros(K),  # irrelevant: every row of step 0 is π
        transition_logits=torch.cat([first, rest], dim=-3).unsqueeze(-4),  # [..., 1, T, K, K]
        observation_dist=dist.Categorical(probs=B[..., None, None, :, :]),  # [..., 1, 1, K]
    )
    with contextlib.ExitStack() as stack:
        for i, size in enumerate(batch):
            stack.enter_context(pyro.plate(f"datasets_{i}", size, dim=i - nb - 1))
        stack.enter_context(pyro.plate("sequences", N, dim=-1))
        pyro.sample("x", hmm, obs=sequences)


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
) -> DiscreteFit:
    """MAP estimate of (π, A, B) of a K-state, M-symbol HMM from `sequences [..., N, T]`.

    Defaults are the original's recipe (seed 0, AutoDelta + init_to_sample, Adam(0.05),
    400 steps); the loss is the exact marginal likelihood vectorised over time
    (`discrete_model`), or the original's enumerated model if `enumerate_states=True`.
    Leading dims of `sequences` are independent datasets fitted side by side (Adam is
    elementwise, so this equals separate fits). See `fit_map` for restarts, `tol` and `init`
    (starting values for the sites "pi", "A", "B") and `optimizer` ("lbfgs" to converge).
    """
    sequences = _check_sequences(sequences, K, M)
    if enumerate_states:
        if sequences.dim() != 2:
            raise ValueError(
                "sequences: the enumerated model takes one dataset [N, T], "
                f"got shape {tuple(sequences.shape)}"
            )
        model, elbo = discrete_model_enumerated, TraceEnum_ELBO(max_plate_nesting=1)
    else:
        model, elbo = discrete_model, Trace_ELBO(max_plate_nesting=sequences.dim() - 1)
    fit = fit_map(
        model, sequences, K, M,
        steps=steps, lr=lr, seed=seed, restarts=restarts, tol=tol, check_every=check_every,
        elbo=elbo, expose=["pi", "A", "B"],
        init_loc_fn=init_to_sample if init is None else init_to_value(
            values=init, fallback=init_to_sample
        ),
        optimizer=optimizer,
    )
    p = fit.params
    return DiscreteFit(
        p["pi"], p["A"], p["B"], fit.losses, fit.converged, fit.restart, fit.final_losses
    )


# ---------------------------------------------------------------------------------------------
# Gaussian emissions: K hidden states, one real number per step.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GaussianFit:
    """A learned Gaussian-emission HMM: `initial [K]`, `transition [K, K]`, per-state `loc [K]`
    and `scale [K]` (in the units of the data), the loss at every SVI step of the kept restart,
    whether the convergence rule fired, which restart was kept and every restart's final loss."""

    initial: torch.Tensor
    transition: torch.Tensor
    loc: torch.Tensor
    scale: torch.Tensor
    losses: list[float]
    converged: bool
    restart: int
    final_losses: list[float]


def _check_real_sequences(observations: torch.Tensor, K: int) -> torch.Tensor:
    if not isinstance(K, int) or K < 1:
        raise ValueError(f"K: expected a positive int, got {K!r}")
    observations = torch.as_tensor(observations)
    if observations.dim() != 2 or not observations.is_floating_point():
        raise ValueError(
            "observations: expected a floating tensor [N, T] (N sequences of T real values), "
            f"got dtype {observations.dtype} and shape {tuple(observations.shape)}"
        )
    if observations.numel() < 2 or not torch.isfinite(observations).all():
        raise ValueError(
            "observations: expected at least two finite values, "
            f"got shape {tuple(observations.shape)} with NaN/inf or too few values"
        )
    return observations


def _gaussian_priors(
    observations: torch.Tensor, K: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """π ~ Dir(1), A_i ~ Dir(1), μ_k ~ N(mean(y), 3·std(y)), σ_k ~ LogNormal(0, 1): the sample
    sites `pi`, `A`, `locs`, `scales`, in this order (it fixes what `init_to_sample` draws)."""
    ones = observations.new_ones(K)
    pi = pyro.sample("pi", dist.Dirichlet(ones))
    with pyro.plate("states", K):
        A = pyro.sample("A", dist.Dirichlet(ones))
        locs = pyro.sample("locs", dist.Normal(observations.mean(), 3 * observations.std()))
        scales = pyro.sample("scales", dist.LogNormal(ones.new_zeros(()), ones.new_ones(())))
    return pi, A, locs, scales


def gaussian_model_enumerated(observations: torch.Tensor, K: int) -> None:
    """The original's literal story, one site per step, states enumerated by Pyro:
    z_1 ~ π, z_t ~ A[z_{t-1}], y_t ~ N(μ_{z_t}, σ_{z_t}), priors as in `_gaussian_priors`.
    `observations [N, T]`; Python loop over time, so it is slow (use `gaussian_model`)."""
    N, T = observations.shape
    pi, A, locs, scales = _gaussian_priors(observations, K)
    with pyro.plate("sequences", N):
        z = None
        for t in pyro.markov(range(T)):
            probs = pi if z is None else A[z]
            z = pyro.sample(f"z_{t}", dist.Categorical(probs), infer={"enumerate": "parallel"})
            pyro.sample(f"y_{t}", dist.Normal(locs[z], scales[z]), obs=observations[:, t])


def gaussian_model(observations: torch.Tensor, K: int) -> None:
    """The same story with the states summed out exactly over the whole sequence
    (`DiscreteHMM`, a parallel scan over time): same sites, same priors, p(y | π, A, μ, σ)."""
    pi, A, locs, scales = _gaussian_priors(observations, K)
    N, T = observations.shape
    # DiscreteHMM starts from a state *before* the first observation: every row of step 0's
    # transition matrix is π (so z_1 ~ π), steps 2..T use A.
    first = pi.log().expand(1, K, K)
    rest = A.log().expand(T - 1, K, K)
    hmm = dist.DiscreteHMM(
        initial_logits=torch.zeros_like(pi),  # irrelevant: every row of step 0 is π
        transition_logits=torch.cat([first, rest]),  # [T, K, K]
        observation_dist=dist.Normal(locs, scales),  # batch [K]
    )
    with pyro.plate("sequences", N):
        pyro.sample("y", hmm, obs=observations)


def kmeans_init(
    observations: torch.Tensor, K: int, iters: int = 100
) -> dict[str, torch.Tensor]:
    """A deterministic, data-driven start for every site, from a k-means segmentation of
    `observations [N, T]`: 1-D k-means (Lloyd's algorithm) started at the quantiles (k + ½)/K
    of all values (an empty cluster restarts at the worst-explained reading) labels each
    reading; then `locs`, `scales` = mean and standard deviation of
    each cluster (sorted by mean), `pi` ∝ 1 + first-step label counts and
    `A[i, j]` ∝ 1 + counts of label i followed by label j (the Dirichlet(1) pseudo-count
    keeps every probability positive)."""
    y = _check_real_sequences(observations, K)
    flat = y.reshape(-1)
    centers = torch.quantile(flat, (torch.arange(K, dtype=y.dtype) + 0.5) / K)
    for _ in range(iters):
        labels = (flat.unsqueeze(-1) - centers).abs().argmin(-1)
        counts = torch.bincount(labels, minlength=K).to(y.dtype)
        sums = torch.zeros(K, dtype=y.dtype).index_add_(0, labels, flat)
        moved = torch.where(counts > 0, sums / counts.clamp_min(1), centers)
        # An empty cluster (e.g. two quantiles inside one dominant level) restarts at the
        # reading its current cluster explains worst, so that no level is wasted.
        misfit = (flat - moved[labels]).abs()
        for k in torch.nonzero(counts == 0).flatten().tolist():
            worst = int(misfit.argmax())
            moved[k], misfit[worst] = flat[worst], -1.0
        if torch.equal(moved, centers):
            break
        centers = moved
    order = centers.argsort()
    centers = centers[order]
    labels = (y.unsqueeze(-1) - centers).abs().argmin(-1)  # [N, T], states sorted by mean
    counts = torch.bincount(labels.reshape(-1), minlength=K).to(y.dtype)
    sq = torch.zeros(K, dtype=y.dtype).index_add_(
        0, labels.reshape(-1), (flat - centers[labels.reshape(-1)]) ** 2
    )
    spread = torch.where(counts > 1, (sq / (counts - 1).clamp_min(1)).sqrt(), flat.std())
    floor = 1e-3 * flat.std()  # a cluster of one value (or none) still needs a positive scale
    first = 1 + torch.bincount(labels[:, 0], minlength=K).to(y.dtype)
    pairs = labels[:, :-1] * K + labels[:, 1:]
    moves = 1 + torch.bincount(pairs.reshape(-1), minlength=K * K).to(y.dtype).reshape(K, K)
    return {
        "pi": first / first.sum(),
        "A": moves / moves.sum(-1, keepdim=True),
        "locs": centers,
        "scales": spread.clamp_min(floor),
    }


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
) -> GaussianFit:
    """MAP estimate of (π, A, μ, σ) of a K-state Gaussian-emission HMM from `observations [N, T]`.

    Defaults are the original's recipe: every site initialised by a draw from its prior
    (`init="prior"`), Adam(0.05), 250 steps, restart r seeded with `seed + r`, lowest final
    loss kept. `init="kmeans"` starts every site at `kmeans_init` of the data instead, which
    avoids the local optima where two states share one cluster; that start is deterministic,
    so its restarts all coincide (use `restarts=1`). `standardize=True` fits (y - mean)/std
    and maps μ, σ back to data units (Adam's step is in data units, so use it when the data
    are far from unit scale; the priors then act on the standardised values). The loss is
    the exact marginal likelihood summed over states by `gaussian_model`, or by the original's
    enumerated story if `enumerate_states=True`.
    """
    y = _check_real_sequences(observations, K)
    if init not in ("prior", "kmeans"):
        raise ValueError(f"init: expected 'prior' or 'kmeans', got {init!r}")
    center = y.mean() if standardize else y.new_zeros(())
    spread = y.std() if standardize else y.new_ones(())
    if not spread > 0:
        raise ValueError("observations: all values are equal, nothing to learn")
    y_fit = (y - center) / spread
    init_loc_fn: Callable[[dict], torch.Tensor] = init_to_sample
    if init == "kmeans":
        init_loc_fn = init_to_value(values=kmeans_init(y_fit, K), fallback=None)
    if enumerate_states:
        model, elbo = gaussian_model_enumerated, TraceEnum_ELBO(max_plate_nesting=1)
    else:
        model, elbo = gaussian_model, Trace_ELBO(max_plate_nesting=1)
    fit = fit_map(
        model, y_fit, K,
        steps=steps, lr=lr, seed=seed, restarts=restarts, tol=tol, check_every=check_every,
        elbo=elbo, expose=["pi", "A", "locs", "scales"], init_loc_fn=init_loc_fn,
    )
    p = fit.params
    return GaussianFit(
        initial=p["pi"],
        transition=p["A"],
        loc=center + spread * p["locs"],
        scale=spread * p["scales"],
        losses=fit.losses,
        converged=fit.converged,
        restart=fit.restart,
        final_losses=fit.final_losses,
    )
