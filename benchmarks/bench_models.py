"""The three ways post 1 scores an HMM, timed in one process on the same data:

    Pyro story (pyro.markov loop, TraceEnum_ELBO)  vs  Pyro DiscreteHMM  vs  hmmblog.log_likelihood

for the rain/sun model (K = 2, M = 3), a batch of 10 sequences, and T = 14, 100, 1,000.
Prints the best-of-N wall time of each and the ratios against the package (> 1: slower).
Run: .venv/bin/python benchmarks/bench_models.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import pyro.distributions as dist
import torch

from hmmblog import log_likelihood, sample
from hmmblog.emissions import categorical_log_lik
from hmmblog.models import hmm_story, hmm_vectorized, log_marginal

PI = torch.tensor([0.6, 0.4], dtype=torch.float64)
A = torch.tensor([[0.7, 0.3], [0.4, 0.6]], dtype=torch.float64)
B = torch.tensor([[0.1, 0.4, 0.5], [0.6, 0.3, 0.1]], dtype=torch.float64)


def best_time(fn, repeats: int) -> tuple[float, float]:
    """(best wall time in seconds, the value fn returned)."""
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    emission = dist.Categorical(probs=B)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, best of {args.repeats}")
    print(f"{'T':>6} {'story s':>9} {'DiscreteHMM s':>14} {'package s':>10} "
          f"{'story/pkg':>10} {'DHMM/pkg':>9} {'max |diff|':>11}")
    for T in (14, 100, 1_000):
        _, x = sample(PI, A, emission, num_seqs=10, T=T, seed=T)
        t_story, v_story = best_time(lambda x=x: log_marginal(hmm_story, PI, A, emission, x),
                                     args.repeats)
        t_dhmm, v_dhmm = best_time(lambda x=x: log_marginal(hmm_vectorized, PI, A, emission, x),
                                   args.repeats)
        t_pkg, v_pkg = best_time(
            lambda x=x: log_likelihood(PI, A, categorical_log_lik(B, x)).sum().item(), args.repeats
        )
        diff = max(abs(v_story - v_pkg), abs(v_dhmm - v_pkg))
        print(f"{T:>6} {t_story:>9.4f} {t_dhmm:>14.4f} {t_pkg:>10.4f} "
              f"{t_story / t_pkg:>10.1f} {t_dhmm / t_pkg:>9.1f} {diff:>11.1e}")


if __name__ == "__main__":
    main()
