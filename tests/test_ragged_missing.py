"""Missing observations and ragged batches (issue 14), and the argument friction it found.

Oracles: brute-force enumeration with the missing steps' emission factor dropped by hand,
each sequence run alone, and hmmlearn's `lengths`."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hmmlearn import hmm
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Categorical, Normal

from hmmblog import (
    align_states,
    learn,
    learn_discrete,
    learn_gaussian,
    log_likelihood,
    posterior,
    sample,
    sample_stepwise,
    viterbi,
)
from hmmblog.emissions import MISSING, categorical_log_lik, gaussian_log_lik

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_model(K: int, M: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    pi = torch.softmax(torch.randn(K, generator=g, dtype=torch.float64), -1)
    A = torch.softmax(2 * torch.randn(K, K, generator=g, dtype=torch.float64), -1)
    B = torch.softmax(2 * torch.randn(K, M, generator=g, dtype=torch.float64), -1)
    return pi, A, B, g


def enumerate_paths(pi, A, factor, T):
    """log p(z, x) of every path z (a tuple) with `factor(t, k)` the emission term of step t
    (None where the step has no evidence: the factor is left out)."""
    K = len(pi)
    out = {}
    for z in itertools.product(range(K), repeat=T):
        lp = pi[z[0]].log() + sum(A[z[t - 1], z[t]].log() for t in range(1, T))
        lp = lp + sum(f for t in range(T) if (f := factor(t, z[t])) is not None)
        out[z] = lp
    return out


def check_against(pi, A, ll, joint, T, K):
    """log_likelihood, posterior and viterbi on `ll` equal the enumeration `joint`."""
    values = torch.stack(list(joint.values()))
    total = values.logsumexp(0)
    torch.testing.assert_close(log_likelihood(pi, A, ll), total, rtol=0, atol=1e-10)
    marg = torch.zeros(T, K, dtype=torch.float64)
    for z, lp in joint.items():
        for t, k in enumerate(z):
            marg[t, k] += (lp - total).exp()
    torch.testing.assert_close(posterior(pi, A, ll), marg, rtol=0, atol=1e-10)
    best = max(joint, key=lambda z: joint[z].item())
    second = sorted(v.item() for v in values)[-2] if len(values) > 1 else -np.inf
    result = viterbi(pi, A, ll)
    if joint[best].item() - second > 1e-9:  # no tie
        assert result.path.tolist() == list(best)
    torch.testing.assert_close(result.log_joint, joint[best], rtol=0, atol=1e-10)


# -- missing observations ---------------------------------------------------------------------

@settings(max_examples=40)
@given(K=st.integers(1, 3), M=st.integers(1, 3), T=st.integers(1, 5), seed=st.integers(0, 999),
       data=st.data())
def test_missing_symbols_equal_dropping_their_emission_factor(K, M, T, seed, data):
    pi, A, B, g = random_model(K, M, seed)
    x = torch.randint(0, M, (T,), generator=g)
    gaps = data.draw(st.lists(st.booleans(), min_size=T, max_size=T))
    x[torch.tensor(gaps)] = MISSING
    ll = categorical_log_lik(B, x)
    assert (ll[torch.tensor(gaps)] == 0).all()
    joint = enumerate_paths(pi, A, lambda t, k: None if gaps[t] else B[k, x[t]].log(), T)
    check_against(pi, A, ll, joint, T, K)


@settings(max_examples=40)
@given(K=st.integers(1, 3), T=st.integers(1, 5), seed=st.integers(0, 999), data=st.data())
def test_nan_readings_equal_dropping_their_emission_factor(K, T, seed, data):
    pi, A, _, g = random_model(K, 1, seed)
    loc = 2 * torch.randn(K, generator=g, dtype=torch.float64)
    scale = 0.5 + torch.rand(K, generator=g, dtype=torch.float64)
    y = 2 * torch.randn(T, generator=g, dtype=torch.float64)
    gaps = data.draw(st.lists(st.booleans(), min_size=T, max_size=T))
    y[torch.tensor(gaps)] = float("nan")
    ll = gaussian_log_lik(loc, scale, y)
    normal = Normal(loc, scale)
    joint = enumerate_paths(
        pi, A, lambda t, k: None if gaps[t] else normal.log_prob(y[t])[k], T)
    check_against(pi, A, ll, joint, T, K)


def test_missing_values_keep_gradients_finite():
    loc = torch.tensor([0.0, 3.0], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[0.5, float("nan"), 2.0]], dtype=torch.float64)
    pi = torch.tensor([0.5, 0.5], dtype=torch.float64)
    A = torch.tensor([[0.9, 0.1], [0.2, 0.8]], dtype=torch.float64)
    log_likelihood(pi, A, gaussian_log_lik(loc, scale, y)).sum().backward()
    assert torch.isfinite(loc.grad).all() and torch.isfinite(scale.grad).all()


def test_missing_marker_errors_name_the_argument():
    B = torch.tensor([[0.5, 0.5], [0.1, 0.9]])
    with pytest.raises(ValueError, match=r"observations: symbols must lie in 0\.\.1 .* or be -1"):
        categorical_log_lik(B, torch.tensor([0, -2]))
    with pytest.raises(ValueError, match="sequences: every symbol is missing"):
        learn_discrete(torch.full((2, 3), MISSING), 2, 2, steps=1)
    with pytest.raises(ValueError, match="enumerate_states: .*no missing"):
        learn_discrete(torch.tensor([[0, MISSING, 1]]), 2, 2, steps=1, enumerate_states=True)
    with pytest.raises(ValueError, match="observations: expected at least two finite"):
        learn_gaussian(torch.tensor([[1.0, float("inf"), float("nan")]]), 2, steps=1)


def with_gaps(x: torch.Tensor, fill, fraction: float = 0.1, seed: int = 1) -> torch.Tensor:
    gaps = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed)) < fraction
    return x.masked_fill(gaps, fill)


def test_learn_gaussian_recovers_the_model_with_ten_percent_missing():
    pi = torch.tensor([0.5, 0.5])
    A = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    _, y = sample(pi, A, Normal(torch.tensor([0.0, 5.0]), torch.tensor([1.0, 1.0])), 20, 100, 0)
    y = with_gaps(y, float("nan"))
    assert 0.05 < torch.isnan(y).float().mean() < 0.15
    for fit in (learn_gaussian(y, 2, init="kmeans"), learn_gaussian(y, 2, standardize=True,
                                                                    init="kmeans")):
        order = fit.loc.argsort()
        torch.testing.assert_close(fit.loc[order], torch.tensor([0.0, 5.0]), atol=0.15, rtol=0)
        torch.testing.assert_close(fit.scale[order], torch.tensor([1.0, 1.0]), atol=0.1, rtol=0)
        torch.testing.assert_close(fit.transition[order][:, order], A, atol=0.05, rtol=0)


def test_learn_discrete_recovers_the_model_with_ten_percent_missing():
    pi = torch.tensor([0.5, 0.5])
    A = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    B = torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
    _, x = sample(pi, A, Categorical(probs=B), 20, 100, 0)
    x = with_gaps(x, MISSING)
    assert 0.05 < (x == MISSING).float().mean() < 0.15
    for fit in (learn_discrete(x, 2, 3), learn(x, 2, "categorical")):
        perm = align_states(fit.emission, B)
        fitted_B, fitted_A = fit.emission[perm], fit.transition[perm][:, perm]
        torch.testing.assert_close(fitted_B, B, atol=0.05, rtol=0)
        torch.testing.assert_close(fitted_A, A, atol=0.05, rtol=0)


# -- ragged batches ---------------------------------------------------------------------------

@settings(max_examples=40)
@given(K=st.integers(1, 4), N=st.integers(1, 4), T=st.integers(1, 7),
       seed=st.integers(0, 999), data=st.data())
def test_ragged_batch_equals_each_sequence_alone(K, N, T, seed, data):
    pi, A, _, g = random_model(K, 1, seed)
    ll = 3 * torch.randn(N, T, K, generator=g, dtype=torch.float64)  # the padding is garbage
    lengths = torch.tensor(data.draw(st.lists(st.integers(1, T), min_size=N, max_size=N)))
    total = log_likelihood(pi, A, ll, lengths)
    marg = posterior(pi, A, ll, lengths)
    best = viterbi(pi, A, ll, lengths)
    for n, L in enumerate(lengths.tolist()):
        alone = ll[n, :L]
        torch.testing.assert_close(total[n], log_likelihood(pi, A, alone), rtol=0, atol=1e-10)
        torch.testing.assert_close(marg[n, :L], posterior(pi, A, alone), rtol=0, atol=1e-10)
        assert (marg[n, L:] == 0).all()
        own = viterbi(pi, A, alone)
        assert best.path[n, :L].tolist() == own.path.tolist()
        assert (best.path[n, L:] == -1).all()
        torch.testing.assert_close(best.log_joint[n], own.log_joint, rtol=0, atol=1e-10)


def test_lengths_of_a_full_batch_change_nothing():
    pi, A, _, g = random_model(3, 1, 0)
    ll = torch.randn(2, 3, 6, 3, generator=g, dtype=torch.float64)
    full = torch.full((2, 3), 6)
    assert torch.equal(log_likelihood(pi, A, ll, full), log_likelihood(pi, A, ll))
    assert torch.equal(posterior(pi, A, ll, full), posterior(pi, A, ll))
    assert torch.equal(viterbi(pi, A, ll, full).path, viterbi(pi, A, ll).path)


def test_ragged_viterbi_is_not_zero_padding():
    """The case the issue found: zero rows past the end change the path, lengths do not."""
    pi = torch.tensor([0.5, 0.5], dtype=torch.float64)
    A = torch.tensor([[0.5, 0.5], [0.0, 1.0]], dtype=torch.float64)  # state 1 absorbs
    ll = torch.tensor([[[0.0, -0.1], [0.0, 0.0], [0.0, 0.0]]], dtype=torch.float64)
    # alone (one step) state 0 wins (0 > -0.1); with zero padding state 1 would (0.5 · 0.5 ·
    # 0.5 < 1 · 1 · e^-0.1)
    assert viterbi(pi, A, ll[:, :1]).path.tolist() == [[0]]
    assert viterbi(pi, A, ll).path[0, 0].item() == 1
    assert viterbi(pi, A, ll, torch.tensor([1])).path.tolist() == [[0, -1, -1]]


@pytest.mark.parametrize("seed", range(4))
def test_ragged_matches_hmmlearn_lengths(seed):
    K, M = 3, 4
    pi, A, B, g = random_model(K, M, seed)
    lengths = torch.tensor([7, 2, 5, 1])
    x = torch.randint(0, M, (4, 7), generator=g)
    model = hmm.CategoricalHMM(n_components=K, n_features=M)
    model.startprob_, model.transmat_, model.emissionprob_ = pi.numpy(), A.numpy(), B.numpy()
    X = np.concatenate([x[n, :L].numpy() for n, L in enumerate(lengths.tolist())])[:, None]
    ll = categorical_log_lik(B, x)
    ours = log_likelihood(pi, A, ll, lengths)
    assert ours.sum().item() == pytest.approx(model.score(X, lengths.tolist()), abs=1e-8)
    inside = torch.arange(7) < lengths[:, None]
    marg = posterior(pi, A, ll, lengths)
    np.testing.assert_allclose(marg[inside].numpy(), model.predict_proba(X, lengths.tolist()),
                               atol=1e-8)
    logprob, states = model.decode(X, lengths.tolist(), algorithm="viterbi")
    best = viterbi(pi, A, ll, lengths)
    assert best.path[inside].tolist() == states.tolist()
    assert best.log_joint.sum().item() == pytest.approx(logprob, abs=1e-8)


def test_ragged_gaussian_matches_hmmlearn_lengths():
    pi, A, _, g = random_model(2, 1, 5)
    loc, scale = torch.tensor([0.0, 2.0], dtype=torch.float64), torch.tensor([1.0, 0.5],
                                                                             dtype=torch.float64)
    lengths = [4, 9, 3]
    y = 2 * torch.randn(3, 9, generator=g, dtype=torch.float64)
    model = hmm.GaussianHMM(n_components=2, covariance_type="diag")
    model.startprob_, model.transmat_ = pi.numpy(), A.numpy()
    model.means_, model.covars_ = loc.numpy()[:, None], (scale**2).numpy()[:, None]
    X = np.concatenate([y[n, :L].numpy() for n, L in enumerate(lengths)])[:, None]
    ll = gaussian_log_lik(loc, scale, y)
    assert log_likelihood(pi, A, ll, lengths).sum().item() == pytest.approx(
        model.score(X, lengths), abs=1e-8)
    inside = torch.arange(9) < torch.tensor(lengths)[:, None]
    assert viterbi(pi, A, ll, lengths).path[inside].tolist() == model.predict(X, lengths).tolist()


@pytest.mark.parametrize("lengths,message", [
    ([3, 0], r"lengths: expected lengths in 1\.\.4"),
    ([3, 5], r"lengths: expected lengths in 1\.\.4"),
    ([3], r"lengths: expected shape \[2\]"),
    ([3.0, 2.0], "lengths: expected integers"),
])
@pytest.mark.parametrize("fn", [log_likelihood, posterior, viterbi])
def test_bad_lengths_raise_a_value_error_naming_them(fn, lengths, message):
    pi, A, _, g = random_model(2, 1, 0)
    with pytest.raises(ValueError, match=message):
        fn(pi, A, torch.zeros(2, 4, 2, dtype=torch.float64), torch.tensor(lengths))


@pytest.mark.parametrize("emission,fill", [
    (Categorical(probs=torch.tensor([[0.9, 0.1], [0.2, 0.8]])), MISSING),
    (Normal(torch.tensor([0.0, 5.0]), torch.tensor([1.0, 1.0])), float("nan")),
])
def test_sample_draws_ragged_batches(emission, fill):
    pi = torch.tensor([0.5, 0.5])
    A = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    lengths = [5, 2, 1]
    z_full, x_full = sample(pi, A, emission, 3, 5, seed=3)
    z, x = sample(pi, A, emission, 3, 5, seed=3, lengths=lengths)
    for n, L in enumerate(lengths):
        assert torch.equal(z[n, :L], z_full[n, :L]) and torch.equal(x[n, :L], x_full[n, :L])
        assert (z[n, L:] == -1).all()
        assert (x[n, L:].isnan() if fill != fill else x[n, L:] == fill).all()
    with pytest.raises(ValueError, match=r"lengths: expected 3 ints in 1\.\.5"):
        sample(pi, A, emission, 3, 5, seed=3, lengths=[5, 6, 1])


# -- friction ---------------------------------------------------------------------------------

def test_a_float32_fit_cast_to_float64_is_accepted():
    g = torch.Generator().manual_seed(0)
    A32 = torch.softmax(torch.randn(8, 8, generator=g), -1)
    pi32 = torch.softmax(torch.randn(8, generator=g), -1)
    A, pi = A32.double(), pi32.double()
    assert (A.sum(-1) - 1).abs().max() > 1e-8  # refused before: off by more than float64's
    ll = torch.zeros(3, 8, dtype=torch.float64)
    log_likelihood(pi, A, ll)
    posterior(pi, A, ll)
    viterbi(pi, A, ll)


@pytest.mark.parametrize("off,raises", [(2e-4, True), (5e-5, False)])
def test_float32_values_in_float64_are_checked_to_float32_tolerance(off, raises):
    # float32 numbers (cast up) whose rows are off by just inside / just outside float32's
    # tolerance (1e-4)
    row = torch.tensor([0.25, 0.75 + off], dtype=torch.float32).double()
    assert torch.equal(row.float().double(), row)
    A = torch.stack([row, torch.tensor([0.5, 0.5], dtype=torch.float64)])
    pi = torch.tensor([0.5, 0.5], dtype=torch.float64)
    ll = torch.zeros(3, 2, dtype=torch.float64)
    if raises:
        with pytest.raises(ValueError, match="transition: rows must sum to 1"):
            log_likelihood(pi, A, ll)
    else:
        log_likelihood(pi, A, ll)


def test_float64_values_off_by_a_float32_rounding_still_fail():
    # not float32 numbers: float64's own tolerance (1e-8) applies
    A = torch.tensor([[0.3, 0.7 + 5e-8], [0.5, 0.5]], dtype=torch.float64)
    assert not torch.equal(A.float().double(), A)
    with pytest.raises(ValueError, match="transition: rows must sum to 1"):
        log_likelihood(torch.tensor([0.5, 0.5], dtype=torch.float64), A,
                       torch.zeros(3, 2, dtype=torch.float64))


def test_sample_with_a_tensor_emission_says_what_emission_must_be():
    pi = torch.tensor([0.5, 0.5])
    A = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    B = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(ValueError, match=r"emission: expected a torch Distribution with batch "
                                         r"shape \[2\].*Categorical\(probs=B\)"):
        sample(pi, A, B, 3, 5, seed=0)


@pytest.mark.parametrize("call,message", [
    (lambda: learn(torch.tensor([[0, 1]]), 2, "gauss"), "emission: expected one of"),
    (lambda: learn(torch.tensor([[0, 1]]), 2, 3), "emission: expected one of"),
    (lambda: sample(torch.tensor([0.5, 0.5]), torch.eye(2), Normal(torch.zeros(2), 1.0), 2, 3,
                    "a"), "seed: expected an int"),
    (lambda: sample_stepwise(torch.tensor([0.5, 0.5]), torch.eye(2),
                             lambda z, g: torch.zeros(1), 0, 3, 0), "num_seqs: expected a"),
    (lambda: sample_stepwise(torch.tensor([0.5, 0.5]), torch.eye(2),
                             lambda z, g: torch.zeros(1), 2, 0, 0), "T: expected a positive"),
    (lambda: log_likelihood("a", torch.eye(2), torch.zeros(3, 2)), "initial: expected a tensor"),
    (lambda: log_likelihood(torch.tensor([0.5, 0.5]), torch.eye(2), torch.zeros(2, 3, 2),
                            lengths="ab"), "lengths: expected a tensor"),
])
def test_argument_errors_are_value_errors_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- learners on ragged and gappy data --------------------------------------------------------

def test_the_learners_model_scores_a_ragged_gappy_batch_as_each_sequence_alone():
    """The engine's masked emission is exact: log p(x | π, A, θ) of its `x` site equals the
    sum of `log_likelihood` over each sequence on its own, missing steps as zero rows."""
    from pyro import poutine

    from hmmblog.learning import Gaussian, hmm_model

    pi = torch.tensor([0.3, 0.7], dtype=torch.float64)
    A = torch.tensor([[0.9, 0.1], [0.4, 0.6]], dtype=torch.float64)
    loc = torch.tensor([-1.0, 2.0], dtype=torch.float64)
    scale = torch.tensor([0.5, 1.5], dtype=torch.float64)
    y = torch.randn(3, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y[0, 2] = float("nan")
    lengths = torch.tensor([6, 2, 4])
    x = y.masked_fill(torch.arange(6) >= lengths[:, None], float("nan"))  # what lengths= does
    model = poutine.condition(hmm_model, data={"pi": pi, "A": A, "locs": loc, "scales": scale})
    trace = poutine.trace(model).get_trace(Gaussian(), x, 2)
    site = trace.nodes["x"]
    ours = site["fn"].log_prob(site["value"]).sum()
    alone = sum(log_likelihood(pi, A, gaussian_log_lik(loc, scale, y[n, :L]))
                for n, L in enumerate(lengths.tolist()))
    torch.testing.assert_close(ours, alone, rtol=0, atol=1e-10)


def test_learners_take_lengths_and_ignore_the_padding():
    pi = torch.tensor([0.5, 0.5])
    A = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    B = torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
    _, x = sample(pi, A, Categorical(probs=B), 20, 100, 0)
    lengths = torch.randint(50, 101, (20,), generator=torch.Generator().manual_seed(2))
    past = torch.arange(100) >= lengths[:, None]
    one = learn_discrete(x.masked_fill(past, 0), 2, 3, steps=50, lengths=lengths)
    other = learn_discrete(x.masked_fill(past, 2), 2, 3, steps=50, lengths=lengths)
    assert one.losses == other.losses
    fit = learn_discrete(x, 2, 3, lengths=lengths)
    perm = align_states(fit.emission, B)
    torch.testing.assert_close(fit.emission[perm], B, atol=0.05, rtol=0)
    _, y = sample(pi, A, Normal(torch.tensor([0.0, 5.0]), torch.tensor([1.0, 1.0])), 20, 100, 0)
    fit = learn_gaussian(y.masked_fill(past, 1e6), 2, init="kmeans", lengths=lengths)
    torch.testing.assert_close(fit.loc.sort().values, torch.tensor([0.0, 5.0]), atol=0.15, rtol=0)
    with pytest.raises(ValueError, match="lengths: not available for poisson"):
        learn(x, 2, "poisson", lengths=lengths)
