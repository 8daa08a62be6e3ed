"""hmmblog: hidden Markov models with Pyro, the package behind the blog series.

The inference core (`log_likelihood`, `posterior`, `viterbi`) works on per-step emission
log-likelihoods, so discrete, Gaussian and factorial models all share it. The learners
(`learn_discrete`, `learn_gaussian`) find MAP parameters with Pyro SVI, and `align_states`
undoes label switching. Factorial models for energy disaggregation live in `hmmblog.nilm`.
"""

from hmmblog.alignment import align_states, permute_states
from hmmblog.inference import ViterbiResult, log_likelihood, posterior, viterbi
from hmmblog.learning import learn, learn_discrete, learn_gaussian
from hmmblog.simulation import sample, sample_stepwise

__all__ = [
    "ViterbiResult",
    "align_states",
    "learn",
    "learn_discrete",
    "learn_gaussian",
    "log_likelihood",
    "permute_states",
    "posterior",
    "sample",
    "sample_stepwise",
    "viterbi",
]
