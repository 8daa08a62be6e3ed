"""Effective draws per second of `sample_posterior`, against the NUTS it replaced and NumPyro.

Issue 21's measure, side by side in one process: post 2's rain/sun data (the first 20 of its
60 sequences of 100 days, symbols 0-2), the model of post 2 and 6 (K = 2, flat Dirichlet
priors on π, the rows of A and the rows of B), every run's draws relabelled to the same MAP
fit (`align_states` on B), and

    effective draws per second = min bulk ESS over the entries of A and B / wall seconds

with ArviZ's rank-normalised bulk ESS over the run's chains. Runs:

* ``gibbs (default)``: `sample_posterior(x, 2, "categorical")` as a user calls it (4 chains
  from prior draws, Gibbs with forward filtering, backward sampling; its reference MAP fit
  included in the wall time);
* ``nuts (before)``: the sampler and settings `sample_posterior` had before this change
  (`sampler="nuts"`, 2 chains of 500 warm-up + 500 draws started at the MAP fit, tree
  depth 6, every draw kept);
* ``numpyro``: NumPyro's NUTS on the same model (a forward pass in `lax.scan`), 2 chains of
  500 + 500 run one after the other, tree depth 6, started from the prior; the first run
  includes JAX's compilation, ``numpyro (compiled)`` is the same call again.

NumPyro and JAX are benchmark-only dependencies (``pip install -e ".[bench]"``).

Run:  .venv/bin/python benchmarks/bench_posterior_speed.py [--busy P] [--repeats R]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "posts" / "06-how-many-states"))

import busy  # noqa: E402
import studies  # noqa: E402  (post 2's data, bit for bit)

import hmmblog  # noqa: E402
from hmmblog.learning.posterior import diagnostics, relabel  # noqa: E402

K, M, SEQUENCES = 2, 3, 20


def min_ess(pi: torch.Tensor, A: torch.Tensor, B: torch.Tensor, chains: int) -> float:
    """Min bulk ESS over the entries of A and B (ArviZ, over `chains`)."""
    _, ess, _ = diagnostics({"transition": A, "emission": B}, chains)
    return min(float(ess["transition"].min()), float(ess["emission"].min()))


def run_package(x: torch.Tensor, **kwargs: object) -> tuple[float, float, object]:
    began = time.perf_counter()
    post = hmmblog.sample_posterior(x, K, "categorical", M=M, seed=0, **kwargs)
    wall = time.perf_counter() - began
    return wall, min_ess(post.initial, post.transition, post.emission, post.chains), post


def numpyro_run(x: torch.Tensor, reference: hmmblog.HMMFit, seed: int
                ) -> tuple[float, float]:
    """NumPyro NUTS on the same model; the draws relabelled to `reference` as ours are."""
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as ndist
    from jax.scipy.special import logsumexp
    from numpyro.infer import MCMC, NUTS

    obs = jnp.asarray(x.numpy())

    def model(obs: jnp.ndarray) -> None:
        pi = numpyro.sample("pi", ndist.Dirichlet(jnp.ones(K)))
        A = numpyro.sample("A", ndist.Dirichlet(jnp.ones((K, K))).to_event(1))
        B = numpyro.sample("B", ndist.Dirichlet(jnp.ones((K, M))).to_event(1))
        log_A, log_B = jnp.log(A), jnp.log(B)
        emit = log_B[:, obs].transpose(1, 2, 0)  # [N, T, K]

        def step(alpha: jnp.ndarray, e: jnp.ndarray) -> tuple[jnp.ndarray, None]:
            return logsumexp(alpha[:, :, None] + log_A, axis=1) + e, None

        alpha, _ = jax.lax.scan(step, jnp.log(pi) + emit[:, 0], emit[:, 1:].transpose(1, 0, 2))
        numpyro.factor("x", logsumexp(alpha, axis=-1).sum())

    mcmc = MCMC(NUTS(model, max_tree_depth=6), num_warmup=500, num_samples=500,
                num_chains=2, chain_method="sequential", progress_bar=False)
    began = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed), obs)
    draws = {k: torch.from_numpy(np.asarray(v, dtype=np.float64))
             for k, v in mcmc.get_samples().items()}
    wall = time.perf_counter() - began
    ref_rows = reference.emission.double()
    pi, A, (B,), _ = relabel(draws["pi"], draws["A"], [draws["B"]], ref_rows)
    return wall, min_ess(pi, A, B, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--busy", type=int, default=0, help="other busy processes")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip-before", action="store_true",
                        help="skip the old NUTS run (the slowest, ~2 min)")
    args = parser.parse_args()
    x = studies.post2_data()[:SEQUENCES]
    with busy.busy_processes(args.busy):
        print(f"post 2's data: {tuple(x.shape)}, K = {K}; torch threads "
              f"{torch.get_num_threads()}, busy processes {args.busy}")
        rows = []
        for r in range(args.repeats):
            wall, ess, post = run_package(x)
            rows.append(("gibbs (default)", wall, ess))
            if not args.skip_before:
                wall_b, ess_b, _ = run_package(x, sampler="nuts", init="map", num_chains=2,
                                               num_samples=500, warmup=500, thin=1,
                                               reference=post.reference)
                rows.append(("nuts (before)", wall_b, ess_b))
            try:
                rows.append(("numpyro", *numpyro_run(x, post.reference, r)))
                rows.append(("numpyro (compiled)", *numpyro_run(x, post.reference, r)))
            except ImportError:
                print("numpyro not installed: pip install -e '.[bench]'")
        base = {}
        for name, wall, ess in rows:
            base.setdefault(name, []).append(ess / wall)
        ours = np.median(base["gibbs (default)"])
        for name, rates in base.items():
            print(f"{name:20s} ESS/s {np.median(rates):8.2f}   ours / this "
                  f"{ours / np.median(rates):6.1f}x   (runs: "
                  + ", ".join(f"{v:.2f}" for v in rates) + ")")
        for name, wall, ess in rows:
            print(f"  {name:20s} wall {wall:7.2f} s  min bulk ESS {ess:7.1f}")


if __name__ == "__main__":
    main()
