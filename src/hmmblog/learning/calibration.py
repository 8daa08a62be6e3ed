"""Simulation-based calibration (SBC) of `sample_posterior` for the categorical HMM.

If parameters are drawn from the prior, data from the model given them, and the posterior
sampled given the data, then the true parameters are one more draw from that posterior. So,
over simulations, the rank of each true value among L nearly independent posterior draws is
uniform on 0..L (Talts, Betancourt, Simpson, Vehtari & Gelman, 2018). A sampler that is
wrong, or a prior that is not the one the data came from, bends the histogram of ranks: a ∪
for intervals too narrow, a ∩ for too wide, a slope for a bias. Its blind spot: a sampler
that ignored the data and returned independent prior draws would pass.

Label switching: renaming the states leaves the posterior unchanged, so a rank is taken of a
quantity that does not depend on the names: states ordered by their probability of the
first symbol (B[k, 0] ascending), then π, A and B read in that order, in the truth and in
every draw alike. The check holds for any function of the parameters, so it holds for these.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
import pyro.distributions as dist
import torch
from scipy.stats import chisquare

from hmmblog.learning.posterior import diagnostics, sample_posterior
from hmmblog.simulation import sample
from hmmblog.validation import check_positive_int, check_positive_number, check_seed

__all__ = ["SBCResult", "ordered_quantities", "rank_statistics", "simulate_from_prior",
           "simulation_based_calibration"]


class SBCResult(NamedTuple):
    """Ranks ``[simulations, Q]`` (0..`draws`) of the Q quantities named in `names`, the
    number of posterior draws each truth is ranked among, every quantity's r-hat in every
    simulation ``[simulations, Q]`` (ArviZ's, over the sampler's chains), and the wall
    time."""

    ranks: np.ndarray
    names: list[str]
    draws: int
    r_hat: np.ndarray
    seconds: float

    def p_values(self, bins: int = 10) -> np.ndarray:
        """χ² test of uniform ranks per quantity ``[Q]``: ranks in `bins` equal bins."""
        counts = np.stack([np.bincount(r * bins // (self.draws + 1), minlength=bins)
                           for r in self.ranks.T])
        return chisquare(counts, axis=1).pvalue


def simulate_from_prior(K: int, M: int, N: int, T: int, simulations: int, *, seed: int,
                        concentration: float = 1.0
                        ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """True parameters π ``[S, K]``, A ``[S, K, K]``, B ``[S, K, M]`` drawn from Dirichlet
    (`concentration`) priors (1: the model's own), and data ``[S, N, T]`` from each."""
    rng = np.random.default_rng(seed)
    truth = {
        "initial": torch.from_numpy(rng.dirichlet(np.full(K, concentration), simulations)),
        "transition": torch.from_numpy(
            rng.dirichlet(np.full(K, concentration), (simulations, K))),
        "emission": torch.from_numpy(
            rng.dirichlet(np.full(M, concentration), (simulations, K))),
    }
    x = torch.stack([
        sample(truth["initial"][s], truth["transition"][s],
               dist.Categorical(probs=truth["emission"][s]), N, T, seed=seed + s)[1]
        for s in range(simulations)])
    return truth, x


def ordered_quantities(initial: torch.Tensor, transition: torch.Tensor,
                       emission: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
    """Label-free quantities ``[..., Q]`` of parameters ``[..., K]``, ``[..., K, K]``,
    ``[..., K, M]``: the states ordered by B[k, 0], then π, every A and every B in that
    order. Also their names (``A[0,1]``: from the state least likely to emit symbol 0)."""
    K, M = emission.shape[-2:]
    order = emission[..., 0].argsort(-1)  # [..., K]
    pi = initial.gather(-1, order)
    A = transition.gather(-2, order.unsqueeze(-1).expand(*order.shape, K))
    A = A.gather(-1, order.unsqueeze(-2).expand(*order.shape[:-1], K, K))
    B = emission.gather(-2, order.unsqueeze(-1).expand(*order.shape, M))
    names = ([f"π[{k}]" for k in range(K)]
             + [f"A[{i},{j}]" for i in range(K) for j in range(K)]
             + [f"B[{k},{m}]" for k in range(K) for m in range(M)])
    return torch.cat([pi, A.flatten(-2), B.flatten(-2)], -1), names


def rank_statistics(truth: dict[str, torch.Tensor], draws: dict[str, torch.Tensor],
                    L: int) -> tuple[np.ndarray, list[str]]:
    """The rank of each true quantity among L draws (evenly spaced among all of them):
    ``[S, Q]`` ints in 0..L, for truths ``[S, ...]`` and draws ``[draws, S, ...]``."""
    true_q, names = ordered_quantities(truth["initial"], truth["transition"],
                                       truth["emission"])
    drawn_q, _ = ordered_quantities(draws["initial"], draws["transition"], draws["emission"])
    keep = np.linspace(0, drawn_q.shape[0] - 1, L).round().astype(int)
    below = drawn_q[keep] < true_q.unsqueeze(0)
    return below.sum(0).numpy(), names


def simulation_based_calibration(
    K: int, M: int, N: int, T: int, *, simulations: int = 200, draws: int = 99,
    seed: int = 0, concentration: float = 1.0, **sampler: object) -> SBCResult:
    """SBC of `sample_posterior` for the categorical HMM: `simulations` truths and datasets
    of N sequences x T steps (`simulate_from_prior`), all sampled in one call (datasets side
    by side, each with its own π, A, B; `sampler` passes settings on, e.g. ``num_samples``),
    each truth ranked among `draws` of its posterior draws. `concentration` other than 1
    draws the truths from another prior than the model's: the check should then fail."""
    for name, value in (("K", K), ("M", M), ("N", N), ("T", T),
                        ("simulations", simulations), ("draws", draws)):
        check_positive_int(name, value)
    seed = check_seed("seed", seed)
    check_positive_number("concentration", concentration)
    began = time.perf_counter()
    truth, x = simulate_from_prior(K, M, N, T, simulations, seed=seed,
                                   concentration=concentration)
    post = sample_posterior(x, K, "categorical", M=M, seed=seed, relabel_draws=False,
                            **sampler)
    if post.initial.shape[0] < draws:
        raise ValueError(f"draws: expected at most the {post.initial.shape[0]} posterior "
                         f"draws the sampler keeps, got {draws}")
    ranks, names = rank_statistics(truth, post.draws(), draws)
    q, _ = ordered_quantities(post.initial, post.transition, post.emission)
    r_hat = diagnostics({"q": q}, post.chains)[0]["q"]
    return SBCResult(ranks=ranks, names=names, draws=draws, r_hat=r_hat.numpy(),
                     seconds=time.perf_counter() - began)
