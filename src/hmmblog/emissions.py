"""Per-step emission log-likelihoods ``log_lik[..., t, k] = log p(x_t | z_t = k)``.

These are the only model-specific pieces: the inference core takes their output and never
needs to know which emission produced it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.distributions import Normal

from hmmblog.validation import check_probabilities


def categorical_log_lik(emission: torch.Tensor, observations: torch.Tensor) -> torch.Tensor:
    """log B[k, x_t] for symbols ``observations [..., T]`` (int) and ``emission [K, M]``
    (rows sum to 1); returns ``[..., T, K]``."""
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
    if observations.numel() and (observations.min() < 0 or observations.max() >= M):
        raise ValueError(
            f"observations: symbols must lie in 0..{M - 1} (M = {M} from emission), got range "
            f"{observations.min().item()}..{observations.max().item()}"
        )
    table = emission.log().T.contiguous()  # [M, K]: row m holds log B[·, m]
    if table.requires_grad or table.device.type != "cpu":
        return table[observations.long()]
    # Same rows, gathered by numpy (faster on the CPU; see benchmarks/NOTES.md).
    return torch.from_numpy(np.take(table.numpy(), observations.numpy(), axis=0))


def gaussian_log_lik(
    loc: torch.Tensor, scale: torch.Tensor, observations: torch.Tensor
) -> torch.Tensor:
    """log Normal(x_t; μ_k, σ_k) for real ``observations [..., T]`` and ``loc``, ``scale``
    ``[K]``; returns ``[..., T, K]``."""
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
    if torch.isnan(observations).any():
        raise ValueError("observations: contains NaN")
    return normal_log_density(observations.unsqueeze(-1), loc, scale)


def normal_log_density(
    x: torch.Tensor, loc: torch.Tensor | float, scale: torch.Tensor | float
) -> torch.Tensor:
    """log N(x; μ, σ²) elementwise, broadcasting: the package's one Gaussian log-density, no
    checks. It is torch's `Normal.log_prob`, so a Pyro story written with `dist.Normal` scores
    exactly alike; a number `loc` takes the dtype of `x`."""
    if not isinstance(loc, torch.Tensor):
        loc = torch.as_tensor(loc, dtype=x.dtype)
    return Normal(loc, scale, validate_args=False).log_prob(x)
