"""The baseline every NILM reader knows: combinatorial optimisation (Hart 1992).

At each step on its own, pick the combination of appliance states whose summed power is
closest to the reading: argmin over joint states j of |y_t − b − Σ_c μ⁽ᶜ⁾[j_c]|. No time, no
transition probabilities, no noise model (NILMTK's `CombinatorialOptimisation` does this).
A missing reading keeps the previous step's combination (all off before the first reading).
The other two baselines are settings of the package's decoders: the exact product-state FHMM
is `disaggregate_exact`, plain single-chain ICM is `disaggregate(..., restarts=1,
pairs=False, anneal=())`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from hmmblog.inference import joint_states
from hmmblog.inference.rows import one_torch_thread
from hmmblog.nilm.appliances import Appliance, check_appliances
from hmmblog.nilm.meter import check_noise, estimate_background, estimate_noise
from hmmblog.nilm.model import Disaggregation, check_aggregate, log_joint, product_chain
from hmmblog.validation import check_positive_int

__all__ = ["combinatorial_optimisation"]


@one_torch_thread
def combinatorial_optimisation(
    aggregate: torch.Tensor, appliances: Sequence[Appliance], background: float | None = None,
    chunk: int = 4096,
) -> Disaggregation:
    """Hart's combinatorial optimisation: per step, the joint state whose total power is
    nearest the reading minus b (`background`, estimated as `disaggregate` does if None),
    `chunk` steps at a time (memory `chunk` · Π K_c). Its `log_joint` is scored under the
    plain model at the estimated meter noise σ (`noise_std`; a number to compare, not a
    criterion CO used)."""
    y = check_aggregate(aggregate)
    appliances = check_appliances(appliances)
    chunk = check_positive_int("chunk", chunk)
    noise_std = estimate_noise(y)
    if background is None:
        background = estimate_background(y, appliances, noise_std)
    noise_std, background = check_noise(noise_std, background)
    power = product_chain(appliances)[2]  # [Π K_c] watts of every joint state
    nearest = torch.cat([(part[:, None] - background - power).abs().argmin(-1)
                         for part in y.split(chunk)])  # [T]; a gap's row is replaced below
    steps = torch.arange(y.shape[0])
    # a gap keeps the latest present step's choice (the first one: all off)
    latest = torch.cummax(torch.where(torch.isnan(y), -1, steps), 0).values
    joint = torch.where(latest >= 0, nearest[latest.clamp_min(0)], 0)
    states = torch.from_numpy(joint_states([a.K for a in appliances]))[:, joint]  # [C, T]
    watts = torch.stack([a.power[z] for a, z in zip(appliances, states, strict=True)])
    score = log_joint(y, appliances, states, noise_std, background)
    return Disaggregation(states, watts, score, 0, torch.zeros_like(y), noise_std, background)
