"""Search specs: every bundled space validates; a bad spec is a SpecError naming its key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import h5py
import pytest

from autoq.errors import SpecError
from autoq.search import load_spec, parse_spec
from autoq.search.setup import ensure_data
from autoq.search.spec import ConstraintsSpec, paper_setting

SPACES = sorted((Path(__file__).parents[2] / "search_spaces").glob("*.yaml"))


def test_bundled_spaces_are_there() -> None:
    assert len(SPACES) >= 24


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.stem)
def test_spec_bundled_space_validates(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name == path.stem


def _edited(payload: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """``payload`` with the dotted ``key`` set to ``value`` (or removed when value is ...)."""
    edited = copy.deepcopy(payload)
    *parents, last = key.split(".")
    target = edited
    for part in parents:
        target = target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return edited


@pytest.mark.parametrize(("key", "value", "named"), [
    ("colour", "red", "colour"),
    ("space.weight_bits", [0], "space.weight_bits"),
    ("space.act_bits", [8, 64], "space.act_bits"),
    ("model.arch", "resnet", "model.arch"),
    ("data.pde", "heat", "data.pde"),
    ("space.scales", [1.5], "space.scales"),
    ("space.scales", [0.0, 0.5], "space.scales"),
    ("data", ..., "data"),
    ("search.sampler", "cmaes", "search.sampler"),
    ("search.resources", {"cpu": 0}, "search.resources.cpu"),
    ("search.max_concurrent", 0, "search.max_concurrent"),
    ("data.generate.options", {"viscosity": 0.1}, "generate.options"),
    ("data.generate.options", {"nu": "thin"}, "data.generate.options.nu"),
    ("space.ranks", [0.5], "space.ranks: the factorization rank is a keyword of a model built "
                           "by a factory"),
    ("space.ranks", [], "space.ranks"),
    ("space.ranks", [0], "space.ranks"),
    ("search.constraints", {"max_mse_ratio": 0}, "search.constraints.max_mse_ratio"),
    ("search.constraints", {"max_mse": 1e-3, "max_mse_ratio": 1.1},
     "search.constraints: give at most one of max_mse"),
])
def test_spec_error_names_the_bad_key(
    tiny_spec_payload: dict[str, Any], key: str, value: Any, named: str
) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(_edited(tiny_spec_payload, key, value))
    assert isinstance(caught.value, ValueError)
    assert named in str(caught.value)


def test_an_error_bound_is_absolute_or_relative_to_the_float_models_error() -> None:
    assert ConstraintsSpec(max_mse=2e-3).mse_bound(1e-3) == 2e-3
    assert ConstraintsSpec(max_mse_ratio=1.1).mse_bound(1e-3) == pytest.approx(1.1e-3)
    assert ConstraintsSpec(max_mse_ratio=1.1).mse_bound(None) is None
    assert ConstraintsSpec().mse_bound(1e-3) is None


def test_spec_resources_default_to_one_cpu(tiny_spec_payload: dict[str, Any]) -> None:
    spec = parse_spec(tiny_spec_payload)
    assert spec.search.resources.cpu == 1.0 and spec.search.resources.gpu == 0.0
    assert spec.search.max_concurrent is None


def test_spec_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "nowhere.yaml")


def test_generate_options_reach_the_solver(tiny_spec_payload: dict[str, Any],
                                           tmp_path: Path) -> None:
    payload = _edited(tiny_spec_payload, "data.path", str(tmp_path / "viscous.h5"))
    spec = parse_spec(_edited(payload, "data.generate.options", {"nu": 0.05}))
    path = ensure_data(spec, progress=False)
    with h5py.File(path, "r") as handle:
        assert handle.attrs["Nu"] == pytest.approx(0.05)


def test_spec_ranks_are_all_integers_or_all_fractions_largest_first(
    tiny_spec_payload: dict[str, Any]
) -> None:
    factory = {"factory": "neuralop.models:TFNO", "kwargs": {}}
    payload = {**tiny_spec_payload, "model": factory}
    ranked = parse_spec(_edited(payload, "space.ranks", [0.1, 0.5, 0.1]))
    assert ranked.space.ranks == [0.5, 0.1]
    assert parse_spec(_edited(payload, "space.ranks", [4, 16])).space.ranks == [16, 4]
    with pytest.raises(SpecError, match=r"space\.ranks: .*integer .* or every rank as a fraction"):
        parse_spec(_edited(payload, "space.ranks", [4, 0.5]))


def test_rescale_epochs_beside_a_users_checkpoint_is_refused_naming_both(
    tiny_spec_payload: dict[str, Any]
) -> None:
    own = {"factory": "neuralop.models:FNO", "kwargs": {}, "checkpoint": "fno.pt"}
    payload = _edited({**tiny_spec_payload, "model": own}, "train.rescale_epochs", 2)
    with pytest.raises(SpecError, match=r"train\.rescale_epochs: .*model\.finetune_epochs"):
        parse_spec(payload)
    del payload["model"]["checkpoint"]
    assert parse_spec(payload).train.rescale_epochs == 2


def test_paper_setting_sets_what_a_regime_computes_to_the_papers_value_and_nothing_else(
        ) -> None:
    fno = paper_setting(load_spec("burgers-fno-small"))
    assert paper_setting(fno) is fno  # already in the paper's setting: the spec itself
    knobbed = fno.model_dump(mode="json")
    knobbed["space"].update(first_last_float=False, scheme="integer", resample="cubic",
                            weight_granularity="per_channel", transform="search",
                            allow_float=True)
    knobbed["search"].update(warm_start={"keep": 8}, sensitivity={"bits": 4},
                             fidelity={"screening": 0.25})
    knobbed["train"].update(rescale_epochs=2)
    paper = paper_setting(parse_spec(knobbed))
    assert (paper.space.first_last_float, paper.space.scheme, paper.space.resample,
            paper.space.weight_granularity, paper.space.transform) == (
        True, "paper", "linear", "per_tensor", "fft")
    assert (paper.search.warm_start, paper.search.sensitivity, paper.search.fidelity) == (
        None, None, None)
    assert paper.train.rescale_epochs is None
    # What a uniform regime does not read stays the space's, and so does everything else.
    assert paper.space == fno.space.model_copy(update={"allow_float": True})
    assert paper.model_copy(update={"space": fno.space}) == fno
