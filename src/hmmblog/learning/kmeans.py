"""A data-driven start for real- or count-valued emissions: 1-D k-means segmentation.

Lloyd's algorithm from the quantiles (k + ½)/K of all values, with one rule scipy's `kmeans2`
lacks: an empty cluster restarts at the reading its current cluster explains worst, so that no
level is wasted (e.g. two quantiles inside one dominant level, as when a plug reads exactly
0 W most of the time; `tests/test_learning_gaussian.py` shows the difference). The
segmentation's labels give π and A by counting.
"""

from __future__ import annotations

import torch

__all__ = ["chain_counts", "farthest_point_centers", "kmeans_segmentation"]


def kmeans_segmentation(
    observations: torch.Tensor, K: int, iters: int = 100, centers: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster centers ``[K]`` (sorted) and each reading's label ``[N, T]`` (its nearest
    center) for real `observations [N, T]`, from the given starting `centers [K]` or the
    quantiles."""
    y = observations
    flat = y.reshape(-1)
    if centers is None:
        centers = torch.quantile(flat, (torch.arange(K, dtype=y.dtype) + 0.5) / K)
    for _ in range(iters):
        labels = (flat.unsqueeze(-1) - centers).abs().argmin(-1)
        counts = torch.bincount(labels, minlength=K).to(y.dtype)
        sums = torch.zeros(K, dtype=y.dtype).index_add_(0, labels, flat)
        moved = torch.where(counts > 0, sums / counts.clamp_min(1), centers)
        # An empty cluster restarts at the reading its current cluster explains worst.
        misfit = (flat - moved[labels]).abs()
        for k in torch.nonzero(counts == 0).flatten().tolist():
            worst = int(misfit.argmax())
            moved[k], misfit[worst] = flat[worst], -1.0
        if torch.equal(moved, centers):
            break
        centers = moved
    centers = centers[centers.argsort()]
    return centers, (y.unsqueeze(-1) - centers).abs().argmin(-1)


def farthest_point_centers(values: torch.Tensor, K: int) -> torch.Tensor:
    """K deterministic k-means starts ``[K]`` from `values [n]`: the smallest value, then each
    time the value farthest from every start so far (a rare, distant cluster gets a start of
    its own, which quantile starts can miss)."""
    centers = values.min()[None]
    for _ in range(K - 1):
        far = (values[:, None] - centers).abs().min(1).values
        centers = torch.cat([centers, values[far.argmax()][None]])
    return centers


def chain_counts(labels: torch.Tensor, K: int, dtype: torch.dtype
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """π ∝ 1 + first-step label counts and A[i, j] ∝ 1 + counts of label i followed by label
    j, from `labels [N, T]` (the Dirichlet(1) pseudo-count keeps every probability positive)."""
    first = 1 + torch.bincount(labels[:, 0], minlength=K).to(dtype)
    pairs = labels[:, :-1] * K + labels[:, 1:]
    moves = 1 + torch.bincount(pairs.reshape(-1), minlength=K * K).to(dtype).reshape(K, K)
    return first / first.sum(), moves / moves.sum(-1, keepdim=True)
