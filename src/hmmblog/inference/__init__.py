"""Exact inference for hidden Markov models, in log space, emission-agnostic.

Every function takes the same three things:

* ``initial``    ``[K]``          π_k = p(z_1 = k)
* ``transition`` ``[K, K]``       A_ij = p(z_{t+1} = j | z_t = i)  (row = today, column = tomorrow)
* ``log_lik``    ``[..., T, K]``  ℓ_t(k) = log p(x_t | z_t = k), from *any* emission model

and is batched over the leading dimensions ``...`` of ``log_lik`` (many sequences at once).

Modules, in reading order:

* `chain_viterbi` — `viterbi`: the most probable path, a short compiled loop; the score of
  a path (`path_log_prior`, `path_log_joint`)
* `forward_backward` — `log_likelihood` and `posterior`, with time cut into blocks
* `factorial` — `factorial_viterbi` for C chains that share one emission, the compiled
  loop behind it (`viterbi_paths`) and the product chain
* `filtering` — `sample_paths`: state paths drawn from p(z | x) by forward filtering,
  backward sampling, the compiled loop under the posterior sampler
* `rows` — sharing independent sequences out over threads

The argument checks live in `hmmblog.validation` (re-exported here).
"""

from hmmblog.inference.chain_viterbi import (
    ViterbiResult,
    path_log_joint,
    path_log_prior,
    viterbi,
)
from hmmblog.inference.factorial import (
    FactorialChains,
    factorial_chains,
    factorial_viterbi,
    joint_states,
    product_chain,
    viterbi_paths,
)
from hmmblog.inference.filtering import PathDraws, sample_paths
from hmmblog.inference.forward_backward import associative_scan, log_likelihood, posterior
from hmmblog.validation import check_log_lik, check_parameters, check_probabilities

__all__ = [
    "FactorialChains",
    "PathDraws",
    "ViterbiResult",
    "associative_scan",
    "check_log_lik",
    "check_parameters",
    "check_probabilities",
    "factorial_chains",
    "factorial_viterbi",
    "joint_states",
    "log_likelihood",
    "path_log_joint",
    "path_log_prior",
    "posterior",
    "product_chain",
    "sample_paths",
    "viterbi",
    "viterbi_paths",
]
