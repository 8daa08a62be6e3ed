"""Precomputed fits for post 2 (minutes of SVI; the post itself must run in 90 s).

Writes two small CSVs next to this file:

* `data_size_study.csv`, one row per (recipe, n, dataset). For each n sequences of T = 60
  days, 5 datasets drawn like the original's (`sample_stepwise`, seeds 100-104); restart r
  starts from the prior draw that `pyro.set_rng_seed(r)` gives (what `learn_discrete` with
  seed r draws); per dataset the restart with the highest exact log-likelihood is kept and
  aligned to the truth.
  - recipe "original": n in (10, 40, 160), restarts r = 0, 1, 180 Adam(0.05) steps;
  - recipe "converged": n in (10, 40, 160, 640), restarts r = 0, 1, 2, Adam(0.05) until no
    estimate moves by more than 1e-3 over 50 steps (at most 6000 steps).
* `converged_fit.csv`, the original's 60 x 100 data (seed 1) fitted to convergence (no
  estimate moves by more than 1e-4 over 50 steps) from the original's 400-step estimate and
  from the prior draws of seeds 1-3: one row per start.

All fits of one size (datasets x restarts) run as one batched SVI fit: Adam updates every
number on its own, so this equals separate runs.

Run:  .venv/bin/python posts/02-learning-discrete-hmm/data_size_study.py
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import torch

import hmmblog
from hmmblog.alignment import align_states, permute_states
from hmmblog.emissions import categorical_log_lik
from hmmblog.learning import learn_discrete, prior_draw
from hmmblog.simulation import sample_stepwise

PI = torch.tensor([0.6, 0.4])
A = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
B = torch.tensor([[0.1, 0.4, 0.5], [0.6, 0.3, 0.1]])
K, M, T = 2, 3, 60
DATASET_SEEDS = range(100, 105)
RECIPES = {
    "original": {"sizes": (10, 40, 160), "restarts": 2, "steps": 180, "tol": None},
    "converged": {"sizes": (10, 40, 160, 640), "restarts": 3, "steps": 6000, "tol": 1e-3},
}
HERE = Path(__file__).parent


def draw(z: int, g: torch.Generator) -> torch.Tensor:
    return torch.multinomial(B[z], 1, generator=g)


def stacked_starts(starts: list[dict[str, torch.Tensor]], copies: int) -> dict[str, torch.Tensor]:
    """Start values `[R, copies, ...]`: start r repeated for each of `copies` datasets."""
    return {k: torch.stack([s[k].expand(copies, *s[k].shape) for s in starts]) for k in starts[0]}


def log_lik(pi: torch.Tensor, A_: torch.Tensor, B_: torch.Tensor, x: torch.Tensor) -> float:
    return hmmblog.log_likelihood(pi, A_, categorical_log_lik(B_, x)).sum().item()


def study() -> pd.DataFrame:
    rows = []
    for recipe, cfg in RECIPES.items():
        R = cfg["restarts"]
        for n in cfg["sizes"]:
            data = torch.stack([sample_stepwise(PI, A, draw, n, T, s)[1] for s in DATASET_SEEDS])
            D = len(DATASET_SEEDS)
            init = stacked_starts([prior_draw(K, M, seed=r) for r in range(R)], D)
            start = time.perf_counter()
            fit = learn_discrete(data.expand(R, *data.shape), K, M, steps=cfg["steps"],
                                 lr=0.05, tol=cfg["tol"], check_every=50, init=init)
            seconds = time.perf_counter() - start
            for d in range(D):
                ll = [log_lik(fit.initial[r, d], fit.transition[r, d], fit.emission[r, d],
                              data[d]) for r in range(R)]
                r = max(range(R), key=ll.__getitem__)
                perm = align_states(fit.emission[r, d], B)
                pi_hat, A_hat, B_hat = permute_states(perm, fit.initial[r, d],
                                                      fit.transition[r, d], fit.emission[r, d])
                rows.append({
                    "recipe": recipe, "n": n, "dataset_seed": DATASET_SEEDS[d], "restart": r,
                    "log_lik": ll[r], "steps": len(fit.losses), "converged": fit.converged,
                    "seconds": seconds,
                    "err_pi": (pi_hat - PI).abs().max().item(),
                    "err_A": (A_hat - A).abs().max().item(),
                    "err_B": (B_hat - B).abs().max().item(),
                })
            print(recipe, n, len(fit.losses), fit.converged, f"{seconds:.1f}s", flush=True)
    return pd.DataFrame(rows)


def converged_fit() -> pd.DataFrame:
    x = sample_stepwise(PI, A, draw, 60, 100, seed=1)[1]
    first = learn_discrete(x, K, M)  # the original's recipe
    starts = [{"pi": first.initial, "A": first.transition, "B": first.emission}]
    starts += [prior_draw(K, M, seed=s) for s in (1, 2, 3)]
    init = {k: torch.stack([s[k] for s in starts]) for k in starts[0]}
    start = time.perf_counter()
    fit = learn_discrete(x.expand(len(starts), *x.shape), K, M, steps=6000, tol=1e-4,
                         check_every=50, init=init)
    seconds = time.perf_counter() - start
    rows = []
    for r, name in enumerate(["400-step estimate", "prior seed 1", "prior seed 2",
                              "prior seed 3"]):
        pi_r, A_r, B_r = fit.initial[r], fit.transition[r], fit.emission[r]
        row = {"start": name, "log_lik": log_lik(pi_r, A_r, B_r, x),
               "steps": len(fit.losses), "converged": fit.converged, "seconds": seconds}
        row |= {f"pi_{i}": v for i, v in enumerate(pi_r.tolist())}
        row |= {f"A_{i}{j}": A_r[i, j].item() for i in range(K) for j in range(K)}
        row |= {f"B_{i}{j}": B_r[i, j].item() for i in range(K) for j in range(M)}
        rows.append(row)
    print("converged fit", len(fit.losses), fit.converged, f"{seconds:.1f}s", flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    torch.set_num_threads(1)
    converged_fit().to_csv(HERE / "converged_fit.csv", index=False, float_format="%.7g")
    study().to_csv(HERE / "data_size_study.csv", index=False, float_format="%.6g")


if __name__ == "__main__":
    main()
