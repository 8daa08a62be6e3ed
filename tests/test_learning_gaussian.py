"""learn_gaussian: reproduces the original post, escapes its local optima with a data-driven
start, recovers parameters, agrees with hmmlearn and finds the Nile's change point."""

import itertools
import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO, TraceEnum_ELBO

import hmmblog
from hmmblog.alignment import align_states, permute_states
from hmmblog.emissions import gaussian_log_lik
from hmmblog.learning import (
    gaussian_model,
    gaussian_model_enumerated,
    kmeans_init,
    learn_gaussian,
)
from hmmblog.simulation import sample, sample_stepwise

# The original's three-level signal: states (low, mid, high).
PI = torch.tensor([0.5, 0.3, 0.2])
A = torch.tensor([[0.80, 0.15, 0.05], [0.10, 0.80, 0.10], [0.05, 0.15, 0.80]])
MU = torch.tensor([0.0, 5.0, 10.0])
SIGMA = torch.tensor([0.7, 0.7, 0.7])


def original_data(num_seqs: int = 30, T: int = 120, seed: int = 1) -> torch.Tensor:
    def draw(z: int, g: torch.Generator) -> torch.Tensor:
        return MU[z] + SIGMA[z] * torch.randn(1, generator=g)

    return sample_stepwise(PI, A, draw, num_seqs, T, seed)[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def by_mean(fit) -> tuple[torch.Tensor, ...]:
    """(π, A, μ, σ) with the states renamed in increasing order of their mean."""
    return permute_states(fit.loc.argsort(), fit.initial, fit.transition, fit.loc, fit.scale)


def neg_log_joint(model, observations: torch.Tensor, params: dict, elbo) -> float:
    """-log p(y, θ) of `model` at fixed θ: every global site conditioned, no guide needed."""
    return elbo.loss(poutine.condition(model, data=params), lambda *a: None, observations, 3)


@pytest.mark.slow
def test_reproduces_the_original_post() -> None:
    y = original_data()
    fit = learn_gaussian(y, K=3, restarts=3)
    # Two restarts stuck ("two states share one cluster"), the third finds the optimum.
    assert fit.final_losses == pytest.approx([11257.3, 7183.2, 6100.1], abs=0.5)
    assert fit.restart == 2 and fit.losses[-1] == fit.final_losses[2]
    pi, A_hat, loc, scale = by_mean(fit)
    torch.testing.assert_close(loc, torch.tensor([0.04, 5.03, 10.07]), atol=0.01, rtol=0)
    torch.testing.assert_close(scale, torch.tensor([0.71, 0.65, 0.74]), atol=0.01, rtol=0)
    A_original = torch.tensor([[0.79, 0.16, 0.05], [0.11, 0.80, 0.09], [0.04, 0.16, 0.80]])
    torch.testing.assert_close(A_hat, A_original, atol=0.01, rtol=0)
    assert (loc - MU).abs().max() == pytest.approx(0.074, abs=1e-3)
    assert (scale - SIGMA).abs().max() == pytest.approx(0.050, abs=1e-3)
    assert (A_hat - A).abs().max() == pytest.approx(0.013, abs=1e-3)
    # Segmenting a fresh sequence with the learned parameters: every step right.
    def draw(z: int, g: torch.Generator) -> torch.Tensor:
        return MU[z] + SIGMA[z] * torch.randn(1, generator=g)

    z_new, y_new = sample_stepwise(PI, A, draw, 1, 160, 77)
    path = hmmblog.viterbi(pi, A_hat, gaussian_log_lik(loc, scale, y_new)).path
    assert torch.equal(path, z_new)


@pytest.mark.slow
def test_kmeans_start_reaches_the_maximum_likelihood_optimum_on_every_restart() -> None:
    hmm = pytest.importorskip("hmmlearn.hmm")
    y = original_data()
    fit = learn_gaussian(y, K=3, restarts=3, init="kmeans")
    # Every restart ends below the original's best restart (loss 6100.1), at one optimum ...
    assert max(fit.final_losses) < 6100.1 - 5
    assert max(fit.final_losses) - min(fit.final_losses) < 1e-3
    # ... the one EM (hmmlearn, no priors) converges to from the same k-means start.
    start = kmeans_init(y.double(), 3)
    em = hmm.GaussianHMM(3, covariance_type="diag", n_iter=500, tol=1e-8, init_params="st")
    em.means_, em.covars_ = start["locs"].numpy()[:, None], (start["scales"] ** 2).numpy()[:, None]
    X = y.reshape(-1, 1).double().numpy()
    em.fit(X, [y.shape[1]] * y.shape[0])
    order = np.argsort(em.means_[:, 0])
    pi, A_hat, loc, scale = by_mean(fit)
    np.testing.assert_allclose(loc, em.means_[order, 0], atol=2e-3)
    np.testing.assert_allclose(scale, np.sqrt(em.covars_[order, 0, 0]), atol=2e-3)
    np.testing.assert_allclose(A_hat, em.transmat_[order][:, order], atol=2e-3)


@pytest.mark.slow
def test_recovers_parameters_from_a_large_simulated_data_set() -> None:
    pi = torch.tensor([0.2, 0.5, 0.3])
    A_true = torch.tensor([[0.90, 0.07, 0.03], [0.05, 0.85, 0.10], [0.10, 0.10, 0.80]])
    mu, sigma = torch.tensor([-3.0, 0.5, 2.5]), torch.tensor([0.5, 1.0, 0.6])
    _, y = sample(pi, A_true, dist.Normal(mu, sigma), num_seqs=50, T=120, seed=3)
    fit = learn_gaussian(y, K=3, steps=250, init="kmeans")
    perm = align_states(fit.loc, mu)
    _, A_hat, loc, scale = permute_states(perm, fit.initial, fit.transition, fit.loc, fit.scale)
    # 6,000 steps: standard errors are at most about 0.025 for means and scales, 0.01 for A.
    assert (loc - mu).abs().max() < 0.08
    assert (scale - sigma).abs().max() < 0.08
    assert (A_hat - A_true).abs().max() < 0.04


def test_same_seed_same_fit_and_other_seed_other_fit() -> None:
    y = original_data(5, 30)
    a, b = learn_gaussian(y, 3, steps=10), learn_gaussian(y, 3, steps=10)
    c = learn_gaussian(y, 3, steps=10, seed=1)
    assert a.losses == b.losses and torch.equal(a.loc, b.loc)
    assert a.losses[0] != c.losses[0] and not torch.equal(a.loc, c.loc)


def test_vectorised_model_equals_the_enumerated_story_and_the_core() -> None:
    y = original_data(4, 12)
    pyro.set_rng_seed(0)
    params = {
        "pi": dist.Dirichlet(torch.ones(3)).sample(),
        "A": dist.Dirichlet(torch.ones(3, 3)).sample(),
        "locs": torch.tensor([1.0, 4.0, 9.0]),
        "scales": torch.tensor([0.8, 1.5, 2.0]),
    }
    fast = neg_log_joint(gaussian_model, y, params, Trace_ELBO())
    slow = neg_log_joint(gaussian_model_enumerated, y, params, TraceEnum_ELBO(max_plate_nesting=1))
    log_prior = (
        dist.Dirichlet(torch.ones(3)).log_prob(params["pi"])
        + dist.Dirichlet(torch.ones(3)).log_prob(params["A"]).sum()
        + dist.Normal(y.mean(), 3 * y.std()).log_prob(params["locs"]).sum()
        + dist.LogNormal(0.0, 1.0).log_prob(params["scales"]).sum()
    )
    ll = gaussian_log_lik(params["locs"], params["scales"], y)
    core = -(hmmblog.log_likelihood(params["pi"], params["A"], ll).sum() + log_prior)
    assert fast == pytest.approx(slow, rel=1e-5)
    assert fast == pytest.approx(core.item(), rel=1e-5)


def test_core_likelihood_equals_brute_force_enumeration() -> None:
    torch.manual_seed(5)
    pi = dist.Dirichlet(torch.ones(3, dtype=torch.float64)).sample()
    A_ = dist.Dirichlet(torch.ones(3, 3, dtype=torch.float64)).sample()
    loc, scale = torch.tensor([-1.0, 0.0, 2.0]).double(), torch.tensor([0.5, 1.0, 0.8]).double()
    y = torch.randn(6, dtype=torch.float64)
    ll = gaussian_log_lik(loc, scale, y)  # [T, K]
    total = 0.0
    for path in itertools.product(range(3), repeat=len(y)):
        p = pi[path[0]] * ll[0, path[0]].exp()
        for t in range(1, len(y)):
            p = p * A_[path[t - 1], path[t]] * ll[t, path[t]].exp()
        total += p.item()
    assert hmmblog.log_likelihood(pi, A_, ll).item() == pytest.approx(math.log(total), rel=1e-10)


@pytest.mark.parametrize("K, seed", [(2, 0), (3, 1), (4, 2)])
def test_log_likelihood_agrees_with_hmmlearn_for_given_parameters(K: int, seed: int) -> None:
    hmm = pytest.importorskip("hmmlearn.hmm")
    torch.manual_seed(seed)
    pi = dist.Dirichlet(torch.ones(K, dtype=torch.float64)).sample()
    A_ = dist.Dirichlet(torch.ones(K, K, dtype=torch.float64)).sample()
    loc = 3 * torch.randn(K, dtype=torch.float64)
    scale = 0.5 + torch.rand(K, dtype=torch.float64)
    _, y = sample(pi, A_, dist.Normal(loc, scale), num_seqs=4, T=50, seed=seed)
    model = hmm.GaussianHMM(n_components=K, covariance_type="diag", init_params="", params="")
    model.startprob_, model.transmat_ = pi.numpy(), A_.numpy()
    model.means_ = loc.numpy()[:, None]
    model.covars_ = (scale**2).numpy()[:, None]
    theirs = model.score(y.reshape(-1, 1).numpy(), lengths=[y.shape[1]] * y.shape[0])
    ours = hmmblog.log_likelihood(pi, A_, gaussian_log_lik(loc, scale, y)).sum().item()
    assert ours == pytest.approx(theirs, abs=1e-6, rel=0)


def test_kmeans_init_finds_separated_levels_sorted_and_deterministic() -> None:
    z, y = sample_stepwise(PI, A, lambda k, g: MU[k] + SIGMA[k] * torch.randn(1, generator=g),
                           10, 60, 1)
    start = kmeans_init(y, 3)
    assert torch.equal(start["locs"], start["locs"].sort().values)
    assert (start["locs"] - MU).abs().max() < 0.3 and (start["scales"] - SIGMA).abs().max() < 0.2
    # Levels 5 apart with noise 0.7: the segmentation is the true path, so π and A are the
    # add-one-smoothed counts of the true states.
    first = 1 + torch.bincount(z[:, 0], minlength=3)
    moves = 1 + torch.bincount((3 * z[:, :-1] + z[:, 1:]).flatten(), minlength=9).reshape(3, 3)
    torch.testing.assert_close(start["pi"], first / first.sum())
    torch.testing.assert_close(start["A"], moves / moves.sum(-1, keepdim=True))
    again = kmeans_init(y, 3)
    assert all(torch.equal(start[k], again[k]) for k in start)
    # More states than distinct values: still finite, positive scales, valid probabilities.
    tiny = kmeans_init(torch.tensor([[1.0, 1.0, 2.0, 2.0]]), 3)
    assert torch.isfinite(tiny["locs"]).all() and (tiny["scales"] > 0).all()
    torch.testing.assert_close(tiny["A"].sum(-1), torch.ones(3))


def test_standardize_is_equivariant_to_the_units_of_the_data() -> None:
    y = original_data(5, 40)
    a = learn_gaussian(y, 3, steps=30, init="kmeans", standardize=True)
    b = learn_gaussian(1000.0 + 100.0 * y, 3, steps=30, init="kmeans", standardize=True)
    torch.testing.assert_close(b.loc, 1000.0 + 100.0 * a.loc, rtol=1e-4, atol=1e-2)
    torch.testing.assert_close(b.scale, 100.0 * a.scale, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(b.transition, a.transition, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"observations": torch.zeros(10), "K": 2}, "observations"),
        ({"observations": torch.zeros(2, 5, dtype=torch.long), "K": 2}, "observations"),
        ({"observations": torch.tensor([[0.0, float("nan")]]), "K": 2}, "observations"),
        ({"observations": torch.randn(2, 5), "K": 0}, "K"),
        ({"observations": torch.randn(2, 5), "K": 2, "init": "random"}, "init"),
        ({"observations": torch.randn(2, 5), "K": 2, "steps": 0}, "steps"),
        ({"observations": torch.ones(2, 5), "K": 2, "standardize": True}, "observations"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        learn_gaussian(**kwargs)


@pytest.mark.slow
def test_nile_two_state_segmentation_finds_the_aswan_change_point() -> None:
    nile = pytest.importorskip("statsmodels.datasets.nile")
    data = nile.load_pandas().data
    years = data["year"].to_numpy().astype(int)
    y = torch.tensor(data["volume"].to_numpy()).unsqueeze(0)
    fit = learn_gaussian(y, K=2, steps=250, init="kmeans", standardize=True)
    path = hmmblog.viterbi(fit.initial, fit.transition, gaussian_log_lik(fit.loc, fit.scale, y))
    z = path.path[0].numpy()
    changes = np.flatnonzero(z[1:] != z[:-1])
    assert len(changes) == 1  # one regime change in a century
    first_year_after = years[changes[0] + 1]
    assert 1895 <= first_year_after <= 1902
    # The later regime is the low-flow one.
    assert fit.loc[z[-1]] < fit.loc[z[0]]
