"""Label switching: match learned hidden states to reference states by optimal assignment.

An HMM's likelihood does not change when its states are renamed, so a learner returns the
states in an arbitrary order. `align_states` finds the renaming that best matches a reference
(minimum total absolute difference between per-state rows, solved by the Hungarian algorithm
in O(K^3) instead of trying all K! permutations); `permute_states` applies it.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment


def _as_rows(x: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    arr = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim == 0:
        raise ValueError(f"{name}: expected one row per state [K, ...], got a scalar")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name}: expected numbers, got dtype {arr.dtype}")
    arr = arr.astype(float).reshape(arr.shape[0], -1)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return arr


def align_states(
    estimated: torch.Tensor | np.ndarray, truth: torch.Tensor | np.ndarray
) -> torch.Tensor:
    """Permutation `perm` (int64 `[K]`) such that `estimated[perm]` best matches `truth`:
    perm = argmin_σ Σ_k ‖estimated[σ(k)] − truth[k]‖₁, by optimal assignment.

    Both arguments hold one row per state, `[K]` or `[K, ...]` (e.g. emission rows `[K, M]`
    or Gaussian means `[K]`), with the same shape.
    """
    est = _as_rows(estimated, "estimated")
    ref = _as_rows(truth, "truth")
    if est.shape != ref.shape:
        raise ValueError(
            f"estimated: expected the shape of truth {tuple(np.shape(truth))}, "
            f"got {tuple(np.shape(estimated))}"
        )
    # cost[k, j] = cost of calling estimated state j "true state k".
    cost = np.abs(ref[:, None, :] - est[None, :, :]).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(len(rows), dtype=np.int64)
    perm[rows] = cols
    return torch.from_numpy(perm)


def permute_states(
    perm: torch.Tensor, initial: torch.Tensor, transition: torch.Tensor, *per_state: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """Rename the states of an HMM by `perm` (new state k = old state perm[k]):
    π → π[perm], A → A[perm][:, perm], and every per-state tensor `[K, ...]` → x[perm].
    """
    perm = torch.as_tensor(perm, dtype=torch.long)
    K = initial.shape[-1]
    if perm.shape != (K,) or sorted(perm.tolist()) != list(range(K)):
        raise ValueError(f"perm: expected a permutation of range({K}), got {perm.tolist()}")
    if transition.shape[-2:] != (K, K):
        raise ValueError(f"transition: expected [..., {K}, {K}], got {tuple(transition.shape)}")
    for i, x in enumerate(per_state):
        if x.shape[0] != K:
            raise ValueError(
                f"per_state[{i}]: expected {K} rows (one per state), got shape {tuple(x.shape)}"
            )
    return (
        initial[..., perm],
        transition[..., perm, :][..., perm],
        *(x[perm] for x in per_state),
    )
