"""Precomputed fits for post 2: about 23 minutes of fitting, too long to redo on every render.

Writes two small CSVs next to this file:

* `data_size_study.csv`, one row per (recipe, n, dataset). For each n sequences of T = 60
  days, 5 datasets drawn like the original's (`sample_stepwise`, seeds 100-104); restart r
  starts from the prior draw that `pyro.set_rng_seed(r)` gives (what `learn_discrete` with
  seed r draws); per dataset the restart with the highest exact log-likelihood is kept and
  aligned to the truth.
  - recipe "original": n in (10, 40, 160), restarts r = 0, 1, 180 Adam(0.05) steps;
  - recipe "converged": n in (10, 40, 160, 640), restarts r = 0, 1, 2, the same loss
    minimised by L-BFGS in float64 until the largest gradient entry is below 1e-2.
* `converged_fit.csv`, the original's 60 x 100 data (seed 1) fitted to convergence the same
  way from the original's 400-step estimate and from the prior draws of seeds 1-3: one row
  per start.

All fits of one size (datasets x restarts) run as one batched fit: the loss is a sum of
independent terms, so for Adam (which updates every number on its own) this equals separate
runs, and for L-BFGS it reaches the same stationary points.

Run:  .venv/bin/python posts/02-learning-discrete-hmm/data_size_study.py
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
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
    "converged": {"sizes": (10, 40, 160, 640), "restarts": 3, "steps": 3000, "tol": 1e-2},
}
CONVERGE = {"lr": 1.0, "optimizer": "lbfgs"}
ORIGINAL = {"lr": 0.05, "optimizer": "adam"}
HERE = Path(__file__).parent


def draw(z: int, g: torch.Generator) -> torch.Tensor:
    return torch.multinomial(B[z], 1, generator=g)


@contextlib.contextmanager
def float64() -> Iterator[None]:
    """Converged fits run in double precision: float32 rounding stalls L-BFGS's line search."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def stacked_starts(starts: list[dict[str, torch.Tensor]], copies: int) -> dict[str, torch.Tensor]:
    """Start values `[R, copies, ...]`: start r repeated for each of `copies` datasets (in the
    default dtype; the float32 prior draws are the ones separate runs would make)."""
    dtype = torch.get_default_dtype()
    return {k: torch.stack([s[k].to(dtype).expand(copies, *s[k].shape) for s in starts])
            for k in starts[0]}


def log_lik(pi: torch.Tensor, A_: torch.Tensor, B_: torch.Tensor, x: torch.Tensor) -> float:
    return hmmblog.log_likelihood(pi, A_, categorical_log_lik(B_, x)).sum().item()


def study(recipes: dict[str, dict] = RECIPES) -> pd.DataFrame:
    """One row per (recipe, n, dataset); `recipes` narrows the study (the tests rerun a part)."""
    rows = []
    for recipe, cfg in recipes.items():
        R = cfg["restarts"]
        for n in cfg["sizes"]:
            data = torch.stack([sample_stepwise(PI, A, draw, n, T, s)[1] for s in DATASET_SEEDS])
            D = len(DATASET_SEEDS)
            draws = [prior_draw(K, M, seed=r) for r in range(R)]
            how = ORIGINAL if recipe == "original" else CONVERGE
            with float64() if recipe == "converged" else contextlib.nullcontext():
                init = stacked_starts(draws, D)
                start = time.perf_counter()
                fit = learn_discrete(data.expand(R, *data.shape), K, M, steps=cfg["steps"],
                                     tol=cfg["tol"], init=init, **how)
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
    with float64():
        init = stacked_starts(starts, 1)
        init = {k: v[:, 0] for k, v in init.items()}
        start = time.perf_counter()
        fit = learn_discrete(x.expand(len(starts), *x.shape), K, M, steps=3000, tol=1e-2,
                             init=init, **CONVERGE)
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
