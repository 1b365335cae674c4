"""The examples run as a user runs them, in their small size."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_own_model_and_data_example_finds_a_cheaper_configuration(tmp_path: Path) -> None:
    env = {**os.environ, "AUTOQ_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, str(EXAMPLES / "own_model_and_data.py"), "--small"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "3 trials; float model's relative L2 error at full resolution" in out
    assert "Pareto set" in out and "  trial " in out
    assert "cheapest within 1.1 × float: trial" in out or "no trial within 1.1" in out
