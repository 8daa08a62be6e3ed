"""Shared test settings: reproducible hypothesis runs, float64 by default where tests ask."""

from hypothesis import HealthCheck, settings

# Tensor code has no meaningful per-example deadline; derandomize so every run tests the same
# examples (the suite must be reproducible, and a failure must be re-runnable).
settings.register_profile(
    "hmmblog", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("hmmblog")
