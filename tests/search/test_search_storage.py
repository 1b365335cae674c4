"""Opening a new database from several processes at once: Optuna's tables are created once,
and every process gets its storage."""

from __future__ import annotations

import subprocess
import sys

import pytest

OPEN_AT_ONCE = """
import sys, time
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
from autoq.search.storage import rdb_storage
rdb_storage(sys.argv[1])
"""


@pytest.mark.postgres
def test_processes_opening_a_new_database_at_once_all_succeed(postgres_url: str) -> None:
    import time

    start = time.time() + 4  # after every interpreter has started
    processes = [subprocess.Popen([sys.executable, "-c", OPEN_AT_ONCE, postgres_url, str(start)],
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [process.communicate(timeout=120)[1] for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0], "\n".join(errors)
