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
from hmmblog.validation import check_positive_int, check_positive_number

__all__ = ["estimate_background", "estimate_noise", "unmetered_load"]

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
