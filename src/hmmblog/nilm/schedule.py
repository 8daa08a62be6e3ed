"""Which blocks of chains the NILM decoder refits, and in which order.

Besides each chain alone, a pass refits the *confusable pairs* (chains with close power
levels), the *confusable triples* (one level close to the sum of two others': a sum trap no
single or pair move can leave) and one round of *round-robin pairs* (every pair meets once
in about C passes). The greedy start decodes the appliances in the `orders` given here.
"""

from __future__ import annotations

import math

import torch

from hmmblog.nilm.appliances import DTYPE, Appliance

__all__ = ["Site", "confusable_blocks", "confusable_pairs", "confusable_triples", "orders",
           "round_robin"]

Site = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
"""A sum trap ((c, k), (i, a), (j, b)): chain c's level k is close to chain i's level a plus
chain j's level b, so either configuration can stand in for the other."""


def round_robin(C: int, sweep: int) -> list[tuple[int, int]]:
    """The `sweep`-th round of a round-robin tournament on C chains (circle method): ⌊C/2⌋
    disjoint pairs per round, and every pair meets once in C - 1 (C even) or C (odd) rounds."""
    players = list(range(C)) + ([-1] if C % 2 else [])  # -1: a bye, for odd C
    P = len(players)
    r = sweep % (P - 1)
    rotated = [players[0]] + [players[1 + (i + r) % (P - 1)] for i in range(P - 1)]
    pairs = [(rotated[i], rotated[P - 1 - i]) for i in range(P // 2)]
    return [(min(p), max(p)) for p in pairs if -1 not in p]


def confusable_pairs(appliances: list[Appliance]) -> list[tuple[int, int]]:
    """Each chain with its most confusable partner: the one with the closest non-zero power
    level (fridge 76 W and television 110 W, kettle 2 kW and washer heater 2.05 kW)."""
    pairs = set()
    for c, a in enumerate(appliances):
        gaps = [
            ((a.power[1:, None] - other.power[None, 1:]).abs().min().item(), d)
            for d, other in enumerate(appliances)
            if d != c and a.K > 1 and other.K > 1
        ]
        if gaps:
            pairs.add(tuple(sorted((c, min(gaps)[1]))))
    return sorted(pairs)


def confusable_triples(
    appliances: list[Appliance], sigma: float, max_states: int = 18
) -> dict[tuple[int, int, int], list[Site]]:
    """Each power level with the two other chains whose levels *add up* closest to it
    (dishwasher 170 W vs fridge 76 W + fridge-freezer 100 W), if within 5σ and the block has
    at most `max_states` joint states: traps that no single or pair move can leave. Returns
    each triple of chains with its sites ((c, k), (i, a), (j, b)), μ⁽ᶜ⁾_k ≈ μ⁽ⁱ⁾_a + μ⁽ʲ⁾_b."""
    value, owner, level = [], [], []
    for c, a in enumerate(appliances):
        value += a.power[1:].tolist()
        owner += [c] * (a.K - 1)
        level += list(range(1, a.K))
    if len(set(owner)) < 3:
        return {}
    v, o = torch.tensor(value, dtype=DTYPE), torch.tensor(owner)
    sums = v[:, None] + v[None, :]  # [L, L]: level i of owner o_i plus level j of owner o_j
    valid = o[:, None] < o[None, :]
    triples: dict[tuple[int, int, int], list[Site]] = {}
    for at, (watts, c) in enumerate(zip(value, owner, strict=True)):
        gap = (watts - sums).abs()
        gap = torch.where(valid & (o[:, None] != c) & (o[None, :] != c), gap, math.inf)
        i, j = divmod(int(gap.argmin()), len(value))
        block = tuple(sorted((c, owner[i], owner[j])))
        if gap.min() < 5 * sigma and math.prod(appliances[m].K for m in block) <= max_states:
            site = ((c, level[at]), (owner[i], level[i]), (owner[j], level[j]))
            triples.setdefault(block, []).append(site)
    return dict(sorted(triples.items()))


def confusable_blocks(
    appliances: list[Appliance], sigma: float
) -> tuple[list[tuple[int, ...]], dict[tuple[int, int, int], list[Site]]]:
    """The blocks every pass refits besides single chains and round-robin pairs: the
    confusable pairs, then the confusable triples (also returned with their sites)."""
    triples = confusable_triples(appliances, sigma)
    return confusable_pairs(appliances) + list(triples), triples


def orders(appliances: list[Appliance], restarts: int) -> list[list[int]]:
    """Greedy orders: largest appliance first; each further restart swaps one adjacent pair
    of that order, the pairs with the closest peak powers first (the likeliest confusions)."""
    peak = [float(a.power.max()) for a in appliances]
    first = sorted(range(len(appliances)), key=lambda c: -peak[c])
    gaps = sorted(range(len(first) - 1),
                  key=lambda i: (peak[first[i]] - peak[first[i + 1]]) / max(peak[first[i]], 1.0))
    out = [first]
    for i in gaps[: restarts - 1]:
        order = list(first)
        order[i], order[i + 1] = order[i + 1], order[i]
        out.append(order)
    return out
