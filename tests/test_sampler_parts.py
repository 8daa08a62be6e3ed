"""The pieces under the posterior sampler, each against an independent answer: paths drawn by
forward filtering, backward sampling against p(z | x) by enumeration; the Metropolis moves'
target against the model's own log density (Pyro's trace); each family's Gibbs conditional
against its exact conditional."""

import itertools
import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine

import hmmblog
from hmmblog.learning import FAMILIES, hmm_model
from hmmblog.learning.engine import filled
from hmmblog.learning.metropolis import MarginalTarget

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_hmm(seed=0, K=3, T=4):
    g = torch.Generator().manual_seed(seed)
    pi = torch.rand(K, generator=g, dtype=torch.float64).softmax(0)
    A = torch.rand(K, K, generator=g, dtype=torch.float64).mul(3).softmax(-1)
    ll = torch.randn(T, K, generator=g, dtype=torch.float64) * 2
    return pi, A, ll


def test_sampled_paths_follow_the_enumerated_posterior():
    """K = 3, T = 4: 81 paths. 40 000 draws; the frequency of every path is within 4.5
    binomial standard errors of p(z | x), and log p(x) is the forward algorithm's."""
    pi, A, ll = small_hmm()
    ll[2] = 0.0  # a step without evidence
    draws = hmmblog.inference.sample_paths(pi, A, ll, 40_000, seed=3)
    assert draws.paths.shape == (40_000, 4)
    paths = list(itertools.product(range(3), repeat=4))
    joint = torch.stack([
        pi[z[0]].log() + sum(A[z[t - 1], z[t]].log() for t in range(1, 4))
        + sum(ll[t, z[t]] for t in range(4)) for z in paths])
    exact = (joint - joint.logsumexp(0)).exp()
    code = (draws.paths * torch.tensor([27, 9, 3, 1])).sum(-1)
    freq = torch.bincount(code, minlength=81).double() / 40_000
    se = (exact * (1 - exact) / 40_000).sqrt()
    assert ((freq - exact).abs() <= 4.5 * se + 1e-4).all()
    assert math.isclose(float(draws.log_likelihood), float(joint.logsumexp(0)), rel_tol=1e-12)
    assert math.isclose(float(draws.log_likelihood),
                        float(hmmblog.log_likelihood(pi, A, ll)), rel_tol=1e-10)


def test_sampled_paths_are_seeded_batched_and_long_sequences_stay_finite():
    pi, A, _ = small_hmm(K=2)
    ll = torch.randn(3, 20_000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    a = hmmblog.inference.sample_paths(pi, A, ll * 30, 2, seed=5)
    b = hmmblog.inference.sample_paths(pi, A, ll * 30, 2, seed=5)
    assert torch.equal(a.paths, b.paths) and a.paths.shape == (2, 3, 20_000)
    assert torch.isfinite(a.log_likelihood).all()
    assert torch.allclose(a.log_likelihood, hmmblog.log_likelihood(pi, A, ll * 30),
                          rtol=1e-9)
    with pytest.raises(ValueError, match="^num_samples:"):
        hmmblog.inference.sample_paths(pi, A, ll, 0)


def model_log_density(family, x, K, M, values):
    """log p(x, π, A, θ) of `hmm_model` at `values`, by Pyro's own trace."""
    conditioned = poutine.condition(hmm_model, data={k: torch.as_tensor(v)
                                                     for k, v in values.items()})
    with pyro.validation_enabled(False):
        trace = poutine.trace(conditioned).get_trace(family, x, K, M)
    return float(trace.log_prob_sum())


def jacobian(values):
    """log |dθ/du| of the sampler's maps: Σ log y over a simplex (additive log-ratio), log y
    for a positive value, 0 for a real one."""
    total = 0.0
    for name, v in values.items():
        v = np.asarray(v)
        total += float(np.log(v).sum()) if name != "locs" else 0.0
    return total


@pytest.mark.parametrize("name", ["categorical", "gaussian", "poisson"])
def test_metropolis_target_is_the_models_log_density(name):
    """Differences of the target between two points equal differences of the model's log
    density plus the maps' Jacobians: no term is missing or doubled."""
    family = FAMILIES[name]
    g = torch.Generator().manual_seed(2)
    if name == "categorical":
        x, M = torch.randint(0, 3, (3, 30), generator=g), 3
    elif name == "gaussian":
        x, M = torch.randn(3, 30, generator=g, dtype=torch.float64) * 2 + 1, None
        x[1, 5:9] = float("nan")
    else:
        x, M = torch.poisson(torch.full((3, 30), 4.0), generator=g).double(), None
    x_filled, _, missing = filled(family, x.unsqueeze(0))
    target = MarginalTarget(family, x_filled, missing, 2, M)
    rng = np.random.default_rng(0)
    points = []
    for _ in range(2):
        values = {"pi": rng.dirichlet([1, 1]), "A": rng.dirichlet([1, 1], 2)}
        if name == "categorical":
            values["B"] = rng.dirichlet([1, 1, 1], 2)
        elif name == "gaussian":
            values |= {"locs": rng.normal(1, 2, 2), "scales": rng.gamma(2, 1, 2)}
        else:
            values["rates"] = rng.gamma(4, 1, 2)
        u = target.pack({k: v[None] for k, v in values.items()})
        lp, back = target(u)
        for k, v in values.items():
            assert np.allclose(back[k][0], v)
        points.append((float(lp[0]), model_log_density(family, x, 2, M, values)
                       + jacobian(values)))
    (t1, m1), (t2, m2) = points
    assert math.isclose(t1 - t2, m1 - m2, rel_tol=1e-9, abs_tol=1e-8)


def test_gaussian_conditional_leaves_the_exact_conditional_invariant():
    """One state, the path fixed: many Gibbs steps of (μ, σ) from the family's conditional
    match p(μ, σ | x) on a grid (means and sds)."""
    family = FAMILIES["gaussian"]
    g = torch.Generator().manual_seed(4)
    x = (2 + 0.5 * torch.randn(1, 1, 4, generator=g, dtype=torch.float64)).numpy()
    observed = np.ones_like(x, dtype=bool)
    z = np.zeros(x.shape, np.int64)
    rng = np.random.default_rng(1)
    theta = {"locs": np.array([[0.0]]), "scales": np.array([[1.0]])}
    draws = []
    for _ in range(40_000):
        theta = family.conditional(x, observed, z, theta, 1, None, rng)
        draws.append((theta["locs"][0, 0], theta["scales"][0, 0]))
    draws = np.array(draws[1000:])
    mu = np.linspace(-6, 10, 1201)  # four readings: the prior matters and the tails are long
    sigma = np.linspace(0.005, 12, 1201)
    m, s = np.meshgrid(mu, sigma, indexing="ij")
    flat = x.ravel()
    center, spread = flat.mean(), 3 * flat.std(ddof=1)
    log_p = (-0.5 * ((m - center) / spread) ** 2 - np.log(s) - 0.5 * np.log(s) ** 2
             - len(flat) * np.log(s) - ((flat[:, None, None] - m) ** 2).sum(0) / (2 * s**2))
    w = np.exp(log_p - log_p.max())
    w /= w.sum()
    for column, grid in ((0, m), (1, s)):
        mean = (w * grid).sum()
        sd = np.sqrt((w * (grid - mean) ** 2).sum())
        assert abs(draws[:, column].mean() - mean) < 0.05 * sd
        assert abs(draws[:, column].std() / sd - 1) < 0.05


def test_categorical_and_poisson_conditionals_are_their_conjugate_posteriors():
    rng = np.random.default_rng(3)
    x = np.array([[[0, 1, 1, 2, 0, 1]]])
    z = np.array([[[0, 0, 1, 1, 0, 1]]])
    seen = np.ones_like(x, dtype=bool)
    seen[0, 0, 3] = False  # a missing step counts for nothing
    draws = np.stack([FAMILIES["categorical"].conditional(x, seen, z, {}, 2, 3, rng)["B"][0]
                      for _ in range(20_000)])
    counts = np.array([[2, 1, 0], [0, 2, 0]]) + 1.0
    assert np.allclose(draws.mean(0), counts / counts.sum(-1, keepdims=True), atol=0.01)
    xp = np.array([[[3.0, 5, 1, 0, 2]]])
    zp = np.array([[[0, 0, 1, 1, 0]]])
    seen = np.ones_like(xp, dtype=bool)
    draws = np.stack([FAMILIES["poisson"].conditional(xp, seen, zp, {}, 2, None, rng)["rates"][0]
                      for _ in range(20_000)])
    rate = 1 / xp.mean() + np.array([3, 2])
    exact = dist.Gamma(torch.tensor(1 + np.array([10.0, 1.0])), torch.tensor(rate))
    assert np.allclose(draws.mean(0), exact.mean.numpy(), rtol=0.02)
    assert np.allclose(draws.std(0), exact.stddev.numpy(), rtol=0.05)
