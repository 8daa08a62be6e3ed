"""Simulation-based calibration of `sample_posterior` (Talts et al., 2018): truths drawn from
the model's prior give uniform ranks; truths from another prior do not, so the check can fail."""

import numpy as np
import pytest
import torch

from hmmblog.learning.calibration import (
    ordered_quantities,
    rank_statistics,
    simulation_based_calibration,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"simulations": 80, "draws": 49, "num_samples": 150, "warmup": 150, "thin": 2}


def test_ranks_are_uniform_when_truths_come_from_the_prior():
    result = simulation_based_calibration(2, 3, 4, 40, seed=11, **SMALL)
    assert result.ranks.shape == (80, 2 + 4 + 6)
    assert result.ranks.min() >= 0 and result.ranks.max() <= 49
    p = result.p_values(bins=5)
    assert p.min() > 0.001, dict(zip(result.names, p.round(4), strict=True))
    assert result.r_hat.shape == (80, 12) and np.median(result.r_hat) < 1.1


def test_ranks_are_not_uniform_when_truths_come_from_another_prior():
    """Truths from Dirichlet(4): nearer the middle of the simplex than the model's flat prior
    expects, so ranks pile up in the middle for some quantity."""
    result = simulation_based_calibration(2, 3, 4, 40, seed=11, concentration=4.0, **SMALL)
    assert result.p_values(bins=5).min() < 1e-4


def test_ordered_quantities_do_not_depend_on_the_state_names():
    g = torch.Generator().manual_seed(0)
    pi = torch.rand(5, 3, generator=g).softmax(-1)
    A = torch.rand(5, 3, 3, generator=g).softmax(-1)
    B = torch.rand(5, 3, 4, generator=g).softmax(-1)
    perm = torch.tensor([2, 0, 1])
    q, names = ordered_quantities(pi, A, B)
    q_perm, _ = ordered_quantities(pi[:, perm], A[:, perm][:, :, perm], B[:, perm])
    assert torch.equal(q, q_perm)
    assert names[:3] == ["π[0]", "π[1]", "π[2]"] and len(names) == 3 + 9 + 12
    assert (q[:, 3 + 9::4].diff(dim=-1) >= 0).all()  # B[k, 0] ascending


def test_rank_counts_draws_below_the_truth():
    truth = {"initial": torch.tensor([[1.0]]), "transition": torch.tensor([[[1.0]]]),
             "emission": torch.tensor([[[0.5, 0.5]]])}
    b0 = torch.linspace(0, 1, 11)[:, None, None, None]  # 11 draws of B[0, 0]
    draws = {"initial": torch.ones(11, 1, 1), "transition": torch.ones(11, 1, 1, 1),
             "emission": torch.cat([b0, 1 - b0], -1)}
    ranks, _ = rank_statistics(truth, draws, 11)
    assert np.array_equal(ranks[0], [0, 0, 5, 5])  # π and A equal the truth: none below
