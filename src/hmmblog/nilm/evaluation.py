"""The NILM user's protocol: learn on some days, decode the recorded mains of later days, score
every appliance against its own sub-meter, beside the baselines NILM readers know.

A real house's data are its mains y `[T]` and sub-meters x⁽ᶜ⁾ `[T]` (watts, NaN = missing)
for C appliances or circuits that explain part of the mains, never all of it. `evaluate`
learns each appliance from its sub-meter on the `train` steps (`learn_appliance`) and the
unmetered load from the training mains less the sub-meters (`learn_unmetered`), decodes the
`test` steps of the mains with each method and scores the decoded watts against the
sub-meters there:

* ``"fhmm"`` — `disaggregate` with that unmetered chain (the package's model);
* ``"fhmm, meter only"`` — `disaggregate` at its defaults, the unmetered chain learned from
  the test mains alone (what a user without training mains gets);
* ``"exact FHMM"`` — the plain factorial HMM, no unmetered load, decoded exactly on the
  product chain (`disaggregate_exact(..., unmetered=False)`; NILMTK's FHMM), when it has at
  most `max_joint_states` joint states;
* ``"CO"`` — combinatorial optimisation (Hart 1992);
* ``"mean"`` — each appliance's mean training draw at every step (nilmtk-contrib's baseline).

Scores per appliance on the scored steps (test steps where every sub-meter reported; the
mains may be missing there): F1 of the on state (on = above `threshold` watts), mean
absolute error, normalised disaggregation error and the energy assigned; and the share of
energy correctly assigned over all appliances.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

import torch

from hmmblog.inference.rows import one_torch_thread
from hmmblog.nilm.appliances import DTYPE, Appliance
from hmmblog.nilm.baselines import combinatorial_optimisation
from hmmblog.nilm.decoder import disaggregate
from hmmblog.nilm.learning import learn_appliance, learn_unmetered
from hmmblog.nilm.meter import check_watts
from hmmblog.nilm.metrics import energy_correctly_assigned, f1_score, mean_absolute_error, nde
from hmmblog.nilm.model import disaggregate_exact
from hmmblog.validation import check_positive_int, check_positive_number

__all__ = ["METHODS", "Evaluation", "Scores", "evaluate"]

METHODS = ("fhmm", "fhmm, meter only", "exact FHMM", "CO", "mean")


class Scores(NamedTuple):
    """One method on the scored steps: per appliance `[C]` the `f1` of the on state, the
    mean absolute error `mae` (W), the normalised disaggregation error `nde` and the
    `energy` assigned (kWh); the share of all the appliances' energy correctly assigned
    (`energy_assigned`) and the `seconds` the decode took."""

    f1: torch.Tensor
    mae: torch.Tensor
    nde: torch.Tensor
    energy: torch.Tensor
    energy_assigned: float
    seconds: float


class Evaluation(NamedTuple):
    """What `evaluate` learned and measured: the appliance `names`, the learned `appliances`
    and `unmetered` chain, the test sub-meters' `truth [C, T']` (T' test steps, NaN where a
    sub-meter is missing) and each method's decoded `power [C, T']`, the `scored [T']` mask,
    the true `energy [C]` (kWh) on the scored steps and each method's `scores`."""

    names: list[str]
    appliances: list[Appliance]
    unmetered: Appliance
    truth: torch.Tensor
    power: dict[str, torch.Tensor]
    scored: torch.Tensor
    energy: torch.Tensor
    scores: dict[str, Scores]


def _steps(name: str, window: object, T: int) -> slice:
    """`window` as a slice of steps inside [0, T) with at least two steps."""
    if not isinstance(window, slice) or window.step not in (None, 1):
        raise ValueError(f"{name}: expected a slice of steps (e.g. slice(0, 10080)), "
                         f"got {window!r:.60}")
    start, stop, _ = window.indices(T)
    if stop - start < 2:
        raise ValueError(f"{name}: expected at least 2 of the {T} steps, got {window!r}")
    return slice(start, stop)


def _readings(mains: object, submeters: object) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The mains `[T]` and each named sub-meter `[T]` as float64 watts, checked."""
    y = check_watts("mains", mains, least=2)
    if not isinstance(submeters, Mapping) or not submeters:
        raise ValueError(f"submeters: expected a mapping of appliance names to readings [T], "
                         f"got {type(submeters).__name__}")
    sub = {str(n): check_watts(f"submeters[{n!r}]", x, least=2) for n, x in submeters.items()}
    wrong = {n: tuple(x.shape) for n, x in sub.items() if x.shape != y.shape}
    if wrong:
        raise ValueError(f"submeters: expected readings of the mains' shape {tuple(y.shape)}, "
                         f"got {wrong}")
    return y, sub


@one_torch_thread
def evaluate(
    mains: object,
    submeters: Mapping[str, object],
    *,
    train: slice,
    test: slice,
    states: int | Mapping[str, int] = 2,
    step_minutes: float = 1.0,
    threshold: float = 15.0,
    methods: tuple[str, ...] = METHODS,
    max_joint_states: int = 512,
) -> Evaluation:
    """Learn on the `train` steps, decode the mains on the `test` steps with each of
    `methods` (see the module docstring) and score them against the sub-meters.

    `mains [T]` and `submeters` (name → readings `[T]`, watts, NaN = missing, one reading
    every `step_minutes` minutes; sub-meters that explain part of the mains are the normal
    case). `states`: each appliance's number of states K, one for all or per name.
    `train` and `test` are slices of steps; they may overlap (learn and decode the same
    day) or not (learn on earlier days). On = above `threshold` watts in F1."""
    y, sub = _readings(mains, submeters)
    T = y.shape[0]
    train, test = _steps("train", train, T), _steps("test", test, T)
    step_minutes = check_positive_number("step_minutes", step_minutes,
                                         "a finite number of minutes > 0")
    check_positive_number("threshold", threshold, "a finite number of watts > 0")
    max_joint_states = check_positive_int("max_joint_states", max_joint_states)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods: expected some of {METHODS}, got {methods!r}")
    names = list(sub)
    K = {n: states for n in names} if not isinstance(states, Mapping) else dict(states)
    if set(K) != set(names):
        raise ValueError(f"states: expected a number of states for each of {names}, "
                         f"got {sorted(K)}")
    K = {n: check_positive_int(f"states[{n!r}]", k) for n, k in K.items()}

    appliances = [learn_appliance(sub[n][train], K[n], n, step_minutes=step_minutes)
                  for n in names]
    left = y[train] - torch.stack([sub[n][train] for n in names]).sum(0)  # NaN if any is
    unmetered = learn_unmetered(left, step_minutes=step_minutes)
    truth = torch.stack([sub[n][test] for n in names])
    scored = ~torch.isnan(truth).any(0)
    mains_test = y[test]
    decoders: dict[str, Callable[[], torch.Tensor]] = {
        "fhmm": lambda: disaggregate(mains_test, appliances, unmetered=unmetered).power,
        "fhmm, meter only": lambda: disaggregate(mains_test, appliances).power,
        "exact FHMM": lambda: disaggregate_exact(mains_test, appliances,
                                                 unmetered=False).power,
        "CO": lambda: combinatorial_optimisation(mains_test, appliances).power,
        "mean": lambda: torch.stack([sub[n][train].nanmean().expand(truth.shape[1])
                                     for n in names]),
    }
    if math.prod(a.K for a in appliances) > max_joint_states:
        methods = tuple(m for m in methods if m != "exact FHMM")
    hours = step_minutes / 60
    energy = truth[:, scored].sum(-1) * hours / 1000
    power, scores = {}, {}
    for method in methods:
        start = time.perf_counter()
        decoded = decoders[method]().to(DTYPE)
        seconds = time.perf_counter() - start
        t, e = truth[:, scored], decoded[:, scored]
        power[method] = decoded
        assigned = energy_correctly_assigned(t, e).item() if e.sum() > 0 else math.nan
        scores[method] = Scores(f1_score(t, e, threshold), mean_absolute_error(t, e), nde(t, e),
                                e.sum(-1) * hours / 1000, assigned, seconds)
    return Evaluation(names, appliances, unmetered, truth, power, scored, energy, scores)
