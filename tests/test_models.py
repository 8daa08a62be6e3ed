"""The Pyro stories in `hmmblog.models` against the inference core (which has its own
brute-force and hmmlearn oracles): same log-likelihood, same Viterbi path."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine

from hmmblog import log_likelihood, viterbi
from hmmblog.emissions import categorical_log_lik, gaussian_log_lik
from hmmblog.models import (
    decode_story,
    emission_given_state,
    hmm_story,
    hmm_vectorized,
    log_marginal,
    start_transition_logits,
)

SEEDS = range(8)


def random_model(seed: int, dtype: torch.dtype = torch.float64):
    """A random discrete HMM: K in 2..4 states, M in 2..5 symbols, N sequences of length T."""
    g = torch.Generator().manual_seed(seed)
    K = int(torch.randint(2, 5, (1,), generator=g))
    M = int(torch.randint(2, 6, (1,), generator=g))
    N = int(torch.randint(1, 4, (1,), generator=g))
    T = int(torch.randint(1, 9, (1,), generator=g))
    pi = torch.rand(K, generator=g, dtype=dtype) + 0.05
    A = torch.rand(K, K, generator=g, dtype=dtype) + 0.05
    B = torch.rand(K, M, generator=g, dtype=dtype) + 0.05
    x = torch.randint(0, M, (N, T), generator=g)
    return pi / pi.sum(), A / A.sum(-1, keepdim=True), B / B.sum(-1, keepdim=True), x


def random_gaussian(seed: int):
    g = torch.Generator().manual_seed(1000 + seed)
    pi, A, _, x = random_model(seed)
    K = pi.shape[0]
    loc = 3 * torch.randn(K, generator=g, dtype=torch.float64)
    scale = 0.3 + torch.rand(K, generator=g, dtype=torch.float64)
    y = 3 * torch.randn(x.shape, generator=g, dtype=torch.float64)
    return pi, A, loc, scale, y


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("model", [hmm_story, hmm_vectorized], ids=["story", "vectorized"])
def test_discrete_log_marginal_matches_core(seed, model):
    pi, A, B, x = random_model(seed)
    expected = log_likelihood(pi, A, categorical_log_lik(B, x)).sum()
    got = log_marginal(model, pi, A, dist.Categorical(probs=B), x)
    assert got == pytest.approx(expected.item(), abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("model", [hmm_story, hmm_vectorized], ids=["story", "vectorized"])
def test_gaussian_log_marginal_matches_core(seed, model):
    pi, A, loc, scale, y = random_gaussian(seed)
    expected = log_likelihood(pi, A, gaussian_log_lik(loc, scale, y)).sum()
    got = log_marginal(model, pi, A, dist.Normal(loc, scale), y)
    assert got == pytest.approx(expected.item(), abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_vectorized_per_sequence_log_prob_matches_core(seed):
    pi, A, B, x = random_model(seed)
    trace = poutine.trace(hmm_vectorized).get_trace(pi, A, dist.Categorical(probs=B), x)
    per_sequence = trace.nodes["x"]["fn"].log_prob(x)
    torch.testing.assert_close(
        per_sequence, log_likelihood(pi, A, categorical_log_lik(B, x)), rtol=0, atol=1e-10
    )


def test_naive_discrete_hmm_start_is_wrong():
    """Passing π as DiscreteHMM's initial_logits puts π one step too early: for a model where
    A moves the chain away from π, the naive score differs from the core; ours does not."""
    pi = torch.tensor([0.9, 0.1], dtype=torch.float64)
    A = torch.tensor([[0.2, 0.8], [0.3, 0.7]], dtype=torch.float64)
    B = torch.tensor([[0.9, 0.1], [0.2, 0.8]], dtype=torch.float64)
    x = torch.tensor([0, 0, 1, 0])
    core = log_likelihood(pi, A, categorical_log_lik(B, x))
    naive = dist.DiscreteHMM(pi.log(), A.log(), dist.Categorical(probs=B)).log_prob(x)
    exact = dist.DiscreteHMM(
        torch.zeros(2, dtype=torch.float64),
        start_transition_logits(pi, A, x.shape[0]),
        dist.Categorical(probs=B),
    ).log_prob(x)
    assert abs(naive - core).item() > 0.1
    assert exact.item() == pytest.approx(core.item(), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_infer_discrete_map_is_core_viterbi(seed):
    pi, A, B, x = random_model(seed)
    ll = categorical_log_lik(B, x)
    best = viterbi(pi, A, ll)
    path = decode_story(pi, A, dist.Categorical(probs=B), x)
    assert path.shape == x.shape and path.dtype == torch.int64
    torch.testing.assert_close(path, best.path)


@pytest.mark.parametrize("seed", SEEDS[:4])
def test_infer_discrete_map_is_core_viterbi_gaussian(seed):
    pi, A, loc, scale, y = random_gaussian(seed)
    best = viterbi(pi, A, gaussian_log_lik(loc, scale, y))
    torch.testing.assert_close(decode_story(pi, A, dist.Normal(loc, scale), y), best.path)


def test_float32_story_is_accurate():
    pi, A, B, x = random_model(3)
    expected = log_likelihood(pi, A, categorical_log_lik(B, x)).sum().item()
    got = log_marginal(hmm_story, pi.float(), A.float(), dist.Categorical(probs=B.float()), x)
    assert got == pytest.approx(expected, abs=1e-4)


def test_story_samples_follow_the_parameters():
    """Unconditioned, the story draws states and symbols with the frequencies π, A and B."""
    pi = torch.tensor([0.6, 0.4], dtype=torch.float64)
    A = torch.tensor([[0.7, 0.3], [0.4, 0.6]], dtype=torch.float64)
    B = torch.tensor([[0.1, 0.4, 0.5], [0.6, 0.3, 0.1]], dtype=torch.float64)
    pyro.set_rng_seed(0)
    z, x = hmm_story(pi, A, dist.Categorical(probs=B), num_seqs=20_000, T=4)
    assert z.shape == x.shape == (20_000, 4)

    def close(freq: torch.Tensor, p: torch.Tensor, n: torch.Tensor) -> None:
        se = (p * (1 - p) / n).sqrt()
        assert ((freq - p).abs() <= 4 * se).all(), (freq, p)

    close(torch.bincount(z[:, 0], minlength=2) / z.shape[0], pi, torch.tensor(z.shape[0]))
    prev, nxt = z[:, :-1].reshape(-1), z[:, 1:].reshape(-1)
    counts = torch.zeros(2, 2, dtype=torch.float64).index_put_(
        (prev, nxt), torch.tensor(1.0, dtype=torch.float64), accumulate=True
    )
    rows = counts.sum(-1, keepdim=True)
    close(counts / rows, A, rows)
    emit = torch.zeros(2, 3, dtype=torch.float64).index_put_(
        (z.reshape(-1), x.reshape(-1)), torch.tensor(1.0, dtype=torch.float64), accumulate=True
    )
    rows = emit.sum(-1, keepdim=True)
    close(emit / rows, B, rows)


def test_emission_given_state_indexes_every_parameter():
    z = torch.tensor([[1, 0, 1]])
    normal = emission_given_state(
        dist.Normal(torch.tensor([0.0, 5.0]), torch.tensor([1.0, 2.0])), z
    )
    torch.testing.assert_close(normal.loc, torch.tensor([[5.0, 0.0, 5.0]]))
    torch.testing.assert_close(normal.scale, torch.tensor([[2.0, 1.0, 2.0]]))
    B = torch.tensor([[0.2, 0.8], [0.6, 0.4]])
    cat = emission_given_state(dist.Categorical(probs=B), z)
    torch.testing.assert_close(cat.probs, B[z])
    cached = dist.Categorical(probs=B)
    cached.logits  # noqa: B018  (caches logits next to probs; only one may be passed on)
    torch.testing.assert_close(emission_given_state(cached, z).probs, B[z])
    poisson = emission_given_state(dist.Poisson(torch.tensor([1.0, 7.0])), z)
    torch.testing.assert_close(poisson.rate, torch.tensor([[7.0, 1.0, 7.0]]))


def test_bad_inputs_raise_value_errors_naming_the_argument():
    pi = torch.tensor([0.6, 0.4])
    A = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
    em = dist.Categorical(probs=torch.tensor([[0.5, 0.5], [0.1, 0.9]]))
    with pytest.raises(ValueError, match="observations"):
        log_marginal(hmm_story, pi, A, em, torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="observations"):
        hmm_vectorized(pi, A, em, torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="transition"):
        hmm_vectorized(pi, torch.tensor([[0.7, 0.2], [0.4, 0.6]]), em, torch.zeros(1, 3).long())
    with pytest.raises(ValueError, match="emission"):
        emission_given_state(dist.Normal(torch.zeros(2, 3), 1.0), torch.tensor([0]))
    three_states = dist.Categorical(probs=torch.full((3, 2), 0.5))
    with pytest.raises(ValueError, match=r"emission: expected batch shape \(2,\)"):
        log_marginal(hmm_story, pi, A, three_states, torch.zeros(1, 3).long())
    with pytest.raises(ValueError, match="emission"):
        hmm_vectorized(pi, A, three_states, torch.zeros(1, 3).long())
    with pytest.raises(ValueError, match="num_seqs"):
        hmm_story(pi, A, em, num_seqs=0, T=3)
    with pytest.raises(ValueError, match="T"):
        start_transition_logits(pi, A, 0)
