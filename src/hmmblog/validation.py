"""Argument checks shared by every module: one helper per kind of check, each raising a
ValueError that starts with the argument's name ("T: expected a positive int, got 0")."""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from torch.distributions import Distribution

__all__ = [
    "as_number",
    "as_tensor",
    "check_emission",
    "check_finite_number",
    "check_hmm",
    "check_lengths",
    "check_log_lik",
    "check_parameters",
    "check_positive_int",
    "check_positive_number",
    "check_probabilities",
    "check_seed",
    "sum_tolerance",
]


def as_tensor(name: str, value: object) -> torch.Tensor:
    """`torch.as_tensor(value)`, or a ValueError naming `name` if it is not numbers."""
    if isinstance(value, np.ndarray) and not value.flags.writeable:
        value = value.copy()  # torch warns on read-only arrays (pandas hands those out)
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name}: expected a tensor of numbers, got {type(value).__name__} "
                         f"{value!r:.60}") from None


def check_seed(name: str, value: object) -> int:
    """`value` if it is an int (a random seed; numpy ints too)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an int, got {value!r}")
    return int(value)


def check_positive_int(name: str, value: object) -> int:
    """`value` as an int if it is an integer >= 1 (a count: K, M, T, N, steps, restarts, ...;
    numpy integers and 0-d integer arrays or tensors too, not bool)."""
    if isinstance(value, torch.Tensor | np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def as_number(name: str, value: object, what: str = "a finite number") -> float:
    """`value` as a Python float if it is one real number of any kind (int, float, a numpy
    scalar, a 0-d array or tensor; not bool); else a ValueError naming `name`."""
    if isinstance(value, torch.Tensor | np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected {what}, got {type(value).__name__} {value!r:.60}")
    return float(value)


def check_positive_number(name: str, value: object, what: str = "a finite number > 0") -> float:
    """`value` as a float if it is a finite real number > 0 (a noise level σ, a learning
    rate, ...); `what` words the expectation in the error message."""
    x = as_number(name, value, what)
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{name}: expected {what}, got {x}")
    return x


def check_finite_number(name: str, value: object, what: str = "a finite number") -> float:
    """`value` as a float if it is a finite real number (a background load, an offset, ...)."""
    x = as_number(name, value, what)
    if not math.isfinite(x):
        raise ValueError(f"{name}: expected {what}, got {x}")
    return x


def sum_tolerance(dtype: torch.dtype) -> float:
    """How far from 1 a probability vector of this dtype may sum: 1e-4 in 32 bits or fewer,
    1e-8 in float64."""
    return 1e-4 if dtype in (torch.float16, torch.bfloat16, torch.float32) else 1e-8


def _float32_values(p: torch.Tensor) -> bool:
    """Is `p` float64 with every entry exactly a float32 number (float32 values cast up)?"""
    if p.dtype != torch.float64:
        return False
    p = p.detach()
    return bool(torch.equal(p.float().double(), p))


def check_probabilities(name: str, p: torch.Tensor, shape: tuple[int, ...]) -> None:
    """Raise a ValueError naming `name` unless `p` has `shape`, no NaN, entries >= 0 and
    last-dim sums of 1 (within `sum_tolerance` of its dtype, or of float32 if every entry of
    a float64 `p` is a float32 value: the precision the values were computed in)."""
    if tuple(p.shape) != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {tuple(p.shape)}")
    if torch.isnan(p).any():
        raise ValueError(f"{name}: contains NaN")
    if (p < 0).any():
        raise ValueError(f"{name}: probabilities must be >= 0, got minimum {p.min().item():.4g}")
    sums = p.sum(-1)
    worst = (sums - 1).abs().max().item()
    if worst > sum_tolerance(p.dtype) and _float32_values(p):
        # Computed in float32 and cast up (a float32 fit in a float64 model): they sum to 1 to
        # float32's precision, not float64's, so that is the precision to check them to.
        worst = worst if worst > sum_tolerance(torch.float32) else 0.0
    if worst > sum_tolerance(p.dtype):
        raise ValueError(
            f"{name}: {'rows' if p.dim() == 2 else 'entries'} must sum to 1, "
            f"got sum(s) {sums.tolist()} (off by {worst:.3g})"
        )


def check_parameters(
    initial: torch.Tensor, transition: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate π ``[K]`` and A ``[K, K]`` (a distribution and a row-stochastic matrix);
    return them as floating tensors of one common dtype."""
    initial = as_tensor("initial", initial)
    transition = as_tensor("transition", transition)
    if not initial.is_floating_point():
        initial = initial.double()
    dtype = torch.promote_types(initial.dtype, transition.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    initial, transition = initial.to(dtype), transition.to(dtype)
    if initial.dim() != 1 or initial.shape[0] < 1:
        raise ValueError(f"initial: expected shape [K] with K >= 1, got {tuple(initial.shape)}")
    K = initial.shape[0]
    check_probabilities("initial", initial, (K,))
    check_probabilities("transition", transition, (K, K))
    return initial, transition


def check_log_lik(log_lik: torch.Tensor, K: int) -> torch.Tensor:
    """Validate per-step emission log-likelihoods ``[..., T, K]`` (T >= 1, no NaN, no +inf)."""
    log_lik = as_tensor("log_lik", log_lik)
    if not log_lik.is_floating_point():
        raise ValueError(f"log_lik: expected a floating tensor, got dtype {log_lik.dtype}")
    if log_lik.dim() < 2 or log_lik.shape[-1] != K:
        raise ValueError(
            f"log_lik: expected shape [..., T, K] with K = {K} (from initial), "
            f"got {tuple(log_lik.shape)}"
        )
    if log_lik.shape[-2] == 0:
        raise ValueError("log_lik: expected at least one time step (T >= 1), got T = 0")
    # One reduction clears almost every input: its sum is NaN or +inf only if some entry is
    # NaN or +inf (or finite entries overflow); only then look entry by entry.
    total = log_lik.sum()
    if torch.isnan(total) or total == math.inf:
        if torch.isnan(log_lik).any():
            raise ValueError("log_lik: contains NaN")
        if (log_lik == math.inf).any():
            raise ValueError("log_lik: contains +inf (a log-likelihood must be <= a finite value)")
    return log_lik


def check_hmm(
    initial: torch.Tensor, transition: torch.Tensor, log_lik: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The inference core's three inputs checked and in one dtype: (log π ``[K]``,
    A ``[K, K]``, log_lik ``[..., T, K]``)."""
    initial, transition = check_parameters(initial, transition)
    log_lik = check_log_lik(log_lik, initial.shape[0])
    dtype = torch.promote_types(log_lik.dtype, initial.dtype)
    return initial.to(dtype).log(), transition.to(dtype), log_lik.to(dtype)


def check_lengths(lengths: object, log_lik: torch.Tensor) -> torch.Tensor | None:
    """``lengths [...]`` (one int per sequence of ``log_lik [..., T, K]``, each in 1..T) as an
    int64 tensor, or None if None."""
    if lengths is None:
        return None
    batch, T = tuple(log_lik.shape[:-2]), log_lik.shape[-2]
    lengths = as_tensor("lengths", lengths)
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise ValueError(f"lengths: expected integers, got dtype {lengths.dtype}")
    if tuple(lengths.shape) != batch:
        raise ValueError(
            f"lengths: expected shape {list(batch)} (one length per sequence of log_lik "
            f"{list(log_lik.shape)}), got {list(lengths.shape)}"
        )
    if lengths.numel() and (lengths.min() < 1 or lengths.max() > T):
        raise ValueError(
            f"lengths: expected lengths in 1..{T} (T from log_lik), got range "
            f"{lengths.min().item()}..{lengths.max().item()}"
        )
    return lengths.long().to(log_lik.device)


def check_emission(emission: object, K: int) -> None:
    """An emission distribution must have batch shape ``(K,)``: one distribution per state."""
    if not isinstance(emission, Distribution):
        raise ValueError(
            f"emission: expected a torch Distribution with batch shape [{K}] (one per state, "
            f"K from initial), such as Categorical(probs=B) or Normal(loc, scale), got "
            f"{type(emission).__name__}"
            + (f" of shape {list(emission.shape)}" if isinstance(emission, torch.Tensor) else "")
        )
    if tuple(emission.batch_shape) != (K,):
        raise ValueError(
            f"emission: expected batch shape ({K},) (one distribution per state, K from "
            f"initial), got {tuple(emission.batch_shape)}"
        )
