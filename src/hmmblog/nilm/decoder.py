"""The linear-time NILM decoder: block coordinate ascent on log p(z, y), with exact updates.

`disaggregate` is the entry point. It starts from `greedy_start` (appliances decoded one at a
time) and improves the start with `BlockAscent`, whose `update` is exact factorial Viterbi of a
block of one, two or three chains against the residual the other chains leave: every update
maximises log p(z, y) over its block, so the score never falls. A block of chains costs
T · Π K_c · Σ K_c, and a pass refits a bounded number of blocks per chain (see
`hmmblog.nilm.schedule`), so a pass is linear in the number of appliances C.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from hmmblog.emissions import normal_log_density
from hmmblog.inference import FactorialChains, viterbi, viterbi_paths
from hmmblog.inference.rows import one_torch_thread
from hmmblog.nilm import meter, schedule
from hmmblog.nilm.appliances import DTYPE, Appliance, check_appliances
from hmmblog.nilm.kernels import near, sums_held, window_terms, windows
from hmmblog.nilm.learning import unmetered_from_meter
from hmmblog.nilm.model import (
    Disaggregation,
    check_aggregate,
    disaggregation,
    log_joint,
    product_chain,
)
from hmmblog.nilm.schedule import Site
from hmmblog.validation import check_positive_int, check_positive_number

__all__ = ["Block", "BlockAscent", "disaggregate", "greedy_start"]


class Block(NamedTuple):
    """What an update of a block of chains needs, as numpy arrays over its Π K_c joint states:
    the compiled `chains` (log π = 0: each window adds its own entry term), log π and log A of
    the product chain, each joint state's total `power` and variance `var` and per-chain
    `part`, `var_part [len(block), Π K_c]`, and the `stride [len(block)]` that turns per-chain
    states into the joint index."""

    chains: FactorialChains
    log_pi: np.ndarray
    log_A: np.ndarray
    power: np.ndarray
    var: np.ndarray
    part: np.ndarray
    var_part: np.ndarray
    stride: np.ndarray


class BlockAscent:
    """State of block coordinate ascent on log p(z, y), for R restarts at once, as numpy arrays
    (the updates are many small gathers): `states [R, C, T]`, each chain's power
    `contrib [R, C, T]` and variance `var [R, C, T]` (s⁽ᶜ⁾[z⁽ᶜ⁾_t]²) and their sums
    `total`, `var_total [R, T]`. A caller that edits `states` by hand sets the others to match.

    `margin_minutes` (either side of a changed residual, what a local update refits) and
    `trap_margin_minutes` (either side of a possible sum trap, what a triple looks at) may be
    set per instance; they become steps through the appliances' `step_minutes`."""

    margin_minutes = 60.0
    trap_margin_minutes = 30.0

    def __init__(self, aggregate: torch.Tensor, appliances: list[Appliance], noise_std: float,
                 background: float, states: torch.Tensor) -> None:
        self.target = (aggregate - background).numpy()
        self.appliances, self.sigma = appliances, noise_std
        self.step_minutes = appliances[0].step_minutes
        self.states = states.numpy().copy()
        self.contrib = np.stack(
            [a.power.numpy()[self.states[:, c]] for c, a in enumerate(appliances)], 1
        )
        self.var = np.stack(
            [a.scale.numpy()[self.states[:, c]] ** 2 for c, a in enumerate(appliances)], 1
        )
        self.total, self.var_total = self.contrib.sum(1), self.var.sum(1)
        # without any appliance that wanders the variance is σ² everywhere: skip its books
        self.wanders = any(a.wanders for a in appliances)
        self._tables: dict[tuple[int, ...], Block] = {}
        # per block, the residual and its variance it last fit against and its joint states
        # after that fit: (rest, rest_var, joint)
        self._seen: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def block(self, block: tuple[int, ...]) -> Block:
        """The tables of a block of chains, built on first use and kept."""
        if block not in self._tables:
            chains = [self.appliances[c] for c in block]  # checked when they were made
            initial, transition, power, var = product_chain(chains)
            compiled = FactorialChains.from_logs(
                [np.zeros(a.K) for a in chains], [a.transition.log().numpy() for a in chains]
            )
            part = np.stack([a.power.numpy()[compiled.digits[i]] for i, a in enumerate(chains)])
            var_part = np.stack([a.scale.numpy()[compiled.digits[i]] ** 2
                                 for i, a in enumerate(chains)])
            stride = np.cumprod([1, *compiled.sizes[:0:-1]])[::-1]
            self._tables[block] = Block(compiled, initial.log().numpy(),
                                        transition.log().numpy(), power.numpy(), var.numpy(),
                                        part, var_part, stride)
        return self._tables[block]

    def steps(self, minutes: float) -> int:
        """A duration in minutes as a whole number of steps (at least one)."""
        return max(1, round(minutes / self.step_minutes))

    def set_sigma(self, sigma: float) -> None:
        """Change the noise level: every block has to be fit afresh."""
        self.sigma = sigma
        self._seen.clear()

    def update(self, block: tuple[int, ...], local: bool = False,
               sites: Sequence[Site] = ()) -> bool:
        """Exact Viterbi of the chains in `block` jointly (Π K_c states over the block only)
        against the residual y - b - Σ_{c ∉ block} μ⁽ᶜ⁾[z⁽ᶜ⁾] the other chains leave.

        Only in time windows, holding the block's states at the window edges fixed (the exact
        optimum over the windows given everything else): with `local`, where the residual or
        the block's own states changed since the block was last fit (± `margin_minutes`);
        with `sites`, where one of those sum configurations holds (± `trap_margin_minutes`).
        Returns whether any state changed."""
        blk = self.block(block)
        rows = list(block)
        rest = self.total.copy()  # [R, T]: what the chains outside the block explain
        # [R, T] the meter's variance and the other chains' (or [1, 1] if all are σ²)
        rest_var = self.var_total + self.sigma**2 if self.wanders else np.full((1, 1),
                                                                               self.sigma**2)
        for c in rows:
            rest -= self.contrib[:, c]
            if self.wanders:
                rest_var -= self.var[:, c]
        R, T = rest.shape
        joint = self.states[:, rows[0]] * blk.stride[0]  # [R, T]
        for i in range(1, len(rows)):
            joint += self.states[:, rows[i]] * blk.stride[i]
        covered = None  # every step, unless narrowed below
        if local and block in self._seen:
            seen_rest, seen_var, seen_joint = self._seen[block]
            moved = (rest != seen_rest) | (rest_var != seen_var) | (joint != seen_joint)
            covered = near(moved.any(0),
                           self.steps(self.margin_minutes))
        if sites:
            at_sites = near(self._at_sites(sites), self.steps(self.trap_margin_minutes))
            covered = at_sites if covered is None else covered & at_sites
        if covered is not None and not covered.any():
            return False  # nothing the block sees moved (or no trap to look at)
        spans = np.array([[0, T]]) if covered is None else windows(covered)
        # log Normal of each joint state's power against the residual, up to a constant, and
        # the transitions into and out of each window from the states held around it
        log_lik, start, steps = window_terms(self.target - rest, rest_var, joint, spans,
                                             blk.power, blk.var, blk.log_pi, blk.log_A)
        if len(steps) == T:
            steps = slice(None)  # the same steps; a slice reads and writes them faster
        new = viterbi_paths(blk.chains, log_lik, start)
        same = np.array_equal(new, joint[:, steps])
        joint[:, steps] = new
        if local:  # what this fit saw, for the block's next local update
            self._seen[block] = (rest, rest_var, joint)
        else:  # full passes never look back: keep no [R, T] copies alive for them
            self._seen.pop(block, None)
        if same:
            return False
        for i, c in enumerate(rows):  # one gather per chain
            self.states[:, c, steps] = blk.chains.digits[i][new]
            self.contrib[:, c, steps] = blk.part[i][new]
            if self.wanders:
                self.var[:, c, steps] = blk.var_part[i][new]
        self.total[:, steps] = rest[:, steps] + blk.power[new]
        if self.wanders:
            self.var_total[:, steps] = rest_var[:, steps] - self.sigma**2 + blk.var[new]
        return True

    def sweep(self, order: list[int], blocks: list[tuple[int, ...]],
              triples: dict[tuple[int, int, int], list[Site]], number: int,
              local: bool = False) -> bool:
        """Pass `number` of block coordinate ascent: each chain alone (in `order`), then the
        confusable `blocks` (triples only around their sum configurations) and round `number`
        of the round-robin pairs, if there are blocks at all. Returns whether any state
        changed."""
        moved = False
        for c in order:
            moved |= self.update((c,), local=local)
        robin = ([p for p in schedule.round_robin(len(order), number) if p not in blocks]
                 if blocks else [])
        for block in blocks + robin:
            moved |= self.update(block, local=local, sites=triples.get(block, ()))
        return moved

    def keep(self, rows: list[int]) -> None:
        """Keep only these restarts."""
        self.states, self.contrib, self.total = (
            self.states[rows], self.contrib[rows], self.total[rows]
        )
        self.var, self.var_total = self.var[rows], self.var_total[rows]
        # (a [1, 1] variance, when no chain wanders, is every restart's)
        self._seen = {block: tuple(x if x.shape[0] == 1 else x[rows] for x in seen)
                      for block, seen in self._seen.items()}

    def _at_sites(self, sites: Sequence[Site]) -> np.ndarray:
        """`[T]` steps where, in some restart, a site's chain c is at level k or its chains i
        and j are at levels a and b together."""
        return sums_held(self.states, np.array([[*c, *i, *j] for c, i, j in sites]))

    def distinct(self) -> list[int]:
        """One restart of each set of identical ones: updates act on each restart alone, so
        twins stay twins."""
        return [r for r in range(self.states.shape[0])
                if not any(np.array_equal(self.states[r], self.states[q]) for q in range(r))]

    def score(self, aggregate: torch.Tensor, background: float, noise_std: float
              ) -> torch.Tensor:
        """log p(z, y) of every restart at noise σ = `noise_std`, `[R]`."""
        return log_joint(aggregate, self.appliances, torch.from_numpy(self.states), noise_std,
                         background)


def greedy_start(
    aggregate: torch.Tensor, appliances: list[Appliance], noise_std: float, background: float,
    orders: list[list[int]],
) -> torch.Tensor:
    """One start per appliance order `[R, C, T]`: decode the appliances one at a time,
    each against what the earlier ones left, with a one-sided noise model — a reading may
    exceed what is explained so far (other appliances add to it) but not fall short of it.
    A missing reading is a step without evidence. Restarts that decode the same appliance at
    the same step share one batched call."""
    y, b, sigma = aggregate, background, noise_std
    R, C, T = len(orders), len(appliances), y.shape[0]
    states = torch.zeros(R, C, T, dtype=torch.long)
    explained = torch.zeros(R, T, dtype=DTYPE)
    wander = torch.zeros(R, T, dtype=DTYPE)  # the variance of what is explained so far
    # What is left over is noise plus "other appliances", modelled as Exponential(others_mean).
    others_mean = max(float((y - b).clamp_min(0).nanmean()), 10 * sigma)
    missing = torch.isnan(y)[:, None]
    gaps = bool(missing.any())
    wandering = any(a.wanders for a in appliances)
    for step in range(C):
        for c in sorted({order[step] for order in orders}):
            rs = [r for r, order in enumerate(orders) if order[step] == c]
            a = appliances[c]
            left = (y - b - explained[rs])[..., None] - a.power  # [G, T, K]
            spread = ((sigma**2 + wander[rs][..., None] + a.scale**2).sqrt() if wandering
                      else sigma)  # a number, when it is one: a faster density
            fit = normal_log_density(left, 0.0, spread)
            others = -math.log(others_mean) - left / others_mean
            log_lik = torch.where(left < 0, fit, torch.logaddexp(fit, others))
            if gaps:
                log_lik = log_lik.masked_fill(missing, 0.0)  # NaN readings: no evidence
            z = viterbi(a.initial, a.transition, log_lik).path  # [G, T]
            states[rs, c] = z
            explained[rs] = explained[rs] + a.power[z]
            if wandering:
                wander[rs] = wander[rs] + a.scale[z] ** 2
    return states


@one_torch_thread
def disaggregate(
    aggregate: torch.Tensor,
    appliances: Sequence[Appliance],
    noise_std: float | None = None,
    background: float | None = None,
    restarts: int = 4,
    max_sweeps: int = 6,
    pairs: bool = True,
    anneal: Sequence[float] = (8.0, 4.0, 2.0, 1.4),
    *,
    unmetered: bool | Appliance = True,
) -> Disaggregation:
    """Approximate MAP states of the factorial HMM, with a bounded number of small exact
    block updates per appliance and sweep (linear in C).

    0. The meter: σ = `noise_std` if given, else estimated from the readings
       (`meter.estimate_noise`: the spread of step-to-step differences). A real meter reads
       load nobody modelled: `unmetered` is that load's chain, one more chain of the model
       whose decoded watts the result reports as `unmetered` — an `Appliance` learned from
       training days (`learn_unmetered` on the mains less the sub-meters), or True (the
       default) to learn it from this meter (`learning.unmetered_from_meter`: from what the
       appliances leave when decoded without it, then decoded again). Its lowest level
       is the house's floor, so b = `background` is 0 unless given. `unmetered=False` is a
       meter that reads the modelled appliances alone (a simulation, post 4), with b given
       or estimated (`meter.estimate_background`: a low quantile of the readings less every
       appliance's lowest level). Missing readings (NaN) are steps without evidence: the
       chains carry on through them.
    1. `restarts` greedy starts: appliances decoded one at a time, largest first (later
       restarts swap one pair of similar appliances in that order; the unmetered chain
       last), as one batch; identical restarts are merged.
    2. Annealing: one pass over the whole series at each noise level `noise_std · f` for f
       in `anneal` (coarse to fine), so small appliances are first placed by their timing and
       only then by their exact power. Then only the restart with the highest log p(z, y)
       goes on.
    3. Sweeps at the model's noise. A pass (annealing or sweep) is exact Viterbi of each
       chain against the residual of the others, then of its confusable pairs (and of each
       appliance with the unmetered chain), of triples where one level is close to the sum
       of two others' (only within `BlockAscent.trap_margin_minutes` of where either side of
       such a sum holds), and of one round of round-robin pairs. Every update maximises
       log p(z, y) exactly over its block and windows, so the score never falls; a sweep
       refits a block only in the windows (± `BlockAscent.margin_minutes`) where its
       residual or its own states changed since it last ran, holding the states at the
       window edges, and skips it if none did. Stop after two sweeps without a change (or
       `max_sweeps`).

    Deterministic (no random numbers depend on the data). `pairs=False` and `anneal=()` give
    plain single-chain ICM. Runs its torch work on one thread and gives the caller's setting
    back.
    """
    y = check_aggregate(aggregate)
    appliances = check_appliances(appliances)
    unmetered = meter.check_unmetered(unmetered, appliances)
    noise_std = meter.meter_noise(y, noise_std)
    restarts = check_positive_int("restarts", restarts)
    max_sweeps = check_positive_int("max_sweeps", max_sweeps)
    anneal = [check_positive_number("anneal", f, "finite noise multipliers > 0")
              for f in anneal]
    orders = schedule.orders(appliances, restarts)
    blocks, triples = schedule.confusable_blocks(appliances, noise_std) if pairs else ([], {})

    def decode(rest: Appliance | None) -> Disaggregation:
        b = meter.meter_floor(y, appliances, noise_std, background, rest is not None)
        chains, order, pairs_ = appliances, orders, blocks
        if rest is not None:
            u = len(appliances)
            chains, order = [*appliances, rest], [[*o, u] for o in orders]
            pairs_ = blocks + [(c, u) for c in range(u)] if pairs else blocks
        dec = BlockAscent(y, chains, noise_std, b, greedy_start(y, chains, noise_std, b, order))
        dec.keep(dec.distinct())
        for number, factor in enumerate(anneal):  # coarse to fine: blur small differences
            dec.set_sigma(noise_std * factor)
            dec.sweep(order[0], pairs_, triples, number)
            dec.keep(dec.distinct())
        # Go on from the best restart alone (as good as sweeping them all where measured;
        # see benchmarks/NOTES.md).
        dec.set_sigma(noise_std)
        dec.keep([int(dec.score(y, b, noise_std).argmax())])
        quiet, sweeps = 0, 0
        while sweeps < max_sweeps and quiet < 2:
            moved = dec.sweep(order[0], pairs_, triples, len(anneal) + sweeps, local=True)
            sweeps += 1
            quiet = 0 if moved else quiet + 1
        return disaggregation(y, appliances, torch.from_numpy(dec.states[0].copy()),
                              noise_std, b, sweeps, rest)

    if unmetered is True:
        return unmetered_from_meter(y, appliances[0].step_minutes, decode)
    return decode(unmetered or None)
