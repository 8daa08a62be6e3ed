"""Energy disaggregation (NILM) with a factorial HMM, decoded without product states.

The model: appliance c = 1..C is its own Markov chain z⁽ᶜ⁾_t over K_c power states with
π⁽ᶜ⁾, A⁽ᶜ⁾, a power level μ⁽ᶜ⁾_k and a spread s⁽ᶜ⁾_k per state; the meter sees one number
per step (NaN when it missed one),

    y_t ~ Normal(b + Σ_c μ⁽ᶜ⁾[z⁽ᶜ⁾_t], sqrt(σ² + Σ_c s⁽ᶜ⁾[z⁽ᶜ⁾_t]²)),

with b a constant background load and σ the meter noise. On a real meter one more chain,
the unmetered load, takes what no appliance explains: learned from the mains less the
sub-meters over training days (`learn_unmetered`), or from the meter itself. Exact MAP
decoding works on the product chain with Π K_c states, exponential in C. `disaggregate` instead
climbs the exact joint log-probability by *block coordinate ascent*: the core's exact factorial
Viterbi for one chain (or a block of two or three) against the residual the other chains leave,
from a greedy start; a pass is linear in C. `disaggregate_exact` decodes the product chain (for
small C only), the reference.

Modules, in reading order:

* `appliances` — `Appliance`, `two_state`, `appliance_catalogue`, `random_household`
* `model` — the story (`factorial_story`), `simulate_household`, `log_joint`,
  `disaggregate_exact`
* `decoder` — `disaggregate` and the machinery it runs (`BlockAscent`, `greedy_start`)
* `schedule` — which blocks of chains each pass refits (confusable pairs and triples,
  round-robin pairs) and the greedy orders
* `kernels` — the decoder's compiled loops
* `baselines` — `combinatorial_optimisation` (Hart 1992), the baseline NILM readers know
* `metrics` — `f1_score`, `nde`, `mean_absolute_error`, `energy_correctly_assigned`
* `evaluation` — `evaluate`: the NILM user's protocol on a real house (learn on some days,
  decode later days of the mains), ours against the exact FHMM, CO and the mean
* `learning` — `learn_appliance`: an `Appliance` from one plug's readings (EM, `fit_plug`);
  `learn_unmetered`: the chain of the load no appliance model explains
* `meter` — what a real meter adds: `estimate_noise`, `estimate_background`, and what a
  decoder is told about the unmetered load
"""

from hmmblog.nilm.appliances import Appliance, appliance_catalogue, random_household, two_state
from hmmblog.nilm.baselines import combinatorial_optimisation
from hmmblog.nilm.decoder import BlockAscent, disaggregate, greedy_start
from hmmblog.nilm.evaluation import Evaluation, Scores, evaluate
from hmmblog.nilm.learning import ApplianceFit, fit_plug, learn_appliance, learn_unmetered
from hmmblog.nilm.meter import estimate_background, estimate_noise, simulate_unmetered
from hmmblog.nilm.metrics import energy_correctly_assigned, f1_score, mean_absolute_error, nde
from hmmblog.nilm.model import (
    Disaggregation,
    Household,
    disaggregate_exact,
    factorial_story,
    log_joint,
    product_chain,
    simulate_household,
)
from hmmblog.nilm.schedule import confusable_blocks

__all__ = [
    "Appliance",
    "ApplianceFit",
    "BlockAscent",
    "Disaggregation",
    "Evaluation",
    "Household",
    "Scores",
    "appliance_catalogue",
    "combinatorial_optimisation",
    "confusable_blocks",
    "disaggregate",
    "disaggregate_exact",
    "energy_correctly_assigned",
    "estimate_background",
    "estimate_noise",
    "evaluate",
    "f1_score",
    "factorial_story",
    "fit_plug",
    "greedy_start",
    "learn_appliance",
    "learn_unmetered",
    "log_joint",
    "mean_absolute_error",
    "nde",
    "product_chain",
    "random_household",
    "simulate_household",
    "simulate_unmetered",
    "two_state",
]
