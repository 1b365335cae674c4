"""Start-up stays light: the CLI's parser, the read commands and the service's settings and read
paths never load torch, AIMET, DeepSpeed or Ray (each costs seconds and hundreds of MB)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

HEAVY = ("torch", "aimet_torch", "deepspeed", "ray")

RUN_COMMAND = """
import sys
from autoq.cli import main
try:
    status = main(sys.argv[1:])
finally:  # --help and --version exit from inside the parser
    print("HEAVY:" + ",".join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
sys.exit(status)
"""


def test_parser_results_and_service_settings_load_no_heavy_module(
    heavy_imports: Callable[..., list[str]]
) -> None:
    code = ("import sys\nfrom autoq.cli import build_parser\nbuild_parser()\n"
            "import autoq.search.results, service.config\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == []
    # The layers a read path goes through, and the spec (the service validates submissions).
    assert heavy_imports("autoq.search.records", "autoq.search.storage", "autoq.search.spec",
                         "autoq.search.report", "autoq.settings", "autoq.extras") == []


def test_service_app_loads_no_heavy_module(heavy_imports: Callable[..., list[str]]) -> None:
    # The API process (``autoq serve --workers 0``) answers reads and validates submissions.
    assert heavy_imports("service.app", "service.routes.searches", "service.specs") == []


@pytest.fixture
def stored_search(tmp_path: Path) -> str:
    """A SQLite storage with one search of two complete trials, written as a search writes
    them (no training: the read commands only read)."""
    from autoq.search import parse_spec
    from autoq.search.records import BITS_ATTR, FLOAT_MSE_ATTR, SCALE_PARAM
    from autoq.search.storage import create_or_resume

    url = f"sqlite:///{tmp_path / 'read.db'}"
    spec = parse_spec({"name": "stored", "data": {"pde": "burgers", "path": "x.h5"},
                       "model": {"arch": "fno"}})
    study = create_or_resume(spec, storage=url)
    scale = optuna.distributions.CategoricalDistribution([1.0, 0.5])
    for mse, cost, value in ((1e-3, 4e8, 1.0), (2e-3, 1e8, 0.5)):
        study.add_trial(optuna.trial.create_trial(
            values=[mse, cost], params={SCALE_PARAM: value}, distributions={SCALE_PARAM: scale},
            user_attrs={BITS_ATTR: {"blocks.0": [8, 8]}, FLOAT_MSE_ATTR: 9e-4}))
    return url


@pytest.mark.parametrize("command", [["--help"], ["--version"], ["studies"],
                                     ["trials", "stored"], ["pareto", "stored", "--json"],
                                     ["pick", "stored", "--max-mse", "2.5e-3"]])
def test_read_commands_load_no_heavy_module(stored_search: str, command: list[str]) -> None:
    argv = [*command, "--storage", stored_search] if command[0] not in ("--help",
                                                                        "--version") else command
    result = subprocess.run([sys.executable, "-c", RUN_COMMAND.format(heavy=HEAVY), *argv],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == "HEAVY:", result.stderr
    if command[0] == "pick":
        assert "trial 1" in result.stdout
