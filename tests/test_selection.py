"""`select_num_states`: parameter counts, the criteria's formulas, held-out blocks scored
exactly, recovery of K on simulated data, the caller's state, argument errors."""

import math

import pyro.distributions as dist
import pytest
import torch

import hmmblog
from hmmblog.learning import FAMILIES
from hmmblog.learning.posterior import exact_log_likelihood
from hmmblog.learning.selection import free_parameters

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def gaussian_data(K, T=200, seed=0, N=1):
    loc = torch.arange(K, dtype=torch.float64) * 5.0
    A = torch.full((K, K), 0.1 / max(K - 1, 1), dtype=torch.float64)
    A.fill_diagonal_(0.9 if K > 1 else 1.0)
    pi = torch.full((K,), 1.0 / K, dtype=torch.float64)
    em = dist.Normal(loc, torch.ones(K, dtype=torch.float64))
    return hmmblog.sample(pi, A, em, N, T, seed=seed)[1]


@pytest.mark.parametrize("K", [1, 2, 3, 5])
def test_free_parameters_per_family(K):
    x = torch.randn(1, 10)
    symbols = torch.zeros(1, 10, dtype=torch.long)
    chain = (K - 1) + K * (K - 1)  # π and the rows of A
    assert free_parameters(FAMILIES["gaussian"], K, x) == chain + 2 * K
    assert free_parameters(FAMILIES["categorical"], K, symbols, 4) == chain + K * 3
    assert free_parameters(FAMILIES["poisson"], K, x.abs().round()) == chain + K


def test_recovers_K_and_the_criteria_are_their_formulas():
    x = gaussian_data(3, T=240, seed=4)
    sel = hmmblog.select_num_states(x, [1, 2, 3, 4], "gaussian", folds=3, restarts=1)
    assert sel.best == 3 and sel.criterion == "bic"
    assert sel.best_by["bic"] == sel.best_by["heldout"] == 3
    assert [r["K"] for r in sel.rows] == [1, 2, 3, 4]
    for row in sel.rows:
        K, ll, p = row["K"], row["loglik"], row["params"]
        assert math.isclose(row["bic"], -2 * ll + p * math.log(240))
        assert math.isclose(row["aic"], -2 * ll + 2 * p)
        assert ll == max(sel.fit_log_likelihoods[K])
        fit = sel.fits[K]
        assert math.isclose(exact_log_likelihood(FAMILIES["gaussian"], fit, x), ll)
    assert sel.n == 240 and sel.folds == 3
    assert "heldout" in str(sel.table())


def test_several_sequences_and_categorical_data():
    """Folds of whole sequences; two clearly different symbol regimes: K = 2 beats 1."""
    pi = torch.tensor([0.5, 0.5])
    A = torch.tensor([[0.95, 0.05], [0.05, 0.95]])
    B = torch.tensor([[0.8, 0.15, 0.05], [0.05, 0.15, 0.8]])
    x = hmmblog.sample(pi, A, dist.Categorical(B), 6, 60, seed=3)[1]
    sel = hmmblog.select_num_states(x, [1, 2], "categorical", folds=3, restarts=2)
    assert sel.best_by == {"bic": 2, "aic": 2, "heldout": 2}
    assert sel.rows[1]["params"] == 1 + 2 + 4


def test_one_state_heldout_block_is_the_blocks_own_density():
    """With K = 1 the steps are independent, so a held-out block's score given the rest is
    the sum of its own log-densities under the fit made without it."""
    x = gaussian_data(1, T=30, seed=2)
    sel = hmmblog.select_num_states(x, [1], "gaussian", folds=2, restarts=1)
    total = 0.0
    for block in (slice(0, 15), slice(15, 30)):
        rest = x.clone()
        rest[0, block] = float("nan")
        fit = hmmblog.learn(rest, 1, "gaussian", init="kmeans", standardize=True,
                            optimizer="lbfgs", lr=1.0, steps=300, tol=1e-4)
        total += float(dist.Normal(fit.loc[0], fit.scale[0]).log_prob(x[0, block]).sum())
    assert math.isclose(sel.rows[0]["heldout"], total, rel_tol=1e-6)


def test_same_answer_twice_and_the_rng_is_kept():
    x = gaussian_data(2, T=60, seed=1)
    torch.manual_seed(9)
    state = torch.get_rng_state()
    a = hmmblog.select_num_states(x, [1, 2], "gaussian", folds=2, restarts=2, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    b = hmmblog.select_num_states(x, [1, 2], "gaussian", folds=2, restarts=2, seed=3)
    assert a.rows == b.rows


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"candidates": []}, "candidates"),
    ({"candidates": 3}, "candidates"),
    ({"candidates": [0, 1]}, "candidates"),
    ({"candidates": [2, 2]}, "candidates"),
    ({"emission": "cauchy"}, "emission"),
    ({"criterion": "dic"}, "criterion"),
    ({"folds": 0}, "folds"),
    ({"folds": 1}, "folds"),
    ({"restarts": 0}, "restarts"),
    ({"seed": 1.0}, "seed"),
    ({"emission": "poisson"}, "observations"),
    ({"emission": "categorical", "standardize": True}, "standardize"),
])
def test_argument_errors_name_the_argument(kwargs, name):
    x = gaussian_data(2, T=20)
    if kwargs.get("emission") == "poisson":
        x = x.abs().round()  # one sequence of counts: no missing values to hold blocks out
    if kwargs.get("emission") == "categorical":
        x = (x > 2).long()
    args = {"candidates": [1, 2], **kwargs}
    with pytest.raises(ValueError, match=f"^{name}:"):
        hmmblog.select_num_states(x, **args)
