"""Disaggregation metrics on per-appliance power `[C, T]` (or one appliance `[T]`), tensors or
arrays: F1 of the on/off state, normalised disaggregation error, mean absolute error, and the
fraction of energy correctly assigned."""

from __future__ import annotations

import numpy as np
import torch

from hmmblog.nilm.appliances import DTYPE
from hmmblog.validation import as_tensor

__all__ = ["energy_correctly_assigned", "f1_score", "mean_absolute_error", "nde"]


def _pair_of_traces(truth, estimate) -> tuple[torch.Tensor, torch.Tensor]:
    truth = torch.as_tensor(np.asarray(truth) if not torch.is_tensor(truth) else truth)
    estimate = torch.as_tensor(
        np.asarray(estimate) if not torch.is_tensor(estimate) else estimate
    )
    truth, estimate = truth.to(DTYPE), estimate.to(DTYPE)
    if truth.dim() not in (1, 2) or truth.shape != estimate.shape or truth.shape[-1] < 1:
        raise ValueError(
            f"truth, estimate: expected two power traces of one shape [T] or [C, T], got "
            f"{tuple(truth.shape)} and {tuple(estimate.shape)}"
        )
    if not (torch.isfinite(truth).all() and torch.isfinite(estimate).all()):
        raise ValueError("truth, estimate: contain NaN or infinite values")
    return truth, estimate


def f1_score(truth, estimate, threshold=15.0) -> torch.Tensor:
    """F1 of the on/off state per appliance, F1 = 2TP / (2TP + FP + FN), 1.0 when the
    appliance is never on and never estimated on. "On" means drawing more than `threshold`
    watts: one number for all, or one per appliance `[C]`. The default, 15 W, sits above the
    standby draw of most appliances (a fridge idling at 10 W, a washer's display) and below
    any appliance's working draw; set your own (a fridge at 50 W, say) where that fails."""
    truth, estimate = _pair_of_traces(truth, estimate)
    limit = as_tensor("threshold", threshold).to(DTYPE)
    per = truth.shape[:-1]
    if limit.dim() > 1 or (limit.dim() == 1 and tuple(limit.shape) != tuple(per)) or \
            not torch.isfinite(limit).all() or (limit < 0).any():
        raise ValueError(f"threshold: expected finite watts >= 0, one number or one per appliance "
                         f"{list(per)}, got {limit.tolist()}")
    limit = limit[..., None] if limit.dim() == 1 else limit
    on, on_hat = truth > limit, estimate > limit
    tp = (on & on_hat).sum(-1).to(DTYPE)
    wrong = (on ^ on_hat).sum(-1).to(DTYPE)  # FP + FN
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
    """Fraction of total energy correctly assigned, Σ_c min(E_c / Σ E, Ê_c / Σ Ê), for
    `[C, T]` traces (1 = every appliance gets exactly its share of the energy)."""
    truth, estimate = _pair_of_traces(truth, estimate)
    if truth.dim() != 2:
        raise ValueError(f"truth: expected traces of C appliances [C, T], got {tuple(truth.shape)}")
    E, E_hat = truth.sum(-1), estimate.sum(-1)
    if E.sum() <= 0 or E_hat.sum() <= 0:
        raise ValueError("truth, estimate: need a positive total energy to compare shares")
    return torch.minimum(E / E.sum(), E_hat / E_hat.sum()).sum()
