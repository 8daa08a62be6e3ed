"""What a real meter adds to the appliances: noise, a floor, and load no appliance model explains.

A real whole-house meter reads more than the appliances we modelled: a constant floor of
standby loads (b, `background`), noise (σ, `noise_std`) and an *unmetered* load — lights,
chargers, a television nobody sub-metered — that switches on and off for minutes to hours.
This module estimates σ and b from the readings alone and builds the unmetered load as one
more chain of the factorial model, so the decoder puts that load somewhere other than on the
appliance whose level happens to be closest:

    u_t ∈ {0, δ, 2δ, ..., (G - 1)δ} watts, each level above 0 drawn with spread δ/2 (so the
    levels cover every value between them; level 0 is sharp), staying put with probability
    1 − ρ per step and otherwise jumping to any other level alike, ρ = step / `dwell_minutes`.

A change of the unmetered load costs log(ρ / (G − 1)) each way, and its levels are vaguer
than an appliance's, so the chain takes what no appliance explains well. It is not a
guarantee: an appliance whose switching costs as much as a jump, at a power one of the
chain's levels matches, can lose its cycles to the chain (post 5 counts how often).
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

__all__ = ["check_noise", "check_watts", "estimate_background", "estimate_noise", "meter_model",
           "simulate_unmetered", "unmetered_load"]

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


def unmetered_load(span: float, noise_std: float, step_minutes: float = 1.0,
                   dwell_minutes: float = 30.0, max_levels: int = 48,
                   min_spacing: float = 25.0) -> Appliance:
    """The unmetered load as a chain: G ≤ `max_levels` levels from 0 to `span` watts, δ apart
    (δ ≥ 4σ and ≥ `min_spacing` watts); each level above 0 vaguer than an appliance's own
    (spread δ/2, so the levels cover every value between them), level 0, "nothing
    unmetered", as sharp as the meter allows (spread 2σ, so that an everywhere-vague chain
    does not blunt every appliance's level); uniform start, and a change with probability
    ρ = min(step_minutes / dwell_minutes, 1/2) per step to any other level alike."""
    span = check_positive_number("span", span, "a finite number of watts > 0")
    noise_std = check_positive_number("noise_std", noise_std, "a finite number > 0 (watts)")
    max_levels = check_positive_int("max_levels", max_levels)
    min_spacing = check_positive_number("min_spacing", min_spacing, "a finite number of watts > 0")
    if max_levels < 2:
        raise ValueError(f"max_levels: expected at least 2 (0 W and one more), got {max_levels}")
    rho = min(check_positive_number("step_minutes", step_minutes) /
              check_positive_number("dwell_minutes", dwell_minutes), 0.5)
    G = max(2, min(max_levels, math.floor(span / max(4 * noise_std, min_spacing)) + 1))
    delta = span / (G - 1)
    power = delta * torch.arange(G, dtype=DTYPE)
    jump = torch.full((G, G), rho / (G - 1), dtype=DTYPE)
    transition = jump.fill_diagonal_(1 - rho)
    initial = torch.full((G,), 1.0 / G, dtype=DTYPE)
    scale = torch.full((G,), delta / 2, dtype=DTYPE)
    scale[0] = 2 * noise_std
    return Appliance("unmetered", power, initial, transition,
                     scale=scale, step_minutes=step_minutes)


def check_noise(noise_std: object, background: object) -> tuple[float, float]:
    """σ as a finite number of watts > 0 and b as a finite number of watts (any kind of
    number: Python, numpy, a 0-d tensor)."""
    return (check_positive_number("noise_std", noise_std, "a finite number > 0 (watts)"),
            check_finite_number("background", background, "a finite number (watts)"))


def meter_model(y: torch.Tensor, appliances: Sequence[Appliance], noise_std: object,
                background: object, unmetered: bool) -> tuple[float, float, Appliance | None]:
    """What the decoders add to the appliances: σ and b as given or, if None, estimated
    (`estimate_noise`, `estimate_background`), and with `unmetered` the unmetered chain from
    0 W to the 95th percentile of y − b (else None). Checked: any kind of number."""
    if noise_std is None:
        noise_std = estimate_noise(y)
    if background is None:
        background = estimate_background(y, appliances, noise_std)
    noise_std, background = check_noise(noise_std, background)
    if not unmetered:
        return noise_std, background, None
    step = appliances[0].step_minutes  # one step for all: the caller checked
    span = max(float(torch.nanquantile(y - background, 0.95)), 4 * noise_std)
    return noise_std, background, unmetered_load(span, noise_std, step)


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
