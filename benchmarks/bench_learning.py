"""Learning speed: the original's literal `pyro.markov` model vs `learn_discrete`, same process.

Both fit the original post's data (60 sequences x 100 days, seed 1) with the original's recipe
(seed 0, AutoDelta + init_to_sample, Adam(0.05), `--steps` SVI steps). The literal model
enumerates one state site per day (TraceEnum_ELBO); `learn_discrete` computes the same exact
marginal likelihood with one `DiscreteHMM` site. Prints both times, their ratio and the largest
difference between the two sets of estimates.

Run:  .venv/bin/python benchmarks/bench_learning.py [--steps 400] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from hmmblog.learning import learn_discrete
from hmmblog.simulation import sample_stepwise

PI = torch.tensor([0.6, 0.4])
A = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
B = torch.tensor([[0.1, 0.4, 0.5], [0.6, 0.3, 0.1]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the fast learner (best)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    def draw(z: int, g: torch.Generator) -> torch.Tensor:
        return torch.multinomial(B[z], 1, generator=g)

    x = sample_stepwise(PI, A, draw, 60, 100, seed=1)[1]
    learn_discrete(x, 2, 3, steps=3)  # warm-up: imports, allocator

    start = time.perf_counter()
    slow = learn_discrete(x, 2, 3, steps=args.steps, enumerate_states=True)
    t_slow = time.perf_counter() - start

    t_fast = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        fast = learn_discrete(x, 2, 3, steps=args.steps)
        t_fast = min(t_fast, time.perf_counter() - start)

    diff = max(
        (fast.initial - slow.initial).abs().max().item(),
        (fast.transition - slow.transition).abs().max().item(),
        (fast.emission - slow.emission).abs().max().item(),
    )
    loss_diff = max(abs(a - b) / abs(b) for a, b in zip(fast.losses, slow.losses, strict=True))
    print(f"data: 60 x 100 symbols, {args.steps} SVI steps, {torch.get_num_threads()} thread(s)")
    print(f"literal pyro.markov + TraceEnum_ELBO : {t_slow:8.2f} s")
    print(f"learn_discrete (DiscreteHMM)         : {t_fast:8.2f} s  (best of {args.repeats})")
    print(f"speed-up                             : {t_slow / t_fast:8.1f} x")
    print(f"max |estimate difference|            : {diff:.2e}")
    print(f"max relative loss difference         : {loss_diff:.2e}")


if __name__ == "__main__":
    main()
