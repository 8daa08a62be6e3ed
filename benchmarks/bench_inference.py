"""hmmblog's inference core against hmmlearn, in one process, on the same models and data.

    (a) one sequence, T = 10^6, K = 8        (b) 1,000 sequences of T = 1,000, K = 8

Prints the best-of-N wall time of each and the ratio hmmblog / hmmlearn (< 1: hmmblog faster).
Our times include computing the emission log-likelihoods, as hmmlearn's do.
Run with the settings a user has (no thread tuning): .venv/bin/python
benchmarks/bench_inference.py [--repeats 3] [--busy 1]   (--busy P: P other busy processes)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from busy import busy_processes
from hmmlearn import hmm

from hmmblog import log_likelihood, posterior, viterbi
from hmmblog.emissions import categorical_log_lik

K, M = 8, 4


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=0, metavar="P",
                        help="keep P other processes busy during the run (a loaded machine)")
    args = parser.parse_args()
    with busy_processes(args.busy):
        race(args.repeats, args.busy)


def race(repeats: int, busy: int) -> None:
    """Time both libraries on the two cases with the caller's default thread settings."""
    rng = np.random.default_rng(0)
    pi = rng.dirichlet(np.ones(K))
    A = rng.dirichlet(np.ones(K), size=K)
    B = rng.dirichlet(np.ones(M), size=K)
    model = hmm.CategoricalHMM(n_components=K, n_features=M)
    model.startprob_, model.transmat_, model.emissionprob_ = pi, A, B
    pi_t, A_t, B_t = (torch.from_numpy(x) for x in (pi, A, B))

    cases = {
        "(a) 1 x 10^6": (1, 1_000_000),
        "(b) 1000 x 1000": (1000, 1000),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads (default settings), "
          f"{busy} other busy process(es); K = {K}, M = {M}; best of {repeats}")
    print(f"{'case':18s} {'task':14s} {'hmmblog s':>10s} {'hmmlearn s':>11s} {'ratio':>7s}")
    for name, (n, T) in cases.items():
        x = rng.integers(0, M, size=(n, T))
        X, lengths = x.reshape(-1, 1), [T] * n
        obs = torch.from_numpy(x).squeeze(0)

        def ours(fn, obs=obs):
            return fn(pi_t, A_t, categorical_log_lik(B_t, obs))

        tasks = {
            "log_likelihood": (lambda: ours(log_likelihood),
                               lambda X=X, lengths=lengths: model.score(X, lengths)),
            "viterbi": (lambda: ours(viterbi),
                        lambda X=X, lengths=lengths: model.decode(X, lengths)),
            "posterior": (lambda: ours(posterior),
                          lambda X=X, lengths=lengths: model.predict_proba(X, lengths)),
        }
        for task, (mine, theirs) in tasks.items():
            t_mine, t_theirs = best_time(mine, repeats), best_time(theirs, repeats)
            print(f"{name:18s} {task:14s} {t_mine:10.3f} {t_theirs:11.3f} "
                  f"{t_mine / t_theirs:7.2f}")
        # the two agree, so the race is fair
        ll_mine = ours(log_likelihood).sum().item()
        assert abs(ll_mine - model.score(X, lengths)) < 1e-6 * abs(ll_mine)


if __name__ == "__main__":
    main()
