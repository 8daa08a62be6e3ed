"""The factorial HMM of a household meter: its story, simulation, score and exact decoding.

C appliances, each its own Markov chain z⁽ᶜ⁾_t (see `hmmblog.nilm.appliances`); the meter sees
one number per step,

    y_t ~ Normal(b + Σ_c μ⁽ᶜ⁾[z⁽ᶜ⁾_t], σ),

with b a constant background load and σ the meter noise (`noise_std`). `log_joint` scores a
configuration, `disaggregate_exact` finds the exact MAP states on the product chain (Π K_c
joint states: small C only; `hmmblog.nilm.decoder.disaggregate` is the linear-time decoder).
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
from hmmblog.nilm.appliances import DTYPE, Appliance, check_appliances
from hmmblog.simulation import sample
from hmmblog.validation import check_finite_number, check_positive_int, check_positive_number

__all__ = [
    "Disaggregation",
    "Household",
    "check_aggregate",
    "check_noise",
    "disaggregate_exact",
    "disaggregation",
    "factorial_story",
    "log_joint",
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
    `log_joint` log p(states, y) of the decoded configuration and the `sweeps` used."""

    states: torch.Tensor
    power: torch.Tensor
    log_joint: torch.Tensor
    sweeps: int


def check_noise(noise_std: float, background: float) -> None:
    """σ must be a finite number of watts > 0, b a finite number of watts."""
    check_positive_number("noise_std", noise_std, "a finite number > 0 (watts)")
    check_finite_number("background", background, "a finite number (watts)")


def check_aggregate(aggregate: torch.Tensor) -> torch.Tensor:
    """The meter readings `[T]` as float64 watts (finite, T >= 1)."""
    y = torch.as_tensor(aggregate, dtype=DTYPE)
    if y.dim() != 1 or y.numel() < 1:
        raise ValueError(f"aggregate: expected a vector [T] of watts, got shape {tuple(y.shape)}")
    if not torch.isfinite(y).all():
        raise ValueError("aggregate: contains NaN or infinite readings")
    return y


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
    check_noise(noise_std, background)
    check_positive_int("T", T)
    states = []
    for c, a in enumerate(appliances):
        # Only the path is needed; the sampler's emission is a stand-in it draws alongside.
        z, _ = sample(a.initial, a.transition, dist.Normal(a.power, 1.0), 1, T, seed + c)
        states.append(z[0])
    states = torch.stack(states)
    power = torch.stack([a.power[z] for a, z in zip(appliances, states, strict=True)])
    g = torch.Generator().manual_seed(seed + 10_000)
    noise = noise_std * torch.randn(T, generator=g, dtype=DTYPE)
    return Household(background + power.sum(0) + noise, power, states)


def factorial_story(
    appliances: Sequence[Appliance],
    noise_std: float,
    background: float = 0.0,
    aggregate: torch.Tensor | None = None,
    T: int | None = None,
) -> torch.Tensor:
    """The factorial HMM told minute by minute, appliance by appliance (a Pyro model):
    each appliance steps its own chain, the meter reads Normal(b + Σ_c μ⁽ᶜ⁾[z⁽ᶜ⁾_t], σ).
    Conditioned on `aggregate [T]` if given. Returns the meter readings `[T]`."""
    appliances = check_appliances(appliances)
    check_noise(noise_std, background)
    if aggregate is not None:
        T = aggregate.shape[-1]
    if T is None:
        raise ValueError("T: expected a positive int (or an aggregate), got None")
    check_positive_int("T", T)
    z = [None] * len(appliances)
    readings = []
    for t in pyro.markov(range(T)):
        total = torch.tensor(background, dtype=DTYPE)
        for c, a in enumerate(appliances):
            probs = a.initial if t == 0 else a.transition[z[c]]
            z[c] = pyro.sample(f"z_{c}_{t}", dist.Categorical(probs),
                               infer={"enumerate": "parallel"})
            total = total + a.power[z[c]]
        obs = None if aggregate is None else aggregate[t]
        readings.append(pyro.sample(f"y_{t}", dist.Normal(total, noise_std), obs=obs))
    return torch.stack(torch.broadcast_tensors(*readings), -1)


def log_joint(
    aggregate: torch.Tensor,
    appliances: Sequence[Appliance],
    states: torch.Tensor,
    noise_std: float,
    background: float = 0.0,
) -> torch.Tensor:
    """log p(z, y) = Σ_c log p(z⁽ᶜ⁾) + Σ_t log Normal(y_t; b + Σ_c μ⁽ᶜ⁾[z⁽ᶜ⁾_t], σ) for
    `states [..., C, T]`; returns `[...]`."""
    y = check_aggregate(aggregate)
    appliances = check_appliances(appliances)
    states = torch.as_tensor(states)
    if states.dim() < 2 or tuple(states.shape[-2:]) != (len(appliances), y.shape[0]):
        raise ValueError(
            f"states: expected shape [..., C, T] = [..., {len(appliances)}, {y.shape[0]}], "
            f"got {tuple(states.shape)}"
        )
    prior = sum(path_log_prior(a.initial.log(), a.transition.log(), states[..., c, :])
                for c, a in enumerate(appliances))
    mean = background + sum(a.power[states[..., c, :]] for c, a in enumerate(appliances))
    return prior + normal_log_density(y, mean, noise_std).sum(-1)


def product_chain(appliances: Sequence[Appliance]) -> tuple[torch.Tensor, ...]:
    """π ``[Π K_c]``, A ``[Π K_c, Π K_c]`` and power levels μ ``[Π K_c]`` of the product chain
    over joint states (`hmmblog.inference.product_chain`: last appliance fastest)."""
    initial, transition = inference.product_chain([a.initial for a in appliances],
                                                  [a.transition for a in appliances])
    digits = torch.from_numpy(joint_states([a.K for a in appliances]))  # [C, Π K_c]
    power = torch.zeros(digits.shape[1], dtype=DTYPE)
    for a, z in zip(appliances, digits, strict=True):
        power = power + a.power[z]
    return initial, transition, power


def disaggregation(
    y: torch.Tensor, appliances: list[Appliance], states: torch.Tensor, noise_std: float,
    background: float, sweeps: int,
) -> Disaggregation:
    """The `Disaggregation` of decoded `states [C, T]`: their power and exact score."""
    power = torch.stack([a.power[z] for a, z in zip(appliances, states, strict=True)])
    score = log_joint(y, appliances, states, noise_std, background)
    return Disaggregation(states, power, score, sweeps)


def disaggregate_exact(
    aggregate: torch.Tensor,
    appliances: Sequence[Appliance],
    noise_std: float,
    background: float = 0.0,
) -> Disaggregation:
    """Exact MAP states by the core's `viterbi` on the product chain (Kronecker products of
    the appliances' π and A): Π K_c states, so time and memory grow exponentially in C."""
    y = check_aggregate(aggregate)
    appliances = check_appliances(appliances)
    check_noise(noise_std, background)
    initial, transition, power = product_chain(appliances)
    log_lik = normal_log_density(y[:, None], background + power, noise_std)  # [T, Π K_c]
    path = viterbi(initial, transition, log_lik).path
    states = torch.from_numpy(joint_states([a.K for a in appliances]))[:, path]  # [C, T]
    return disaggregation(y, appliances, states, noise_std, background, 0)
