"""What a real meter reads besides the appliances: noise, a floor, and the unmetered load.

A real whole-house meter reads more than the appliances we modelled: noise (σ, `noise_std`),
a floor of standby loads (b, `background`) and an *unmetered* load — lights, chargers, a
heater nobody sub-metered — that drifts and switches for minutes to hours. This module
estimates σ and b from the readings alone and checks what a decoder is told about the
unmetered load; the load itself is one more chain of the factorial model, learned from data
(`hmmblog.nilm.learning.learn_unmetered`), whose levels start at the house's own floor (so
b = 0 beside it). `simulate_unmetered` draws a documented stand-in for controlled
experiments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from hmmblog.nilm.appliances import DTYPE, Appliance
from hmmblog.validation import (
    as_tensor,
    check_finite_number,
    check_positive_int,
    check_positive_number,
    check_seed,
)

__all__ = ["check_noise", "check_unmetered", "check_watts", "estimate_background",
           "estimate_noise", "meter_floor", "meter_noise", "simulate_unmetered"]

MAD_TO_SD = 1.4826  # σ = 1.4826 · median |x − median x| for a normal sample


def check_watts(name: str, readings: object, least: int = 1) -> torch.Tensor:
    """Readings `[T]` as float64 watts (NaN = missing, at least `least` present, no
    infinities): a meter's or a plug's; else a ValueError naming `name`."""
    y = as_tensor(name, readings).to(DTYPE)
    present, infinite = int((~torch.isnan(y)).sum()), int(torch.isinf(y).sum())
    if y.dim() != 1 or present < least or infinite:
        raise ValueError(f"{name}: expected a vector [T] of watts (NaN where missing, at least "
                         f"{least} present, none infinite), got shape {tuple(y.shape)} with "
                         f"{present} present, {int(torch.isnan(y).sum())} missing of "
                         f"{y.numel()} and {infinite} infinite")
    return y


def estimate_noise(aggregate: torch.Tensor, floor: float = 1.0) -> float:
    """σ from the readings `[T]` alone: most steps change no appliance, so a step-to-step
    difference y_t − y_{t−1} is mostly noise, N(0, 2σ²); σ = 1.4826 · median |Δy| / √2 over
    pairs of present readings (the median ignores the steps where something switched).
    At least `floor` watts (a meter's resolution)."""
    y = check_watts("aggregate", aggregate)
    floor = check_positive_number("floor", floor, "a finite number of watts > 0")
    diff = y[1:] - y[:-1]
    diff = diff[~torch.isnan(diff)]
    if diff.numel() == 0:
        return floor
    return max(float(MAD_TO_SD * diff.abs().median() / math.sqrt(2)), floor)


def estimate_background(aggregate: torch.Tensor, appliances: Sequence[Appliance],
                        noise_std: float, quantile: float = 0.01) -> float:
    """b from the readings: the lowest readings are the floor plus every appliance in its
    lowest state plus noise, N(b + Σ_c μ⁽ᶜ⁾_0, v) with v = σ² + Σ_c s⁽ᶜ⁾_0², so
    b ≈ q + ½ Φ⁻¹(1 − `quantile`) · √v − Σ_c μ⁽ᶜ⁾_0, q the `quantile` of the present
    readings. Half the correction, aiming low: the lowest readings mix "all off" with other
    states, so the whole of it overshoots, and a floor set too high is worse than one too low
    (nothing explains a reading below b; the unmetered chain absorbs one above it). Still
    a little high when the appliances' lowest spreads are overstated (a 2 W floor on a plug
    that reads 0.1 W)."""
    y = check_watts("aggregate", aggregate)
    sigma = check_positive_number("noise_std", noise_std, "a finite number > 0 (watts)")
    q = check_finite_number("quantile", quantile, "a probability in (0, 0.5)")
    if not 0 < q < 0.5:
        raise ValueError(f"quantile: expected a probability in (0, 0.5), got {q}")
    lowest = [int(a.power.argmin()) for a in appliances]
    floor = sum(float(a.power[k]) for a, k in zip(appliances, lowest, strict=True))
    spread = math.sqrt(sigma**2 + sum(float(a.scale[k]) ** 2
                                      for a, k in zip(appliances, lowest, strict=True)))
    z = -float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(q)))
    return float(torch.quantile(y[~torch.isnan(y)], q)) + 0.5 * z * spread - floor


def check_noise(noise_std: object, background: object) -> tuple[float, float]:
    """σ as a finite number of watts > 0 and b as a finite number of watts (any kind of
    number: Python, numpy, a 0-d tensor)."""
    return (check_positive_number("noise_std", noise_std, "a finite number > 0 (watts)"),
            check_finite_number("background", background, "a finite number (watts)"))


def check_unmetered(unmetered: object, appliances: Sequence[Appliance]) -> bool | Appliance:
    """What a decoder is told about the unmetered load: True (learn it from the meter),
    False (there is none: a simulation, post 4) or its chain, an `Appliance` on the
    appliances' step (`learn_unmetered` from training days)."""
    if isinstance(unmetered, bool):
        return unmetered
    if not isinstance(unmetered, Appliance):
        raise ValueError(f"unmetered: expected True, False or an Appliance (see "
                         f"learn_unmetered), got {type(unmetered).__name__} {unmetered!r:.60}")
    if unmetered.step_minutes != appliances[0].step_minutes:
        raise ValueError(f"unmetered: expected a chain on the appliances' step "
                         f"({appliances[0].step_minutes:g} min), got {unmetered.step_minutes:g} "
                         f"min (see Appliance.at_step)")
    return unmetered


def meter_noise(y: torch.Tensor, noise_std: object) -> float:
    """σ as given (any kind of number > 0) or, if None, `estimate_noise(y)`."""
    if noise_std is None:
        return estimate_noise(y)
    return check_positive_number("noise_std", noise_std, "a finite number > 0 (watts)")


def meter_floor(y: torch.Tensor, appliances: Sequence[Appliance], noise_std: float,
                background: object, beside_chain: bool) -> float:
    """b as given (any kind of finite number) or, if None: 0 beside an unmetered chain (its
    lowest level is the house's floor), else `estimate_background`."""
    if background is None:
        return 0.0 if beside_chain else estimate_background(y, appliances, noise_std)
    return check_finite_number("background", background, "a finite number (watts)")


def simulate_unmetered(T: int, step_minutes: float = 1.0, seed: int = 0, standby: float = 50.0,
                       evening: tuple[float, float] = (200.0, 420.0),
                       hours: tuple[float, float] = (18.0, 23.0),
                       dwell_minutes: float = 30.0) -> torch.Tensor:
    """A simulated unmetered load `[T]` watts from midnight, one step every `step_minutes`:
    `standby` watts always, plus, between `hours` each day, lights and electronics at a level
    drawn uniformly from `evening` that changes on average every `dwell_minutes`. An
    assumption, not a measurement: standby devices all day and lights and entertainment in
    the evening, the two kinds of load a house's sub-meters usually miss."""
    T = check_positive_int("T", T)
    step = check_positive_number("step_minutes", step_minutes, "a finite number of minutes > 0")
    dwell = check_positive_number("dwell_minutes", dwell_minutes, "a finite number of minutes > 0")
    seed = check_seed("seed", seed)
    standby = check_finite_number("standby", standby, "a finite number of watts")
    low, high = (check_finite_number("evening", w, "two watts, low <= high") for w in evening)
    start, end = (check_finite_number("hours", h, "two hours of the day, start < end")
                  for h in hours)
    if not (standby >= 0 and 0 <= low <= high and 0 <= start < end <= 24):
        raise ValueError(f"standby, evening, hours: expected standby >= 0, 0 <= low <= high "
                         f"and 0 <= start < end <= 24, got {standby}, {evening}, {hours}")
    g = torch.Generator().manual_seed(seed)
    minute_of_day = (torch.arange(T, dtype=DTYPE) * step) % (24 * 60)
    lit = (minute_of_day >= start * 60) & (minute_of_day < end * 60)
    change = torch.rand(T, generator=g, dtype=DTYPE) < step / dwell
    change |= lit & ~torch.cat([torch.tensor([False]), lit[:-1]])  # every evening starts anew
    draws = low + (high - low) * torch.rand(T, generator=g, dtype=DTYPE)
    index = torch.cummax(torch.where(change, torch.arange(T), 0), 0).values
    return standby + torch.where(lit, draws[index], 0.0)
