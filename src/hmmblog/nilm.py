"""Energy disaggregation (NILM) with a factorial HMM, decoded without product states.

The model: appliance n = 1..N is its own Markov chain z⁽ⁿ⁾_t over K_n power states with
π⁽ⁿ⁾, A⁽ⁿ⁾ and a power level μ⁽ⁿ⁾_k per state; the meter sees one number per step,

    y_t ~ Normal(b + Σₙ μ⁽ⁿ⁾[z⁽ⁿ⁾_t], σ),

with b a constant background load. Exact MAP decoding works on the product chain with
Π K_n states, exponential in N. `disaggregate` instead climbs the exact joint log-probability
by *block coordinate ascent*: the core's exact factorial Viterbi for one chain (or a block of
two or three) against the residual the other chains leave, from a greedy start; a block of M
chains costs T · Π K_m · Σ K_m, so a sweep is linear in N for a bounded number of blocks per
chain. `disaggregate_exact` builds the product chain (for small N only) as the reference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numba
import numpy as np
import pyro
import pyro.distributions as dist
import torch

from hmmblog.inference import (
    FactorialChains,
    check_parameters,
    path_log_prior,
    viterbi,
    viterbi_paths,
)
from hmmblog.simulation import sample

__all__ = [
    "Appliance",
    "Disaggregation",
    "Household",
    "appliance_catalogue",
    "disaggregate",
    "disaggregate_exact",
    "energy_correctly_assigned",
    "f1_score",
    "factorial_story",
    "log_joint",
    "mean_absolute_error",
    "nde",
    "random_household",
    "simulate_household",
    "two_state",
]

_DTYPE = torch.float64


# ---------------------------------------------------------------------------------------------
# Appliances


@dataclass(frozen=True)
class Appliance:
    """One appliance as an HMM: `power [K]` watts per state (state 0 is usually off),
    `initial [K]` = π, `transition [K, K]` = A with A_ij = p(z_{t+1} = j | z_t = i)."""

    name: str
    power: torch.Tensor
    initial: torch.Tensor
    transition: torch.Tensor

    def __post_init__(self) -> None:
        power = torch.as_tensor(self.power, dtype=_DTYPE)
        if power.dim() != 1 or power.numel() < 1:
            raise ValueError(
                f"power: expected a vector [K] of watts, got shape {tuple(power.shape)}"
            )
        if not torch.isfinite(power).all() or (power < 0).any():
            raise ValueError(f"power: expected finite watts >= 0, got {power.tolist()}")
        initial = torch.as_tensor(self.initial, dtype=_DTYPE)
        transition = torch.as_tensor(self.transition, dtype=_DTYPE)
        if initial.shape != power.shape:
            raise ValueError(
                f"initial: expected shape {tuple(power.shape)} (one entry per power state), "
                f"got {tuple(initial.shape)}"
            )
        initial, transition = check_parameters(initial, transition)
        object.__setattr__(self, "power", power)
        object.__setattr__(self, "initial", initial)
        object.__setattr__(self, "transition", transition)

    @property
    def K(self) -> int:
        """Number of power states."""
        return self.power.shape[0]


def two_state(name: str, on_power: float, mean_off: float, mean_on: float) -> Appliance:
    """An off/on appliance from its mean off and on durations (in steps): a geometric dwell
    of mean d leaves its state with probability 1/d per step; π is the stationary law."""
    if mean_off < 1 or mean_on < 1:
        raise ValueError(
            f"mean_off, mean_on: expected mean durations >= 1 step, got {mean_off}, {mean_on}"
        )
    p_on, p_off = 1.0 / mean_off, 1.0 / mean_on
    transition = torch.tensor([[1 - p_on, p_on], [p_off, 1 - p_off]], dtype=_DTYPE)
    initial = torch.tensor([mean_off, mean_on], dtype=_DTYPE) / (mean_off + mean_on)
    return Appliance(name, torch.tensor([0.0, on_power], dtype=_DTYPE), initial, transition)


def _three_state(
    name: str, low: float, high: float, runs_every: float, low_dwell: float, high_dwell: float,
    p_low_to_high: float,
) -> Appliance:
    """off -> low -> (high <-> low)* -> off: a cycle that starts and ends in its low state,
    with geometric dwells (steps) and p(low -> high) = `p_low_to_high` on leaving low."""
    a, b = 1.0 / runs_every, 1.0 / low_dwell
    c = 1.0 / high_dwell
    transition = torch.tensor(
        [
            [1 - a, a, 0.0],
            [b * (1 - p_low_to_high), 1 - b, b * p_low_to_high],
            [0.0, c, 1 - c],
        ],
        dtype=_DTYPE,
    )
    # Start from the stationary distribution (left eigenvector of A for eigenvalue 1).
    evals, evecs = torch.linalg.eig(transition.T)
    stationary = evecs[:, evals.real.argmax()].real
    initial = stationary / stationary.sum()
    return Appliance(name, torch.tensor([0.0, low, high], dtype=_DTYPE), initial, transition)


def appliance_catalogue() -> dict[str, Appliance]:
    """Ten UK appliances at 1-minute resolution (durations in minutes). Power levels and
    dwell times follow HMMs trained on the UK Household Electricity Survey (fridge 76 W with
    ~54 min off / ~17 min on, kettle ~2 kW for ~3 min, washer 150 W drum / 2.05 kW heater, ...)."""
    day = 24 * 60
    appliances = [
        two_state("fridge", 76.0, mean_off=54, mean_on=17),
        two_state("fridge-freezer", 100.0, mean_off=37, mean_on=23),
        two_state("kettle", 2000.0, mean_off=day / 4, mean_on=3),
        two_state("microwave", 1150.0, mean_off=day / 2, mean_on=4),
        two_state("toaster", 1800.0, mean_off=day, mean_on=3),
        two_state("television", 110.0, mean_off=480, mean_on=120),
        two_state("electric shower", 8500.0, mean_off=day, mean_on=8),
        _three_state("washing machine", 150.0, 2050.0, runs_every=2 * day, low_dwell=20,
                     high_dwell=15, p_low_to_high=0.5),
        _three_state("dishwasher", 170.0, 2180.0, runs_every=day, low_dwell=25,
                     high_dwell=15, p_low_to_high=0.5),
        _three_state("tumble dryer", 310.0, 1930.0, runs_every=3 * day, low_dwell=5,
                     high_dwell=10, p_low_to_high=0.8),
    ]
    return {a.name: a for a in appliances}


def random_household(N: int, seed: int = 0) -> list[Appliance]:
    """N appliances drawn from the catalogue: each catalogue appliance once (in a seeded
    random order), then copies whose power levels are scaled by a factor in [0.85, 1.15]."""
    if not isinstance(N, int) or N < 1:
        raise ValueError(f"N: expected a positive int, got {N!r}")
    catalogue = list(appliance_catalogue().values())
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(catalogue), generator=g).tolist()
    household = []
    for i in range(N):
        a = catalogue[order[i % len(catalogue)]]
        if i >= len(catalogue):
            factor = 0.85 + 0.3 * torch.rand((), generator=g, dtype=_DTYPE)
            a = Appliance(f"{a.name} {i // len(catalogue) + 1}", a.power * factor, a.initial,
                          a.transition)
        household.append(a)
    return household


# ---------------------------------------------------------------------------------------------
# The generative story


class Household(NamedTuple):
    """A simulated meter: `aggregate [T]` watts, per-appliance `power [N, T]`, `states [N, T]`."""

    aggregate: torch.Tensor
    power: torch.Tensor
    states: torch.Tensor


def _check_appliances(appliances: Sequence[Appliance]) -> list[Appliance]:
    appliances = list(appliances)
    if not appliances or not all(isinstance(a, Appliance) for a in appliances):
        raise ValueError(
            f"appliances: expected a non-empty sequence of Appliance, got {appliances!r:.80}"
        )
    return appliances


def _check_scalars(noise_std: float, background: float) -> None:
    if not (isinstance(noise_std, int | float) and math.isfinite(noise_std) and noise_std > 0):
        raise ValueError(f"noise_std: expected a finite number > 0 (watts), got {noise_std!r}")
    if not (isinstance(background, int | float) and math.isfinite(background)):
        raise ValueError(f"background: expected a finite number (watts), got {background!r}")


def simulate_household(
    appliances: Sequence[Appliance],
    T: int,
    noise_std: float,
    background: float = 0.0,
    seed: int = 0,
) -> Household:
    """Run every appliance's chain for T steps (appliance n from seed `seed + n`, so adding an
    appliance leaves the others' paths unchanged) and add y_t = b + Σₙ μ⁽ⁿ⁾[z⁽ⁿ⁾_t] + σ ε_t."""
    appliances = _check_appliances(appliances)
    _check_scalars(noise_std, background)
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T: expected a positive int, got {T!r}")
    states = []
    for n, a in enumerate(appliances):
        # Only the path is needed; the sampler's emission is a stand-in it draws alongside.
        z, _ = sample(a.initial, a.transition, dist.Normal(a.power, 1.0), 1, T, seed + n)
        states.append(z[0])
    states = torch.stack(states)
    power = torch.stack([a.power[z] for a, z in zip(appliances, states, strict=True)])
    g = torch.Generator().manual_seed(seed + 10_000)
    noise = noise_std * torch.randn(T, generator=g, dtype=_DTYPE)
    return Household(background + power.sum(0) + noise, power, states)


def factorial_story(
    appliances: Sequence[Appliance],
    noise_std: float,
    background: float = 0.0,
    aggregate: torch.Tensor | None = None,
    T: int | None = None,
) -> torch.Tensor:
    """The factorial HMM told minute by minute, appliance by appliance (a Pyro model):
    each appliance steps its own chain, the meter reads Normal(b + Σₙ μ⁽ⁿ⁾[z⁽ⁿ⁾_t], σ).
    Conditioned on `aggregate [T]` if given. Returns the meter readings `[T]`."""
    appliances = _check_appliances(appliances)
    _check_scalars(noise_std, background)
    if aggregate is not None:
        T = aggregate.shape[-1]
    if T is None or T < 1:
        raise ValueError(f"T: expected a positive int (or an aggregate), got {T!r}")
    z = [None] * len(appliances)
    readings = []
    for t in pyro.markov(range(T)):
        total = torch.tensor(background, dtype=_DTYPE)
        for n, a in enumerate(appliances):
            probs = a.initial if t == 0 else a.transition[z[n]]
            z[n] = pyro.sample(f"z_{n}_{t}", dist.Categorical(probs),
                               infer={"enumerate": "parallel"})
            total = total + a.power[z[n]]
        obs = None if aggregate is None else aggregate[t]
        readings.append(pyro.sample(f"y_{t}", dist.Normal(total, noise_std), obs=obs))
    return torch.stack(torch.broadcast_tensors(*readings), -1)


# ---------------------------------------------------------------------------------------------
# Scoring a configuration


def _check_aggregate(aggregate: torch.Tensor) -> torch.Tensor:
    y = torch.as_tensor(aggregate, dtype=_DTYPE)
    if y.dim() != 1 or y.numel() < 1:
        raise ValueError(f"aggregate: expected a vector [T] of watts, got shape {tuple(y.shape)}")
    if not torch.isfinite(y).all():
        raise ValueError("aggregate: contains NaN or infinite readings")
    return y


def log_joint(
    aggregate: torch.Tensor,
    appliances: Sequence[Appliance],
    states: torch.Tensor,
    noise_std: float,
    background: float = 0.0,
) -> torch.Tensor:
    """log p(z, y) = Σₙ log p(z⁽ⁿ⁾) + Σ_t log Normal(y_t; b + Σₙ μ⁽ⁿ⁾[z⁽ⁿ⁾_t], σ) for
    `states [..., N, T]`; returns `[...]`."""
    y = _check_aggregate(aggregate)
    appliances = _check_appliances(appliances)
    states = torch.as_tensor(states)
    if states.dim() < 2 or tuple(states.shape[-2:]) != (len(appliances), y.shape[0]):
        raise ValueError(
            f"states: expected shape [..., N, T] = [..., {len(appliances)}, {y.shape[0]}], "
            f"got {tuple(states.shape)}"
        )
    prior = sum(path_log_prior(a.initial.log(), a.transition.log(), states[..., n, :])
                for n, a in enumerate(appliances))
    mean = background + sum(a.power[states[..., n, :]] for n, a in enumerate(appliances))
    return prior + dist.Normal(mean, noise_std).log_prob(y).sum(-1)


# ---------------------------------------------------------------------------------------------
# Exact decoding on the product chain (the reference; exponential in N)


def _product_chain(appliances: Sequence[Appliance]) -> tuple[torch.Tensor, ...]:
    """π, A and μ of the product chain over Π K_n joint states (last appliance fastest)."""
    initial = torch.ones(1, dtype=_DTYPE)
    transition = torch.ones(1, 1, dtype=_DTYPE)
    power = torch.zeros(1, dtype=_DTYPE)
    for a in appliances:
        initial = torch.kron(initial, a.initial)
        transition = torch.kron(transition, a.transition)
        power = (power[:, None] + a.power[None, :]).reshape(-1)
    return initial, transition, power


def _unravel(index: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """Joint-state indices `[..., T]` -> per-chain states `[..., N, T]` (last chain fastest)."""
    out = []
    for K in reversed(sizes):
        out.append(index % K)
        index = index // K
    return torch.stack(out[::-1], -2)


class Disaggregation(NamedTuple):
    """Decoded `states [N, T]` (int64), their `power [N, T]` in watts, the exact
    `log_joint` log p(states, y) of the decoded configuration and the `sweeps` used."""

    states: torch.Tensor
    power: torch.Tensor
    log_joint: torch.Tensor
    sweeps: int


def _result(
    y: torch.Tensor, appliances: list[Appliance], states: torch.Tensor, noise_std: float,
    background: float, sweeps: int,
) -> Disaggregation:
    power = torch.stack([a.power[z] for a, z in zip(appliances, states, strict=True)])
    score = log_joint(y, appliances, states, noise_std, background)
    return Disaggregation(states, power, score, sweeps)


def disaggregate_exact(
    aggregate: torch.Tensor,
    appliances: Sequence[Appliance],
    noise_std: float,
    background: float = 0.0,
) -> Disaggregation:
    """Exact MAP states by the core's `viterbi` on the product chain (Kronecker products of
    the appliances' π and A): Π K_n states, so time and memory grow exponentially in N."""
    y = _check_aggregate(aggregate)
    appliances = _check_appliances(appliances)
    _check_scalars(noise_std, background)
    initial, transition, power = _product_chain(appliances)
    log_lik = dist.Normal(background + power, noise_std).log_prob(y[:, None])  # [T, Π K_n]
    path = viterbi(initial, transition, log_lik).path
    states = _unravel(path, [a.K for a in appliances])
    return _result(y, appliances, states, noise_std, background, 0)


# ---------------------------------------------------------------------------------------------
# The linear-time decoder: block coordinate ascent with exact chain (and pair) updates


def _normal_log_pdf(x: torch.Tensor, sigma: float) -> torch.Tensor:
    return -0.5 * (x / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)


def _round_robin(N: int, sweep: int) -> list[tuple[int, int]]:
    """The `sweep`-th round of a round-robin tournament on N chains (circle method): ⌊N/2⌋
    disjoint pairs per round, and every pair meets once in N - 1 (N even) or N (odd) rounds."""
    players = list(range(N)) + ([-1] if N % 2 else [])
    M = len(players)
    r = sweep % (M - 1)
    rotated = [players[0]] + [players[1 + (i + r) % (M - 1)] for i in range(M - 1)]
    pairs = [(rotated[i], rotated[M - 1 - i]) for i in range(M // 2)]
    return [(min(p), max(p)) for p in pairs if -1 not in p]


_MARGIN = 60  # steps decoded either side of a changed residual (an hour at 1-minute steps)
_TRAP_MARGIN = 30  # steps decoded either side of a possible sum trap


@numba.njit(cache=True, nogil=True)
def _near(hits: np.ndarray, margin: int) -> np.ndarray:  # pragma: no cover - compiled
    """`[T]` mask of the steps within `margin` steps of a True of `hits [T]`."""
    T = hits.shape[0]
    out = np.zeros(T, np.bool_)
    last = -margin - 1  # the latest hit so far, then (going back) the next one
    for t in range(T):
        last = t if hits[t] else last
        out[t] = t - last <= margin
    last = T + margin
    for t in range(T - 1, -1, -1):
        last = t if hits[t] else last
        out[t] |= last - t <= margin
    return out


@numba.njit(cache=True, nogil=True)
def _windows(covered: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """The runs [a, b) of True in `covered [T]` as rows of `[W, 2]`; one window over
    everything once they cover half of it."""
    T = covered.shape[0]
    if 2 * covered.sum() > T:
        return np.array([[0, T]], np.int64)
    W = int(covered[0]) + np.sum(covered[1:] & ~covered[:-1])
    out = np.empty((W, 2), np.int64)
    w = -1
    for t in range(T):
        if covered[t] and (t == 0 or not covered[t - 1]):
            w += 1
            out[w, 0] = t
        if covered[t] and (t == T - 1 or not covered[t + 1]):
            out[w, 1] = t + 1
    return out


@numba.njit(cache=True, nogil=True)
def _sums_held(states, sites):  # pragma: no cover - compiled
    """`[T]` mask of the steps where, in some restart of `states [R, N, T]`, a site (n, k, i,
    a, j, b) of `sites [S, 6]` holds on one side: chain n at level k, or chains i and j at
    levels a and b together."""
    R, _, T = states.shape
    hit = np.zeros(T, np.bool_)
    for r in range(R):
        for s in range(sites.shape[0]):
            n, k, i, a, j, b = sites[s]
            for t in range(T):
                if states[r, n, t] == k or (states[r, i, t] == a and states[r, j, t] == b):
                    hit[t] = True
    return hit


_Site = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
"""A sum trap ((n, k), (i, a), (j, b)): chain n's level k is close to chain i's level a plus
chain j's level b, so either configuration can stand in for the other."""


@numba.njit(cache=True, nogil=True)
def _window_terms(gap, joint, windows, power, log_pi, log_A, scale):  # pragma: no cover
    """A block's per-step log-likelihoods over `windows [W, 2]` ([a, b) each) laid end to end,
    P steps in all: `log_lik [R, P, K]` = (gap − power_k)² · scale for `gap [R, T]` (reading
    minus background minus the other chains), plus the way into each window (log π at step 0,
    else log A from the block's joint state `joint [R, T]` just before it) and out of it (log A
    into the state just after it); `start [R, P]`, True where a window begins; `steps [P]`."""
    R, T = gap.shape
    K = power.shape[0]
    P = 0
    for w in range(windows.shape[0]):
        P += windows[w, 1] - windows[w, 0]
    log_lik = np.empty((R, P, K))
    start = np.zeros((R, P), np.bool_)
    steps = np.empty(P, np.int64)
    p = 0  # where the current window begins, end to end
    for w in range(windows.shape[0]):
        a, b = windows[w, 0], windows[w, 1]
        for t in range(a, b):
            steps[p + t - a] = t
        for r in range(R):
            for t in range(a, b):
                for k in range(K):
                    d = gap[r, t] - power[k]
                    log_lik[r, p + t - a, k] = (d * d) * scale
            start[r, p] = True
            for k in range(K):
                log_lik[r, p, k] += log_pi[k] if a == 0 else log_A[joint[r, a - 1], k]
            if b < T:
                for k in range(K):
                    log_lik[r, p + b - a - 1, k] += log_A[k, joint[r, b]]
        p += b - a
    return log_lik, start, steps


class _Block(NamedTuple):
    """What an update of a block of chains needs, as numpy arrays over its Π K_n joint states:
    the compiled tables (log π = 0: each window adds its own entry term), log π and log A of
    the product chain, each joint state's total `power` and per-chain `part [M, Π K_n]` watts,
    and the `stride [M]` that turns per-chain states into the joint index."""

    tables: FactorialChains
    log_pi: np.ndarray
    log_A: np.ndarray
    power: np.ndarray
    part: np.ndarray
    stride: np.ndarray


class _Decoder:
    """State of block coordinate ascent on log p(z, y), for R restarts at once, as numpy arrays
    (the updates are many small gathers, which numpy does several times faster than torch):
    `states [R, N, T]`, each chain's power `contrib [R, N, T]` and their sum `total [R, T]`."""

    def __init__(self, y: torch.Tensor, appliances: list[Appliance], sigma: float, b: float,
                 states: torch.Tensor) -> None:
        self.target, self.appliances, self.sigma = (y - b).numpy(), appliances, sigma
        self.states = states.numpy().copy()
        self.contrib = np.stack(
            [a.power.numpy()[self.states[:, n]] for n, a in enumerate(appliances)], 1
        )
        self.total = self.contrib.sum(1)
        self._blocks: dict[tuple[int, ...], _Block] = {}
        # per block, the residual it last fit against and its joint states after that fit
        self._seen: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

    def _block(self, block: tuple[int, ...]) -> _Block:
        if block not in self._blocks:
            chains = [self.appliances[n] for n in block]  # checked when they were made
            initial, transition, power = _product_chain(chains)
            tables = FactorialChains.from_logs(
                [np.zeros(a.K) for a in chains], [a.transition.log().numpy() for a in chains]
            )
            part = np.stack([a.power.numpy()[tables.digits[i]] for i, a in enumerate(chains)])
            stride = np.cumprod([1, *tables.sizes[:0:-1]])[::-1]
            self._blocks[block] = _Block(tables, initial.log().numpy(), transition.log().numpy(),
                                         power.numpy(), part, stride)
        return self._blocks[block]

    def set_sigma(self, sigma: float) -> None:
        """Change the noise level: every block has to be fit afresh."""
        self.sigma = sigma
        self._seen.clear()

    def update(self, block: tuple[int, ...], local: bool = False,
               sites: Sequence[_Site] = ()) -> bool:
        """Exact Viterbi of the chains in `block` jointly (Π K_n states over the block only)
        against the residual y - b - Σ_{m ∉ block} μ⁽ᵐ⁾[z⁽ᵐ⁾] the other chains leave.

        Only in time windows, holding the block's states at the window edges fixed (the exact
        optimum over the windows given everything else): with `local`, where the residual or
        the block's own states changed since the block was last fit (± `_MARGIN` steps); with
        `sites`, where one of those sum configurations holds (± `_TRAP_MARGIN`). Returns
        whether any state changed."""
        k = self._block(block)
        rows = list(block)
        rest = self.total.copy()  # [R, T]: what the chains outside the block explain
        for n in rows:
            rest -= self.contrib[:, n]
        R, T = rest.shape
        joint = self.states[:, rows[0]] * k.stride[0]  # [R, T]
        for i in range(1, len(rows)):
            joint += self.states[:, rows[i]] * k.stride[i]
        covered = None  # every step, unless narrowed below
        if local and block in self._seen:
            seen_rest, seen_joint = self._seen[block]
            covered = _near(((rest != seen_rest) | (joint != seen_joint)).any(0), _MARGIN)
        if sites:
            at_sites = _near(self._at_sites(sites), _TRAP_MARGIN)
            covered = at_sites if covered is None else covered & at_sites
        if covered is not None and not covered.any():
            return False  # nothing the block sees moved (or no trap to look at)
        windows = np.array([[0, T]]) if covered is None else _windows(covered)
        # log Normal of each joint state's power against the residual, up to a constant, and
        # the transitions into and out of each window from the states held around it
        log_lik, start, steps = _window_terms(self.target - rest, joint, windows, k.power,
                                              k.log_pi, k.log_A, -0.5 / self.sigma**2)
        if len(steps) == T:
            steps = slice(None)  # the same steps; a slice reads and writes them faster
        new = viterbi_paths(k.tables, log_lik, start)
        same = np.array_equal(new, joint[:, steps])
        joint[:, steps] = new
        if local:  # what this fit saw, for the block's next local update
            self._seen[block] = (rest, joint)
        else:  # full passes never look back: keep no [R, T] copies alive for them
            self._seen.pop(block, None)
        if same:
            return False
        for i, n in enumerate(rows):  # one gather per chain (4x faster than one [R, T, M])
            self.states[:, n, steps] = k.tables.digits[i][new]
            self.contrib[:, n, steps] = k.part[i][new]
        self.total[:, steps] = rest[:, steps] + k.power[new]
        return True

    def keep(self, rows: list[int]) -> None:
        """Keep only these restarts."""
        self.states, self.contrib, self.total = (
            self.states[rows], self.contrib[rows], self.total[rows]
        )
        self._seen = {block: (rest[rows], joint[rows])
                      for block, (rest, joint) in self._seen.items()}

    def _at_sites(self, sites: Sequence[_Site]) -> np.ndarray:
        """`[T]` steps where, in some restart, a site's chain n is at level k or its chains i
        and j are at levels a and b together."""
        return _sums_held(self.states, np.array([[*n, *i, *j] for n, i, j in sites]))

    def distinct(self) -> list[int]:
        """One restart of each set of identical ones: updates act on each restart alone, so
        twins stay twins."""
        return [r for r in range(self.states.shape[0])
                if not any(np.array_equal(self.states[r], self.states[q]) for q in range(r))]

    def score(self, y: torch.Tensor, b: float, sigma: float) -> torch.Tensor:
        """log p(z, y) of every restart at noise `sigma`, `[R]`."""
        return log_joint(y, self.appliances, torch.from_numpy(self.states), sigma, b)


def _greedy_start(
    y: torch.Tensor, appliances: list[Appliance], sigma: float, b: float,
    orders: list[list[int]],
) -> torch.Tensor:
    """One start per appliance order `[R, N, T]`: decode the appliances one at a time,
    each against what the earlier ones left, with a one-sided noise model — a reading may
    exceed what is explained so far (other appliances add to it) but not fall short of it.
    Restarts that decode the same appliance at the same step share one batched call."""
    R, N, T = len(orders), len(appliances), y.shape[0]
    states = torch.zeros(R, N, T, dtype=torch.long)
    explained = torch.zeros(R, T, dtype=_DTYPE)
    # What is left over is noise plus "other appliances", modelled as Exponential(mean s).
    s = max(float((y - b).clamp_min(0).mean()), 10 * sigma)
    for step in range(N):
        for n in sorted({order[step] for order in orders}):
            rs = [r for r, order in enumerate(orders) if order[step] == n]
            a = appliances[n]
            left = (y - b - explained[rs])[..., None] - a.power  # [G, T, K]
            fit = _normal_log_pdf(left, sigma)
            others = -math.log(s) - left / s
            log_lik = torch.where(left < 0, fit, torch.logaddexp(fit, others))
            z = viterbi(a.initial, a.transition, log_lik).path  # [G, T]
            states[rs, n] = z
            explained[rs] = explained[rs] + a.power[z]
    return states


def _confusable_pairs(appliances: list[Appliance]) -> list[tuple[int, int]]:
    """Each chain with its most confusable partner: the one with the closest non-zero power
    level (fridge 76 W and television 110 W, kettle 2 kW and washer heater 2.05 kW)."""
    pairs = set()
    for n, a in enumerate(appliances):
        gaps = [
            ((a.power[1:, None] - c.power[None, 1:]).abs().min().item(), m)
            for m, c in enumerate(appliances)
            if m != n and a.K > 1 and c.K > 1
        ]
        if gaps:
            pairs.add(tuple(sorted((n, min(gaps)[1]))))
    return sorted(pairs)


def _confusable_triples(
    appliances: list[Appliance], sigma: float, max_states: int = 18
) -> dict[tuple[int, int, int], list[_Site]]:
    """Each power level with the two other chains whose levels *add up* closest to it
    (dishwasher 170 W vs fridge 76 W + fridge-freezer 100 W), if within 5σ and the block has
    at most `max_states` joint states: traps that no single or pair move can leave. Returns
    each triple of chains with its sites ((n, k), (i, a), (j, b)), μ⁽ⁿ⁾_k ≈ μ⁽ⁱ⁾_a + μ⁽ʲ⁾_b."""
    value, owner, level = [], [], []
    for n, a in enumerate(appliances):
        value += a.power[1:].tolist()
        owner += [n] * (a.K - 1)
        level += list(range(1, a.K))
    if len(set(owner)) < 3:
        return {}
    v, o = torch.tensor(value, dtype=_DTYPE), torch.tensor(owner)
    sums = v[:, None] + v[None, :]  # [L, L]: level i of owner o_i plus level j of owner o_j
    valid = o[:, None] < o[None, :]
    triples: dict[tuple[int, int, int], list[_Site]] = {}
    for at, (watts, n) in enumerate(zip(value, owner, strict=True)):
        gap = (watts - sums).abs()
        gap = torch.where(valid & (o[:, None] != n) & (o[None, :] != n), gap, math.inf)
        i, j = divmod(int(gap.argmin()), len(value))
        block = tuple(sorted((n, owner[i], owner[j])))
        if gap.min() < 5 * sigma and math.prod(appliances[m].K for m in block) <= max_states:
            site = ((n, level[at]), (owner[i], level[i]), (owner[j], level[j]))
            triples.setdefault(block, []).append(site)
    return dict(sorted(triples.items()))


def _confusable_blocks(
    appliances: list[Appliance], sigma: float
) -> tuple[list[tuple[int, ...]], dict[tuple[int, int, int], list[_Site]]]:
    """The blocks every pass refits besides single chains and round-robin pairs: the
    confusable pairs, then the confusable triples (also returned with their sites)."""
    triples = _confusable_triples(appliances, sigma)
    return _confusable_pairs(appliances) + list(triples), triples


def _orders(appliances: list[Appliance], restarts: int) -> list[list[int]]:
    """Greedy orders: largest appliance first; each further restart swaps one adjacent pair
    of that order, the pairs with the closest peak powers first (the likeliest confusions)."""
    peak = [float(a.power.max()) for a in appliances]
    first = sorted(range(len(appliances)), key=lambda n: -peak[n])
    gaps = sorted(range(len(first) - 1),
                  key=lambda i: (peak[first[i]] - peak[first[i + 1]]) / max(peak[first[i]], 1.0))
    orders = [first]
    for i in gaps[: restarts - 1]:
        order = list(first)
        order[i], order[i + 1] = order[i + 1], order[i]
        orders.append(order)
    return orders


def _sweep(
    dec: _Decoder, order: list[int], blocks: list[tuple[int, ...]],
    triples: dict[tuple[int, int, int], list[_Site]], number: int, local: bool = False,
) -> bool:
    """Pass `number` of block coordinate ascent: each chain alone (in `order`), then the
    confusable `blocks` (triples only around their sum configurations) and round `number` of
    the round-robin pairs, if there are blocks at all. Returns whether any state changed."""
    moved = False
    for n in order:
        moved |= dec.update((n,), local=local)
    robin = [p for p in _round_robin(len(order), number) if p not in blocks] if blocks else []
    for block in blocks + robin:
        moved |= dec.update(block, local=local, sites=triples.get(block, ()))
    return moved


def disaggregate(
    aggregate: torch.Tensor,
    appliances: Sequence[Appliance],
    noise_std: float,
    background: float = 0.0,
    restarts: int = 4,
    max_sweeps: int = 6,
    pairs: bool = True,
    anneal: Sequence[float] = (8.0, 4.0, 2.0, 1.4),
) -> Disaggregation:
    """Approximate MAP states of the factorial HMM, with a bounded number of small exact
    block updates per appliance and sweep (linear in N).

    1. `restarts` greedy starts: appliances decoded one at a time, largest first (later
       restarts swap one pair of similar appliances in that order), as one batch; identical
       restarts are merged.
    2. Annealing: one pass over the whole series at each noise level `noise_std · f` for f
       in `anneal` (coarse to fine), so small appliances are first placed by their timing and
       only then by their exact power. Then only the restart with the highest log p(z, y)
       goes on.
    3. Sweeps at the model's noise. A pass (annealing or sweep) is exact Viterbi of each
       chain against the residual of the others, then of its confusable pairs, of triples
       where one level is close to the sum of two others' (only within `_TRAP_MARGIN` steps
       of where either side of such a sum holds), and of one round of round-robin pairs.
       Every update maximises log p(z, y) exactly over its block and windows, so the score
       never falls; a sweep refits a block only in the windows (± `_MARGIN` steps) where its
       residual or its own states changed since it last ran, holding the states at the window
       edges, and skips it if none did. Stop after two sweeps without a change (or
       `max_sweeps`).

    Deterministic (no random numbers depend on the data). `pairs=False` and `anneal=()` give
    plain single-chain ICM.
    """
    y = _check_aggregate(aggregate)
    appliances = _check_appliances(appliances)
    _check_scalars(noise_std, background)
    for name, value in (("restarts", restarts), ("max_sweeps", max_sweeps)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    if not all(isinstance(f, int | float) and 0 < f < math.inf for f in anneal):
        raise ValueError(f"anneal: expected finite noise multipliers > 0, got {anneal!r}")
    orders = _orders(appliances, restarts)
    blocks, triples = _confusable_blocks(appliances, noise_std) if pairs else ([], {})
    dec = _Decoder(y, appliances, noise_std, background,
                   _greedy_start(y, appliances, noise_std, background, orders))
    dec.keep(dec.distinct())
    for number, factor in enumerate(anneal):  # coarse to fine: blur small power differences
        dec.set_sigma(noise_std * factor)
        _sweep(dec, orders[0], blocks, triples, number)
        dec.keep(dec.distinct())
    # Go on from the best restart alone (measured: on 46 households, 42 half-days and 4 weeks,
    # the final answer was the same as sweeping every restart, in up to a third less time).
    dec.set_sigma(noise_std)
    dec.keep([int(dec.score(y, background, noise_std).argmax())])
    quiet, sweeps = 0, 0
    while sweeps < max_sweeps and quiet < 2:
        moved = _sweep(dec, orders[0], blocks, triples, len(anneal) + sweeps, local=True)
        sweeps += 1
        quiet = 0 if moved else quiet + 1
    return _result(y, appliances, torch.from_numpy(dec.states[0].copy()), noise_std,
                   background, sweeps)


# ---------------------------------------------------------------------------------------------
# Metrics, on per-appliance power `[N, T]` (or one appliance `[T]`), tensors or arrays


def _pair_of_traces(truth, estimate) -> tuple[torch.Tensor, torch.Tensor]:
    truth = torch.as_tensor(np.asarray(truth) if not torch.is_tensor(truth) else truth)
    estimate = torch.as_tensor(
        np.asarray(estimate) if not torch.is_tensor(estimate) else estimate
    )
    truth, estimate = truth.to(_DTYPE), estimate.to(_DTYPE)
    if truth.dim() not in (1, 2) or truth.shape != estimate.shape or truth.shape[-1] < 1:
        raise ValueError(
            f"truth, estimate: expected two power traces of one shape [T] or [N, T], got "
            f"{tuple(truth.shape)} and {tuple(estimate.shape)}"
        )
    if not (torch.isfinite(truth).all() and torch.isfinite(estimate).all()):
        raise ValueError("truth, estimate: contain NaN or infinite values")
    return truth, estimate


def f1_score(truth, estimate, threshold: float = 10.0) -> torch.Tensor:
    """F1 of the on/off state (on = power > `threshold` watts), per appliance:
    F1 = 2TP / (2TP + FP + FN); 1.0 when the appliance is never on and never estimated on."""
    truth, estimate = _pair_of_traces(truth, estimate)
    on, on_hat = truth > threshold, estimate > threshold
    tp = (on & on_hat).sum(-1).to(_DTYPE)
    wrong = (on ^ on_hat).sum(-1).to(_DTYPE)  # FP + FN
    denominator = 2 * tp + wrong
    return torch.where(denominator > 0, 2 * tp / denominator.clamp_min(1), 1.0)


def nde(truth, estimate) -> torch.Tensor:
    """Normalised disaggregation error per appliance, sqrt(Σ_t (ŷ_t - y_t)² / Σ_t y_t²)
    (inf if the appliance never draws power but is estimated to; 0 if both are all zero)."""
    truth, estimate = _pair_of_traces(truth, estimate)
    error = ((estimate - truth) ** 2).sum(-1)
    scale = (truth**2).sum(-1)
    return torch.where(error == 0, 0.0, (error / scale).sqrt())


def mean_absolute_error(truth, estimate) -> torch.Tensor:
    """Mean absolute error in watts per appliance, (1/T) Σ_t |ŷ_t - y_t|."""
    truth, estimate = _pair_of_traces(truth, estimate)
    return (estimate - truth).abs().mean(-1)


def energy_correctly_assigned(truth, estimate) -> torch.Tensor:
    """Fraction of total energy correctly assigned, Σₙ min(Eₙ / Σ E, Êₙ / Σ Ê), for
    `[N, T]` traces (1 = every appliance gets exactly its share of the energy)."""
    truth, estimate = _pair_of_traces(truth, estimate)
    if truth.dim() != 2:
        raise ValueError(f"truth: expected traces of N appliances [N, T], got {tuple(truth.shape)}")
    E, E_hat = truth.sum(-1), estimate.sum(-1)
    if E.sum() <= 0 or E_hat.sum() <= 0:
        raise ValueError("truth, estimate: need a positive total energy to compare shares")
    return torch.minimum(E / E.sum(), E_hat / E_hat.sum()).sum()
