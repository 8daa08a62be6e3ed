"""What a real meter adds to the appliances: noise, a floor, and load no appliance model explains.

A real whole-house meter reads more than the appliances we modelled: a constant floor of
standby loads (b, `background`), noise (σ, `noise_std`) and an *unmetered* load — lights,
chargers, a television nobody sub-metered — that switches on and off for minutes to hours.
This module estimates σ and b from the readings alone and builds the unmetered load as one
more chain of the factorial model, so the decoder puts that load somewhere other than on the
appliance whose level happens to be closest:

    u_t ∈ {0, δ, 2δ, ..., (G - 1)δ} watts, each level drawn with spread δ/2 (so the levels
    cover every value between them), staying put with probability 1 − ρ per step and
    otherwise jumping to any other level alike, ρ = step / `dwell_minutes`.

A change of the unmetered load costs log(ρ / (G − 1)) each way, more than an appliance's
own switching (its learned A), so the chain takes what no appliance explains well and leaves
an appliance's repeating cycles to the appliance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from hmmblog.nilm.appliances import DTYPE, Appliance
from hmmblog.validation import check_finite_number, check_positive_int, check_positive_number

__all__ = ["check_noise", "estimate_background", "estimate_noise", "meter_model",
           "simulate_unmetered", "unmetered_load"]

MAD_TO_SD = 1.4826  # σ = 1.4826 · median |x − median x| for a normal sample


def estimate_noise(aggregate: torch.Tensor, floor: float = 1.0) -> float:
    """σ from the readings `[T]` alone: most steps change no appliance, so a step-to-step
    difference y_t − y_{t−1} is mostly noise, N(0, 2σ²); σ = 1.4826 · median |Δy| / √2 over
    pairs of present readings (the median ignores the steps where something switched).
    At least `floor` watts (a meter's resolution)."""
    diff = aggregate[1:] - aggregate[:-1]
    diff = diff[~torch.isnan(diff)]
    if diff.numel() == 0:
        return floor
    return max(float(MAD_TO_SD * diff.abs().median() / math.sqrt(2)), floor)


def estimate_background(aggregate: torch.Tensor, appliances: Sequence[Appliance],
                        quantile: float = 0.01) -> float:
    """b from the readings: the lowest readings are the floor plus every appliance in its
    lowest state, so b = the `quantile` of the present readings − Σ_c min_k μ⁽ᶜ⁾_k."""
    present = aggregate[~torch.isnan(aggregate)]
    lowest = sum(float(a.power.min()) for a in appliances)
    return float(torch.quantile(present, quantile)) - lowest


def unmetered_load(span: float, noise_std: float, step_minutes: float = 1.0,
                   dwell_minutes: float = 30.0, max_levels: int = 48,
                   min_spacing: float = 25.0) -> Appliance:
    """The unmetered load as a chain: G ≤ `max_levels` levels from 0 to `span` watts, δ apart
    (δ ≥ 4σ and ≥ `min_spacing` watts: vaguer than an appliance's own level, so it never
    out-explains an appliance that is where its model says), spread δ/2, uniform start, and a
    change with probability ρ = min(step_minutes / dwell_minutes, 1/2) per step to any other
    level alike."""
    span = check_positive_number("span", span, "a finite number of watts > 0")
    noise_std = check_positive_number("noise_std", noise_std, "a finite number > 0 (watts)")
    max_levels = check_positive_int("max_levels", max_levels)
    rho = min(check_positive_number("step_minutes", step_minutes) /
              check_positive_number("dwell_minutes", dwell_minutes), 0.5)
    G = max(2, min(max_levels, math.floor(span / max(4 * noise_std, min_spacing)) + 1))
    delta = span / (G - 1)
    power = delta * torch.arange(G, dtype=DTYPE)
    jump = torch.full((G, G), rho / (G - 1), dtype=DTYPE)
    transition = jump.fill_diagonal_(1 - rho)
    initial = torch.full((G,), 1.0 / G, dtype=DTYPE)
    return Appliance("unmetered", power, initial, transition,
                     scale=torch.full((G,), delta / 2, dtype=DTYPE), step_minutes=step_minutes)


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
        background = estimate_background(y, appliances)
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
    drawn uniformly from `evening` that changes on average every `dwell_minutes` (the
    shape of the load a real house's meter showed beyond its eight sub-metered appliances)."""
    T = check_positive_int("T", T)
    step = check_positive_number("step_minutes", step_minutes, "a finite number of minutes > 0")
    g = torch.Generator().manual_seed(seed)
    minute_of_day = (torch.arange(T, dtype=DTYPE) * step) % (24 * 60)
    lit = (minute_of_day >= hours[0] * 60) & (minute_of_day < hours[1] * 60)
    change = torch.rand(T, generator=g, dtype=DTYPE) < step / dwell_minutes
    change |= lit & ~torch.cat([torch.tensor([False]), lit[:-1]])  # every evening starts anew
    draws = evening[0] + (evening[1] - evening[0]) * torch.rand(T, generator=g, dtype=DTYPE)
    index = torch.cummax(torch.where(change, torch.arange(T), 0), 0).values
    return standby + torch.where(lit, draws[index], 0.0)
