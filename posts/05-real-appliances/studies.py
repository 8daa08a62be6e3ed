"""Precomputed for post 5: how many states post 6's `select_num_states` gives each sub-metered
circuit of the UCI house. It fits every candidate K several times by L-BFGS and cross-validates,
about a minute per circuit-day here, too long to redo on every render. Writes
`k_choice.csv` next to this file.

For each circuit, the day of the first training week (from day START of 2007) on which the
circuit's readings vary most, at 5-minute means (288 readings), candidates 1..4, 4 held-out
blocks of time, 1 start each (the k-means start); one row per (circuit, K): the score of each
criterion, the fit's levels, and BIC's choice.

Run:  .venv/bin/python posts/05-real-appliances/studies.py
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import hmmblog

HERE = Path(__file__).parent
DATA = HERE / "../../data/uci-household/sceaux_2007.npz"
DAY = 24 * 60
START = 3  # the first training week of the post's first fortnight
MINUTES = 5
CANDIDATES = [1, 2, 3, 4]
CIRCUITS = ("kitchen", "laundry", "water_heater_ac")


def main() -> None:
    data = np.load(DATA)
    rows = []
    for circuit in CIRCUITS:
        week = data[f"{circuit}_w"][START * DAY:(START + 7) * DAY].astype(np.float64)
        days = week.reshape(7, DAY)
        day = int(np.nanargmax(np.nanstd(days, axis=1)))
        x = torch.tensor(days[day].reshape(-1, MINUTES).mean(1))[None]
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # L-BFGS's recoverable NaN steps
            sel = hmmblog.select_num_states(x, CANDIDATES, restarts=1, folds=4)
        seconds = time.perf_counter() - start
        for row in sel.rows:
            fit = sel.fits[row["K"]]
            rows.append({"circuit": circuit, "day": START + day, "K": row["K"],
                         "loglik": row["loglik"], "bic": row["bic"], "aic": row["aic"],
                         "heldout": row["heldout"], "best_bic": sel.best_by["bic"],
                         "best_aic": sel.best_by["aic"], "best_heldout": sel.best_by["heldout"],
                         "levels": " / ".join(f"{v:.0f}" for v in fit.loc.sort().values),
                         "spreads": " / ".join(f"{v:.2g}" for v in
                                               fit.scale[fit.loc.argsort()]),
                         "seconds": seconds})
        print(f"{circuit}: day {START + day}, BIC {sel.best_by['bic']}, "
              f"AIC {sel.best_by['aic']}, held-out {sel.best_by['heldout']}, {seconds:.0f} s")
    pd.DataFrame(rows).to_csv(HERE / "k_choice.csv", index=False)


if __name__ == "__main__":
    main()
