"""How well does `disaggregate` do on a meter like a real one, and what does each part buy?

    .venv/bin/python benchmarks/nilm_real_meter.py [--houses 12] [--step 2] [--seed 0]

Two proxies for a real house (the project has no real whole-house meter):

1. Simulated houses: C = 8 catalogue appliances (`random_household`) over two days at one
   minute, each wandering 3 % around its level, plus an unmetered load
   (`simulate_unmetered`: 50 W always, 200-420 W in the evening) and 3 W meter noise;
   averaged to `--step` minutes (readings between levels where an appliance switched inside
   a step), 5 % of the meter readings removed. Appliances are learned with
   `learn_appliance` from their own averaged plug readings, of the test day itself (as a
   user with sub-meters does) or of the day before.
2. ECO household 1 (real plugs, data/eco): fridge, dryer and kettle learned from the first
   14 days of their plugs, decoded on days 21-27 of their sum (NaN where a plug is missing)
   plus the simulated unmetered load, and once more with the autumn coffee machine's real
   readings added as a real appliance the model does not know.

Each is decoded three ways: `told` (the noise and background given, no unmetered chain),
`estimated` (both estimated from the readings, still no unmetered chain) and `full`
(`disaggregate(aggregate, appliances)`: estimated, with the unmetered chain). All three use
the learned appliances' spreads and treat gaps as missing. Prints the mean F1
(on = above 15 W), per house and overall, and the decode times.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hmmblog import nilm

DAY = 24 * 60
DATA = Path(__file__).resolve().parent.parent / "data" / "eco"


def simulated_house(seed: int, step: int, C: int = 8, missing: float = 0.05):
    """Appliances, plug readings of day 1 and day 2 `[C, T]` and the day-2 meter `[T]`."""
    apps = [replace(a, scale=0.03 * a.power) for a in nilm.random_household(C, seed=seed)]
    hh = nilm.simulate_household(apps, 2 * DAY, noise_std=3.0, seed=seed)
    meter = hh.aggregate + nilm.simulate_unmetered(2 * DAY, seed=seed)
    plugs = hh.power.reshape(C, -1, step).mean(-1)
    meter = meter.reshape(-1, step).mean(-1)
    g = torch.Generator().manual_seed(seed)
    meter[torch.rand(meter.shape, generator=g) < missing] = float("nan")
    half = plugs.shape[1] // 2
    return apps, plugs[:, :half], plugs[:, half:], meter[half:]


def decode_three_ways(meter, learned, truth, noise_std, background):
    """Mean F1 and seconds of the three decodes."""
    out = {}
    for how, kwargs in {
        "told": dict(noise_std=noise_std, background=background, unmetered=False),
        "estimated": dict(unmetered=False),
        "full": {},
    }.items():
        start = time.perf_counter()
        result = nilm.disaggregate(meter, learned, **kwargs)
        seconds = time.perf_counter() - start
        scored = ~torch.isnan(truth).any(0)
        f1 = nilm.f1_score(truth[:, scored], result.power[:, scored]).mean().item()
        out[how] = (f1, seconds)
    return out


def eco_runs() -> dict[str, dict[str, tuple[float, float]]]:
    summer = pd.read_csv(DATA / "eco_h1_summer_1min.csv.gz")
    autumn = pd.read_csv(DATA / "eco_h1_autumn_1min.csv.gz")
    names, Ks = ["fridge", "dryer", "kettle"], [2, 3, 3]
    train, test = slice(0, 14 * DAY), slice(21 * DAY, 28 * DAY)
    learned = [nilm.learn_appliance(torch.tensor(summer[n].values[train]), K, n)
               for n, K in zip(names, Ks, strict=True)]
    truth = torch.tensor(np.stack([summer[n].values[test] for n in names]))
    meter = truth.sum(0) + nilm.simulate_unmetered(truth.shape[1], seed=1)
    coffee = torch.tensor(np.nan_to_num(autumn["coffee_machine"].values[: truth.shape[1]]))
    return {
        "ECO + simulated unmetered": decode_three_ways(meter, learned, truth, 1.0, 50.0),
        "... + a real coffee machine": decode_three_ways(meter + coffee, learned, truth, 1.0,
                                                         50.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--houses", type=int, default=12)
    parser.add_argument("--step", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for protocol in ("same day", "day before"):
        scores: dict[str, list[tuple[float, float]]] = {}
        for seed in range(args.seed, args.seed + args.houses):
            apps, day1, day2, meter = simulated_house(seed, args.step)
            plugs = day2 if protocol == "same day" else day1
            learned = [nilm.learn_appliance(p, a.K, a.name, step_minutes=args.step)
                       for a, p in zip(apps, plugs, strict=True)]
            # the meter's noise after averaging `step` readings of 3 W noise
            runs = decode_three_ways(meter, learned, day2, 3.0 / args.step**0.5, 50.0)
            print(f"{protocol}, house {seed}: "
                  + ", ".join(f"{k} {f1:.3f}" for k, (f1, _) in runs.items()))
            for k, v in runs.items():
                scores.setdefault(k, []).append(v)
        print(f"== simulated, learned from the {protocol}, {args.houses} houses, "
              f"{args.step}-minute steps: mean F1 "
              + ", ".join(f"{k} {statistics.mean(f for f, _ in v):.3f} "
                          f"({statistics.median(s for _, s in v):.2f} s)"
                          for k, v in scores.items()))
    for name, runs in eco_runs().items():
        print(f"== {name}: mean F1 "
              + ", ".join(f"{k} {f1:.3f} ({s:.2f} s)" for k, (f1, s) in runs.items()))


if __name__ == "__main__":
    main()
