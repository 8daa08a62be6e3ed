"""Learning a chain from readings of it: an appliance from its own plug, the unmetered load
from what the sub-meters leave of the mains. Readings in watts in, an `Appliance` out.

The plug's readings x_1..x_T are a K-state Gaussian HMM, x_t | z_t = k ~ N(μ_k, s_k). The
learner is expectation-maximisation (Baum-Welch), because on real plugs it has what a
gradient step does not: every iteration raises log p(x) or leaves it (so no fit is worse than
its start), and no learning rate has to suit a 2 kW kettle and a 2 W standby alike. Its
E-step is the package's forward algorithm differentiated: ∂ log p(x) / ∂ℓ_t(k) is the
posterior p(z_t = k | x) and A_ij · ∂ log p(x) / ∂A_ij the expected number of i → j moves
(the forward-backward algorithm is backpropagation through the forward algorithm), so
missing readings (zero rows) and long series (log space) come for free.

Real plugs need three guards, each keeping EM an ascent: levels μ_k ≥ 0 (the best μ_k under
the constraint is the clamped weighted mean), a floor on each spread s_k (a plug that reads
exactly 0 W when off would otherwise drive s_0 to 0 and log p(x) to infinity), and the best
iterate is the one returned.

The unmetered load is learned the same way (`learn_unmetered`): from a house's mains less
its sub-meters over training days, or, with no training days, from the meter being decoded
(`unmetered_from_meter`: from what the appliances leave when decoded alone).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import torch

from hmmblog.emissions import gaussian_log_lik
from hmmblog.inference import log_likelihood
from hmmblog.inference.rows import one_torch_thread
from hmmblog.learning.kmeans import chain_counts, farthest_point_centers, kmeans_segmentation
from hmmblog.nilm.appliances import DTYPE, Appliance
from hmmblog.nilm.meter import check_watts, estimate_noise
from hmmblog.validation import check_positive_int, check_positive_number

if TYPE_CHECKING:  # the decoders import this module
    from hmmblog.nilm.model import Disaggregation

__all__ = ["UNMETERED_STATES", "ApplianceFit", "EMStep", "em_step", "fit_plug",
           "learn_appliance", "learn_unmetered", "ratio_start", "unmetered_from_meter"]

UNMETERED_STATES = 4  # levels of the unmetered chain (2-10 measured: benchmarks/nilm_real_meter.py)


class ApplianceFit(NamedTuple):
    """What `fit_plug` found: the `appliance` and the exact log p(x) of every EM step
    (`log_likelihoods`, the start's first)."""

    appliance: Appliance
    log_likelihoods: list[float]


def ratio_start(x: torch.Tensor, K: int, unit: float, min_scale: float
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """π, A, levels μ and spreads s (≥ `min_scale`) from the 1-D k-means segmentation of
    log(1 + max(x − u, 0) / u), `x [T]` watts, u = `unit`: clusters by *ratio* of power, so
    a brief 300 W state is not folded into a long 0 W one the way clusters by watts fold it
    (2 kW away, the 300 W readings are a small error in watts, a large one in ratio). Every
    reading below u (a few times the plug's noise) counts as exactly 0, so the noise of a
    long "off" is not worth a cluster of its own."""
    ratio = torch.log1p((x - unit).clamp_min(0.0) / unit)
    centers = farthest_point_centers(ratio, K)  # a rare state gets a start of its own
    labels = kmeans_segmentation(ratio[None], K, centers=centers)[1][0]
    n = torch.bincount(labels, minlength=K).to(DTYPE)
    mu = torch.zeros(K, dtype=DTYPE).index_add_(0, labels, x) / n.clamp_min(1)
    sq = torch.zeros(K, dtype=DTYPE).index_add_(0, labels, (x - mu[labels]) ** 2)
    s = (sq / n.clamp_min(1)).sqrt().clamp_min(min_scale)
    pi, A = chain_counts(labels[None], K, DTYPE)
    return pi, A, mu.clamp_min(0.0), s


class EMStep(NamedTuple):
    """One EM step: `log_p`, log p(x) under the parameters it started from; the posterior
    marginals `gamma [T, K]` under them; the updated `initial`, `transition`, `loc`, `scale`."""

    log_p: float
    gamma: torch.Tensor
    initial: torch.Tensor
    transition: torch.Tensor
    loc: torch.Tensor
    scale: torch.Tensor


def em_step(x: torch.Tensor, initial: torch.Tensor, transition: torch.Tensor, loc: torch.Tensor,
            scale: torch.Tensor, min_scale: float) -> EMStep:
    """One Baum-Welch step for a Gaussian HMM of `x [T]` (NaN = missing) with μ_k ≥ 0 and
    s_k ≥ `min_scale`. E-step by differentiating log p(x): γ_t(k) = ∂ log p / ∂ℓ_t(k),
    expected moves n_ij = A_ij ∂ log p / ∂A_ij; M-step π = γ_1, A_ij ∝ n_ij, μ_k and s_k the
    γ-weighted mean and spread of the present readings (clamped)."""
    A_ = transition.clone().requires_grad_()
    ll = gaussian_log_lik(loc, scale, x).requires_grad_()  # [T, K], zero rows where missing
    log_p = log_likelihood(initial, A_, ll)
    log_p.backward()
    gamma = ll.grad
    moves = (A_.grad * transition).clamp_min(0.0)  # rounding can leave -1e-18
    present = ~torch.isnan(x)
    w = gamma * present[:, None]  # only present readings inform μ and s
    filled = x.masked_fill(~present, 0.0)[:, None]
    n = w.sum(0)
    seen = n > 1e-9  # a state no reading visits keeps its level and spread
    mu = torch.where(seen, (w * filled).sum(0) / n.clamp_min(1e-12), loc).clamp_min(0.0)
    var = (w * (filled - mu) ** 2).sum(0) / n.clamp_min(1e-12)
    s = torch.where(seen, var.clamp_min(0.0).sqrt(), scale).clamp_min(min_scale)  # rounding: -0
    rows = moves.sum(1, keepdim=True)
    A = torch.where(rows > 1e-9, moves / rows.clamp_min(1e-12), transition)
    return EMStep(log_p.detach().item(), gamma, gamma[0], A, mu, s)


@one_torch_thread
def fit_plug(
    readings: object,
    K: int,
    name: str = "appliance",
    *,
    step_minutes: float = 1.0,
    min_scale: float = 2.0,
    max_iters: int = 200,
    tol: float = 1e-7,
) -> ApplianceFit:
    """EM (`em_step`) for a K-state Gaussian HMM of one plug's `readings [T]` (watts, NaN =
    missing) from the `ratio_start`, with μ_k ≥ 0 and s_k ≥ `min_scale` watts; stops when
    log p(x) gains less than `tol` · T nats in a step or after `max_iters` steps, and returns
    the best parameters seen. States sorted by level (state 0 = lowest). The returned π is
    the states' share of the time, Σ_t p(z_t = k | x) / T, a start for any other stretch of
    time (EM's own π, p(z_1 | x), is the first step's)."""
    x = check_watts("readings", readings, least=2)
    K = check_positive_int("K", K)
    min_scale = check_positive_number("min_scale", min_scale, "a finite number of watts > 0")
    max_iters = check_positive_int("max_iters", max_iters)
    tol = check_positive_number("tol", tol)
    step_minutes = check_positive_number("step_minutes", step_minutes,
                                         "a finite number of minutes > 0")
    present = ~torch.isnan(x)
    # ratios of power above the plug's noise: readings within a few σ of 0 count as 0
    unit = max(min_scale, 4 * estimate_noise(x, floor=min_scale))
    params = ratio_start(x.masked_fill(~present, float(x[present].median())), K, unit,
                         min_scale)
    history: list[float] = []
    best = None
    for _ in range(max_iters + 1):
        step = em_step(x, *params, min_scale)
        history.append(step.log_p)
        if best is None or step.log_p > best[0]:
            best = (step.log_p, step.gamma.mean(0).clamp_min(0.0), *params[1:])
        if len(history) > 1 and history[-1] - history[-2] < tol * x.shape[0]:
            break
        params = (step.initial, step.transition, step.loc, step.scale)
    _, pi, A, mu, s = best  # π: the time share of each state under that fit
    order = mu.argsort()
    appliance = Appliance(name, mu[order], pi[order] / pi.sum(), A[order][:, order],
                          scale=s[order], step_minutes=step_minutes)
    return ApplianceFit(appliance, history)


def learn_appliance(
    readings: object,
    K: int,
    name: str = "appliance",
    *,
    step_minutes: float = 1.0,
    min_scale: float = 2.0,
) -> Appliance:
    """An `Appliance` learned from one plug's `readings [T]` in watts (NaN = missing), one
    reading every `step_minutes` minutes: K power states sorted by level (state 0 = lowest),
    levels ≥ 0, each state's spread at least `min_scale` watts. EM from a ratio k-means start
    (`fit_plug`, which also returns the log-likelihood of each iteration); deterministic."""
    return fit_plug(readings, K, name, step_minutes=step_minutes, min_scale=min_scale).appliance


def learn_unmetered(
    readings: object,
    K: int = UNMETERED_STATES,
    *,
    step_minutes: float = 1.0,
    min_scale: float = 2.0,
) -> Appliance:
    """The unmetered load as a chain, learned (`fit_plug`) from `readings [T]` of it in watts
    (NaN = missing): a house's mains less the sum of its sub-meters over training days (NaN
    where any of them is missing; a step where the sub-meters read more than the mains is a
    reading below zero, and fine). K levels with their spreads (state 0 the house's floor of
    standby loads, so a decoder given this chain takes b = 0) and how often the load moves
    between them: the time constants of the lights, heaters and electronics nobody modelled,
    where a flat "anything can happen" chain would mimic every appliance."""
    return fit_plug(readings, K, "unmetered", step_minutes=step_minutes,
                    min_scale=min_scale).appliance


def unmetered_from_meter(
    aggregate: torch.Tensor,
    step_minutes: float,
    decode: Callable[[Appliance | None], Disaggregation],
) -> Disaggregation:
    """Learn the unmetered chain from the meter being decoded, when no training days are at
    hand: `decode(None)`, the appliances alone over a floor b, as if they were all the meter
    reads; what they leave, y − Σ_c μ⁽ᶜ⁾[ẑ⁽ᶜ⁾] (b included), is a first look at the
    unmetered load, and `learn_unmetered` on it gives the chain to `decode(chain)` with.
    Once: a second round learns the chain from what the chain's own decode left, a drift
    toward the chain taking the appliances' load (on the ECO week of post 5 mean F1 fell from
    0.93 to 0.77-0.81). Returns that decode (its `unmetered_model` is the chain)."""
    first = decode(None)
    return decode(learn_unmetered(aggregate - first.power.sum(0), step_minutes=step_minutes))
