"""EM (`hmmblog.learning.em`): its E-step against the package's forward-backward, its climb
(never down), and its MAP estimate against `learn`'s L-BFGS on the same objective."""

import numpy as np
import pyro.distributions as dist
import pytest
import torch

import hmmblog
from hmmblog.inference.filtering import scaled_likelihoods, smooth_rows
from hmmblog.learning import FAMILIES
from hmmblog.learning.em import em, em_fit
from hmmblog.learning.engine import prior_start
from hmmblog.learning.posterior import exact_log_likelihood

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_e_step_is_the_forward_backward_posterior():
    g = torch.Generator().manual_seed(0)
    pi = torch.rand(3, generator=g, dtype=torch.float64).softmax(0)
    A = torch.rand(3, 3, generator=g, dtype=torch.float64).mul(3).softmax(-1)
    ll = torch.randn(2, 50, 3, generator=g, dtype=torch.float64) * 3
    ll[0, 10:14] = 0.0  # steps without evidence
    lik, shift = scaled_likelihoods(ll.numpy())
    gamma, xi, log_px = np.empty((2, 50, 3)), np.empty((2, 3, 3)), np.empty(2)
    smooth_rows(np.tile(pi.numpy(), (2, 1)), np.tile(A.numpy(), (2, 1, 1)), lik, gamma, xi,
                log_px)
    assert np.allclose(gamma, hmmblog.posterior(pi, A, ll).numpy(), atol=1e-10)
    assert np.allclose(log_px + shift, hmmblog.log_likelihood(pi, A, ll).numpy(), rtol=1e-12)
    # Σ_j ξ(i, j) is the time spent in i before the last step; Σ_i ξ(i, j) after the first
    assert np.allclose(xi.sum(-1), gamma[:, :-1].sum(1)) and np.allclose(xi.sum(1),
                                                                          gamma[:, 1:].sum(1))


@pytest.mark.parametrize("name", ["categorical", "gaussian", "poisson"])
def test_em_never_goes_down(name):
    family = FAMILIES[name]
    pi, A = torch.tensor([0.5, 0.5]), torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    emission = {"categorical": dist.Categorical(probs=torch.tensor([[0.7, 0.2, 0.1],
                                                                    [0.1, 0.3, 0.6]])),
                "gaussian": dist.Normal(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.5])),
                "poisson": dist.Poisson(torch.tensor([1.0, 6.0]))}[name]
    x = hmmblog.sample(pi, A, emission, 4, 80, seed=1)[1]
    x = x if name == "categorical" else x.double()
    start = {k: v.double().numpy()[None] for k, v in prior_start(family, x, 2, 3, 5).items()}
    result = em(family, x.unsqueeze(0), 2, start, max_iter=200)
    assert (np.diff(result.trace[:, 0]) > -1e-9).all()


def test_em_finds_learns_map_on_the_nile_and_on_rain_sun_data():
    """The same objective, two optimisers: EM's fit scores at least as well (to 1e-3 nats)
    as `learn` run to convergence by L-BFGS, and the estimates agree."""
    from statsmodels.datasets import nile
    y = torch.tensor(nile.load_pandas().data["volume"].to_numpy()).unsqueeze(0)
    gauss = FAMILIES["gaussian"]
    a = em_fit(gauss, y, 2, None, seed=0, init="kmeans", standardize=True)
    b = hmmblog.learn(y, 2, "gaussian", seed=0, init="kmeans", standardize=True,
                      optimizer="lbfgs", lr=1.0, steps=300, tol=1e-4)
    assert exact_log_likelihood(gauss, a, y) > exact_log_likelihood(gauss, b, y) - 1e-3
    assert torch.allclose(a.loc, b.loc, rtol=1e-4) and torch.allclose(a.scale, b.scale,
                                                                      rtol=1e-4)
    cat = FAMILIES["categorical"]
    B = torch.tensor([[0.1, 0.4, 0.5], [0.6, 0.3, 0.1]])
    x = hmmblog.sample(torch.tensor([0.6, 0.4]), torch.tensor([[0.7, 0.3], [0.4, 0.6]]),
                       dist.Categorical(probs=B), 30, 100, seed=2)[1]
    c = em_fit(cat, x, 2, 3, seed=0, init="prior", standardize=False, restarts=3)
    d = hmmblog.learn(x, 2, "categorical", M=3, seed=0, restarts=3, optimizer="lbfgs",
                      lr=1.0, steps=300, tol=1e-4)
    # a flat likelihood: EM crawls, and 500 iterations leave it within 0.1 nats of L-BFGS
    assert exact_log_likelihood(cat, c, x) > exact_log_likelihood(cat, d, x) - 0.1
    perm = hmmblog.align_states(c.emission, d.emission)
    assert torch.allclose(c.emission[perm], d.emission, atol=0.02)
