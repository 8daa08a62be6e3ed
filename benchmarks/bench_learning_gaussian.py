"""Learning speed, Gaussian emissions: the literal `pyro.markov` story vs `learn_gaussian`.

Both fit the original post-3 data (30 sequences x 120 steps, seed 1) with the original's recipe
for one restart (seed 0, AutoDelta + init_to_sample, Adam(0.05), `--steps` SVI steps). The
literal story enumerates one state site per step (TraceEnum_ELBO); `learn_gaussian` sums the
states out with one `DiscreteHMM` site. Prints both times, their ratio and how far apart the
two loss curves and estimates are.

Run:  .venv/bin/python benchmarks/bench_learning_gaussian.py [--steps 50] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from hmmblog.learning import learn_gaussian
from hmmblog.simulation import sample_stepwise

PI = torch.tensor([0.5, 0.3, 0.2])
A = torch.tensor([[0.80, 0.15, 0.05], [0.10, 0.80, 0.10], [0.05, 0.15, 0.80]])
MU = torch.tensor([0.0, 5.0, 10.0])
SIGMA = torch.tensor([0.7, 0.7, 0.7])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each learner (best)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    def draw(z: int, g: torch.Generator) -> torch.Tensor:
        return MU[z] + SIGMA[z] * torch.randn(1, generator=g)

    y = sample_stepwise(PI, A, draw, 30, 120, seed=1)[1]
    learn_gaussian(y, 3, steps=3)  # warm-up: imports, allocator

    times = {}
    fits = {}
    for enumerate_states in (True, False):
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            fits[enumerate_states] = learn_gaussian(
                y, 3, steps=args.steps, enumerate_states=enumerate_states
            )
            best = min(best, time.perf_counter() - start)
        times[enumerate_states] = best
    slow, fast = fits[True], fits[False]
    loss_diff = max(abs(a - b) / abs(b) for a, b in zip(fast.losses, slow.losses, strict=True))
    diff = max(
        (fast.loc - slow.loc).abs().max().item(),
        (fast.scale - slow.scale).abs().max().item(),
        (fast.transition - slow.transition).abs().max().item(),
    )
    per_step = {k: 1e3 * v / args.steps for k, v in times.items()}
    print(f"data: 30 x 120 readings, {args.steps} SVI steps, {torch.get_num_threads()} thread(s),"
          f" best of {args.repeats}")
    for label, key in (("literal pyro.markov + TraceEnum_ELBO", True),
                       ("learn_gaussian (DiscreteHMM)        ", False)):
        print(f"{label} : {times[key]:8.2f} s ({per_step[key]:.1f} ms/step)")
    print(f"speed-up                             : {times[True] / times[False]:8.1f} x")
    print(f"max relative loss difference         : {loss_diff:.1e}")
    print(f"max estimate difference              : {diff:.1e}")


if __name__ == "__main__":
    main()
