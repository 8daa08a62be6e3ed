"""Pyro generative stories of a hidden Markov model with *known* parameters.

Two ways to write the same model, both conditioned on observations `[N, T, *event]`:

* `hmm_story` — the story told one day at a time: a `pyro.markov` loop over time inside a
  `pyro.plate` over sequences, with the hidden state of each day an enumerated `Categorical`
  site. Pyro's `TraceEnum_ELBO` sums the states out exactly, `infer_discrete` decodes them.
* `hmm_vectorized` — the same distribution over observations as a single
  `pyro.distributions.DiscreteHMM` site, which eliminates time with a parallel scan.

The emission is any distribution with batch shape `[K]` (one per state), e.g.
`Categorical(probs=B)` or `Normal(mu, sigma)`, so the same code serves every post.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO, infer_discrete
from torch.distributions import Distribution

from hmmblog.validation import check_emission, check_parameters, check_positive_int

__all__ = [
    "decode_story",
    "emission_given_state",
    "hmm_story",
    "hmm_vectorized",
    "log_marginal",
    "start_transition_logits",
]


def emission_given_state(emission: Distribution, z: torch.Tensor) -> Distribution:
    """The emission distribution of state `z`: a distribution of the same family with batch
    shape `z.shape`, built by indexing every parameter of `emission` (batch `[K]`) with `z`.

    Works for any distribution whose constructor takes its `arg_constraints` as keywords
    (Categorical, Normal, Poisson, Bernoulli, StudentT, ...); `probs`/`logits` pairs are
    passed as `logits` only.
    """
    if len(emission.batch_shape) != 1:
        raise ValueError(f"emission: expected batch shape (K,), got {tuple(emission.batch_shape)}")
    stored = vars(emission)
    names = [name for name in emission.arg_constraints if name in stored]
    if "logits" in names or "probs" in names:
        names = [n for n in names if n not in ("probs", "logits")] + ["logits"]
    params = {name: getattr(emission, name)[z] for name in names}
    return type(emission)(**params, validate_args=False)


def _check_observations(observations: torch.Tensor, emission: Distribution) -> tuple[int, int]:
    """(N, T) of observations `[N, T, *event]`, which must match the emission's event shape."""
    event_dims = len(emission.event_shape)
    if observations.dim() != 2 + event_dims:
        raise ValueError(
            f"observations: expected shape [N, T{', *event' if event_dims else ''}] "
            f"({2 + event_dims} dims), got {tuple(observations.shape)}"
        )
    N, T = observations.shape[:2]
    if N < 1 or T < 1:
        raise ValueError(
            f"observations: expected N >= 1 and T >= 1, got {tuple(observations.shape)}"
        )
    return N, T


def hmm_story(
    initial: torch.Tensor,
    transition: torch.Tensor,
    emission: Distribution,
    observations: torch.Tensor | None = None,
    num_seqs: int = 1,
    T: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The HMM told day by day: z_1 ~ π, z_t ~ A[z_{t-1}], x_t ~ emission[z_t].

    With `observations` `[N, T, *event]` the x-sites are conditioned on them (for scoring and
    decoding); without, `num_seqs` sequences of length `T` are drawn. Returns the state path
    `[N, T]` and observations `[N, T, *event]` that this run of the story produced.
    """
    initial, transition = check_parameters(initial, transition)
    check_emission(emission, initial.shape[0])
    if observations is not None:
        num_seqs, T = _check_observations(observations, emission)
    num_seqs = check_positive_int("num_seqs", num_seqs)
    T = check_positive_int("T", T)
    states, xs = [], []
    z = None
    with pyro.plate("sequences", num_seqs, dim=-1):
        # pyro.markov tells Pyro that step t only depends on step t-1, so enumeration
        # can reuse one tensor dimension for every z_t: exact, and linear in T.
        for t in pyro.markov(range(T)):
            # The state at step t: from π at the first step, else from the previous row of A.
            probs = initial if t == 0 else transition[z]
            z = pyro.sample(f"z_{t}", dist.Categorical(probs), infer={"enumerate": "parallel"})
            # The observation at step t, drawn from the emission of the current state.
            obs_t = None if observations is None else observations[:, t]
            x = pyro.sample(f"x_{t}", emission_given_state(emission, z), obs=obs_t)
            states.append(z)
            xs.append(x)
    # While Pyro enumerates, each z_t holds all K values in its own dimension; broadcasting
    # keeps the return value well defined then. When sampling or decoding, it is the path.
    return torch.stack(torch.broadcast_tensors(*states), dim=-1), torch.stack(xs, dim=1)


def start_transition_logits(
    initial: torch.Tensor, transition: torch.Tensor, T: int
) -> torch.Tensor:
    """Transition logits `[..., T, K, K]` that make `DiscreteHMM` start at π exactly, for π
    `[..., K]` and A `[..., K, K]` (leading dims: a batch of models).

    `DiscreteHMM`'s `initial_logits` describe a state z_0 *before* the first observation,
    and every observation x_t follows a transition z_{t-1} -> z_t. Step 0 therefore gets a
    matrix whose every row is π (p(z_1 | z_0) = π whatever z_0 was), and steps 1..T-1 get
    log A. The value of `initial_logits` then no longer matters; we pass uniform logits.
    This is the only place the package builds that first step.
    """
    T = check_positive_int("T", T)
    *batch, K, _ = transition.shape
    first = initial.log().unsqueeze(-2).expand(*batch, K, K).unsqueeze(-3)  # [..., 1, K, K]
    rest = transition.log().unsqueeze(-3).expand(*batch, T - 1, K, K)
    return torch.cat([first, rest], dim=-3)


def hmm_vectorized(
    initial: torch.Tensor,
    transition: torch.Tensor,
    emission: Distribution,
    observations: torch.Tensor,
) -> None:
    """The same HMM as one `DiscreteHMM` site per sequence: p(x_1:T) by a parallel scan over
    time, no latent sites to enumerate. `observations`: `[N, T, *event]`."""
    initial, transition = check_parameters(initial, transition)
    K = initial.shape[0]
    check_emission(emission, K)
    N, T = _check_observations(observations, emission)
    hmm = dist.DiscreteHMM(
        initial_logits=torch.zeros(K, dtype=initial.dtype),
        transition_logits=start_transition_logits(initial, transition, T),
        observation_dist=emission,
    )
    with pyro.plate("sequences", N, dim=-1):
        pyro.sample("x", hmm, obs=observations)


def log_marginal(
    model: Callable[..., object], *args, max_plate_nesting: int = 1, **kwargs
) -> float:
    """log p(x) of a Pyro model with all discrete latents enumerated: the negative
    `TraceEnum_ELBO` of an empty guide, which is exact (no sampling, no bound gap)."""

    def empty_guide(*args, **kwargs) -> None:
        pass

    elbo = TraceEnum_ELBO(max_plate_nesting=max_plate_nesting)
    with warnings.catch_warnings():
        # A model with no latent sites (e.g. `hmm_vectorized`) is fine: nothing to enumerate.
        warnings.filterwarnings("ignore", message="TraceEnum_ELBO found no sample sites")
        return -elbo.loss(model, empty_guide, *args, **kwargs)


def decode_story(
    initial: torch.Tensor,
    transition: torch.Tensor,
    emission: Distribution,
    observations: torch.Tensor,
) -> torch.Tensor:
    """The most probable state path `[N, T]` of `hmm_story` given `observations`, by Pyro's
    `infer_discrete(temperature=0)` (max-product message passing over the enumerated states)."""
    N, T = _check_observations(observations, emission)
    decoder = infer_discrete(hmm_story, first_available_dim=-2, temperature=0)
    trace = poutine.trace(decoder).get_trace(initial, transition, emission, observations)
    # Read each day's decoded state from the trace; a plate of size 1 may come back squeezed.
    return torch.stack([trace.nodes[f"z_{t}"]["value"].expand(N) for t in range(T)], dim=-1)
