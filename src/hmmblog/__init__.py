"""hmmblog: hidden Markov models with Pyro, the package behind the blog series.

The inference core (`log_likelihood`, `posterior`, `viterbi`) works on per-step emission
log-likelihoods, so discrete, Gaussian and factorial models all share it.
"""

from hmmblog.inference import ViterbiResult, log_likelihood, posterior, viterbi
from hmmblog.simulation import sample, sample_stepwise

__all__ = [
    "ViterbiResult",
    "log_likelihood",
    "posterior",
    "sample",
    "sample_stepwise",
    "viterbi",
]
