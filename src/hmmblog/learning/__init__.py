"""Learning HMM parameters from data with Pyro: MAP estimates by stochastic variational inference.

One learner for every emission family, `learn(observations, K, emission=...)`, returning an
`HMMFit`. Modules, in reading order:

* `engine` — `learn`, the model it fits (`hmm_model`), `HMMFit` and `EmissionFamily`, the
  plug-in interface of an emission family
* `categorical`, `gaussian`, `poisson` — the families (categorical and Gaussian with the
  names posts 2 and 3 use: `learn_discrete`, `discrete_model`, `prior_draw`;
  `learn_gaussian`, `gaussian_model`, `kmeans_init`)
* `kmeans` — the 1-D k-means segmentation behind the data-driven starts
* `fit` — `fit_map`, the SVI optimiser under all of them (any Pyro model)
* `posterior` — `sample_posterior`: full posteriors of the same model (post 6), by
  `gibbs` (with `metropolis` moves) or NUTS; `calibration` checks them by simulation
* `selection` — `select_num_states`: held-out likelihood, BIC and AIC over K (post 6)
"""

from hmmblog.learning.categorical import (
    Categorical,
    discrete_model,
    discrete_model_enumerated,
    learn_discrete,
    prior_draw,
)
from hmmblog.learning.engine import FAMILIES, EmissionFamily, HMMFit, hmm_model, learn
from hmmblog.learning.fit import MAPFit, fit_map
from hmmblog.learning.gaussian import (
    Gaussian,
    gaussian_model,
    gaussian_model_enumerated,
    kmeans_init,
    learn_gaussian,
)
from hmmblog.learning.poisson import Poisson
from hmmblog.learning.posterior import Posterior, sample_posterior
from hmmblog.learning.selection import StateSelection, select_num_states

__all__ = [
    "FAMILIES",
    "Categorical",
    "EmissionFamily",
    "Gaussian",
    "HMMFit",
    "MAPFit",
    "Poisson",
    "Posterior",
    "StateSelection",
    "discrete_model",
    "discrete_model_enumerated",
    "fit_map",
    "gaussian_model",
    "gaussian_model_enumerated",
    "hmm_model",
    "kmeans_init",
    "learn",
    "learn_discrete",
    "learn_gaussian",
    "prior_draw",
    "sample_posterior",
    "select_num_states",
]
