"""The samplers draw from the model they are given, reproducibly."""

import pytest
import torch
from torch.distributions import Categorical, Normal

from hmmblog import sample, sample_stepwise

PI = torch.tensor([0.6, 0.4], dtype=torch.float64)
A = torch.tensor([[0.7, 0.3], [0.4, 0.6]], dtype=torch.float64)
B = torch.tensor([[0.1, 0.4, 0.5], [0.6, 0.3, 0.1]], dtype=torch.float64)


def within_standard_errors(counts: torch.Tensor, probs: torch.Tensor, n_sigma: float = 5.0):
    """Row-wise multinomial frequencies are within n_sigma standard errors of probs."""
    n = counts.sum(-1, keepdim=True)
    freq = counts / n
    se = (probs * (1 - probs) / n).sqrt()
    assert ((freq - probs).abs() <= n_sigma * se + 1e-12).all(), (freq, probs)


def test_sample_frequencies_match_pi_A_B():
    states, obs = sample(PI, A, Categorical(probs=B), num_seqs=4000, T=50, seed=0)
    assert states.shape == obs.shape == (4000, 50) and states.dtype == torch.int64
    within_standard_errors(torch.bincount(states[:, 0], minlength=2).double(), PI)
    pairs = torch.zeros(2, 2, dtype=torch.float64)
    pairs.index_put_((states[:, :-1].reshape(-1), states[:, 1:].reshape(-1)),
                     torch.ones(1, dtype=torch.float64), accumulate=True)
    within_standard_errors(pairs, A)
    emits = torch.zeros(2, 3, dtype=torch.float64)
    emits.index_put_((states.reshape(-1), obs.reshape(-1)), torch.ones(1, dtype=torch.float64),
                     accumulate=True)
    within_standard_errors(emits, B)


def test_sample_gaussian_emissions_and_reproducibility():
    mu, sigma = torch.tensor([0.0, 5.0]), torch.tensor([0.5, 2.0])
    s1, y1 = sample(PI, A, Normal(mu, sigma), num_seqs=300, T=100, seed=3)
    s2, y2 = sample(PI, A, Normal(mu, sigma), num_seqs=300, T=100, seed=3)
    assert torch.equal(s1, s2) and torch.equal(y1, y2)
    for k in range(2):
        ys = y1[s1 == k]
        assert abs(ys.mean() - mu[k]) < 5 * sigma[k] / len(ys) ** 0.5
        assert abs(ys.std() / sigma[k] - 1) < 0.05
    _, y3 = sample(PI, A, Normal(mu, sigma), num_seqs=300, T=100, seed=4)
    assert not torch.equal(y1, y3)


def test_sample_stepwise_is_reproducible_and_follows_the_chain():
    def draw(z, g):
        return torch.multinomial(B[z], 1, generator=g)
    s1, x1 = sample_stepwise(PI, A, draw, num_seqs=200, T=60, seed=1)
    s2, x2 = sample_stepwise(PI, A, draw, num_seqs=200, T=60, seed=1)
    assert torch.equal(s1, s2) and torch.equal(x1, x2) and s1.shape == x1.shape == (200, 60)
    within_standard_errors(torch.bincount(s1[:, 0], minlength=2).double(), PI)


def test_sample_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"emission: expected batch shape \(2,\)"):
        sample(PI, A, Categorical(probs=B[:1]), num_seqs=2, T=3, seed=0)
    with pytest.raises(ValueError, match="T: expected a positive int"):
        sample(PI, A, Categorical(probs=B), num_seqs=2, T=0, seed=0)
    with pytest.raises(ValueError, match="transition: rows must sum to 1"):
        sample(PI, A * 2, Categorical(probs=B), num_seqs=2, T=3, seed=0)
