"""align_states recovers hidden permutations by optimal assignment; permute_states renames."""

import itertools

import numpy as np
import pytest
import torch

from hmmblog.alignment import align_states, permute_states


@pytest.mark.parametrize("K", range(1, 9))
def test_recovers_random_permutations(K: int) -> None:
    g = torch.Generator().manual_seed(K)
    for _ in range(20):
        truth = torch.rand(K, 4, generator=g)
        shuffle = torch.randperm(K, generator=g)
        estimated = truth[shuffle] + 0.01 * torch.randn(K, 4, generator=g)
        perm = align_states(estimated, truth)
        assert perm.dtype == torch.int64 and perm.shape == (K,)
        assert torch.allclose(estimated[perm], truth, atol=0.05)
        # shuffle[perm[k]] = k: estimated[perm] undoes the shuffle exactly.
        assert torch.equal(shuffle[perm], torch.arange(K))


@pytest.mark.parametrize("K", [2, 3, 4, 5])
def test_matches_brute_force_over_all_permutations(K: int) -> None:
    rng = np.random.default_rng(K)
    for _ in range(25):
        est, ref = rng.random((K, 3)), rng.random((K, 3))
        best = min(
            itertools.permutations(range(K)),
            key=lambda p: np.abs(est[list(p)] - ref).sum(),
        )
        perm = align_states(est, ref).numpy()
        assert np.isclose(np.abs(est[perm] - ref).sum(), np.abs(est[list(best)] - ref).sum())


def test_one_dimensional_rows_such_as_gaussian_means() -> None:
    means = torch.tensor([5.0, -1.0, 2.0])
    assert align_states(means, torch.tensor([-1.0, 2.0, 5.0])).tolist() == [1, 2, 0]


@pytest.mark.parametrize(
    ("estimated", "truth", "message"),
    [
        (torch.ones(2, 3), torch.ones(3, 3), "estimated: expected the shape"),
        (torch.tensor(1.0), torch.tensor(1.0), "estimated: expected one row per state"),
        (torch.tensor([[float("nan")]]), torch.ones(1, 1), "estimated: expected finite"),
        (torch.ones(2, 2), torch.tensor([[1.0, float("inf")], [0, 0]]), "truth: expected finite"),
    ],
)
def test_bad_input_names_the_argument(estimated, truth, message) -> None:
    with pytest.raises(ValueError, match=message):
        align_states(estimated, truth)


def test_permute_states_renames_consistently() -> None:
    pi = torch.tensor([0.2, 0.3, 0.5])
    A = torch.tensor([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]])
    B = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    perm = torch.tensor([2, 0, 1])
    pi2, A2, B2 = permute_states(perm, pi, A, B)
    for i, j in itertools.product(range(3), range(3)):
        assert A2[i, j] == A[perm[i], perm[j]]
    assert torch.equal(pi2, pi[perm]) and torch.equal(B2, B[perm])
    with pytest.raises(ValueError, match="perm: expected a permutation"):
        permute_states(torch.tensor([0, 0, 1]), pi, A)
    with pytest.raises(ValueError, match=r"per_state\[0\]"):
        permute_states(perm, pi, A, torch.ones(2, 2))
