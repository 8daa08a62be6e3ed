"""Per-step emission log-likelihoods ``log_lik[..., t, k] = log p(x_t | z_t = k)``.

These are the only model-specific pieces: the inference core takes their output and never
needs to know which emission produced it.

Missing observations: a step without an observation gets a zero row, ℓ_t(k) = 0 for every k
(no evidence: p(x_t | z_t) = 1 whatever the state), which the inference core treats exactly
as if the step had no emission factor. Real-valued observations mark a gap with NaN; symbols
mark it with ``MISSING`` = -1 (the code pandas gives a missing category, `Categorical.codes`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.distributions import Normal

from hmmblog.validation import check_probabilities

__all__ = ["MISSING", "categorical_log_lik", "gaussian_log_lik", "normal_log_density"]

MISSING = -1  # the symbol that marks a missing categorical observation


def categorical_log_lik(emission: torch.Tensor, observations: torch.Tensor) -> torch.Tensor:
    """log B[k, x_t] for symbols ``observations [..., T]`` (int) and ``emission [K, M]``
    (rows sum to 1); returns ``[..., T, K]``. A symbol ``MISSING`` (-1) is a missing
    observation: its row is zeros (no evidence)."""
    emission = torch.as_tensor(emission)
    observations = torch.as_tensor(observations)
    if emission.dim() != 2 or not emission.is_floating_point():
        raise ValueError(
            f"emission: expected a floating matrix [K, M], got shape {tuple(emission.shape)} "
            f"and dtype {emission.dtype}"
        )
    check_probabilities("emission", emission, tuple(emission.shape))
    if observations.is_floating_point() or observations.is_complex():
        raise ValueError(f"observations: expected integer symbols, got dtype {observations.dtype}")
    if observations.dim() < 1:
        raise ValueError("observations: expected shape [..., T], got a scalar")
    M = emission.shape[1]
    lo, hi = (observations.min().item(), observations.max().item()) if observations.numel() \
        else (0, 0)
    if lo < MISSING or hi >= M:
        raise ValueError(
            f"observations: symbols must lie in 0..{M - 1} (M = {M} from emission) or be "
            f"{MISSING} (missing), got range {lo}..{hi}"
        )
    table = emission.log().T  # [M, K]: row m holds log B[·, m]
    if lo == MISSING:
        table = torch.cat([table, table.new_zeros(1, table.shape[1])])  # row -1: no evidence
    table = table.contiguous()
    if table.requires_grad or table.device.type != "cpu":
        return table[observations.long()]
    # Same rows, gathered by numpy (faster on the CPU; see benchmarks/NOTES.md).
    return torch.from_numpy(np.take(table.numpy(), observations.numpy(), axis=0))


def gaussian_log_lik(
    loc: torch.Tensor, scale: torch.Tensor, observations: torch.Tensor
) -> torch.Tensor:
    """log Normal(x_t; μ_k, σ_k) for real ``observations [..., T]`` and ``loc``, ``scale``
    ``[K]``; returns ``[..., T, K]``. A NaN observation is a missing one: its row is zeros
    (no evidence)."""
    loc, scale = torch.as_tensor(loc), torch.as_tensor(scale)
    observations = torch.as_tensor(observations)
    if loc.dim() != 1 or scale.shape != loc.shape:
        raise ValueError(
            f"loc, scale: expected two vectors of shape [K], got {tuple(loc.shape)} and "
            f"{tuple(scale.shape)}"
        )
    if not torch.isfinite(loc).all():
        raise ValueError(f"loc: expected finite values, got {loc.tolist()}")
    if not torch.isfinite(scale).all() or (scale <= 0).any():
        raise ValueError(f"scale: expected finite values > 0, got {scale.tolist()}")
    if observations.dim() < 1:
        raise ValueError("observations: expected shape [..., T], got a scalar")
    if not observations.is_floating_point():
        observations = observations.to(loc.dtype if loc.is_floating_point() else torch.float64)
    missing = torch.isnan(observations)
    if not missing.any():
        return normal_log_density(observations.unsqueeze(-1), loc, scale)
    filled = observations.masked_fill(missing, 0.0).unsqueeze(-1)  # finite gradients
    return normal_log_density(filled, loc, scale).masked_fill(missing.unsqueeze(-1), 0.0)


def normal_log_density(
    x: torch.Tensor, loc: torch.Tensor | float, scale: torch.Tensor | float
) -> torch.Tensor:
    """log N(x; μ, σ²) elementwise, broadcasting: the package's one Gaussian log-density, no
    checks. It is torch's `Normal.log_prob`, so a Pyro story written with `dist.Normal` scores
    exactly alike; a number `loc` takes the dtype of `x`."""
    if not isinstance(loc, torch.Tensor):
        loc = torch.as_tensor(loc, dtype=x.dtype)
    return Normal(loc, scale, validate_args=False).log_prob(x)
