"""Shared test settings: reproducible hypothesis runs, float64 by default where tests ask."""

import pytest
import torch
from hypothesis import HealthCheck, settings

# Tensor code has no meaningful per-example deadline; derandomize so every run tests the same
# examples (the suite must be reproducible, and a failure must be re-runnable).
settings.register_profile(
    "hmmblog", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("hmmblog")


@pytest.fixture
def one_torch_thread():
    """Small tensors: one intra-op thread is faster (and steadier on a busy machine) than two
    fighting over the cores. Restored afterwards. Modules that want it say
    `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
