"""The factorial HMM of a household meter: its story, simulation, score and exact decoding.

C appliances, each its own Markov chain z⁽ᶜ⁾_t (see `hmmblog.nilm.appliances`); the meter sees
one number per step,

    y_t ~ Normal(b + Σ_c μ⁽ᶜ⁾[z⁽ᶜ⁾_t], sqrt(σ² + Σ_c s⁽ᶜ⁾[z⁽ᶜ⁾_t]²)),

with b a constant background load, σ the meter noise (`noise_std`) and s⁽ᶜ⁾_k how far
appliance c's draw wanders around its level k (`Appliance.scale`; independent Gaussian
wanderings add their variances). A missing reading (NaN) is a step without evidence.
`log_joint` scores a configuration, `disaggregate_exact` finds the exact MAP states on the product
chain (Π K_c joint states: small C only; `hmmblog.nilm.decoder.disaggregate` is the linear-time
decoder).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import pyro
import pyro.distributions as dist
import torch

from hmmblog import inference
from hmmblog.emissions import normal_log_density
from hmmblog.inference import joint_states, path_log_prior, viterbi
from hmmblog.inference.rows import one_torch_thread
from hmmblog.nilm.appliances import DTYPE, Appliance, check_appliances
from hmmblog.nilm.learning import unmetered_from_meter
from hmmblog.nilm.meter import check_noise, check_unmetered, check_watts, meter_floor, meter_noise
from hmmblog.simulation import sample
from hmmblog.validation import check_positive_int

__all__ = [
    "Disaggregation",
    "Household",
    "check_aggregate",
    "disaggregate_exact",
    "disaggregation",
    "factorial_story",
    "log_joint",
    "meter_log_density",
    "product_chain",
    "simulate_household",
]


class Household(NamedTuple):
    """A simulated meter: `aggregate [T]` watts, per-appliance `power [C, T]`, `states [C, T]`."""

    aggregate: torch.Tensor
    power: torch.Tensor
    states: torch.Tensor


class Disaggregation(NamedTuple):
    """Decoded `states [C, T]` (int64), their `power [C, T]` in watts, the exact
    `log_joint` log p(states, y) of the decoded configuration (the unmetered chain's states
    included), the `sweeps` used, the `unmetered [T]` watts the model put outside the
    appliances (zeros without an unmetered chain), the `noise_std` and `background` it
    decoded with (given or estimated) and the `unmetered_model`, the unmetered chain it
    decoded with (None without one): pass it to another decoder to decode the same model."""

    states: torch.Tensor
    power: torch.Tensor
    log_joint: torch.Tensor
    sweeps: int
    unmetered: torch.Tensor
    noise_std: float
    background: float
    unmetered_model: Appliance | None = None


def check_aggregate(aggregate: torch.Tensor) -> torch.Tensor:
    """The meter readings `[T]` as float64 watts (NaN = missing, at least one present; no
    infinities)."""
    return check_watts("aggregate", aggregate)


def meter_log_density(y: torch.Tensor, mean: torch.Tensor, var: torch.Tensor | float
                      ) -> torch.Tensor:
    """log Normal(y; mean, sqrt(var)) elementwise, 0 where the reading y is missing (NaN)."""
    sd = var.sqrt() if isinstance(var, torch.Tensor) else var**0.5
    missing = torch.isnan(y)
    if not missing.any():
        return normal_log_density(y, mean, sd)
    return normal_log_density(y.masked_fill(missing, 0.0), mean, sd).masked_fill(missing, 0.0)


def simulate_household(
    appliances: Sequence[Appliance],
    T: int,
    noise_std: float,
    background: float = 0.0,
    seed: int = 0,
) -> Household:
    """Run every appliance's chain for T steps (appliance c from seed `seed + c`, so adding an
    appliance leaves the others' paths unchanged) and add y_t = b + Σ_c μ⁽ᶜ⁾[z⁽ᶜ⁾_t] + σ ε_t."""
    appliances = check_appliances(appliances)
    noise_std, background = check_noise(noise_std, background)
    T = check_positive_int("T", T)
    states = []
    for c, a in enumerate(appliances):
        # Only the path is needed; the sampler's emission is a stand-in it draws alongside.
        z, _ = sample(a.initial, a.transition, dist.Normal(a.power, 1.0), 1, T, seed + c)
        states.append(z[0])
    states = torch.stack(states)
    g = torch.Generator().manual_seed(seed + 10_000)
    noise = noise_std * torch.randn(T, generator=g, dtype=DTYPE)
    wander = torch.stack([a.scale[z] for a, z in zip(appliances, states, strict=True)])
    if (wander > 0).any():  # draws (not just levels) only for appliances that wander
        wander = wander * torch.randn(wander.shape, generator=g, dtype=DTYPE)
    power = torch.stack([a.power[z] for a, z in zip(appliances, states, strict=True)]) + wander
    return Household(background + power.sum(0) + noise, power, states)


def factorial_story(
    appliances: Sequence[Appliance],
    noise_std: float,
    background: float = 0.0,
    aggregate: torch.Tensor | None = None,
    T: int | None = None,
) -> torch.Tensor:
    """The factorial HMM told step by step, appliance by appliance (a Pyro model): each
    appliance steps its own chain, the meter reads Normal(b + Σ_c μ⁽ᶜ⁾[z⁽ᶜ⁾_t],
    sqrt(σ² + Σ_c s⁽ᶜ⁾[z⁽ᶜ⁾_t]²)). Conditioned on `aggregate [T]` if given (a NaN reading
    is masked out: no evidence). Returns the meter readings `[T]`."""
    appliances = check_appliances(appliances)
    noise_std, background = check_noise(noise_std, background)
    if aggregate is not None:
        T = aggregate.shape[-1]
    if T is None:
        raise ValueError("T: expected a positive int (or an aggregate), got None")
    T = check_positive_int("T", T)
    z = [None] * len(appliances)
    readings = []
    for t in pyro.markov(range(T)):
        total = torch.tensor(background, dtype=DTYPE)
        var = torch.tensor(noise_std**2, dtype=DTYPE)
        for c, a in enumerate(appliances):
            probs = a.initial if t == 0 else a.transition[z[c]]
            z[c] = pyro.sample(f"z_{c}_{t}", dist.Categorical(probs),
                               infer={"enumerate": "parallel"})
            total, var = total + a.power[z[c]], var + a.scale[z[c]] ** 2
        meter = dist.Normal(total, var.sqrt())
        obs = None if aggregate is None else aggregate[t]
        if obs is not None and torch.isnan(obs):  # a missing reading: no evidence
            obs, meter = obs.new_zeros(()), meter.mask(False)
        readings.append(pyro.sample(f"y_{t}", meter, obs=obs))
    return torch.stack(torch.broadcast_tensors(*readings), -1)


def log_joint(
    aggregate: torch.Tensor,
    appliances: Sequence[Appliance],
    states: torch.Tensor,
    noise_std: float,
    background: float = 0.0,
) -> torch.Tensor:
    """log p(z, y) = Σ_c log p(z⁽ᶜ⁾) + Σ_t log Normal(y_t; b + Σ_c μ⁽ᶜ⁾[z⁽ᶜ⁾_t],
    sqrt(σ² + Σ_c s⁽ᶜ⁾[z⁽ᶜ⁾_t]²)) for `states [..., C, T]` (missing readings add 0);
    returns `[...]`."""
    y = check_aggregate(aggregate)
    appliances = check_appliances(appliances)
    noise_std, background = check_noise(noise_std, background)
    states = torch.as_tensor(states)
    if states.dim() < 2 or tuple(states.shape[-2:]) != (len(appliances), y.shape[0]):
        raise ValueError(
            f"states: expected shape [..., C, T] = [..., {len(appliances)}, {y.shape[0]}], "
            f"got {tuple(states.shape)}"
        )
    prior = sum(path_log_prior(a.initial.log(), a.transition.log(), states[..., c, :])
                for c, a in enumerate(appliances))
    mean = background + sum(a.power[states[..., c, :]] for c, a in enumerate(appliances))
    var = noise_std**2 + sum(a.scale[states[..., c, :]] ** 2 for c, a in enumerate(appliances)
                             if a.wanders)  # a number if no appliance wanders
    return prior + meter_log_density(y, mean, var).sum(-1)


def product_chain(appliances: Sequence[Appliance]) -> tuple[torch.Tensor, ...]:
    """π ``[Π K_c]``, A ``[Π K_c, Π K_c]``, power levels μ ``[Π K_c]`` and their variances
    Σ_c s⁽ᶜ⁾² ``[Π K_c]`` of the product chain over joint states
    (`hmmblog.inference.product_chain`: last appliance fastest)."""
    initial, transition = inference.product_chain([a.initial for a in appliances],
                                                  [a.transition for a in appliances])
    digits = torch.from_numpy(joint_states([a.K for a in appliances]))  # [C, Π K_c]
    power = torch.zeros(digits.shape[1], dtype=DTYPE)
    var = torch.zeros(digits.shape[1], dtype=DTYPE)
    for a, z in zip(appliances, digits, strict=True):
        power, var = power + a.power[z], var + a.scale[z] ** 2
    return initial, transition, power, var


def disaggregation(
    y: torch.Tensor, appliances: list[Appliance], states: torch.Tensor, noise_std: float,
    background: float, sweeps: int, unmetered: Appliance | None = None,
) -> Disaggregation:
    """The `Disaggregation` of decoded `states [C, T]` (plus one row for the `unmetered`
    chain, if any): their power and the exact score of the whole model."""
    everything = appliances if unmetered is None else [*appliances, unmetered]
    power = torch.stack([a.power[z] for a, z in zip(everything, states, strict=True)])
    score = log_joint(y, everything, states, noise_std, background)
    C = len(appliances)
    rest = power[C] if unmetered is not None else torch.zeros_like(y)
    return Disaggregation(states[:C], power[:C], score, sweeps, rest, noise_std, background,
                          unmetered)


@one_torch_thread
def disaggregate_exact(
    aggregate: torch.Tensor,
    appliances: Sequence[Appliance],
    noise_std: float | None = None,
    background: float | None = None,
    *,
    unmetered: bool | Appliance = True,
) -> Disaggregation:
    """Exact MAP states of the same model as `disaggregate` by the core's `viterbi` on the
    product chain (Kronecker products of every chain's π and A): Π K_c states, so time and
    memory grow exponentially in C. σ, b and the unmetered load as `disaggregate` takes them
    (`unmetered=True` learns the chain from the meter with this decoder's own decodes; pass
    another decode's `unmetered_model` to compare both decoders on one model). A missing
    reading (NaN) is a zero log-likelihood row: no evidence at that step."""
    y = check_aggregate(aggregate)
    appliances = check_appliances(appliances)
    unmetered = check_unmetered(unmetered, appliances)
    sigma = meter_noise(y, noise_std)

    def decode(chain: Appliance | None) -> Disaggregation:
        b = meter_floor(y, appliances, sigma, background, chain is not None)
        chains = appliances if chain is None else [*appliances, chain]
        initial, transition, power, var = product_chain(chains)
        log_lik = meter_log_density(y[:, None], b + power, sigma**2 + var)
        path = viterbi(initial, transition, log_lik).path  # [T], log_lik [T, Π K_c]
        states = torch.from_numpy(joint_states([a.K for a in chains]))[:, path]  # [C, T]
        return disaggregation(y, appliances, states, sigma, b, 0, chain)

    if unmetered is True:
        return unmetered_from_meter(y, appliances[0].step_minutes, decode)
    return decode(unmetered or None)
