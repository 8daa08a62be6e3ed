"""How well does disaggregation do on a real house's recorded mains, and in a controlled
experiment where the truth is known? (Accuracy, not speed: see bench_nilm_real.py.)

    .venv/bin/python benchmarks/nilm_real_meter.py [--quick]

1. **The UCI house** (data/uci-household: Sceaux, 2007, whole-house mains and three
   sub-metered circuits, 1-minute readings with the meter's own gaps). `nilm.evaluate` with
   each circuit learned from its sub-meter (kitchen 3 states, laundry 3, water heater 2)
   and the recorded mains decoded, under three protocols:
   * learn week 1, decode week 2: twelve fortnights, one starting every month;
   * learn week 1, decode week 3 (a week in between);
   * learn a day, decode the next day, at 2-minute means (the held-out one-day house's
     setting): twelve days, one a month;
   and the first protocol again with 3 % of the mains' readings removed at random.
   Prints mean F1 (on = above 15 W) per method, per circuit for ours, and the range. Then
   ours on the first protocol with the unmetered chain given K = 2, 3, 4, 6 or 10 levels
   (the default is 4).
2. **ECO plugs + a simulated unmetered load** (data/eco): fridge, dryer and kettle learned
   from 14 days of their plugs, decoded on a later week of their sum plus
   `simulate_unmetered` whose level changes every 5, 30 or 120 minutes on average. The chain
   given to the decoder is learned from 14 other days of the simulated load, so its switching
   rate is learned, not told. Ours against the exact MAP of the same model (search error),
   the chain learned from the meter alone, the plain model and CO.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hmmblog import nilm

DATA = Path(__file__).resolve().parent.parent / "data"
DAY = 24 * 60
CIRCUITS = {"kitchen": 3, "laundry": 3, "water_heater_ac": 2}


def uci(start_day: int, days: int, step: int = 1) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """`days` days of the UCI house from day `start_day` of 2007, `step`-minute means."""
    data = np.load(DATA / "uci-household" / "sceaux_2007.npz")
    window = slice(start_day * DAY, (start_day + days) * DAY)

    def means(x: np.ndarray) -> np.ndarray:
        return x[window].astype(np.float64).reshape(-1, step).mean(1)

    return means(data["mains_w"]), {n: means(data[f"{n}_w"]) for n in CIRCUITS}


def protocol(name: str, runs: list[tuple[np.ndarray, dict, slice, slice, int]]) -> dict:
    """Evaluate every run; print mean F1 per method and ours per circuit."""
    f1: dict[str, list[float]] = {}
    per_circuit = []
    for y, sub, train, test, step in runs:
        got = nilm.evaluate(y, sub, train=train, test=test, states=CIRCUITS, step_minutes=step)
        for method, scores in got.scores.items():
            f1.setdefault(method, []).append(scores.f1.mean().item())
        per_circuit.append(got.scores["fhmm"].f1)
    print(f"== {name}: {len(runs)} runs, mean F1 (min-max):")
    for method, values in f1.items():
        print(f"   {method:18s} {statistics.mean(values):.3f} "
              f"({min(values):.2f}-{max(values):.2f})")
    circuits = torch.stack(per_circuit).mean(0)
    print("   ours per circuit: " + ", ".join(f"{n} {v:.3f}" for n, v in
                                                zip(CIRCUITS, circuits.tolist(), strict=True)))
    return f1


def with_gaps(y: np.ndarray, seed: int, share: float = 0.03) -> np.ndarray:
    holes = y.copy()
    holes[np.random.default_rng(seed).random(y.shape) < share] = np.nan
    return holes


def real_house(months: range) -> None:
    week = 7 * DAY
    fortnights = [(start, *uci(start, 14)) for start in (30 * m + 3 for m in months)]
    clean = protocol("UCI, learn week 1, decode week 2", [
        (y, sub, slice(0, week), slice(week, 2 * week), 1) for _, y, sub in fortnights])
    gappy = protocol("UCI, learn week 1, decode week 2, 3 % of the mains missing", [
        (with_gaps(y, start), sub, slice(0, week), slice(week, 2 * week), 1)
        for start, y, sub in fortnights])
    moved = [abs(a - b) for a, b in zip(clean["fhmm"], gappy["fhmm"], strict=True)]
    print(f"   gaps moved ours' mean F1 by at most {max(moved):.3f} "
          f"(mean {statistics.mean(moved):.3f})")
    protocol("UCI, learn week 1, decode week 3", [
        (y, sub, slice(0, week), slice(2 * week, 3 * week), 1)
        for y, sub in (uci(30 * m + 3, 21) for m in months)])
    protocol("UCI, learn a day, decode the next, 2-minute means", [
        (y, sub, slice(0, DAY // 2), slice(DAY // 2, DAY), 2)
        for y, sub in (uci(30 * m + 10, 2, step=2) for m in months)])


def unmetered_states(months: range) -> None:
    """Ours on learn week 1 / decode week 2 with unmetered chains of several sizes."""
    week = 7 * DAY
    f1: dict[int, list[float]] = {}
    for m in months:
        y, sub = uci(30 * m + 3, 14)
        apps = [nilm.learn_appliance(sub[n][:week], K, n) for n, K in CIRCUITS.items()]
        left = y[:week] - sum(sub[n][:week] for n in CIRCUITS)
        truth = torch.tensor(np.stack([sub[n][week:] for n in CIRCUITS]))
        scored = ~torch.isnan(truth).any(0)
        for K in (2, 3, 4, 6, 10):
            got = nilm.disaggregate(y[week:], apps, unmetered=nilm.learn_unmetered(left, K))
            f1.setdefault(K, []).append(
                nilm.f1_score(truth[:, scored], got.power[:, scored]).mean().item())
    print("== UCI, learn week 1, decode week 2, ours with K levels of the unmetered chain: "
          + ", ".join(f"K={K} {statistics.mean(v):.3f}" for K, v in f1.items()))


def eco_experiment() -> None:
    summer = pd.read_csv(DATA / "eco" / "eco_h1_summer_1min.csv.gz")
    names, states = ["fridge", "dryer", "kettle"], [2, 3, 2]
    plugs = torch.tensor(summer[names].to_numpy().T)
    train, test = plugs[:, : 14 * DAY], plugs[:, 20 * DAY: 27 * DAY]
    apps = [nilm.learn_appliance(train[c], K, n) for c, (n, K) in
            enumerate(zip(names, states, strict=True))]
    scored = ~torch.isnan(test).any(0)
    print("== ECO plugs + a simulated unmetered load, mean F1 on the scored minutes:")
    for dwell in (5.0, 30.0, 120.0):
        meter = test.sum(0) + nilm.simulate_unmetered(7 * DAY, seed=0, dwell_minutes=dwell)
        chain = nilm.learn_unmetered(nilm.simulate_unmetered(14 * DAY, seed=1,
                                                             dwell_minutes=dwell))
        runs = {"ours": nilm.disaggregate(meter, apps, unmetered=chain),
                "exact, same model": nilm.disaggregate_exact(meter, apps, unmetered=chain),
                "ours, meter only": nilm.disaggregate(meter, apps),
                "plain": nilm.disaggregate(meter, apps, unmetered=False),
                "CO": nilm.combinatorial_optimisation(meter, apps)}
        f1 = {k: nilm.f1_score(test[:, scored], r.power[:, scored]).mean().item()
              for k, r in runs.items()}
        gap = (runs["exact, same model"].log_joint - runs["ours"].log_joint).item()
        print(f"   load changing every {dwell:5.0f} min: " + ", ".join(
            f"{k} {v:.3f}" for k, v in f1.items()) + f"; exact log p above ours by {gap:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="four months instead of twelve")
    args = parser.parse_args()
    months = range(0, 12, 3) if args.quick else range(12)
    real_house(months)
    unmetered_states(months)
    eco_experiment()


if __name__ == "__main__":
    main()
