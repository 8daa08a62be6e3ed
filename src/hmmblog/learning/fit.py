"""MAP estimates of the latent sites of any Pyro model, by SVI with an `AutoDelta` guide.

`fit_map` is the optimiser under every learner: a Pyro model whose global parameters are
sample sites with priors goes in; the MAP estimate found by `Adam` (or L-BFGS) from a draw of
the prior comes out, with per-step losses, optional restarts (the lowest final loss wins) and
an optional convergence rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyro
import torch
from pyro import poutine
from pyro.infer import ELBO, SVI, Trace_ELBO
from pyro.infer.autoguide import AutoDelta, init_to_sample
from pyro.optim import Adam

from hmmblog.validation import check_positive_int, check_positive_number

__all__ = ["MAPFit", "fit_map"]


@dataclass(frozen=True)
class MAPFit:
    """Result of `fit_map`: MAP estimates by site name (constrained space), the loss
    (-log p(x, θ)) recorded at every SVI step of the kept restart, and how the run ended."""

    params: dict[str, torch.Tensor]
    losses: list[float]
    converged: bool
    restart: int
    final_losses: list[float]


def _check_schedule(steps: object, lr: object, restarts: object, tol: object,
                    check_every: object) -> tuple[int, float, int, float | None, int]:
    """The schedule as Python numbers, or a ValueError naming the argument that is wrong."""
    return (check_positive_int("steps", steps),
            check_positive_number("lr", lr, "a positive learning rate"),
            check_positive_int("restarts", restarts),
            None if tol is None else check_positive_number("tol", tol, "None or a positive float"),
            check_positive_int("check_every", check_every))


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
    steps, lr, restarts, tol, check_every = _check_schedule(steps, lr, restarts, tol,
                                                            check_every)
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
