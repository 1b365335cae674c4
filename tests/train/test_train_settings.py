"""The float cache, the device and the thread count follow autoq's settings, read at call time;
the recipes load without torch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

import autoq.train
from autoq.device import configure_threads, default_device
from autoq.train import FloatModelCache, default_cache_dir


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No ``AUTOQ_*`` variable and no ``.env`` file in the working directory."""
    for variable in ("AUTOQ_CACHE_DIR", "AUTOQ_DEVICE", "AUTOQ_THREADS"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("clean_environment")
def test_cache_dir_is_read_when_asked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert default_cache_dir() == Path("artifacts/float")
    monkeypatch.setenv("AUTOQ_CACHE_DIR", str(tmp_path / "floats"))
    assert default_cache_dir() == tmp_path / "floats"
    assert FloatModelCache().root == tmp_path / "floats"
    assert FloatModelCache(tmp_path / "elsewhere").root == tmp_path / "elsewhere"


@pytest.mark.usefixtures("clean_environment")
def test_device_setting_overrides_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("AUTOQ_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")
    monkeypatch.setenv("AUTOQ_DEVICE", "")  # as compose files pass an unset variable
    assert default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.usefixtures("clean_environment")
def test_threads_setting_overrides_the_core_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOQ_THREADS", "1")
    assert configure_threads() == 1
    assert torch.get_num_threads() == 1
    monkeypatch.delenv("AUTOQ_THREADS")
    assert configure_threads() >= 1


def test_package_names_resolve_lazily() -> None:
    for name in autoq.train.__all__:
        assert getattr(autoq.train, name) is not None, name
    assert set(dir(autoq.train)) >= set(autoq.train.__all__)
    with pytest.raises(AttributeError, match="no_such_name"):
        autoq.train.no_such_name  # noqa: B018


def test_recipes_import_without_torch(heavy_imports: Callable[..., list[str]]) -> None:
    assert heavy_imports("autoq.train.config") == []
