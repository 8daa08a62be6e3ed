"""A loaded machine for the benchmarks' `--busy P` option: P other processes spinning."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """Keep `count` other Python processes busy (each a `while True: pass`) while inside."""
    spinning = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(count)]
    try:
        yield
    finally:
        for process in spinning:
            process.kill()
