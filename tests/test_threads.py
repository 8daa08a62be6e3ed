"""A library call never changes the caller's thread settings (#14): whatever the caller set with
`torch.set_num_threads` (1 or 2 here), every public entry point that touches threads leaves it.

Run in a fresh interpreter: numba's OpenMP layer, once launched in this process by any earlier
test, would not reset the count again, and the check would pass whatever the code does."""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import sys
    import torch
    torch.set_num_threads(int(sys.argv[1]))
    from hmmblog import log_likelihood, posterior, viterbi
    from hmmblog.inference import factorial_viterbi
    from hmmblog.nilm import (combinatorial_optimisation, disaggregate, disaggregate_exact,
                              evaluate, learn_appliance, learn_unmetered, random_household,
                              simulate_household)

    g = torch.Generator().manual_seed(0)
    K = 8
    pi = torch.full((K,), 1 / K, dtype=torch.float64)
    A = torch.softmax(torch.randn(K, K, generator=g, dtype=torch.float64), -1)
    ll = torch.randn(200, 1000, K, generator=g, dtype=torch.float64)  # enough rows to share
    seen = {}
    for name, call in [
        ("log_likelihood", lambda: log_likelihood(pi, A, ll)),
        ("posterior", lambda: posterior(pi, A, ll)),
        ("viterbi", lambda: viterbi(pi, A, ll)),
        ("factorial_viterbi", lambda: factorial_viterbi(
            [pi[:4] / pi[:4].sum()] * 3, [torch.eye(4, dtype=torch.float64) * 0.9 + 0.025] * 3,
            torch.randn(50, 500, 4, 4, 4, generator=g, dtype=torch.float64))),
    ]:
        call()
        seen[name] = torch.get_num_threads()
    apps = random_household(12, seed=3)
    house = simulate_household(apps, 2 * 1440, 20.0, 150.0, seed=4)
    small = apps[:3]
    for name, call in [
        ("disaggregate, plain", lambda: disaggregate(house.aggregate, apps, 20.0, 150.0,
                                                     unmetered=False)),
        ("disaggregate", lambda: disaggregate(house.aggregate, apps)),
        ("disaggregate_exact", lambda: disaggregate_exact(house.aggregate[:300], small)),
        ("combinatorial_optimisation", lambda: combinatorial_optimisation(house.aggregate,
                                                                          small)),
        ("learn_appliance", lambda: learn_appliance(house.power[0], 2)),
        ("learn_unmetered", lambda: learn_unmetered(house.aggregate)),
        ("evaluate", lambda: evaluate(house.aggregate, {"a": house.power[0], "b": house.power[1]},
                                      train=slice(0, 1440), test=slice(1440, None))),
    ]:
        call()
        seen[name] = torch.get_num_threads()
    print(seen)
""")


@pytest.mark.parametrize("threads", [1, 2])
def test_public_calls_leave_the_callers_thread_count_alone(threads: int):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(threads)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = eval(done.stdout.strip().splitlines()[-1])  # noqa: S307 - our own script's dict
    changed = {name: n for name, n in seen.items() if n != threads}
    assert not changed, f"calls that changed torch's thread count from {threads}: {changed}"
