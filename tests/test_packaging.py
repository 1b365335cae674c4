"""Packaging: optional dependencies behind extras (:mod:`autoq.extras`), the bundled search spaces
as package data, and pyproject's pins against the lock."""

from __future__ import annotations

import fnmatch
import json
import pickle
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from autoq.errors import AutoqError
from autoq.extras import MissingExtraError, require
from autoq.settings import bundled_spaces_dir

ROOT = Path(__file__).resolve().parents[1]
NOT_INSTALLED = "autoq_no_such_module_xyz"


@pytest.fixture
def importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on ``sys.path`` to write throw-away modules into (removed from ``sys.modules``
    afterwards)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_a_missing_module_names_the_feature_the_module_and_the_extra() -> None:
    with pytest.raises(MissingExtraError) as caught:
        require(NOT_INSTALLED, extra="service", feature="autoq serve")
    assert str(caught.value) == (f"autoq serve needs the 'service' extra ({NOT_INSTALLED} is not "
                                 "installed): pip install 'autoq[service]'")
    error = caught.value
    assert isinstance(error, AutoqError) and isinstance(error, ImportError)
    assert (error.module, error.missing, error.extra, error.feature) == (
        NOT_INSTALLED, NOT_INSTALLED, "service", "autoq serve")
    assert error.name == NOT_INSTALLED
    assert isinstance(error.__cause__, ModuleNotFoundError)


def test_a_missing_parent_package_is_the_missing_module() -> None:
    with pytest.raises(MissingExtraError, match=rf"\({NOT_INSTALLED} is not installed\)"):
        require(f"{NOT_INSTALLED}.tune", extra="ray", feature="executor: ray")


def test_a_missing_dependency_of_an_installed_module_is_named_with_it(importable: Path) -> None:
    (importable / "autoq_half_installed.py").write_text(f"import {NOT_INSTALLED}\n")
    with pytest.raises(MissingExtraError) as caught:
        require("autoq_half_installed", extra="service", feature="autoq worker")
    assert str(caught.value) == (
        f"autoq worker needs the 'service' extra ({NOT_INSTALLED}, needed by "
        "autoq_half_installed, is not installed): pip install 'autoq[service]'")


def test_other_import_errors_are_not_a_missing_extra(importable: Path) -> None:
    # An installed package that is broken or of the wrong version: the extra would not fix it.
    (importable / "autoq_broken_module.py").write_text("from json import no_such_name\n")
    with pytest.raises(ImportError) as caught:
        require("autoq_broken_module", extra="service", feature="autoq serve")
    assert not isinstance(caught.value, MissingExtraError)


def test_a_present_module_is_returned() -> None:
    assert require("json", extra="service", feature="autoq serve") is json
    assert require("os.path", extra="service", feature="autoq serve") is sys.modules["os.path"]


def test_the_error_survives_pickling() -> None:
    # Errors cross process boundaries (job workers, Ray).
    error = MissingExtraError(module="fastapi", missing="fastapi", extra="service",
                              feature="autoq serve")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error)
    assert (copy.module, copy.extra, copy.feature) == ("fastapi", "service", "autoq serve")


def test_the_helper_is_light(heavy_imports: Callable[..., list[str]]) -> None:
    assert heavy_imports("autoq.extras") == []


# The bundled search spaces ------------------------------------------------------------------


def _pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def test_the_bundled_spaces_are_inside_the_package() -> None:
    spaces = bundled_spaces_dir()
    assert spaces == ROOT / "autoq" / "search_spaces"
    assert len(list(spaces.glob("*.yaml"))) == 24
    # The documented paths (search_spaces/<name>.yaml) go through the link at the root.
    assert (ROOT / "search_spaces").resolve() == spaces.resolve()


def test_package_data_ships_every_bundled_space_and_the_demo() -> None:
    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["autoq"]
    package = ROOT / "autoq"
    shipped = [p.relative_to(package).as_posix()
               for p in [package / "demo.yaml", *sorted(bundled_spaces_dir().iterdir())]]
    unshipped = [f for f in shipped if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert unshipped == []


# Extras and the lock --------------------------------------------------------------------------


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_the_service_and_ray_dependencies_are_extras() -> None:
    project = _pyproject()["project"]
    core = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    extras = project["optional-dependencies"]
    assert {"service", "ray", "test", "dev"} <= set(extras)
    for extra in ("service", "ray"):
        names = {canonicalize_name(Requirement(r).name) for r in extras[extra]}
        assert not names & core, f"{extra} packages also in the core dependencies"


def test_every_pin_of_pyproject_is_the_lock_s() -> None:
    project = _pyproject()["project"]
    requirements = [*project["dependencies"],
                    *(r for extra in project["optional-dependencies"].values() for r in extra)]
    lock = _lock()
    wrong = []
    for text in requirements:
        requirement = Requirement(text)
        version = lock.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            wrong.append(f"{text} (lock: {version})")
    assert wrong == []
