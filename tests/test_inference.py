"""The inference core against oracles: every path enumerated, hmmlearn, and a plain loop."""

from __future__ import annotations

import itertools
import math
from unittest import mock

import numba
import numpy as np
import pytest
import torch
from hmmlearn import hmm
from hypothesis import given, settings
from hypothesis import strategies as st

from hmmblog import inference, log_likelihood, posterior, viterbi
from hmmblog.emissions import categorical_log_lik, gaussian_log_lik
from hmmblog.inference import forward_backward, rows


def random_model(K: int, M: int, seed: int, dtype=torch.float64, zeros: bool = False):
    """π [K], A [K, K], B [K, M] from Dirichlet(1); with `zeros`, some transitions forbidden."""
    g = torch.Generator().manual_seed(seed)
    def dirichlet(*shape):
        x = -torch.rand(*shape, generator=g, dtype=torch.float64).log()
        if zeros and x.shape[-1] > 1:
            x = x * (torch.rand(*shape, generator=g, dtype=torch.float64) > 0.3)
            x[..., 0] += (x.sum(-1) == 0).double()  # keep every row a distribution
        return (x / x.sum(-1, keepdim=True)).to(dtype)
    return dirichlet(K), dirichlet(K, K), dirichlet(K, M)


def brute_force(pi, A, log_lik):
    """Enumerate all K^T paths: (log p(x), marginals [T, K], best log p(z, x))."""
    T, K = log_lik.shape
    paths = torch.tensor(list(itertools.product(range(K), repeat=T)))
    log_joint = (pi.log()[paths[:, 0]] + A.log()[paths[:, :-1], paths[:, 1:]].sum(-1)
                 + log_lik[torch.arange(T), paths].sum(-1))
    evidence = log_joint.logsumexp(0)
    weights = (log_joint - evidence).exp()
    marginals = torch.stack([torch.zeros(K, dtype=pi.dtype).index_add(0, paths[:, t], weights)
                             for t in range(T)])
    return evidence, marginals, log_joint.max()


def path_log_joint(pi, A, log_lik, path):
    T = log_lik.shape[-2]
    return (pi.log()[path[0]] + A.log()[path[:-1], path[1:]].sum()
            + log_lik[torch.arange(T), path].sum())


def loop_reference(pi, A, log_lik):
    """The textbook recursions, one Python step per time step: (log p(x), marginals, best)."""
    log_A = A.log()
    alpha = [pi.log() + log_lik[0]]
    delta = pi.log() + log_lik[0]
    for t in range(1, log_lik.shape[0]):
        alpha.append((alpha[-1][:, None] + log_A).logsumexp(0) + log_lik[t])
        delta = (delta[:, None] + log_A).amax(0) + log_lik[t]
    beta = [torch.zeros_like(alpha[0])]
    for t in range(log_lik.shape[0] - 1, 0, -1):
        beta.append((log_A + log_lik[t] + beta[-1]).logsumexp(1))
    log_post = torch.stack(alpha) + torch.stack(beta[::-1])
    return alpha[-1].logsumexp(0), (log_post - log_post.logsumexp(1, keepdim=True)).exp(), \
        delta.max()


# -- brute force ------------------------------------------------------------------------------

@settings(max_examples=300)
@given(K=st.integers(1, 3), M=st.integers(1, 4), T=st.integers(1, 7),
       seed=st.integers(0, 2**31 - 1), zeros=st.booleans(), min_block=st.sampled_from([1, 2, 8]))
def test_matches_brute_force_enumeration(K, M, T, seed, zeros, min_block):
    # Short blocks make even these tiny sequences go through the blocked recursions.
    with mock.patch.object(forward_backward, "MIN_BLOCK", min_block):
        check_against_brute_force(K, M, T, seed, zeros)


def check_against_brute_force(K, M, T, seed, zeros):
    pi, A, B = random_model(K, M, seed, zeros=zeros)
    x = torch.randint(M, (T,), generator=torch.Generator().manual_seed(seed + 1))
    ll = categorical_log_lik(B, x)
    evidence, marginals, best = brute_force(pi, A, ll)
    if math.isinf(evidence):  # forbidden transitions made these observations impossible
        assert log_likelihood(pi, A, ll).item() == -math.inf
        with pytest.raises(ValueError, match="probability zero"):
            posterior(pi, A, ll)
        return
    torch.testing.assert_close(log_likelihood(pi, A, ll), evidence, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(posterior(pi, A, ll), marginals, rtol=1e-10, atol=1e-12)
    path, log_joint = viterbi(pi, A, ll)
    assert path.dtype == torch.int64 and path.shape == (T,)
    torch.testing.assert_close(log_joint, best, rtol=1e-12, atol=1e-12)
    # Ties between paths are structural (equal transition counts), so compare scores, not labels.
    torch.testing.assert_close(path_log_joint(pi, A, ll, path), best, rtol=1e-12, atol=1e-12)


def test_viterbi_path_is_the_brute_force_argmax_without_ties():
    pi, A, _ = random_model(3, 2, seed=7)
    ll = torch.randn(6, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    T, K = ll.shape
    paths = torch.tensor(list(itertools.product(range(K), repeat=T)))
    scores = torch.stack([path_log_joint(pi, A, ll, p) for p in paths])
    assert torch.equal(viterbi(pi, A, ll).path, paths[scores.argmax()])


# -- hmmlearn ---------------------------------------------------------------------------------

@pytest.mark.parametrize("K,M,seed", [(2, 3, 0), (3, 4, 1), (5, 4, 2), (8, 6, 3)])
def test_matches_hmmlearn_categorical(K, M, seed):
    pi, A, B = random_model(K, M, seed)
    model = hmm.CategoricalHMM(n_components=K, n_features=M)
    model.startprob_, model.transmat_, model.emissionprob_ = pi.numpy(), A.numpy(), B.numpy()
    rng = np.random.default_rng(seed)
    lengths = [2000, 1, 37, 500]
    for T in lengths:
        x = rng.integers(0, M, T)
        ll = categorical_log_lik(B, torch.from_numpy(x))
        X = x.reshape(-1, 1)
        assert log_likelihood(pi, A, ll).item() == pytest.approx(model.score(X), abs=1e-6)
        np.testing.assert_allclose(posterior(pi, A, ll).numpy(), model.predict_proba(X),
                                   atol=1e-6)
        best, _ = model.decode(X, algorithm="viterbi")
        assert viterbi(pi, A, ll).log_joint.item() == pytest.approx(best, abs=1e-6)


def test_gaussian_log_lik_matches_torch_normal():
    loc = torch.tensor([0.0, 5.0, 10.0], dtype=torch.float64)
    scale = torch.tensor([0.7, 1.3, 2.0], dtype=torch.float64)
    y = torch.randn(4, 9, dtype=torch.float64) * 5
    expected = torch.distributions.Normal(loc, scale).log_prob(y.unsqueeze(-1))
    torch.testing.assert_close(gaussian_log_lik(loc, scale, y), expected)


# -- the blocked recursions against the plain loop, batching, precision, long sequences -------

def assert_matches_plain_loop(pi, A, ll):
    """log-likelihood, marginals and Viterbi score of `ll [T, K]` equal the textbook loop's."""
    evidence, marginals, best = loop_reference(pi, A, ll)
    torch.testing.assert_close(log_likelihood(pi, A, ll), evidence, rtol=1e-11, atol=1e-9)
    torch.testing.assert_close(posterior(pi, A, ll), marginals, rtol=1e-9, atol=1e-10)
    path, log_joint = viterbi(pi, A, ll)
    torch.testing.assert_close(log_joint, best, rtol=1e-11, atol=1e-9)
    torch.testing.assert_close(path_log_joint(pi, A, ll, path), best, rtol=1e-11, atol=1e-9)

@pytest.mark.parametrize("T", [2, 3, 17, 1000, 4099])
def test_blocked_recursions_match_the_plain_loop(T):
    pi, A, _ = random_model(4, 2, seed=T)
    ll = 3 * torch.randn(T, 4, generator=torch.Generator().manual_seed(T), dtype=torch.float64)
    assert_matches_plain_loop(pi, A, ll)


@pytest.mark.parametrize("batch", [(5,), (2, 3), (4100,)])  # (4100,) needs no time blocks
def test_batched_equals_looped(batch):
    pi, A, _ = random_model(3, 2, seed=11)
    T = 29
    ll = torch.randn(*batch, T, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    flat = ll.reshape(-1, T, 3)
    idx = range(flat.shape[0]) if flat.shape[0] < 50 else range(0, flat.shape[0], 97)
    lls, posts, paths = log_likelihood(pi, A, ll), posterior(pi, A, ll), viterbi(pi, A, ll)
    assert lls.shape == batch and posts.shape == (*batch, T, 3) and paths.path.shape == (*batch, T)
    for i in idx:
        torch.testing.assert_close(lls.reshape(-1)[i], log_likelihood(pi, A, flat[i]))
        torch.testing.assert_close(posts.reshape(-1, T, 3)[i], posterior(pi, A, flat[i]))
        one = viterbi(pi, A, flat[i])
        assert torch.equal(paths.path.reshape(-1, T)[i], one.path)
        torch.testing.assert_close(paths.log_joint.reshape(-1)[i], one.log_joint)


def test_float32_agrees_with_float64():
    pi, A, B = random_model(4, 5, seed=3)
    x = torch.randint(5, (8, 1500), generator=torch.Generator().manual_seed(0))
    ll64 = categorical_log_lik(B, x)
    pi32, A32, ll32 = pi.float(), A.float(), ll64.float()
    out64, out32 = log_likelihood(pi, A, ll64), log_likelihood(pi32, A32, ll32)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), out64, rtol=1e-5, atol=0)
    torch.testing.assert_close(posterior(pi32, A32, ll32).double(), posterior(pi, A, ll64),
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(viterbi(pi32, A32, ll32).log_joint.double(),
                               viterbi(pi, A, ll64).log_joint, rtol=1e-5, atol=0)


@pytest.mark.slow
def test_a_million_steps_neither_underflow_nor_overflow():
    pi, A, B = random_model(3, 4, seed=1)
    x = torch.randint(4, (1_000_000,), generator=torch.Generator().manual_seed(2))
    ll = categorical_log_lik(B, x)
    total = log_likelihood(pi, A, ll)
    assert torch.isfinite(total) and total < -1e5  # ~ -1.2 nats a step, nowhere near 0 or -inf
    post = posterior(pi, A, ll)
    assert torch.isfinite(post).all()
    torch.testing.assert_close(post.sum(-1), torch.ones(len(x), dtype=torch.float64))
    path, log_joint = viterbi(pi, A, ll)
    assert torch.isfinite(log_joint) and log_joint <= total
    torch.testing.assert_close(path_log_joint(pi, A, ll, path), log_joint, rtol=1e-12, atol=0)


# -- bad input --------------------------------------------------------------------------------

PI = torch.tensor([0.6, 0.4])
A2 = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
LL = torch.zeros(5, 2)


@pytest.mark.parametrize("fn", [log_likelihood, posterior, viterbi])
@pytest.mark.parametrize("initial,transition,log_lik,message", [
    (torch.tensor([[0.6, 0.4]]), A2, LL, r"initial: expected shape \[K\]"),
    (torch.tensor([0.6, 0.5]), A2, LL, "initial: entries must sum to 1"),
    (torch.tensor([1.2, -0.2]), A2, LL, "initial: probabilities must be >= 0"),
    (torch.tensor([float("nan"), 1.0]), A2, LL, "initial: contains NaN"),
    (PI, torch.tensor([[0.7, 0.3], [0.4, 0.5]]), LL, "transition: rows must sum to 1"),
    (PI, torch.ones(3, 3) / 3, LL, r"transition: expected shape \(2, 2\), got \(3, 3\)"),
    (PI, A2, torch.zeros(5, 3), r"log_lik: expected shape \[\.\.\., T, K\] with K = 2"),
    (PI, A2, torch.zeros(2), r"log_lik: expected shape \[\.\.\., T, K\]"),
    (PI, A2, torch.zeros(0, 2), "T >= 1"),
    (PI, A2, torch.tensor([[0.0, float("nan")]]), "log_lik: contains NaN"),
    (PI, A2, torch.tensor([[0.0, float("inf")]]), r"log_lik: contains \+inf"),
    (PI, A2, torch.zeros(5, 2, dtype=torch.long), "log_lik: expected a floating tensor"),
])
def test_bad_input_raises_a_clear_value_error(fn, initial, transition, log_lik, message):
    with pytest.raises(ValueError, match=message):
        fn(initial, transition, log_lik)


@pytest.mark.parametrize("dtype,off,raises", [
    # the tolerance on sums of probabilities is 1e-8 in float64 and 1e-4 in float32: cases
    # just outside it must raise, cases just inside must not
    (torch.float64, 1e-7, True),
    (torch.float64, 1e-9, False),
    (torch.float32, 1e-3, True),
    (torch.float32, 1e-5, False),
])
@pytest.mark.parametrize("where", ["initial", "transition"])
def test_sums_of_probabilities_are_checked_to_the_dtype_tolerance(dtype, off, raises, where):
    pi = torch.tensor([0.6, 0.4 + (off if where == "initial" else 0.0)], dtype=torch.float64)
    A = torch.tensor([[0.7, 0.3], [0.4, 0.6 + (off if where == "transition" else 0.0)]],
                     dtype=torch.float64)
    pi, A, ll = pi.to(dtype), A.to(dtype), torch.zeros(5, 2, dtype=dtype)
    assert abs((pi if where == "initial" else A[1]).sum().item() - 1) == pytest.approx(
        off, rel=0.2)  # the case is what it says after rounding to the dtype
    if raises:
        with pytest.raises(ValueError, match=f"{where}: .*must sum to 1"):
            log_likelihood(pi, A, ll)
    else:
        log_likelihood(pi, A, ll)


def test_bad_emission_input_raises_clear_errors():
    B = torch.tensor([[0.1, 0.4, 0.5], [0.6, 0.3, 0.1]])
    with pytest.raises(ValueError, match=r"observations: symbols must lie in 0\.\.2"):
        categorical_log_lik(B, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="observations: expected integer symbols"):
        categorical_log_lik(B, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="emission: rows must sum to 1"):
        categorical_log_lik(B * 2, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="scale: expected finite values > 0"):
        gaussian_log_lik(torch.zeros(2), torch.tensor([1.0, 0.0]), torch.zeros(3))
    # NaN is a missing reading (issue 14): a row of zeros, no evidence, not an error
    assert gaussian_log_lik(torch.zeros(2), torch.ones(2),
                            torch.tensor([0.0, float("nan")]))[1].tolist() == [0.0, 0.0]


# -- gradients (the learners differentiate log_likelihood) ------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [(), (3,), (2000,)])  # time blocks, and one plain pass
def test_gradients_are_finite_when_a_state_is_far_from_every_point(dtype, batch):
    """A Gaussian state 1000 sd from all data has p(x | k) = 0 in floating point; the
    log-likelihood must still have finite gradients (no log of an underflowed zero)."""
    g = torch.Generator().manual_seed(0)
    y = torch.randn(*batch, 500, generator=g, dtype=dtype)
    loc = torch.tensor([0.0, 1.0, 1e3], dtype=dtype, requires_grad=True)
    scale = torch.ones(3, dtype=dtype, requires_grad=True)
    logits = torch.zeros(3, 3, dtype=dtype, requires_grad=True)
    A = logits.softmax(-1)
    pi = torch.full((3,), 1 / 3, dtype=dtype)
    total = log_likelihood(pi, A, gaussian_log_lik(loc, scale, y)).sum()
    total.backward()
    assert torch.isfinite(total)
    for p in (loc, scale, logits):
        assert torch.isfinite(p.grad).all(), p.grad
    # and the gradient is right: compare with the plain recursion in float64
    if dtype == torch.float64 and batch == ():
        loc2 = loc.detach().clone().requires_grad_()
        ref = loop_reference(pi, A.detach(), gaussian_log_lik(loc2, scale.detach(), y))[0]
        ref.backward()
        torch.testing.assert_close(loc.grad, loc2.grad, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("K", [20, 50])  # 20: time blocks; 50: the plain recursion (K³ too big)
def test_many_states_match_the_plain_loop(K):
    pi, A, _ = random_model(K, 2, seed=K)
    ll = torch.randn(300, K, generator=torch.Generator().manual_seed(K), dtype=torch.float64)
    assert_matches_plain_loop(pi, A, ll)


# -- factorial Viterbi: many chains, one emission ---------------------------------------------

@settings(max_examples=60)
@given(sizes=st.lists(st.integers(1, 3), min_size=1, max_size=3), T=st.integers(1, 40),
       seed=st.integers(0, 2**31 - 1), zeros=st.booleans())
def test_factorial_viterbi_is_viterbi_on_the_product_chain(sizes, T, seed, zeros):
    chains = [random_model(K, 1, seed + m, zeros=zeros)[:2] for m, K in enumerate(sizes)]
    initials, transitions = [c[0] for c in chains], [c[1] for c in chains]
    g = torch.Generator().manual_seed(seed)
    ll = 3 * torch.randn(2, T, *sizes, generator=g, dtype=torch.float64)
    got = inference.factorial_viterbi(initials, transitions, ll)
    pi, A = inference.product_chain(initials, transitions)
    flat = ll.flatten(-len(sizes))
    ref = viterbi(pi, A, flat)
    assert got.path.shape == (2, len(sizes), T)
    torch.testing.assert_close(got.log_joint, ref.log_joint, rtol=1e-12, atol=1e-9)
    # the per-chain paths are a best joint path: score them on the product chain
    joint = sum(got.path[:, m] * math.prod(sizes[m + 1:]) for m in range(len(sizes)))
    for r in range(2):
        torch.testing.assert_close(path_log_joint(pi, A, flat[r], joint[r]), ref.log_joint[r],
                                   rtol=1e-12, atol=1e-9)


def test_factorial_viterbi_matches_brute_force_on_two_chains():
    chains = [random_model(2, 1, 7)[:2], random_model(3, 1, 8)[:2]]
    ll = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    pi, A = inference.product_chain([c[0] for c in chains], [c[1] for c in chains])
    _, _, best = brute_force(pi, A, ll.flatten(-2))
    got = inference.factorial_viterbi([c[0] for c in chains], [c[1] for c in chains], ll)
    torch.testing.assert_close(got.log_joint, best, rtol=1e-12, atol=1e-12)


def test_viterbi_paths_cut_into_sequences_equals_separate_calls():
    pi, A, _ = random_model(3, 1, seed=2)
    ll = torch.randn(2, 60, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    start = torch.zeros(2, 60, dtype=torch.bool)
    start[0, 17] = start[1, 40] = start[1, 41] = True  # pieces 0-16, 17-59; 0-39, 40, 41-59
    chains = inference.factorial_chains([pi], [A])
    got = inference.viterbi_paths(chains, ll, start)
    assert isinstance(got, np.ndarray) and got.dtype == np.int64  # one return type
    for r, cuts in enumerate([[0, 17, 60], [0, 40, 41, 60]]):
        for a, b in itertools.pairwise(cuts):
            assert np.array_equal(got[r, a:b], viterbi(pi, A, ll[r, a:b]).path.numpy())
    as_array = inference.viterbi_paths(chains, ll.numpy(), start.numpy())  # no torch round trip
    assert isinstance(as_array, np.ndarray) and np.array_equal(as_array, got)
    assert start.sum() == 3  # the caller's flags are not overwritten


def test_threads_give_the_paths_one_thread_gives():
    pi, A, _ = random_model(8, 1, seed=5)
    ll = torch.randn(40, 2000, 8, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    chains = inference.factorial_chains([pi], [A])
    assert len(rows.split_rows(40, 2000 * 8 * 8)) == min(numba.config.NUMBA_NUM_THREADS, 40)
    threaded = inference.viterbi_paths(chains, ll)
    threaded_one_chain = viterbi(pi, A, ll).path
    with mock.patch.object(rows, "split_rows", lambda n, work: [(0, n)]):
        serial = inference.viterbi_paths(chains, ll)
        serial_one_chain = viterbi(pi, A, ll).path
    assert np.array_equal(threaded, serial)
    assert torch.equal(threaded_one_chain, serial_one_chain)
    assert np.array_equal(serial, serial_one_chain.numpy())


def test_factorial_viterbi_bad_input_raises_clear_errors():
    pi = torch.tensor([0.6, 0.4], dtype=torch.float64)
    A = torch.tensor([[0.7, 0.3], [0.4, 0.6]], dtype=torch.float64)
    with pytest.raises(ValueError, match="expected one π and one A per chain"):
        inference.factorial_viterbi([pi], [A, A], torch.zeros(5, 2, 2))
    with pytest.raises(ValueError, match="chain 1: transition: rows must sum to 1"):
        inference.factorial_viterbi([pi, pi], [A, A * 2], torch.zeros(5, 2, 2))
    with pytest.raises(ValueError, match=r"log_lik: expected shape \[\.\.\., T, 2, 2\]"):
        inference.factorial_viterbi([pi, pi], [A, A], torch.zeros(5, 4))
    with pytest.raises(ValueError, match="log_lik: contains NaN"):
        inference.factorial_viterbi([pi, pi], [A, A], torch.full((5, 2, 2), float("nan")))
