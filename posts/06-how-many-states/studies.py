"""Post 6's data and its model-choice study, kept in a module so that the post, the speed
benchmark (`benchmarks/bench_posterior_speed.py`) and the tests share them.

* `post2_data()`: post 2's rain/sun data (60 sequences of 100 days, `sample_stepwise`
  seed 1), bit for bit, and its truth `PI`, `A`, `B`.
* `k_choice()`: random Gaussian HMMs (K in 2..4; the generator of
  `benchmarks/bench_posterior_targets.py`, seeds 3000, 3001, ..., never the benchmark's)
  with T in K_SIZES steps; `select_num_states(candidates 1..5, FOLDS, RESTARTS)`; one
  row per (T, dataset): the true K and each criterion's choice.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd
import torch

import hmmblog
from hmmblog.simulation import sample_stepwise

HERE = Path(__file__).parent
PI = torch.tensor([0.6, 0.4])
A = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
B = torch.tensor([[0.1, 0.4, 0.5], [0.6, 0.3, 0.1]])
K, M = 2, 3
K_SIZES, K_DATASETS, CANDIDATES = (100, 300), 10, [1, 2, 3, 4, 5]
FOLDS, RESTARTS = 3, 2


def post2_data() -> torch.Tensor:
    """Post 2's 60 x 100 rain/sun activities, bit for bit."""
    def draw_symbol(z, g):
        return torch.multinomial(B[z], 1, generator=g)
    return sample_stepwise(PI, A, draw_symbol, 60, 100, seed=1)[1]


def entries(pi, A_, B_) -> dict[str, torch.Tensor]:
    """The free-ish entries a reader looks at, by name: A[i,0] and every B[k,m]."""
    out = {f"A[{i},0]": A_[..., i, 0] for i in range(K)}
    out |= {f"B[{k},{m}]": B_[..., k, m] for k in range(K) for m in range(M)}
    return out


def k_choice(sizes=K_SIZES, datasets: range | int = K_DATASETS) -> pd.DataFrame:
    sys.path.insert(0, str(HERE.parents[1] / "benchmarks"))
    from bench_posterior_targets import random_gaussian_hmm

    rows = []
    for T in sizes:
        for d in (range(datasets) if isinstance(datasets, int) else datasets):
            hmm = random_gaussian_hmm(3000 + d, T=T)
            start = time.perf_counter()
            sel = hmmblog.select_num_states(hmm["x"], CANDIDATES, "gaussian", seed=0,
                                            folds=FOLDS, restarts=RESTARTS)
            rows.append({"T": T, "dataset": d, "true_K": hmm["K"], **sel.best_by,
                         "seconds": time.perf_counter() - start})
    return pd.DataFrame(rows)
