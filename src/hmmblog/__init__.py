"""hmmblog: hidden Markov models with Pyro, the package behind the blog series.

The inference core (`log_likelihood`, `posterior`, `viterbi`) works on per-step emission
log-likelihoods, so discrete, Gaussian and factorial models all share it. `learn` finds MAP
parameters with Pyro SVI for any emission family (`learn_discrete`, `learn_gaussian` are its
post-era names), and `align_states` undoes label switching. `sample_posterior` draws the
full posterior of the same model (Gibbs with forward filtering, backward sampling and
Metropolis moves, or NUTS), and `select_num_states` chooses K. Factorial
models for energy disaggregation live in `hmmblog.nilm`.

Notation (the same letters mean the same things in every module, docstring and error message):

==========  ========================================================================
K           hidden states of a chain (K_c for chain c); k, i, j index them
T           time steps; t indexes them
N           independent sequences (observations ``[N, T]``; ``num_seqs`` in samplers)
C           chains of a factorial model (appliances in `hmmblog.nilm`); c indexes them
M           symbols of a categorical emission (B ``[K, M]``)
R           restarts (of a learner or of the NILM decoder)
π, A        ``initial [K]`` and ``transition [K, K]``, A_ij = p(z_{t+1} = j | z_t = i)
B           categorical emission probabilities ``[K, M]`` (a result's ``emission``)
μ, σ        Gaussian levels and spreads (``loc``, ``scale``; Pyro sites ``locs``, ``scales``)
λ           Poisson rates (``rate``; Pyro site ``rates``)
z, x        hidden states and observations; ℓ_t(k) = log p(x_t | z_t = k) is ``log_lik``
y, b, σ     in `hmmblog.nilm`: the meter reading, the background load and the meter noise
            (``aggregate``, ``background``, ``noise_std``; ``sigma`` inside the decoder)
==========  ========================================================================

Pyro site names are the symbols (``pi``, ``A``, ``B``, ``locs``, ``scales``, ``rates``), as in
the posts' own stories; results name the same quantities in words (``initial``,
``transition``, ``emission``, ``loc``, ``scale``, ``rate``). Post 4's prose calls the number of
appliances N; the code calls it C.
"""

from hmmblog.alignment import align_states, permute_states
from hmmblog.inference import ViterbiResult, log_likelihood, posterior, viterbi
from hmmblog.learning import (
    learn,
    learn_discrete,
    learn_gaussian,
    sample_posterior,
    select_num_states,
)
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
    "sample_posterior",
    "sample_stepwise",
    "select_num_states",
    "viterbi",
]
