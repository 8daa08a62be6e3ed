"""NILM on real meters: missing readings, wandering appliances, the unmetered load, the meter's
noise and background from the data, appliances learned from plugs, step lengths, and numbers
of any kind. Oracles: the product chain decoded by the core with the gaps' rows removed by
hand, Pyro's enumeration of the story, hmmlearn's EM step, and simulations with known truth."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import torch
from hmmlearn import hmm
from pyro.infer import TraceEnum_ELBO, config_enumerate

from hmmblog import log_likelihood, viterbi
from hmmblog.emissions import normal_log_density
from hmmblog.inference import joint_states
from hmmblog.learning import kmeans_init
from hmmblog.nilm import (
    Appliance,
    appliance_catalogue,
    combinatorial_optimisation,
    decoder,
    disaggregate,
    disaggregate_exact,
    estimate_background,
    estimate_noise,
    f1_score,
    factorial_story,
    fit_plug,
    learn_appliance,
    learn_unmetered,
    log_joint,
    product_chain,
    random_household,
    simulate_household,
    simulate_unmetered,
    two_state,
)
from hmmblog.nilm.decoder import BlockAscent
from hmmblog.nilm.learning import em_step

DATA = Path(__file__).resolve().parent.parent / "data" / "eco"
DAY = 24 * 60


def _tiny() -> list[Appliance]:
    """Three appliances with distinct power sums; the third wanders around its levels."""
    return [
        two_state("a", 100.0, mean_off=6, mean_on=3),
        two_state("b", 250.0, mean_off=5, mean_on=4),
        Appliance("c", [0.0, 600.0, 1400.0], [0.6, 0.3, 0.1],
                  [[0.8, 0.2, 0.0], [0.1, 0.7, 0.2], [0.0, 0.3, 0.7]], scale=[1.0, 30.0, 60.0]),
    ]


def _with_gaps(y: torch.Tensor, every: int = 4) -> torch.Tensor:
    y = y.clone()
    y[1::every] = float("nan")
    return y


# ---------------------------------------------------------------------------------------------
# Missing readings


def test_a_gap_decodes_like_the_exact_answer_with_its_evidence_removed() -> None:
    """The product chain by hand: each present reading's log-density, a zero row at a gap;
    the core's Viterbi on that is what `disaggregate_exact` returns, `disaggregate` reaches
    the same log p(z, y) (a gap can leave ties: when to switch inside it), and `log_joint` is
    the prior plus the present readings' terms alone."""
    apps = _tiny()
    hh = simulate_household(apps, 300, noise_std=15.0, background=40.0, seed=3)
    y = _with_gaps(hh.aggregate)
    initial, transition, power, var = product_chain(apps)
    present = ~torch.isnan(y)
    rows = normal_log_density(y.nan_to_num()[:, None], 40.0 + power, (225.0 + var).sqrt())
    rows[~present] = 0.0
    path = viterbi(initial, transition, rows).path
    by_hand = torch.from_numpy(joint_states([a.K for a in apps]))[:, path]
    exact = disaggregate_exact(y, apps, 15.0, 40.0, unmetered=False)
    assert torch.equal(exact.states, by_hand)
    ours = disaggregate(y, apps, 15.0, 40.0, unmetered=False)
    assert ours.log_joint.item() == pytest.approx(exact.log_joint.item(), rel=1e-12)
    # log_joint: the gap steps contribute nothing (compare with the present steps only)
    mean = 40.0 + sum(a.power[by_hand[c]] for c, a in enumerate(apps))
    sd = (225.0 + sum(a.scale[by_hand[c]] ** 2 for c, a in enumerate(apps))).sqrt()
    readings = normal_log_density(y[present], mean[present], sd[present]).sum()
    chains = sum(a.initial.log()[by_hand[c, 0]] + a.transition.log()[by_hand[c, :-1],
                                                                     by_hand[c, 1:]].sum()
                 for c, a in enumerate(apps))
    assert log_joint(y, apps, by_hand, 15.0, 40.0).item() == pytest.approx(
        (chains + readings).item(), rel=1e-12)


def test_the_story_masks_a_missing_reading() -> None:
    """Pyro's exact enumeration of `factorial_story` on readings with gaps equals the forward
    algorithm on the product chain with the gaps' rows zero (no evidence)."""
    apps = _tiny()  # the third one wanders
    y = _with_gaps(simulate_household(apps, 9, noise_std=30.0, seed=2).aggregate, 3)
    elbo = TraceEnum_ELBO(max_plate_nesting=0)
    log_evidence = -elbo.loss(config_enumerate(factorial_story), lambda *a, **k: None, apps,
                              30.0, 0.0, y)
    initial, transition, power, var = product_chain(apps)
    rows = normal_log_density(y.nan_to_num()[:, None], power, (900.0 + var).sqrt())
    rows[torch.isnan(y)] = 0.0
    assert log_evidence == pytest.approx(log_likelihood(initial, transition, rows).item(),
                                         rel=1e-9)


def test_refused_readings_say_what_is_wrong() -> None:
    apps = _tiny()
    with pytest.raises(ValueError, match="aggregate: .*2 infinite"):
        disaggregate(torch.tensor([1.0, math.inf, -math.inf, 3.0]), apps, 5.0)
    with pytest.raises(ValueError, match="aggregate: .*3 missing of 3"):
        disaggregate(torch.full((3,), math.nan), apps, 5.0)


# ---------------------------------------------------------------------------------------------
# The meter: noise, background, unmetered load


def test_noise_and_background_are_estimated_from_the_readings() -> None:
    """On simulated meters with known σ and b (gaps included) the estimates land close: σ
    within 15 %, b a little low by design (by less than 1.5σ, never above b + 0.1σ)."""
    for sigma, b, seed in [(5.0, 60.0, 0), (20.0, 150.0, 1), (40.0, 0.0, 2)]:
        apps = random_household(6, seed=seed)
        y = _with_gaps(simulate_household(apps, 3 * DAY, sigma, b, seed=seed).aggregate, 7)
        assert estimate_noise(y) == pytest.approx(sigma, rel=0.15)
        error = estimate_background(y, apps, estimate_noise(y)) - b
        assert -1.5 * sigma < error < 0.1 * sigma
    assert estimate_noise(torch.full((50,), 7.0)) == 1.0  # a constant meter: the floor


def test_the_unmetered_chain_leaves_a_modest_long_dwell_appliance_alone() -> None:
    """A clean house (no unmetered load; σ found from the readings, the unmetered chain
    learned from them): the exact MAP of the full model puts every appliance's minutes on
    the appliance, the 110 W television's too, and the chain stays below the 15 W that
    would count as on: it learned that there is next to nothing unmetered."""
    catalogue = appliance_catalogue()
    apps = [catalogue[n] for n in ("fridge", "kettle", "washing machine", "television")]
    for seed in (0, 1):
        hh = simulate_household(apps, 2 * DAY, noise_std=3.0, seed=seed)
        exact = disaggregate_exact(hh.aggregate, apps)
        assert f1_score(hh.power, exact.power).min() == 1.0
        assert (exact.unmetered > 15.0).double().mean() < 0.01


def test_simulated_unmetered_load_has_its_documented_shape() -> None:
    u = simulate_unmetered(2 * DAY, step_minutes=2.0, seed=4)
    hours = (torch.arange(2 * DAY) * 2.0 % DAY) / 60
    evening = (hours >= 18) & (hours < 23)
    assert torch.all(u[~evening] == 50.0)
    assert torch.all((u[evening] >= 250.0) & (u[evening] <= 470.0))
    assert 3 <= len(torch.unique(u[evening])) <= 60
    assert torch.equal(u, simulate_unmetered(2 * DAY, step_minutes=2.0, seed=4))
    with pytest.raises(ValueError, match="dwell_minutes"):
        simulate_unmetered(10, dwell_minutes=0)
    with pytest.raises(ValueError, match="seed"):
        simulate_unmetered(10, seed=1.5)
    with pytest.raises(ValueError, match="hours"):
        simulate_unmetered(10, hours=(23, 18))


def test_the_linear_decoder_reaches_the_exact_map_with_the_unmetered_chain() -> None:
    """Same model, both decoders (σ, b estimated, the unmetered chain): on small houses with
    an unmetered load and gaps, ours reaches the exact product-state MAP's log p(z, y)."""
    for seed in (30, 31):
        apps = [replace(a, scale=0.03 * a.power) for a in random_household(3, seed=seed)]
        hh = simulate_household(apps, DAY // 2, noise_std=3.0, seed=seed)
        y = _with_gaps(hh.aggregate + simulate_unmetered(DAY // 2, seed=seed), 9)
        ours = disaggregate(y, apps)
        exact = disaggregate_exact(y, apps, unmetered=ours.unmetered_model)
        assert (ours.noise_std, ours.background) == (exact.noise_std, exact.background)
        assert ours.log_joint.item() == pytest.approx(exact.log_joint.item(), abs=1e-6)


REST = Appliance("unmetered", [60.0, 400.0, 1500.0], [0.6, 0.3, 0.1],
                 [[0.99, 0.008, 0.002], [0.02, 0.975, 0.005], [0.02, 0.02, 0.96]],
                 scale=[5.0, 40.0, 60.0])  # standby; lights and electronics; a heater


def test_learn_unmetered_recovers_the_chain_of_a_load() -> None:
    """Three days of an unmetered load drawn from a known chain, 10 % of readings missing:
    levels within 2 %, spreads within 10 %, self-transitions within 0.01; deterministic."""
    load = _with_gaps(simulate_household([REST], 3 * DAY, 1e-9, seed=120).aggregate, 10)
    got = learn_unmetered(load, 3)
    assert got.name == "unmetered" and got.K == 3
    assert torch.allclose(got.power, REST.power, rtol=0.02)
    assert torch.allclose(got.scale, REST.scale, rtol=0.1)
    assert torch.allclose(got.transition.diagonal(), REST.transition.diagonal(), atol=0.01)
    assert torch.equal(got.transition, learn_unmetered(load, 3).transition)


def test_the_unmetered_chain_takes_load_no_appliance_explains() -> None:
    """Four houses of six wandering appliances plus an unmetered load drawn from a chain,
    gaps. The plain model puts that load on the appliances; decoded with the chain that drew
    it, or with one learned from three other days of the load, the appliances come back
    (mean F1 up by more than 0.2) and the chain's watts follow the load."""
    f1s: dict[str, list[float]] = {"plain": [], "true": [], "learned": []}
    for seed in range(20, 24):
        apps = [replace(a, scale=0.03 * a.power) for a in random_household(6, seed=seed)]
        hh = simulate_household([*apps, REST], DAY, noise_std=3.0, seed=seed)
        y, load = _with_gaps(hh.aggregate, 9), hh.power[-1]
        other_days = simulate_household([REST], 3 * DAY, 1e-9, seed=seed + 100).aggregate
        for how, chain in [("plain", False), ("true", REST),
                           ("learned", learn_unmetered(other_days, 3))]:
            got = disaggregate(y, apps, unmetered=chain)
            f1s[how].append(f1_score(hh.power[:-1], got.power).mean().item())
            if chain is not False:
                assert got.background == 0.0
                assert (got.unmetered - load).abs().median() < 10.0
    assert np.mean(f1s["true"]) > np.mean(f1s["plain"]) + 0.2
    assert np.mean(f1s["learned"]) > np.mean(f1s["plain"]) + 0.2


def test_what_a_decoder_is_told_about_the_unmetered_load_is_checked() -> None:
    apps = _tiny()
    y = simulate_household(apps, 50, 5.0, seed=1).aggregate
    with pytest.raises(ValueError, match="unmetered: expected True, False or an Appliance"):
        disaggregate(y, apps, unmetered="learn")
    with pytest.raises(ValueError, match="unmetered: expected a chain on the appliances' step "
                                         r"\(1 min\), got 2 min"):
        disaggregate_exact(y, apps, unmetered=REST.at_step(2.0))


# ---------------------------------------------------------------------------------------------
# Learning an appliance from its plug


def test_em_step_is_hmmlearns_baum_welch_step() -> None:
    """One EM step from the same parameters: the same π, A, μ and σ as hmmlearn's (priors
    that change nothing), and log p(x) under the starting parameters."""
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(150, generator=g, dtype=torch.float64) * 3 + 10,
                   torch.randn(100, generator=g, dtype=torch.float64) * 8 + 200,
                   torch.randn(150, generator=g, dtype=torch.float64) * 3 + 12])
    pi = torch.tensor([0.6, 0.4], dtype=torch.float64)
    A = torch.tensor([[0.95, 0.05], [0.1, 0.9]], dtype=torch.float64)
    mu, s = torch.tensor([5.0, 150.0], dtype=torch.float64), torch.tensor([10.0, 40.0],
                                                                           dtype=torch.float64)
    ours = em_step(x, pi, A, mu, s, min_scale=1e-6)
    ref = hmm.GaussianHMM(2, covariance_type="diag", n_iter=1, init_params="", params="stmc",
                          covars_prior=0.0, min_covar=1e-12, implementation="log")
    ref.startprob_, ref.transmat_ = pi.numpy(), A.numpy()
    ref.means_, ref.covars_ = mu.numpy()[:, None], (s**2).numpy()[:, None]
    assert ours.log_p == pytest.approx(ref.score(x.numpy()[:, None]), rel=1e-10)
    ref.fit(x.numpy()[:, None])
    assert np.allclose(ours.initial, ref.startprob_, atol=1e-9)
    assert np.allclose(ours.transition, ref.transmat_, atol=1e-9)
    assert np.allclose(ours.loc, ref.means_[:, 0], atol=1e-8)
    assert np.allclose(ours.scale**2, ref.covars_.reshape(-1), rtol=1e-8)  # [K, 1, 1]


@pytest.mark.parametrize("name", ["fridge", "kettle", "washing machine", "tumble dryer"])
def test_learn_appliance_recovers_a_simulated_plug(name: str) -> None:
    """Three weeks of a catalogue appliance's plug (noise 3 W, 10 % of readings missing): levels
    within 5 % (off within 3 W), self-transitions within 0.05, every EM step an ascent."""
    a = appliance_catalogue()[name]
    x = _with_gaps(simulate_household([a], 21 * DAY, noise_std=3.0, seed=8).aggregate, 10)
    fit = fit_plug(x, a.K, name)
    got = fit.appliance
    assert np.all(np.diff(fit.log_likelihoods) > -1e-6 * abs(fit.log_likelihoods[0]))
    assert abs(got.power[0] - a.power[0]) < 3.0
    assert torch.allclose(got.power[1:], a.power[1:], rtol=0.05)
    assert torch.allclose(got.transition.diagonal(), a.transition.diagonal(), atol=0.05)
    assert got.name == name and torch.all(got.power.diff() > 0)
    assert torch.equal(got.power, learn_appliance(x, a.K, name).power)  # deterministic


def test_learn_appliance_guards_hold_on_awkward_plugs() -> None:
    """A plug that reads exactly 0 W when off keeps a spread of at least `min_scale`;
    negative readings never give a negative level; the result is never worse than the
    start; numpy input, any kind of K."""
    a = two_state("heater", 900.0, mean_off=100, mean_on=20)
    x = simulate_household([a], 3 * DAY, noise_std=0.5, seed=1).aggregate
    x = torch.where(x < 450, 0.0, x)  # exactly zero when off
    got = learn_appliance(x.numpy(), np.int64(2), "heater", min_scale=np.float32(2.5))
    assert got.scale[0] == pytest.approx(2.5)
    noisy = torch.randn(500, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fit = fit_plug(noisy - 3.0, 2)  # a plug that reads around -3 W
    assert torch.all(fit.appliance.power >= 0)


def test_fit_plug_returns_the_best_step_it_saw() -> None:
    """Make the second EM step a bad one (its levels pushed 300 W off): the fit stops, as
    log p(x) fell, and returns the parameters of the best step, not the last."""
    a = appliance_catalogue()["kettle"]
    x = simulate_household([a], 3 * DAY, noise_std=3.0, seed=3).aggregate
    calls = []

    def spoiled(*args, **kwargs):
        step = em_step(*args, **kwargs)
        calls.append(step)
        return step._replace(loc=step.loc + 300.0) if len(calls) == 2 else step

    with mock.patch("hmmblog.nilm.learning.em_step", side_effect=spoiled):
        fit = fit_plug(x, 2)
    assert len(fit.log_likelihoods) == 3 and fit.log_likelihoods[2] < fit.log_likelihoods[1]
    assert torch.allclose(fit.appliance.power, calls[0].loc.sort().values)


def test_the_ratio_start_keeps_a_brief_low_state_apart() -> None:
    """A tumble dryer (0 / 310 / 1930 W, brief 310 W spells): clusters by watts fold the
    310 W readings into 0 W; clusters by ratio find them, and EM from there keeps them."""
    a = appliance_catalogue()["tumble dryer"]
    x = simulate_household([a], 14 * DAY, noise_std=3.0, seed=2).aggregate
    by_watts = kmeans_init(x[None], 3)["locs"]
    assert not torch.any((by_watts - 310.0).abs() < 50)
    assert (learn_appliance(x, 3).power[1] - 310.0).abs() < 15


@pytest.mark.parametrize("season, name, K, on", [
    ("summer", "fridge", 2, (40, 60)), ("summer", "dryer", 3, (700, 900)),
    ("summer", "kettle", 3, (1000, 2400)), ("autumn", "coffee_machine", 3, (500, 1300)),
])
def test_learn_appliance_on_real_eco_plugs(season: str, name: str, K: int, on) -> None:
    """Real plugs (a week of 1-minute means, real gaps): an off level within 5 W of zero, the
    top level in the range the plug's working draw is known to lie in, and EM an ascent."""
    x = pd.read_csv(DATA / f"eco_h1_{season}_1min.csv.gz", usecols=[name])[name].values
    fit = fit_plug(x[: 7 * DAY], K, name)
    got = fit.appliance
    assert np.isnan(x[: 7 * DAY]).any()  # the real gaps are in there
    assert got.power[0] < 5.0 and on[0] < got.power[-1] < on[1]
    assert np.all(np.diff(fit.log_likelihoods) > -1e-6 * abs(fit.log_likelihoods[0]))


def test_learn_appliance_refuses_what_it_cannot_fit() -> None:
    with pytest.raises(ValueError, match="readings: .*shape \\(2, 3\\)"):
        learn_appliance(torch.zeros(2, 3), 2)
    with pytest.raises(ValueError, match="readings: .*1 present"):
        learn_appliance(torch.tensor([1.0, math.nan]), 2)
    with pytest.raises(ValueError, match="K: expected a positive int"):
        learn_appliance(torch.ones(10), 0)
    with pytest.raises(ValueError, match="min_scale"):
        learn_appliance(torch.ones(10), 2, min_scale=-1.0)


# ---------------------------------------------------------------------------------------------
# Step lengths, numbers of any kind, F1


def test_step_length_is_explicit() -> None:
    """A 2-minute catalogue is the 1-minute chain sampled every other step; the decoder's
    margins are minutes; appliances with different steps are refused."""
    one, two = appliance_catalogue(), appliance_catalogue(step_minutes=2)
    fridge = one["fridge"]
    assert torch.allclose(two["fridge"].transition, fridge.transition @ fridge.transition)
    assert two["fridge"].step_minutes == 2.0
    with pytest.raises(ValueError, match="step_minutes: .*whole multiple"):
        fridge.at_step(1.5)
    y = torch.full((30,), 100.0)
    dec = BlockAscent(y, [two["fridge"]], 5.0, 0.0, torch.zeros(1, 1, 30, dtype=torch.long))
    assert dec.steps(dec.margin_minutes) == 30
    for decode in (disaggregate, disaggregate_exact, log_joint):
        with pytest.raises(ValueError, match="appliances: .*fridge 1 min, kettle 2 min"):
            decode(y, [fridge, two["kettle"]], *(() if decode != log_joint else
                                                  (torch.zeros(2, 30, dtype=torch.long), 5.0)))


def test_numbers_of_any_kind_are_numbers() -> None:
    apps = _tiny()
    hh = simulate_household(apps, 200, np.float32(20.0), torch.tensor(150.0), seed=1)
    plain = disaggregate(hh.aggregate, apps, 20.0, 150.0, unmetered=False)
    for sigma, b, r in [(np.float32(20.0), np.float64(150.0), np.int64(4)),
                        (torch.tensor(20.0), torch.tensor(150), torch.tensor(4))]:
        got = disaggregate(hh.aggregate, apps, sigma, b, restarts=r, unmetered=False)
        assert torch.equal(got.states, plain.states)
        assert isinstance(got.noise_std, float) and isinstance(got.background, float)
    with pytest.raises(ValueError, match=r"noise_std: expected a finite number > 0 \(watts\), "
                                         r"got -2.0"):
        disaggregate(hh.aggregate, apps, np.float32(-2.0))
    with pytest.raises(ValueError, match="background: expected a finite number .*got bool"):
        disaggregate(hh.aggregate, apps, 20.0, True)
    with pytest.raises(ValueError, match="restarts: expected a positive int"):
        disaggregate(hh.aggregate, apps, 20.0, restarts=2.0)
    fine = disaggregate(hh.aggregate, apps, 20.0, 150.0, anneal=(np.float32(4.0), 2),
                        unmetered=False)
    assert fine.log_joint >= plain.log_joint - 1e-6  # numpy multipliers run (and do no worse)
    with pytest.raises(ValueError, match="anneal"):
        disaggregate(hh.aggregate, apps, 20.0, anneal=(True,))
    assert two_state("k", np.float32(2000), torch.tensor(300.0), np.int64(3)).K == 2


def test_f1_threshold_says_what_on_means() -> None:
    truth = torch.tensor([[10.4, 10.4, 80.0, 80.0], [0.0, 30.0, 30.0, 0.0]])
    idle = torch.tensor([[0.0, 0.0, 80.0, 80.0], [0.0, 30.0, 30.0, 0.0]])
    assert f1_score(truth, idle).tolist() == [1.0, 1.0]  # 15 W: an idling fridge is off
    assert f1_score(truth, idle, threshold=10.0)[0].item() == pytest.approx(2 / 3)
    per = f1_score(truth, idle, threshold=torch.tensor([50.0, 40.0]))
    assert per.tolist() == [1.0, 1.0]  # nothing above 40 W on the second: never on, never said
    with pytest.raises(ValueError, match=r"threshold: .*one per appliance \[2\]"):
        f1_score(truth, idle, threshold=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="threshold: expected finite watts >= 0"):
        f1_score(truth, idle, threshold=-1.0)


def test_combinatorial_optimisation_is_the_nearest_sum_per_step() -> None:
    """Noise-free readings with distinct sums: CO finds every state; a gap keeps the
    previous step's choice; against brute force over the joint states on noisy readings."""
    apps = _tiny()
    clean = [replace(a, scale=None) for a in apps]
    hh = simulate_household(clean, 200, noise_std=1e-6, background=30.0, seed=4)
    assert torch.equal(combinatorial_optimisation(hh.aggregate, clean, 30.0).states, hh.states)
    y = hh.aggregate.clone()
    y[50:53] = float("nan")
    got = combinatorial_optimisation(y, clean, 30.0).states
    assert torch.equal(got[:, 50:53], hh.states[:, 49:50].expand(-1, 3))
    noisy = simulate_household(clean, 100, noise_std=80.0, background=30.0, seed=5).aggregate
    got = combinatorial_optimisation(noisy, clean, 30.0)
    digits = torch.from_numpy(joint_states([a.K for a in clean]))
    for t in range(100):
        totals = [30.0 + sum(a.power[digits[c, j]] for c, a in enumerate(clean))
                  for j in range(digits.shape[1])]
        best = min(range(len(totals)), key=lambda j: abs(noisy[t] - totals[j]))
        assert torch.equal(got.states[:, t], digits[:, best])


def test_keep_after_a_local_sweep_when_no_chain_wanders() -> None:
    """`BlockAscent.keep` after local updates (the remembered variance is one number when no
    chain wanders) keeps the chosen restarts and their memory of the last fits."""
    apps = [replace(a, scale=None) for a in _tiny()]
    hh = simulate_household(apps, 300, noise_std=10.0, seed=2)
    start = torch.zeros(3, 3, 300, dtype=torch.long)
    start[1, 0], start[2, 1] = 1, 1
    dec = BlockAscent(hh.aggregate, apps, 10.0, 0.0, start)
    for _ in range(20):  # until no chain moves
        if not any([dec.update((c,), local=True) for c in range(3)]):
            break
    kept = dec.states[[2]].copy()
    dec.keep([2])
    assert np.array_equal(dec.states, kept)
    with mock.patch.object(decoder, "viterbi_paths", wraps=decoder.viterbi_paths) as fit:
        assert not any(dec.update((c,), local=True) for c in range(3))
    assert fit.call_count == 0  # it remembers its last fits: nothing to refit
