"""`sample_posterior`: both samplers (Gibbs with Metropolis moves, and NUTS) against exact
posteriors, calibration, label switching, determinism, the caller's global state, ArviZ's
diagnostics and argument errors. Runs are tiny (tens of steps, a few hundred draws) so the
file stays fast; simulation-based calibration is in `test_calibration.py`."""

import math
import random

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

import hmmblog
from hmmblog.learning.posterior import az, diagnostics, interval

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NUTS = {"sampler": "nuts", "num_samples": 200, "warmup": 100, "max_tree_depth": 3,
        "num_chains": 2, "thin": 1}
GIBBS = {"sampler": "gibbs", "num_samples": 300, "warmup": 100, "num_chains": 2}
SAMPLERS = pytest.mark.parametrize("FAST", [GIBBS, NUTS], ids=["gibbs", "nuts"])


@SAMPLERS
def test_one_state_categorical_matches_its_dirichlet_posterior(FAST):
    """K = 1: π = A = 1, and B | x ~ Dirichlet(1 + counts) exactly."""
    x = torch.tensor([[0, 2, 1, 0, 0, 2, 0, 1, 0, 0, 2, 0, 1, 0, 0, 0, 2, 1, 0, 0]])
    post = hmmblog.sample_posterior(x, 1, "categorical", M=3, seed=3, **FAST)
    alpha = torch.bincount(x.flatten(), minlength=3).double() + 1
    exact = dist.Dirichlet(alpha)
    mean, sd = exact.mean, exact.variance.sqrt()
    draws = post.emission[:, 0].double()
    ess = post.ess["emission"][0]
    # within 4 Monte Carlo standard errors (sd / sqrt(ESS)) of the exact moments
    assert ((draws.mean(0) - mean).abs() < 4 * sd / ess.sqrt()).all()
    assert ((draws.std(0) / sd - 1).abs() < 0.25).all()
    assert torch.all(post.initial == 1) and torch.all(post.transition == 1)


@SAMPLERS
def test_one_state_gaussian_matches_a_grid_posterior(FAST):
    """K = 1 Gaussian: p(μ, σ | x) on a fine grid, with the family's own priors
    (μ ~ N(mean x, 3 std x), σ ~ LogNormal(0, 1)); posterior means and sds agree."""
    g = torch.Generator().manual_seed(11)
    x = (1.5 + 0.8 * torch.randn(1, 25, generator=g, dtype=torch.float64))
    post = hmmblog.sample_posterior(x, 1, "gaussian", seed=1, **FAST)
    mu = torch.linspace(0.5, 2.5, 401, dtype=torch.float64)
    sigma = torch.linspace(0.3, 2.0, 401, dtype=torch.float64)
    m, s = torch.meshgrid(mu, sigma, indexing="ij")
    log_p = (dist.Normal(x.mean(), 3 * x.std()).log_prob(m)
             + dist.LogNormal(0.0, 1.0).log_prob(s)
             + dist.Normal(m[..., None], s[..., None]).log_prob(x[0]).sum(-1))
    w = (log_p - log_p.max()).exp()
    w = w / w.sum()
    for draws, grid in ((post.loc[:, 0], m), (post.scale[:, 0], s)):
        mean = (w * grid).sum()
        sd = (w * (grid - mean) ** 2).sum().sqrt()
        assert abs(draws.mean() - mean) < 4 * sd / math.sqrt(80)  # ESS >= 80 (below)
        assert abs(draws.std() / sd - 1) < 0.25
    assert post.ess["loc"].min() > 80 and post.r_hat["loc"].max() < 1.05


@SAMPLERS
def test_one_state_poisson_matches_its_gamma_posterior(FAST):
    """K = 1 Poisson: λ | x ~ Gamma(1 + Σx, 1 / mean(x) + n) exactly (the family's prior)."""
    x = torch.tensor([[3.0, 5, 2, 4, 6, 3, 2, 5, 4, 4, 7, 1, 3, 4, 5]])
    post = hmmblog.sample_posterior(x, 1, "poisson", seed=2, **FAST)
    exact = dist.Gamma(1 + x.sum(), 1 / x.mean() + x.numel())
    draws = post.rate[:, 0].double()
    ess = float(post.ess["rate"][0])
    assert ess > 80
    assert abs(draws.mean() - exact.mean) < 4 * exact.stddev / math.sqrt(ess)
    assert abs(draws.std() / exact.stddev - 1) < 0.25


@SAMPLERS
def test_calibration_by_simulation_one_state_batch(FAST):
    """Truths drawn from the prior, one dataset each (side by side in one run): the 80 %
    intervals of B[0, 0] contain the truth about 80 % of the time (binomial bounds)."""
    D, T = 40, 8
    g = torch.Generator().manual_seed(5)
    truth = torch.rand(D, generator=g, dtype=torch.float64)  # B[0, 0] ~ Beta(1, 1) = Dir(1)
    x = (torch.rand(D, 1, T, generator=g, dtype=torch.float64) >= truth[:, None, None]).long()
    x[:, 0, 0] = torch.tensor([0, 1]).repeat(D // 2)  # both symbols seen in the batch
    post = hmmblog.sample_posterior(x, 1, "categorical", M=2, seed=0, **FAST)
    lo, hi = interval(post.emission[:, :, 0, 0], 0.8)
    inside = int(((lo <= truth) & (truth <= hi)).sum())
    # Binomial(40, 0.8): P(X < 25) and P(X > 38) are both below 0.002
    assert 25 <= inside <= 38, inside
    # and the exact answer per dataset: Beta(1 + #0, 1 + #1)
    zeros = (x[:, 0] == 0).sum(-1).double()
    exact_mean = (1 + zeros) / (2 + T)
    assert (post.emission[:, :, 0, 0].mean(0) - exact_mean).abs().max() < 0.05


def two_state_gaussian(seed=2, T=80):
    pi = torch.tensor([0.5, 0.5], dtype=torch.float64)
    A = torch.tensor([[0.9, 0.1], [0.1, 0.9]], dtype=torch.float64)
    em = dist.Normal(torch.tensor([-3.0, 3.0], dtype=torch.float64),
                     torch.tensor([1.0, 1.0], dtype=torch.float64))
    return hmmblog.sample(pi, A, em, 1, T, seed=seed)[1]


@pytest.mark.parametrize("sampler", ["gibbs", "nuts"])
def test_relabelling_undoes_chains_that_swap_labels(sampler):
    """Chain 0 starts at the MAP fit, chain 1 at the same fit with the states swapped: the
    modes are far apart, so the chains stay in their own labelling. Raw draws disagree
    (huge r-hat); relabelled to the reference they agree."""
    x = two_state_gaussian()
    fit = hmmblog.learn(x, 2, "gaussian", init="kmeans", steps=300)
    start = {"pi": fit.initial, "A": fit.transition, "locs": fit.loc, "scales": fit.scale}
    swap = torch.tensor([1, 0])
    swapped = {"pi": fit.initial[swap], "A": fit.transition[swap][:, swap],
               "locs": fit.loc[swap], "scales": fit.scale[swap]}
    kwargs = {"num_samples": 60, "warmup": 60, "max_tree_depth": 3, "reference": fit,
              "init": [start, swapped], "seed": 0, "num_chains": 2, "sampler": sampler,
              "thin": 1}
    post = hmmblog.sample_posterior(x, 2, "gaussian", **kwargs)
    raw_rhat = diagnostics({"loc": post.raw["loc"]}, 2)[0]["loc"]
    assert raw_rhat.min() > 1.5  # rank-normalised: two chains that never meet give ~1.84
    assert post.r_hat["loc"].max() < 1.1
    assert post.relabelled == 60  # every draw of the swapped chain
    assert torch.allclose(post.loc.mean(0), fit.loc, atol=0.5)
    assert (post.loc[:, 0] < post.loc[:, 1]).all() == bool(fit.loc[0] < fit.loc[1])
    unrelabelled = hmmblog.sample_posterior(x, 2, "gaussian", relabel_draws=False, **kwargs)
    assert torch.equal(unrelabelled.loc, post.raw["loc"])


@pytest.mark.parametrize("sampler", ["gibbs", "nuts"])
def test_same_seed_same_draws_and_the_callers_state_is_kept(sampler):
    x = two_state_gaussian(T=40)
    pyro.clear_param_store()
    pyro.param("mine", torch.tensor(1.5))
    torch.manual_seed(123)
    random.seed(4)
    np.random.seed(5)  # noqa: NPY002 (the legacy global state Pyro seeds)
    states = torch.get_rng_state(), random.getstate(), np.random.get_state()  # noqa: NPY002
    threads = torch.get_num_threads()
    kwargs = {"num_samples": 30, "warmup": 30, "max_tree_depth": 3, "seed": 7,
              "sampler": sampler, "num_chains": 2}
    a = hmmblog.sample_posterior(x, 2, "gaussian", **kwargs)
    assert torch.equal(torch.get_rng_state(), states[0])
    assert random.getstate() == states[1]
    assert np.array_equal(np.random.get_state()[1], states[2][1])  # noqa: NPY002
    assert list(pyro.get_param_store().keys()) == ["mine"]
    assert pyro.param("mine").item() == 1.5
    assert torch.get_num_threads() == threads
    b = hmmblog.sample_posterior(x, 2, "gaussian", **kwargs)
    for name, value in a.draws().items():
        assert torch.equal(value, b.draws()[name]), name
    c = hmmblog.sample_posterior(x, 2, "gaussian", **{**kwargs, "seed": 8})
    assert not torch.equal(a.loc, c.loc)
    pyro.clear_param_store()


@pytest.mark.parametrize("sampler", ["gibbs", "nuts"])
def test_lengths_equal_padding_with_missing_values_and_summary_rows(sampler):
    x = two_state_gaussian(T=40).repeat(2, 1)
    padded = x.clone()
    padded[1, 25:] = float("nan")
    kwargs = {"num_samples": 20, "warmup": 20, "max_tree_depth": 3, "seed": 0,
              "num_chains": 2, "sampler": sampler}
    a = hmmblog.sample_posterior(padded, 2, "gaussian", **kwargs)
    b = hmmblog.sample_posterior(x, 2, "gaussian", lengths=torch.tensor([40, 25]), **kwargs)
    assert torch.equal(a.loc, b.loc) and torch.equal(a.transition, b.transition)
    rows = a.summary(prob=0.8)
    assert len(rows) == 2 + 4 + 2 + 2
    assert list(rows[0]) == ["parameter", "mean", "sd", "10%", "90%", "r_hat", "ess",
                             "ess_tail"]
    assert [r["parameter"] for r in rows[:3]] == ["π[0]", "π[1]", "A[0,0]"]
    assert all(r["10%"] <= r["mean"] <= r["90%"] for r in rows)
    assert "μ[1]" in str(rows)


def test_diagnostics_are_arviz_rank_normalised_rhat_bulk_and_tail_ess():
    """iid draws: r-hat near 1, bulk ESS near the number of draws; chains with different
    means: r-hat far above 1. The wrapper cuts `[chains * S]` into chains in order and
    gives exactly ArviZ's numbers."""
    g = torch.Generator().manual_seed(0)
    iid = torch.randn(4 * 500, 3, generator=g, dtype=torch.float64)
    r_hat, ess, tail = (d["v"] for d in diagnostics({"v": iid}, 4))
    assert (r_hat - 1).abs().max() < 0.01
    assert ((ess / 2000 - 1).abs() < 0.25).all() and ((tail / 2000 - 1).abs() < 0.3).all()
    data = az.convert_to_dataset(iid.reshape(4, 500, 3).numpy())  # one variable: "x"
    assert np.allclose(r_hat.numpy(), az.rhat(data)["x"].values)
    assert np.allclose(tail.numpy(), az.ess(data, method="tail")["x"].values)
    shifted = iid + torch.arange(4, dtype=torch.float64).repeat_interleave(500)[:, None]
    assert diagnostics({"v": shifted}, 4)[0]["v"].min() > 1.5


def test_to_arviz_gives_chains_as_chains_and_the_relabelled_draws():
    x = two_state_gaussian(T=40)
    post = hmmblog.sample_posterior(x, 2, "gaussian", num_samples=40, warmup=40, seed=1,
                                    num_chains=3)
    data = post.to_arviz()
    assert dict(data.posterior.sizes)["chain"] == 3
    assert dict(data.posterior.sizes)["draw"] == 40
    assert np.array_equal(data.posterior["loc"].values.reshape(120, 2), post.loc.numpy())
    assert np.array_equal(data.sample_stats["raw_loc"].values.reshape(120, 2),
                          post.raw["loc"].numpy())
    assert np.allclose(az.rhat(data)["loc"].values, post.r_hat["loc"].numpy())
    assert np.allclose(az.ess(data, method="tail")["scale"].values, post.ess_tail["scale"])
    table = az.summary(data, var_names=["loc"])
    assert list(table.index) == ["loc[0]", "loc[1]"]
    assert data.attrs["sampler"] == "gibbs"


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"emission": "cauchy"}, "emission"),
    ({"K": 0}, "K"),
    ({"num_samples": 0}, "num_samples"),
    ({"warmup": -1}, "warmup"),
    ({"num_chains": 1.5}, "num_chains"),
    ({"seed": "a"}, "seed"),
    ({"init": "kmeans"}, "init"),
    ({"init": [{}]}, "init"),
    ({"emission": "categorical", "standardize": True}, "standardize"),
    ({"reference": "map"}, "reference"),
    ({"max_tree_depth": 0}, "max_tree_depth"),
    ({"sampler": "hmc"}, "sampler"),
    ({"thin": 0}, "thin"),
    ({"moves": -1}, "moves"),
])
def test_argument_errors_name_the_argument(kwargs, name):
    x = two_state_gaussian(T=20)
    if kwargs.get("emission") == "categorical":
        x = (x > 0).long()
    args = {"K": 2, "emission": "gaussian", **kwargs}
    with pytest.raises(ValueError, match=f"^{name}:"):
        hmmblog.sample_posterior(x, **args)


def test_reference_with_the_wrong_number_of_states_is_refused():
    x = two_state_gaussian(T=20)
    fit = hmmblog.learn(x, 3, "gaussian", steps=5)
    with pytest.raises(ValueError, match="^reference:"):
        hmmblog.sample_posterior(x, 2, "gaussian", reference=fit)


def test_summary_prob_is_checked():
    x = two_state_gaussian(T=20)
    post = hmmblog.sample_posterior(x, 1, "gaussian", num_samples=5, warmup=5,
                                    num_chains=1)
    with pytest.raises(ValueError, match="^prob:"):
        post.summary(prob=1.5)


def test_gibbs_needs_a_family_with_conditionals():
    class NoConditional(type(hmmblog.learning.FAMILIES["poisson"])):
        name = "poisson-without-conditional"
        conditional = hmmblog.learning.EmissionFamily.conditional

    x = torch.tensor([[1.0, 2, 0, 3, 1, 4]])
    with pytest.raises(ValueError, match="^sampler: 'gibbs' is not available"):
        hmmblog.sample_posterior(x, 1, NoConditional(), sampler="gibbs")
    post = hmmblog.sample_posterior(x, 1, NoConditional(), num_samples=5, warmup=5,
                                    num_chains=1, max_tree_depth=2)
    assert post.sampler == "nuts"  # the default falls back to NUTS


def test_gibbs_and_nuts_agree_on_a_two_state_posterior():
    """Two independent samplers of the same posterior (rain/sun-like data, 10 x 60): the
    posterior means of every entry of A and B agree within 4 Monte Carlo standard errors."""
    pi = torch.tensor([0.6, 0.4])
    A = torch.tensor([[0.8, 0.2], [0.3, 0.7]])
    B = torch.tensor([[0.1, 0.3, 0.6], [0.7, 0.2, 0.1]])
    x = hmmblog.sample(pi, A, dist.Categorical(probs=B), 10, 60, seed=4)[1]
    fit = hmmblog.learn(x, 2, "categorical", M=3, seed=0, steps=400)
    runs = [hmmblog.sample_posterior(x, 2, "categorical", M=3, seed=1, reference=fit,
                                     **kwargs)
            for kwargs in ({"num_samples": 1000},
                           {"sampler": "nuts", "num_samples": 300, "warmup": 200, "thin": 1,
                            "num_chains": 2, "max_tree_depth": 5})]
    for name in ("transition", "emission"):
        means = [r.draws()[name].double().mean(0) for r in runs]
        se = [r.draws()[name].double().std(0) / r.ess[name].sqrt() for r in runs]
        gap = (means[0] - means[1]).abs() / (se[0] ** 2 + se[1] ** 2).sqrt()
        assert gap.max() < 4, (name, gap)
