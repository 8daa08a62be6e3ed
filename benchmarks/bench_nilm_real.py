"""How fast is disaggregation on a meter like a real one, with the settings a user has?

    .venv/bin/python benchmarks/bench_nilm_real.py [--repeats 3] [--busy 1]

Households of wandering catalogue appliances (`random_household`, each draw 3 % around its
level) over one week at one-minute steps, plus an unmetered load (`simulate_unmetered`) and
3 W of meter noise. Every time is the best of `--repeats`, in this process, the cases taking
turns so a slow spell of a shared machine hits them alike; `--busy P` keeps P other processes
busy meanwhile. Prints:

1. **Threads.** Each NILM entry point under torch's default thread count against the same
   call after the caller sets one torch thread (ratio > 1: the default is slower).
2. **A week of 20 appliances** with the unmetered chain learned from other days of the load
   (`learn_unmetered`, the protocol with training days) and learned from the meter alone
   (the default); the plain model beside them.
3. **Linear in the appliances:** t(24) / t(12) with the unmetered chain (linear: 2), on
   three households each, as mean times.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch
from busy import busy_processes

from hmmblog import nilm

DAY = 24 * 60


def house(C: int, seed: int, days: int = 7) -> tuple[torch.Tensor, list[nilm.Appliance],
                                                     torch.Tensor]:
    """The meter, the appliances and `[C, T]` their draw."""
    apps = [replace(a, scale=0.03 * a.power) for a in nilm.random_household(C, seed=seed)]
    hh = nilm.simulate_household(apps, days * DAY, 3.0, seed=seed)
    return hh.aggregate + nilm.simulate_unmetered(days * DAY, seed=seed), apps, hh.power


def best_times(cases: dict[str, object], repeats: int) -> dict[str, float]:
    """Best of `repeats` seconds for each case (a callable), the cases taking turns."""
    best = {name: float("inf") for name in cases}
    for _ in range(repeats):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def threads(repeats: int) -> None:
    y, apps, power = house(20, seed=7)
    chain = nilm.learn_unmetered(nilm.simulate_unmetered(7 * DAY, seed=99))
    small = apps[:4]
    day = y[:DAY]
    calls = {
        "disaggregate (chain given)": lambda: nilm.disaggregate(y, apps, unmetered=chain),
        "disaggregate (default)": lambda: nilm.disaggregate(y, apps),
        "disaggregate (plain)": lambda: nilm.disaggregate(y, apps, unmetered=False),
        "disaggregate_exact (4 appliances, a day)": lambda: nilm.disaggregate_exact(
            day, small, unmetered=chain),
        "combinatorial_optimisation (4)": lambda: nilm.combinatorial_optimisation(y, small),
        "learn_appliance (a week)": lambda: nilm.learn_appliance(power[0], 2),
        "learn_unmetered (a week)": lambda: nilm.learn_unmetered(y),
        "evaluate (4 appliances, 2 + 5 days)": lambda: nilm.evaluate(
            y, {a.name: p for a, p in zip(small, power, strict=False)},
            train=slice(0, 2 * DAY), test=slice(2 * DAY, None),
            methods=("fhmm", "CO", "mean")),
    }
    default = torch.get_num_threads()
    for run in calls.values():  # compile and warm up
        run()
    print(f"1. threads: torch's default is {default} here; best of {repeats}, taking turns")
    for name, run in calls.items():
        times = {}
        for _ in range(repeats):
            for count in (default, 1):
                torch.set_num_threads(count)
                start = time.perf_counter()
                run()
                times[count] = min(times.get(count, float("inf")),
                                   time.perf_counter() - start)
        torch.set_num_threads(default)
        print(f"   {name:42s} default {times[default]:6.2f} s, one thread {times[1]:6.2f} s, "
              f"ratio {times[default] / times[1]:.2f}")


def week_of_20(repeats: int) -> None:
    y, apps, power = house(20, seed=7)
    chain = nilm.learn_unmetered(nilm.simulate_unmetered(7 * DAY, seed=99))
    cases = {"chain given": lambda: nilm.disaggregate(y, apps, unmetered=chain),
             "default": lambda: nilm.disaggregate(y, apps),
             "plain": lambda: nilm.disaggregate(y, apps, unmetered=False)}
    for run in cases.values():
        run()
    best = best_times(cases, repeats)
    print(f"2. a week of 20 appliances, T = {y.shape[0]}, torch's default threads "
          f"({torch.get_num_threads()}), best of {repeats}:")
    for name, seconds in best.items():
        print(f"   {name:12s} {seconds:5.2f} s")


def scaling(repeats: int) -> None:
    chain = nilm.learn_unmetered(nilm.simulate_unmetered(7 * DAY, seed=99))
    houses = {(C, seed): house(C, seed)[:2] for C in (12, 24) for seed in (7, 8, 9)}
    cases = {key: (lambda y=y, apps=apps: nilm.disaggregate(y, apps, unmetered=chain))
             for key, (y, apps) in houses.items()}
    for run in cases.values():
        run()
    best = best_times(cases, repeats)
    mean = {C: statistics.mean(best[C, s] for s in (7, 8, 9)) for C in (12, 24)}
    per = ", ".join(f"seed {s}: {best[24, s] / best[12, s]:.2f}" for s in (7, 8, 9))
    print(f"3. with the unmetered chain, mean of three households, best of {repeats}: "
          f"C = 12 {mean[12]:.2f} s, C = 24 {mean[24]:.2f} s, t(24)/t(12) "
          f"{mean[24] / mean[12]:.2f} (linear: 2; per household {per})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=0, metavar="P",
                        help="keep P other processes busy during the run (a loaded machine)")
    args = parser.parse_args()
    with busy_processes(args.busy):
        print(f"torch {torch.__version__}; {args.busy} other busy process(es)")
        threads(args.repeats)
        week_of_20(args.repeats)
        scaling(args.repeats)


if __name__ == "__main__":
    main()
