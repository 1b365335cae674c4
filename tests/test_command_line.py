"""The ``autoq`` command line, run in-process as a user would type it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from autoq.cli import main
from autoq.data import read_pde_file

TINY_SPACE = {
    "name": "cli-tiny",
    "data": {"pde": "burgers", "path": "data/tiny.h5", "input_steps": 4, "target_steps": 1,
             "generate": {"samples": 24, "resolution": 64, "frames": 11}},
    "model": {"arch": "fno", "width": 12, "modes": 6, "layers": 2, "projection_width": 24},
    "train": {"epochs": 2, "lr": 3.0e-3, "batch_size": 16},
    "qat": {"epochs": 1, "batch_size": 16},
    "space": {"scales": [1.0, 0.5], "weight_bits": [4, 8], "act_bits": [8, 16],
              "granularity": "per_block"},
    "search": {"trials": 3, "seed": 0},
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTOQ_STORAGE", raising=False)
    monkeypatch.setenv("AUTOQ_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_SPACE))
    return tmp_path


def test_datagen_writes_a_public_layout_file(workdir: Path, capsys) -> None:
    assert main(["datagen", "burgers", "--out", "x.h5", "--samples", "8", "--resolution", "64",
                 "--frames", "11"]) == 0
    data = read_pde_file(workdir / "x.h5")
    assert (data.pde, data.samples, data.frames, data.spatial_shape) == ("burgers", 8, 11, (64,))
    assert "8 samples, 11 frames, grid 64" in capsys.readouterr().out


def test_cost_json_has_every_regime_at_every_scale(workdir: Path, capsys) -> None:
    assert main(["cost", "tiny.yaml", "--json"]) == 0
    costs = json.loads(capsys.readouterr().out)
    assert list(costs) == ["float", "w8a16", "w8a8", "w4a8", "w4a4"]
    assert set(costs["w4a8"]) == {"1.0", "0.5"}
    totals = [costs[regime]["1.0"]["total"] for regime in costs]
    assert totals == sorted(totals, reverse=True)
    assert costs["w4a8"]["0.5"]["total"] < costs["w4a8"]["1.0"]["total"]
    layers = costs["w4a8"]["1.0"]["layers"]
    assert sum(layers.values()) == pytest.approx(costs["w4a8"]["1.0"]["total"])


def test_cost_prices_the_spaces_resize_method(workdir: Path, capsys) -> None:
    cubic = {**TINY_SPACE, "space": {**TINY_SPACE["space"], "resample": "cubic"}}
    (workdir / "cubic.yaml").write_text(yaml.safe_dump(cubic))
    resizes = {}
    for name in ("tiny", "cubic"):
        assert main(["cost", f"{name}.yaml", "--json"]) == 0
        layers = json.loads(capsys.readouterr().out)["w4a8"]["0.5"]["layers"]
        resizes[name] = layers["resize.in"], layers["resize.out"]
    # 64 → 32 cells: 2 taps (linear) against 4 (cubic) per point, the same float pricing.
    assert resizes["cubic"] == (2 * resizes["tiny"][0], 2 * resizes["tiny"][1])


def test_search_then_pareto_pick_and_studies(workdir: Path, capsys) -> None:
    assert main(["search", "tiny.yaml"]) == 0
    out = capsys.readouterr().out
    assert "Pareto set of 'cli-tiny'" in out
    assert (workdir / "autoq.db").is_file()

    assert main(["pareto", "cli-tiny", "--json", "--plot", "front.png"]) == 0
    payload = json.loads(capsys.readouterr().out.split("plot written")[0])
    front = payload["pareto"]
    assert front and [p["cost"] for p in front] == sorted(p["cost"] for p in front)
    assert payload["hypervolume"] > 0
    assert (workdir / "front.png").stat().st_size > 10_000

    loosest = max(p["mse"] for p in front)
    assert main(["pick", "cli-tiny", "--max-mse", str(loosest), "--json"]) == 0
    picked = json.loads(capsys.readouterr().out)["operating_point"]
    assert picked["cost"] == min(p["cost"] for p in front)
    assert main(["pick", "cli-tiny", "--max-mse", "1e-30"]) == 1
    assert "no trial of 'cli-tiny' has MSE ≤ 1e-30; the best is trial" in capsys.readouterr().out

    assert main(["studies"]) == 0
    assert "cli-tiny" in capsys.readouterr().out
    # A second run of the same search has nothing left to do.
    assert main(["search", "tiny.yaml"]) == 0
    assert "3 of 3 trials done" in capsys.readouterr().out


def test_bad_spec_is_a_clear_error(workdir: Path, capsys) -> None:
    broken = {**TINY_SPACE, "space": {**TINY_SPACE["space"], "weight_bits": [0]}}
    (workdir / "broken.yaml").write_text(yaml.safe_dump(broken))
    assert main(["search", "broken.yaml"]) == 2
    err = capsys.readouterr().err
    assert "broken.yaml: space.weight_bits.0: Input should be greater than or equal to 2" in err
    assert not (workdir / "autoq.db").exists()
    assert main(["pareto", "nothing-here"]) == 2
    assert "no search named 'nothing-here'" in capsys.readouterr().err


def test_search_whose_trials_all_fail_says_why_and_exits_non_zero(
    workdir: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autoq.errors import TrialError
    from autoq.search import trial as trial_module

    def diverges(*args, **kwargs):
        raise TrialError("training loss became nan at step 1")

    monkeypatch.setattr(trial_module, "TrainingRun", diverges)  # every QAT run
    assert main(["search", "tiny.yaml", "--trials", "2"]) == 1
    captured = capsys.readouterr()
    assert captured.out.count("failed: TrialError: training loss became nan at step 1") == 2
    assert "no trial of this run of 'cli-tiny' completed" in captured.err

    assert main(["trials", "cli-tiny"]) == 0
    listing = capsys.readouterr().out
    assert listing.count("FAIL") == 2 and "TrialError: training loss became nan" in listing
    assert main(["trials", "cli-tiny", "--json"]) == 0
    trials = json.loads(capsys.readouterr().out)["trials"]
    assert [t["state"] for t in trials] == ["FAIL", "FAIL"]
    assert all(t["error"].startswith("TrialError: training loss") for t in trials)


def test_search_that_fails_before_its_first_trial_leaves_no_study(workdir: Path, capsys) -> None:
    missing = {**TINY_SPACE, "data": {**TINY_SPACE["data"], "path": "data/absent.h5"}}
    del missing["data"]["generate"]
    (workdir / "missing.yaml").write_text(yaml.safe_dump(missing))
    assert main(["search", "missing.yaml"]) == 2
    assert "data file not found: data/absent.h5" in capsys.readouterr().err
    assert main(["studies"]) == 0
    assert "no searches in" in capsys.readouterr().out


def test_bundled_space_by_name_and_version(workdir: Path, capsys) -> None:
    from autoq import __version__

    assert main(["cost", "burgers-fno-small", "--json"]) == 0
    assert "w4a8" in json.loads(capsys.readouterr().out)
    assert main(["cost", "no-such-space"]) == 2
    assert "nor is it a bundled space; bundled: ['burgers-fno-paper'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"autoq {__version__}"


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("AUTOQ_TRIAL_HEARTBEAT_SECONDS", "2.5",
     "AUTOQ_TRIAL_HEARTBEAT_SECONDS: Input should be a valid integer"),
    ("AUTOQ_HEARTBEAT_SECONDS", "10",
     "AUTOQ_HEARTBEAT_SECONDS is no longer read: use AUTOQ_TRIAL_HEARTBEAT_SECONDS"),
])
def test_bad_environment_is_a_clear_error(workdir: Path, capsys, monkeypatch: pytest.MonkeyPatch,
                                          variable: str, value: str, message: str) -> None:
    monkeypatch.setenv(variable, value)
    assert main(["studies"]) == 2
    assert message in capsys.readouterr().err


def test_space_with_a_factory_in_the_working_directory(workdir: Path, capsys,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(sys, "path", list(sys.path))  # the command extends it; undo afterwards
    (workdir / "my_models_cli.py").write_text(
        "from torch import nn\n\n\n"
        "class Pointwise(nn.Module):\n"
        "    def __init__(self, width=8):\n"
        "        super().__init__()\n"
        "        self.a = nn.Conv1d(4, width, 1)\n"
        "        self.b = nn.Conv1d(width, width, 1)\n"
        "        self.c = nn.Conv1d(width, 1, 1)\n\n"
        "    def forward(self, x):\n"
        "        return x[:, -1:] + self.c(self.b(self.a(x)).tanh())\n")
    space = {**TINY_SPACE, "model": {"factory": "my_models_cli:Pointwise", "kwargs": {"width": 8}}}
    (workdir / "mine.yaml").write_text(yaml.safe_dump(space))
    assert main(["cost", "mine.yaml", "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)["w4a8"]["1.0"]["layers"]
    assert {"module.a", "module.b", "module.c"} <= set(layers)


def test_cost_table_gives_the_float_models_flops_as_the_paper_counts_them(
        workdir: Path, capsys) -> None:
    assert main(["cost", "burgers-fno-paper"]) == 0
    out = capsys.readouterr().out
    assert "MFLOPs as DeepSpeed counts them (Table 2's measure)" in out
    assert out.rstrip().endswith("the paper's Table 2: 21 MFLOPs")
