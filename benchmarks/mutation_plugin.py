"""pytest plugin of ``make mutation`` (benchmarks/mutation.py): torch on one thread.

mutmut runs the selected tests once in its own process, then forks that process for each
mutant's tests. A process forked after torch's OpenMP thread pool started hangs the first time
it enters the pool, so under mutmut torch keeps to one thread and the pool never starts
(tests/conftest.py and autoq.device ask for more: those calls do nothing here).
"""

from __future__ import annotations

import pytest
import torch


def pytest_configure(config: pytest.Config) -> None:
    torch.set_num_threads(1)
    torch.set_num_threads = lambda nthreads: None
