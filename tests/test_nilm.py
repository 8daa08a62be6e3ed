"""Tests of hmmblog.nilm: the factorial HMM for energy disaggregation.

Oracles: the core's `viterbi` (N = 1), exact product-state Viterbi (small N), Pyro's own
enumeration of the story (tiny N), and hand-computed metrics.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from unittest import mock

import numpy as np
import pyro
import pytest
import torch
from pyro.infer import TraceEnum_ELBO, config_enumerate, infer_discrete

from hmmblog import log_likelihood, viterbi
from hmmblog.nilm import (
    Appliance,
    BlockAscent,
    appliance_catalogue,
    decoder,
    disaggregate,
    disaggregate_exact,
    energy_correctly_assigned,
    f1_score,
    factorial_story,
    greedy_start,
    log_joint,
    mean_absolute_error,
    nde,
    product_chain,
    random_household,
    simulate_household,
    two_state,
)
from hmmblog.nilm.kernels import near, windows
from hmmblog.nilm.schedule import confusable_triples, round_robin
from hmmblog.nilm.schedule import orders as nilm_orders

CAT = appliance_catalogue()


def _tiny() -> list[Appliance]:
    """Three appliances whose power sums are all distinct (unique answer at low noise)."""
    return [
        two_state("a", 100.0, mean_off=6, mean_on=3),
        two_state("b", 250.0, mean_off=5, mean_on=4),
        Appliance("c", [0.0, 600.0, 1400.0], [0.6, 0.3, 0.1],
                  [[0.8, 0.2, 0.0], [0.1, 0.7, 0.2], [0.0, 0.3, 0.7]]),
    ]


# ---------------------------------------------------------------------------------------------
# Appliances and simulation


def test_catalogue_is_grounded_in_the_reference_figures() -> None:
    assert CAT["kettle"].power.tolist() == [0.0, 2000.0]
    assert CAT["washing machine"].power.tolist() == [0.0, 150.0, 2050.0]
    # Mean dwell time of a geometric state = 1 / (1 - A_kk): fridge off ~54 min, on ~17 min.
    dwell = 1 / (1 - CAT["fridge"].transition.diagonal())
    assert dwell.tolist() == pytest.approx([54.0, 17.0])
    for a in CAT.values():  # π is the stationary distribution: π A = π
        torch.testing.assert_close(a.initial @ a.transition, a.initial)


def test_simulate_household_adds_up() -> None:
    apps = [CAT["fridge"], CAT["kettle"], CAT["washing machine"]]
    hh = simulate_household(apps, 5000, noise_std=20.0, background=150.0, seed=3)
    assert hh.aggregate.shape == (5000,) and hh.power.shape == hh.states.shape == (3, 5000)
    assert hh.states.dtype == torch.int64
    for n, a in enumerate(apps):
        assert torch.equal(hh.power[n], a.power[hh.states[n]])
    residual = hh.aggregate - 150.0 - hh.power.sum(0)
    assert abs(residual.mean().item()) < 1.5 and abs(residual.std().item() - 20.0) < 1.0
    # The fridge spends 17 / (54 + 17) of its time on (stationary law), within sampling error.
    assert abs((hh.states[0] == 1).double().mean().item() - 17 / 71) < 0.05
    again = simulate_household(apps, 5000, noise_std=20.0, background=150.0, seed=3)
    assert torch.equal(again.aggregate, hh.aggregate)


def test_random_household_is_seeded_and_grows() -> None:
    h24 = random_household(24, seed=1)
    assert len(h24) == 24 and [a.name for a in random_household(24, seed=1)] == [
        a.name for a in h24
    ]
    assert len({a.name for a in h24}) == 24  # copies get their own names


# ---------------------------------------------------------------------------------------------
# Scoring and exact decoding


def test_log_joint_matches_brute_force_and_product_viterbi() -> None:
    apps = _tiny()[:2]
    hh = simulate_household(apps, 5, noise_std=40.0, background=10.0, seed=0)
    # Brute force over all (2·2)^5 joint paths: the best log p(z, y) is the Viterbi score.
    best = -math.inf
    for path in itertools.product(range(2), repeat=10):
        z = torch.tensor(path).reshape(2, 5)
        best = max(best, log_joint(hh.aggregate, apps, z, 40.0, 10.0).item())
    exact = disaggregate_exact(hh.aggregate, apps, 40.0, 10.0, unmetered=False)
    assert exact.log_joint.item() == pytest.approx(best, abs=1e-9)
    initial, transition, power, _ = product_chain(apps)
    ll = torch.distributions.Normal(10.0 + power, 40.0).log_prob(hh.aggregate[:, None])
    assert viterbi(initial, transition, ll).log_joint.item() == pytest.approx(best, abs=1e-9)


def test_single_appliance_equals_core_viterbi() -> None:
    a = CAT["washing machine"]
    hh = simulate_household([a], 3000, noise_std=60.0, background=150.0, seed=5)
    ll = torch.distributions.Normal(150.0 + a.power, 60.0).log_prob(hh.aggregate[:, None])
    ref = viterbi(a.initial, a.transition, ll)
    got = disaggregate(hh.aggregate, [a], 60.0, 150.0, unmetered=False)
    assert torch.equal(got.states[0], ref.path)
    assert got.log_joint.item() == pytest.approx(ref.log_joint.item(), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_disaggregate_equals_exact_on_low_noise_households(seed: int) -> None:
    apps = _tiny()
    hh = simulate_household(apps, 400, noise_std=5.0, background=50.0, seed=seed)
    exact = disaggregate_exact(hh.aggregate, apps, 5.0, 50.0, unmetered=False)
    ours = disaggregate(hh.aggregate, apps, 5.0, 50.0, unmetered=False)
    assert torch.equal(exact.states, hh.states)  # unique answer: the truth
    assert torch.equal(ours.states, exact.states)
    assert ours.states.dtype == torch.int64 and ours.power.shape == (3, 400)


def test_disaggregate_is_deterministic_and_sweeps_only_help() -> None:
    apps = random_household(6, seed=11)
    hh = simulate_household(apps, 1440, noise_std=20.0, background=150.0, seed=11)
    one = disaggregate(hh.aggregate, apps, 20.0, 150.0, max_sweeps=1, unmetered=False)
    full = disaggregate(hh.aggregate, apps, 20.0, 150.0, unmetered=False)
    again = disaggregate(hh.aggregate, apps, 20.0, 150.0, unmetered=False)
    assert torch.equal(full.states, again.states)
    assert full.log_joint >= one.log_joint - 1e-9
    assert full.log_joint.item() == pytest.approx(
        log_joint(hh.aggregate, apps, full.states, 20.0, 150.0).item()
    )


def test_the_background_is_subtracted_from_the_start_on() -> None:
    """Readings and background both raised by 1 kW: the same states, from the greedy start
    (whose search would otherwise explain the kilowatt with appliances) through one sweep of
    plain ICM (no annealing or pair moves to repair a wrong start)."""
    apps = _tiny()
    hh = simulate_household(apps, 400, noise_std=5.0, background=50.0, seed=0)
    shifted = hh.aggregate + 1000.0
    orders = [list(range(len(apps)))]
    assert torch.equal(greedy_start(hh.aggregate, apps, 5.0, 50.0, orders),
                       greedy_start(shifted, apps, 5.0, 1050.0, orders))
    icm = {"restarts": 1, "anneal": (), "pairs": False, "max_sweeps": 1, "unmetered": False}
    low = disaggregate(hh.aggregate, apps, 5.0, 50.0, **icm)
    high = disaggregate(shifted, apps, 5.0, 1050.0, **icm)
    assert torch.equal(low.states, high.states)
    assert (low.states == hh.states).double().mean() > 0.9  # and the states are sensible


def test_sweeps_counts_the_sweeps_that_ran() -> None:
    """`sweeps` is the number of local sweeps run after the start, each one a full sweep: with
    plain ICM, max_sweeps=1 is the greedy start plus exactly one `BlockAscent.sweep`, and a
    run stops after two sweeps without a change."""
    apps = random_household(6, seed=11)
    hh = simulate_household(apps, 1440, noise_std=20.0, background=150.0, seed=11)
    icm = {"restarts": 1, "anneal": (), "pairs": False, "unmetered": False}
    order = nilm_orders(apps, 1)[0]
    start = greedy_start(hh.aggregate, apps, 20.0, 150.0, [order])
    by_hand = BlockAscent(hh.aggregate, apps, 20.0, 150.0, start)
    assert by_hand.sweep(order, [], {}, 0, local=True)  # the first sweep moves something
    one = disaggregate(hh.aggregate, apps, 20.0, 150.0, max_sweeps=1, **icm)
    assert one.sweeps == 1
    assert np.array_equal(one.states.numpy(), by_hand.states[0])
    full = disaggregate(hh.aggregate, apps, 20.0, 150.0, max_sweeps=50, **icm)
    assert 3 <= full.sweeps < 50  # it stopped by itself, after two quiet sweeps
    for m in (full.sweeps - 2, full.sweeps - 1):
        run = disaggregate(hh.aggregate, apps, 20.0, 150.0, max_sweeps=m, **icm)
        assert run.sweeps == m and torch.equal(run.states, full.states)
    before = disaggregate(hh.aggregate, apps, 20.0, 150.0, max_sweeps=full.sweeps - 3, **icm)
    assert not torch.equal(before.states, full.states)  # the last moving sweep was needed


def test_pyro_story_enumerates_to_the_exact_answers() -> None:
    apps = _tiny()[:2]
    hh = simulate_household(apps, 8, noise_std=30.0, background=0.0, seed=2)
    y = hh.aggregate
    model = config_enumerate(factorial_story)
    # log p(y) by Pyro's exact enumeration equals the core's forward algorithm on the product.
    elbo = TraceEnum_ELBO(max_plate_nesting=0)
    log_evidence = -elbo.loss(model, lambda *a, **k: None, apps, 30.0, 0.0, y)
    initial, transition, power, _ = product_chain(apps)
    ll = torch.distributions.Normal(power, 30.0).log_prob(y[:, None])
    assert log_evidence == pytest.approx(log_likelihood(initial, transition, ll).item(), rel=1e-9)
    # MAP by Pyro (max-product over the enumerated story) equals product-state Viterbi.
    decoder = infer_discrete(model, first_available_dim=-1, temperature=0)
    trace = pyro.poutine.trace(decoder).get_trace(apps, 30.0, 0.0, y)
    pyro_states = torch.tensor(
        [[int(trace.nodes[f"z_{n}_{t}"]["value"]) for t in range(8)] for n in range(2)]
    )
    exact = disaggregate_exact(y, apps, 30.0, 0.0, unmetered=False)
    assert torch.equal(pyro_states, exact.states)


@pytest.mark.slow
def test_close_to_exact_on_realistic_households() -> None:
    """Mean per-appliance F1 within 0.03 of exact product-state Viterbi (σ = 20 W)."""
    gaps = []
    for N, seed in [(2, 0), (3, 1), (3, 2), (4, 3), (4, 4)]:
        apps = random_household(N, seed=40 + seed)
        hh = simulate_household(apps, 1440, noise_std=20.0, background=150.0, seed=seed)
        exact = disaggregate_exact(hh.aggregate, apps, 20.0, 150.0, unmetered=False)
        ours = disaggregate(hh.aggregate, apps, 20.0, 150.0, unmetered=False)
        gaps.append(
            (f1_score(hh.power, exact.power).mean() - f1_score(hh.power, ours.power).mean()).item()
        )
    assert np.mean(gaps) < 0.03


def test_windows_cover_every_change_with_a_margin() -> None:
    changed = np.zeros(1000, dtype=bool)
    changed[[100, 115, 140, 700]] = True
    # 100 and 115 overlap
    assert windows(near(changed, 10)).tolist() == [[90, 126], [130, 151], [690, 711]]
    changed[[0, 999]] = True
    assert windows(near(changed, 10)).tolist() == [
        [0, 11], [90, 126], [130, 151], [690, 711], [989, 1000]
    ]
    changed[:600] = True
    assert windows(near(changed, 10)).tolist() == [[0, 1000]]  # over half: one window


def test_a_local_refit_finds_what_a_full_refit_finds() -> None:
    """Refitting only around where the other chains moved (block states held at the window
    edges) gives the full-length refit's answer when the change is local."""
    apps = random_household(4, seed=3)
    hh = simulate_household(apps, 1440, noise_std=20.0, background=150.0, seed=3)
    start = torch.zeros(1, 4, 1440, dtype=torch.long)
    local = BlockAscent(hh.aggregate, apps, 20.0, 150.0, start.clone())
    blocks = [(0,), (1,), (2,), (3,), (0, 2)]  # a block's first local fit is full length
    for _ in range(20):  # until no block moves (a broken update could cycle forever)
        if not any([local.update(block, local=True) for block in blocks]):
            break
    else:
        pytest.fail("the local updates did not settle in 20 rounds")
    with mock.patch.object(decoder, "viterbi_paths", wraps=decoder.viterbi_paths) as fit:
        assert not local.update((0,), local=True)  # nothing moved since chain 0 was fit
    assert fit.call_count == 0  # skipped, not refit
    local.states[0, 1, 600:700] = 1 - local.states[0, 1, 600:700]  # chain 1 changes locally
    local.contrib[0, 1] = apps[1].power.numpy()[local.states[0, 1]]
    local.total = local.contrib.sum(1)
    full = BlockAscent(hh.aggregate, apps, 20.0, 150.0, torch.from_numpy(local.states.copy()))
    with mock.patch.object(decoder, "viterbi_paths", wraps=decoder.viterbi_paths) as fit:
        local.update((0, 2), local=True)
    margin = local.steps(local.margin_minutes)
    assert fit.call_args.args[1].shape[1] == 100 + 2 * margin  # only around 600..700
    full.update((0, 2))
    assert np.array_equal(local.states, full.states)
    assert np.allclose(local.total, full.total)


@pytest.mark.parametrize("real_meter", [False, True])
def test_a_local_refit_is_the_exact_optimum_over_its_window(real_meter: bool) -> None:
    """Brute force over every state of a chain inside a 5-step window: the local refit reaches
    the best log p(z, y) with everything outside the window held fixed — which needs the
    transitions into and out of the window (vague readings make them decide). With
    `real_meter`, appliances wander around their levels (per-state variances that change
    with the states) and readings go missing, inside the windows too."""
    apps = random_household(4, seed=5)
    if real_meter:
        apps = [replace(a, scale=0.1 * a.power + 3.0) for a in apps]
    hh = simulate_household(apps, 1440, noise_std=20.0, background=150.0, seed=5)
    sigma, truth, y = 400.0, hh.states.numpy(), hh.aggregate.clone()
    if real_meter:
        y[::3] = float("nan")
    for t0 in np.flatnonzero(np.diff(truth[0]))[:10].tolist():  # where chain 0 switches
        dec = BlockAscent(y, apps, sigma, 150.0, hh.states[None].clone())
        dec.update((0,), local=True)  # fit once (it remembers its residual and its states)
        dec.states[0, 1, t0] = 1 - dec.states[0, 1, t0]  # then chain 1 moves at that step only
        for n in range(4):
            dec.contrib[0, n] = apps[n].power.numpy()[dec.states[0, n]]
            dec.var[0, n] = apps[n].scale.numpy()[dec.states[0, n]] ** 2
        dec.total, dec.var_total = dec.contrib.sum(1), dec.var.sum(1)
        before = dec.states.copy()
        with (mock.patch.object(dec, "margin_minutes", 2.0),
              mock.patch.object(decoder, "viterbi_paths", wraps=decoder.viterbi_paths) as fit):
            dec.update((0,), local=True)
        assert fit.call_args.args[1].shape[1] == 5  # the window alone was refit
        window = slice(t0 - 2, t0 + 3)
        outside = np.ones(1440, dtype=bool)
        outside[window] = False
        assert np.array_equal(dec.states[..., outside], before[..., outside])
        best = -math.inf
        for choice in itertools.product(range(apps[0].K), repeat=5):
            states = torch.from_numpy(before[0].copy())
            states[0, window] = torch.tensor(choice)
            best = max(best, log_joint(y, apps, states, sigma, 150.0).item())
        got = log_joint(y, apps, torch.from_numpy(dec.states[0]), sigma, 150.0)
        assert got.item() == pytest.approx(best, abs=1e-9), t0


def test_a_triple_leaves_a_sum_trap_that_singles_and_pairs_cannot() -> None:
    """A 200 W appliance standing in for 80 W + 100 W running together: every single and pair
    move makes the fit worse, the triple (looking only around its sum configurations) finds
    the exact MAP."""
    apps = [two_state("a", 200.0, 200, 30), two_state("b", 80.0, 200, 30),
            two_state("c", 100.0, 200, 30)]
    truth = torch.zeros(3, 600, dtype=torch.long)
    truth[1:, 200:260] = 1  # b and c on together for an hour
    noise = 20.0 * torch.randn(600, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = 150.0 + 80.0 * truth[1] + 100.0 * truth[2] + noise
    triples = confusable_triples(apps, 20.0)
    assert triples == {(0, 1, 2): [((0, 1), (1, 1), (2, 1))]}
    trap = torch.zeros(1, 3, 600, dtype=torch.long)
    trap[0, 0, 200:260] = 1
    dec = BlockAscent(y, apps, 20.0, 150.0, trap)
    for block in [(0,), (1,), (2,), (0, 1), (0, 2), (1, 2)]:
        dec.update(block)
    assert np.array_equal(dec.states[0], trap[0].numpy())  # stuck
    assert dec.update((0, 1, 2), sites=triples[(0, 1, 2)])
    exact = disaggregate_exact(y, apps, 20.0, 150.0, unmetered=False)
    assert np.array_equal(dec.states[0], exact.states.numpy())
    assert torch.equal(exact.states, truth)


def test_round_robin_meets_every_pair() -> None:
    for N in (2, 5, 6, 9):
        rounds = N - 1 if N % 2 == 0 else N
        met = [p for s in range(rounds) for p in round_robin(N, s)]
        assert len(met) == len(set(met)) == N * (N - 1) // 2
        for s in range(rounds):  # pairs within a round are disjoint
            flat = [i for p in round_robin(N, s) for i in p]
            assert len(flat) == len(set(flat))


# ---------------------------------------------------------------------------------------------
# Metrics, against hand-computed values


def test_metrics_by_hand() -> None:
    truth = torch.tensor([[0.0, 100.0, 100.0, 0.0], [50.0, 50.0, 0.0, 0.0]])
    est = torch.tensor([[0.0, 100.0, 0.0, 100.0], [50.0, 50.0, 0.0, 0.0]])
    # Appliance 0: TP = 1, FP = 1, FN = 1 -> F1 = 2 / 4; appliance 1 perfect.
    assert f1_score(truth, est).tolist() == [0.5, 1.0]
    # NDE_0 = sqrt((100² + 100²) / (100² + 100²)) = 1; MAE_0 = 200 / 4.
    assert nde(truth, est).tolist() == [1.0, 0.0]
    assert mean_absolute_error(truth, est).tolist() == [50.0, 0.0]
    # Energies: truth (200, 100), estimate (200, 100): every share right.
    assert energy_correctly_assigned(truth, est).item() == pytest.approx(1.0)
    # Estimate (300, 100) -> shares (0.75, 0.25) vs (2/3, 1/3): min-sum 2/3 + 1/4.
    est2 = torch.tensor([[100.0, 100.0, 100.0, 0.0], [50.0, 50.0, 0.0, 0.0]])
    assert energy_correctly_assigned(truth, est2).item() == pytest.approx(2 / 3 + 1 / 4)
    # "On" means strictly above the threshold: a reading of exactly 10 W is off.
    at = torch.tensor([0.0, 10.0, 50.0])
    assert f1_score(at, torch.tensor([10.0, 0.0, 50.0]), threshold=10.0).item() == 1.0
    assert f1_score(at, torch.tensor([10.0, 10.0, 50.0])).item() == 1.0
    # Never on and never estimated on: F1 = 1 by convention; arrays work too.
    assert f1_score(np.zeros(3), np.zeros(3)).item() == 1.0
    assert f1_score(np.array([0.0, 20.0]), np.array([0.0, 5.0]), threshold=10.0).item() == 0.0


# ---------------------------------------------------------------------------------------------
# Bad input


def test_bad_input_raises_clear_errors() -> None:
    A = [[0.9, 0.1], [0.2, 0.8]]
    with pytest.raises(ValueError, match="power"):
        Appliance("x", [0.0, -5.0], [0.5, 0.5], A)
    with pytest.raises(ValueError, match="power"):
        Appliance("x", [0.0, float("nan")], [0.5, 0.5], A)
    with pytest.raises(ValueError, match="initial"):
        Appliance("x", [0.0, 5.0, 9.0], [0.5, 0.5], A)
    with pytest.raises(ValueError, match="transition"):
        Appliance("x", [0.0, 5.0], [0.5, 0.5], [[0.9, 0.2], [0.2, 0.8]])
    apps = _tiny()
    y = torch.full((10,), 100.0)
    with pytest.raises(ValueError, match="aggregate"):
        disaggregate(torch.tensor([1.0, float("inf")]), apps, 5.0)
    with pytest.raises(ValueError, match="aggregate"):
        disaggregate(torch.tensor([float("nan")] * 3), apps, 5.0)
    with pytest.raises(ValueError, match="aggregate"):
        disaggregate(torch.ones(2, 10), apps, 5.0)
    with pytest.raises(ValueError, match="noise_std"):
        disaggregate(y, apps, 0.0)
    with pytest.raises(ValueError, match="appliances"):
        disaggregate(y, [], 5.0)
    with pytest.raises(ValueError, match="anneal"):
        disaggregate(y, apps, 5.0, anneal=(2.0, -1.0))
    with pytest.raises(ValueError, match="restarts"):
        disaggregate(y, apps, 5.0, restarts=0)
    with pytest.raises(ValueError, match="states"):
        log_joint(y, apps, torch.zeros(2, 10, dtype=torch.long), 5.0)
    with pytest.raises(ValueError, match="truth, estimate"):
        f1_score(torch.zeros(2, 5), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="truth, estimate"):
        nde(torch.tensor([1.0, float("nan")]), torch.zeros(2))
