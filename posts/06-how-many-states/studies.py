"""Precomputed results for post 6: the NUTS runs and the model-choice study take tens of
minutes, too long to redo on every render. Writes three small CSVs next to this file.

* `shrinkage.csv`: post 2's rain/sun data (60 sequences of 100 days, `sample_stepwise`
  seed 1), the first n sequences for n in SIZES; per n, `sample_posterior` (2 chains of
  WARMUP + DRAWS, seed 0) and the MAP fit it relabels to. One row per (n, parameter):
  truth, MAP, posterior mean, 5 % and 95 % quantiles, r-hat, ESS, and the run's seconds.
* `calibration.csv`: CAL_DATASETS datasets of CAL_N sequences x CAL_T days drawn from the
  same rain/sun truth (seeds 500, 501, ...), sampled side by side in one NUTS run (each
  dataset has its own π, A, B; the posterior factorises). States are matched to the truth
  by `align_states` on B; one row per (dataset, parameter): truth, 5 %, 95 %, inside.
* `k_choice.csv`: random Gaussian HMMs (K in 2..4; the generator of
  `benchmarks/bench_posterior_targets.py`, seeds 3000, 3001, ..., never the benchmark's)
  with T in K_SIZES steps; `select_num_states(candidates 1..5, folds 3, restarts 2)`; one
  row per (T, dataset): the true K and each criterion's choice.

Run:  PYTHONPATH=src .venv/bin/python posts/06-how-many-states/studies.py [part ...]
(parts: shrinkage calibration k_choice; default all).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd
import pyro.distributions as dist
import torch

import hmmblog
from hmmblog.alignment import align_states
from hmmblog.learning.posterior import interval
from hmmblog.simulation import sample_stepwise

HERE = Path(__file__).parent
PI = torch.tensor([0.6, 0.4])
A = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
B = torch.tensor([[0.1, 0.4, 0.5], [0.6, 0.3, 0.1]])
K, M = 2, 3
SIZES = (5, 20, 60)
WARMUP, DRAWS, DEPTH = 200, 200, 6
CAL_DATASETS, CAL_N, CAL_T = 30, 10, 100
K_SIZES, K_DATASETS, CANDIDATES = (100, 300), 10, [1, 2, 3, 4, 5]


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


def shrinkage(x: torch.Tensor, sizes=SIZES) -> pd.DataFrame:
    rows = []
    for n in sizes:
        post = hmmblog.sample_posterior(x[:n], K, "categorical", M=M, seed=0, warmup=WARMUP,
                                        num_samples=DRAWS, max_tree_depth=DEPTH)
        ref = post.reference
        perm = align_states(ref.emission, B)  # name the states as the truth does
        draws = entries(post.initial[:, perm], post.transition[:, perm][:, :, perm],
                        post.emission[:, perm])
        truth = entries(PI, A, B)
        maps = entries(ref.initial[perm], ref.transition[perm][:, perm], ref.emission[perm])
        for name, d in draws.items():
            lo, hi = interval(d, 0.9)
            rows.append({"n": n, "parameter": name, "truth": float(truth[name]),
                         "map": float(maps[name]), "mean": float(d.mean()),
                         "q05": float(lo), "q95": float(hi), "seconds": post.seconds,
                         "divergences": post.divergences,
                         "max_rhat": max(float(v[v.isfinite()].max())
                                         for v in post.r_hat.values()),
                         "min_ess": min(float(v[v.isfinite()].min())
                                        for v in post.ess.values())})
    return pd.DataFrame(rows)


def calibration() -> pd.DataFrame:
    xs = torch.stack([hmmblog.sample(PI, A, dist.Categorical(B), CAL_N, CAL_T,
                                     seed=500 + d)[1] for d in range(CAL_DATASETS)])
    post = hmmblog.sample_posterior(xs, K, "categorical", M=M, seed=0, warmup=WARMUP,
                                    num_samples=DRAWS, max_tree_depth=DEPTH)
    rows = []
    truth = entries(PI, A, B)
    for d in range(CAL_DATASETS):
        perm = align_states(post.emission[:, d].mean(0), B)
        draws = entries(post.initial[:, d][:, perm],
                        post.transition[:, d][:, perm][:, :, perm],
                        post.emission[:, d][:, perm])
        for name, v in draws.items():
            lo, hi = interval(v, 0.9)
            rows.append({"dataset": d, "parameter": name, "truth": float(truth[name]),
                         "q05": float(lo), "q95": float(hi),
                         "inside": bool(lo <= truth[name] <= hi),
                         "seconds": post.seconds})
    return pd.DataFrame(rows)


def k_choice(sizes=K_SIZES, datasets: range | int = K_DATASETS) -> pd.DataFrame:
    sys.path.insert(0, str(HERE.parents[1] / "benchmarks"))
    from bench_posterior_targets import random_gaussian_hmm

    rows = []
    for T in sizes:
        for d in (range(datasets) if isinstance(datasets, int) else datasets):
            hmm = random_gaussian_hmm(3000 + d, T=T)
            start = time.perf_counter()
            sel = hmmblog.select_num_states(hmm["x"], CANDIDATES, "gaussian", seed=0,
                                            folds=3, restarts=2)
            rows.append({"T": T, "dataset": d, "true_K": hmm["K"], **sel.best_by,
                         "seconds": time.perf_counter() - start})
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main(parts: list[str]) -> None:
    torch.set_num_threads(1)
    for part in parts or ["shrinkage", "calibration", "k_choice"]:
        start = time.perf_counter()
        table = {"shrinkage": lambda: shrinkage(post2_data()),
                 "calibration": calibration, "k_choice": k_choice}[part]()
        table.to_csv(HERE / f"{part}.csv", index=False)
        print(f"{part}: {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
