"""Appliances as hidden Markov chains: one chain per appliance, one power level per state.

Chain c has K_c states with power levels μ⁽ᶜ⁾ ``[K_c]`` (watts; state 0 is usually off), a start
distribution π⁽ᶜ⁾ ``[K_c]`` and transitions A⁽ᶜ⁾ ``[K_c, K_c]``. `appliance_catalogue` holds ten
UK appliances at one-minute steps; `random_household` draws C of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from hmmblog.validation import check_parameters, check_positive_int, check_positive_number

DTYPE = torch.float64  # watts and probabilities of the NILM code


@dataclass(frozen=True)
class Appliance:
    """One appliance as an HMM: `power [K]` watts per state (state 0 is usually off),
    `initial [K]` = π, `transition [K, K]` = A with A_ij = p(z_{t+1} = j | z_t = i) over one
    step of `step_minutes` minutes, and `scale [K]`, how far (watts, one standard deviation)
    its draw wanders around each level (0: exactly the level)."""

    name: str
    power: torch.Tensor
    initial: torch.Tensor
    transition: torch.Tensor
    scale: torch.Tensor | None = None
    step_minutes: float = 1.0

    def __post_init__(self) -> None:
        power = torch.as_tensor(self.power, dtype=DTYPE)
        if power.dim() != 1 or power.numel() < 1:
            raise ValueError(
                f"power: expected a vector [K] of watts, got shape {tuple(power.shape)}"
            )
        if not torch.isfinite(power).all() or (power < 0).any():
            raise ValueError(f"power: expected finite watts >= 0, got {power.tolist()}")
        initial = torch.as_tensor(self.initial, dtype=DTYPE)
        transition = torch.as_tensor(self.transition, dtype=DTYPE)
        if initial.shape != power.shape:
            raise ValueError(
                f"initial: expected shape {tuple(power.shape)} (one entry per power state), "
                f"got {tuple(initial.shape)}"
            )
        initial, transition = check_parameters(initial, transition)
        scale = torch.zeros_like(power) if self.scale is None else torch.as_tensor(
            self.scale, dtype=DTYPE)
        if scale.shape != power.shape or not torch.isfinite(scale).all() or (scale < 0).any():
            raise ValueError(f"scale: expected finite watts >= 0 of shape {tuple(power.shape)}, "
                             f"got {scale.tolist()}")
        step = check_positive_number("step_minutes", self.step_minutes,
                                     "a finite number of minutes > 0")
        object.__setattr__(self, "power", power)
        object.__setattr__(self, "initial", initial)
        object.__setattr__(self, "transition", transition)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "step_minutes", step)

    @property
    def K(self) -> int:
        """Number of power states."""
        return self.power.shape[0]

    @property
    def wanders(self) -> bool:
        """Does any state's draw wander around its level (a spread > 0)?"""
        return bool((self.scale > 0).any())

    def at_step(self, step_minutes: float) -> Appliance:
        """The same appliance observed every `step_minutes` minutes, a whole multiple m of its
        own step: A becomes A^m (the chain sampled every m-th step), π and levels stay."""
        step = check_positive_number("step_minutes", step_minutes,
                                     "a finite number of minutes > 0")
        m = round(step / self.step_minutes)
        if m < 1 or abs(m * self.step_minutes - step) > 1e-9 * step:
            raise ValueError(f"step_minutes: expected a whole multiple of this appliance's step "
                             f"({self.step_minutes:g} min), got {step:g}")
        return replace(self, transition=torch.linalg.matrix_power(self.transition, m),
                       step_minutes=step)


def check_appliances(appliances: Sequence[Appliance]) -> list[Appliance]:
    """The appliances as a list; raise a ValueError unless it is a non-empty sequence of
    `Appliance` (each one was checked when it was made) sharing one step length (one meter,
    one clock)."""
    appliances = list(appliances)
    if not appliances or not all(isinstance(a, Appliance) for a in appliances):
        raise ValueError(
            f"appliances: expected a non-empty sequence of Appliance, got {appliances!r:.80}"
        )
    if len({a.step_minutes for a in appliances}) > 1:
        raise ValueError(
            "appliances: expected one step length for all (see Appliance.at_step), got "
            + ", ".join(f"{a.name} {a.step_minutes:g} min" for a in appliances)
        )
    return appliances


def two_state(name: str, on_power: float, mean_off: float, mean_on: float) -> Appliance:
    """An off/on appliance from its mean off and on durations (in steps): a geometric dwell
    of mean d leaves its state with probability 1/d per step; π is the stationary law."""
    on_power = check_positive_number("on_power", on_power, "a finite number of watts > 0")
    mean_off = check_positive_number("mean_off", mean_off, "a mean duration >= 1 step")
    mean_on = check_positive_number("mean_on", mean_on, "a mean duration >= 1 step")
    if mean_off < 1 or mean_on < 1:
        raise ValueError(
            f"mean_off, mean_on: expected mean durations >= 1 step, got {mean_off}, {mean_on}"
        )
    p_on, p_off = 1.0 / mean_off, 1.0 / mean_on
    transition = torch.tensor([[1 - p_on, p_on], [p_off, 1 - p_off]], dtype=DTYPE)
    initial = torch.tensor([mean_off, mean_on], dtype=DTYPE) / (mean_off + mean_on)
    return Appliance(name, torch.tensor([0.0, on_power], dtype=DTYPE), initial, transition)


def three_state(
    name: str, low: float, high: float, runs_every: float, low_dwell: float, high_dwell: float,
    p_low_to_high: float,
) -> Appliance:
    """off -> low -> (high <-> low)* -> off: a cycle that starts and ends in its low state,
    with geometric dwells (steps) and p(low -> high) = `p_low_to_high` on leaving low."""
    a, b = 1.0 / runs_every, 1.0 / low_dwell
    c = 1.0 / high_dwell
    transition = torch.tensor(
        [
            [1 - a, a, 0.0],
            [b * (1 - p_low_to_high), 1 - b, b * p_low_to_high],
            [0.0, c, 1 - c],
        ],
        dtype=DTYPE,
    )
    # Start from the stationary distribution (left eigenvector of A for eigenvalue 1).
    evals, evecs = torch.linalg.eig(transition.T)
    stationary = evecs[:, evals.real.argmax()].real
    initial = stationary / stationary.sum()
    return Appliance(name, torch.tensor([0.0, low, high], dtype=DTYPE), initial, transition)


def appliance_catalogue(step_minutes: float = 1.0) -> dict[str, Appliance]:
    """Ten UK appliances (durations below in minutes), one step every `step_minutes` minutes
    (a whole number; see `Appliance.at_step`). Power levels and dwell times follow HMMs
    trained on the UK Household Electricity Survey (fridge 76 W with ~54 min off / ~17 min
    on, kettle ~2 kW for ~3 min, washer 150 W drum / 2.05 kW heater, ...)."""
    day = 24 * 60
    appliances = [
        two_state("fridge", 76.0, mean_off=54, mean_on=17),
        two_state("fridge-freezer", 100.0, mean_off=37, mean_on=23),
        two_state("kettle", 2000.0, mean_off=day / 4, mean_on=3),
        two_state("microwave", 1150.0, mean_off=day / 2, mean_on=4),
        two_state("toaster", 1800.0, mean_off=day, mean_on=3),
        two_state("television", 110.0, mean_off=480, mean_on=120),
        two_state("electric shower", 8500.0, mean_off=day, mean_on=8),
        three_state("washing machine", 150.0, 2050.0, runs_every=2 * day, low_dwell=20,
                    high_dwell=15, p_low_to_high=0.5),
        three_state("dishwasher", 170.0, 2180.0, runs_every=day, low_dwell=25,
                    high_dwell=15, p_low_to_high=0.5),
        three_state("tumble dryer", 310.0, 1930.0, runs_every=3 * day, low_dwell=5,
                    high_dwell=10, p_low_to_high=0.8),
    ]
    return {a.name: a.at_step(step_minutes) for a in appliances}


def random_household(C: int, seed: int = 0) -> list[Appliance]:
    """C appliances drawn from the catalogue: each catalogue appliance once (in a seeded
    random order), then copies whose power levels are scaled by a factor in [0.85, 1.15]."""
    C = check_positive_int("C", C)
    catalogue = list(appliance_catalogue().values())
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(catalogue), generator=g).tolist()
    household = []
    for c in range(C):
        a = catalogue[order[c % len(catalogue)]]
        if c >= len(catalogue):
            factor = 0.85 + 0.3 * torch.rand((), generator=g, dtype=DTYPE)
            a = Appliance(f"{a.name} {c // len(catalogue) + 1}", a.power * factor, a.initial,
                          a.transition)
        household.append(a)
    return household
