"""From a submitted body to the spec a worker runs: bundled spaces, overrides, data paths, limits.

A body names a bundled space (``search_spaces/<name>.yaml``) with optional overrides, or carries
a whole spec. Either way the result is a validated :class:`~autoq.search.SearchSpec` whose data
path lies inside the configured data root, and whose sizes and budget are within the server's
limits (``AUTOQ_LIMIT_*``). Messages name paths as the request gave them, never as resolved on
the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePath
from typing import Any

import yaml
from pydantic import ValidationError

from autoq.data.registry import DIRECTORY_LAYOUTS, PDES
from autoq.models.config import FactoryConfig
from autoq.search import SearchSpec, bundled_spaces, load_spec
from service.config import Settings
from service.errors import InvalidRequestError, Loc, error_item, validation_errors
from service.schemas import InlineSearchCreate, SearchCreate

# Linux's limits, in bytes: longer names fail every file operation with ENAMETOOLONG.
NAME_MAX = 255
PATH_MAX = 4096

Locator = Callable[..., Loc]
"""The body location of a spec field given by its keys, e.g. ``("data", "path")``."""


def load_bundled(directory: Path) -> dict[str, SearchSpec]:
    """Every bundled search space, validated, by name."""
    return {name: load_spec(path) for name, path in bundled_spaces(directory).items()}


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in: mappings merge key by key, anything else (lists
    included) replaces."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _has_key(payload: Mapping[str, Any], path: Loc) -> bool:
    node: Any = payload
    for key in path:
        in_mapping = isinstance(node, Mapping) and key in node
        in_list = isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)
        if not (in_mapping or in_list):
            return False
        node = node[key]
    return True


def _locator(request: SearchCreate) -> Locator:
    """Where a spec field was given: in an inline ``spec``; for a bundled space, in the
    ``overrides`` when they set it, else in the ``space`` itself."""
    if isinstance(request, InlineSearchCreate):
        return lambda *path: ("body", "spec", *path)
    overrides = request.overrides or {}
    return lambda *path: ("body", "overrides" if _has_key(overrides, path) else "space", *path)


def _path_problem(path: str) -> str | None:
    """What makes ``path`` unusable as a file name before looking at the disk, if anything."""
    if not path:
        return "is empty"
    if "\0" in path:
        return "contains a NUL byte"
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        return "is not Unicode text"
    if len(encoded) > PATH_MAX:
        return f"is longer than {PATH_MAX} bytes"
    if any(len(part.encode("utf-8")) > NAME_MAX for part in PurePath(path).parts):
        return f"has a name longer than {NAME_MAX} bytes"
    if ".." in PurePath(path).parts:
        return "has a '..' part, which data paths may not have"
    return None


def confine(path: str, root: Path, *, loc: Loc, directory: bool = False) -> Path:
    """``path`` resolved to a file inside ``root`` (relative paths resolve against it): a file
    there, or one a job may create, whose temporary file then lands inside ``root`` too; with
    ``directory``, a directory there may do too (a layout that reads a set of files).

    Raises:
        InvalidRequestError: the path is empty, has a NUL byte, a name too long or a ``..``
            part; it (or a symlink on the way) leads outside ``root`` or to ``root`` itself;
            it names a directory (unless ``directory``), or a folder on the way is a file. The
            message names the path as given, never the server's.
    """
    problem = _path_problem(path)
    if problem is None:
        base = root.resolve()
        try:
            resolved = (base / path).resolve()
            problem = _placement_problem(resolved, base, directory=directory)
        except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop (Python 3.11)
            problem = f"cannot be resolved ({type(e).__name__})"
    if problem is not None:
        raise InvalidRequestError(f"data path {path!r} {problem}", loc=loc)
    return resolved


def _placement_problem(resolved: Path, base: Path, *, directory: bool) -> str | None:
    if resolved == base:
        return "is the data root itself, not a file in it"
    if not resolved.is_relative_to(base):
        return "is outside the data root"
    if resolved.is_dir() and not directory:
        return "is a directory, not a file (only layouts that read a set of files take one)"
    folder = resolved.parent
    while folder != base and not folder.exists():
        folder = folder.parent
    if folder != base and not folder.is_dir():
        return f"goes through {folder.relative_to(base).as_posix()!r}, which is a file"
    return None


def shown_path(path: str, root: Path) -> str:
    """A stored data path as a client may see it: relative to the data root (jobs store them
    so; jobs queued by earlier versions stored absolute ones); just the file name if it is no
    longer inside the root."""
    stored, base = Path(path), root.resolve()
    if not stored.is_absolute():
        return stored.as_posix()
    return stored.relative_to(base).as_posix() if stored.is_relative_to(base) else stored.name


def public_spec(stored: Mapping[str, Any], root: Path) -> dict[str, Any]:
    """A job's stored spec as the API shows it: data path and checkpoint relative to the data
    root."""
    spec = deep_merge(stored, {"data": {"path": shown_path(stored["data"]["path"], root)}})
    checkpoint = stored["model"].get("checkpoint")
    if checkpoint is not None:
        spec = deep_merge(spec, {"model": {"checkpoint": shown_path(checkpoint, root)}})
    return spec


def submitted_spec(request: SearchCreate, settings: Settings) -> SearchSpec:
    """The spec of a submission, validated, with its data path (and a user model's checkpoint)
    confined to the data root, its sizes within the server's limits, and a user model's factory
    in the server's allow-list.

    Raises:
        InvalidRequestError: an unknown space, a bad override, a bad path, a size over a limit,
            or a factory whose module is not allow-listed; ``loc`` names the field.
    """
    where = _locator(request)
    if isinstance(request, InlineSearchCreate):
        spec = request.spec
    else:
        spec = _bundled_with_overrides(request.space, request.overrides or {},
                                       settings.search_spaces, where)
    _check_limits(spec, settings, where)
    path = confine(spec.data.path, settings.data_root, loc=where("data", "path"),
                   directory=spec.data.layout in DIRECTORY_LAYOUTS)
    update: dict[str, Any] = {"data": spec.data.model_copy(
        update={"path": _under_root(path, settings)})}
    if isinstance(spec.model, FactoryConfig):
        update["model"] = _allowed_model(spec.model, settings, where)
    return spec.model_copy(update=update)


def _allowed_model(model: FactoryConfig, settings: Settings, where: Locator) -> FactoryConfig:
    """A user model a request may run: its factory's module allow-listed (importing a module a
    request names is running code of the request's choice), its checkpoint in the data root."""
    module = model.module_name
    if not any(module == allowed or module.startswith(f"{allowed}.")
               for allowed in settings.allowed_factories):
        allowed = sorted(settings.allowed_factories) or "none (AUTOQ_ALLOWED_FACTORIES is empty)"
        raise InvalidRequestError(f"factory module {module!r} is not allowed on this server; "
                                  f"allowed: {allowed}", loc=where("model", "factory"))
    if model.checkpoint is None:
        return model
    checkpoint = confine(model.checkpoint, settings.data_root,
                         loc=where("model", "checkpoint"))
    return model.model_copy(update={"checkpoint": _under_root(checkpoint, settings)})


def _under_root(confined: Path, settings: Settings) -> str:
    """A confined path as a job stores it: relative to the data root, so neither the job nor
    its study names a server path (the worker resolves it under its own data root)."""
    return confined.relative_to(settings.data_root.resolve()).as_posix()


def _bundled_with_overrides(name: str, overrides: dict[str, Any], directory: Path,
                            where: Locator) -> SearchSpec:
    files = bundled_spaces(directory)
    if name not in files:
        raise InvalidRequestError(f"no bundled search space {name!r}; bundled: {sorted(files)}",
                                  loc=("body", "space"))
    base = yaml.safe_load(files[name].read_text())
    try:
        return SearchSpec.model_validate(deep_merge(base, overrides), strict=True)
    except ValidationError as e:
        errors = validation_errors(e, ())
        for item in errors:
            item["loc"] = list(where(*item["loc"]))
        raise InvalidRequestError(errors[0]["msg"], errors=errors) from e


def _limited_values(spec: SearchSpec, settings: Settings
                    ) -> Iterator[tuple[tuple[str, ...], float, float, str]]:
    """``(field, value, limit, variable)`` of every value of ``spec`` a server limit bounds."""
    recipe = spec.data.generate
    if recipe is not None and spec.data.pde is not None:  # generating needs a pde
        yield (("data", "generate", "samples"), recipe.samples, settings.limit_samples,
               "AUTOQ_LIMIT_SAMPLES")
        # An omitted resolution is the public data set's, and that is what gets generated.
        resolution = recipe.resolution or PDES[spec.data.pde].default_resolution
        yield (("data", "generate", "resolution"), resolution, settings.limit_resolution,
               "AUTOQ_LIMIT_RESOLUTION")
        if recipe.frames is not None:
            yield (("data", "generate", "frames"), recipe.frames, settings.limit_frames,
                   "AUTOQ_LIMIT_FRAMES")
    yield (("train", "epochs"), spec.train.epochs, settings.limit_train_epochs,
           "AUTOQ_LIMIT_TRAIN_EPOCHS")
    if spec.train.rescale_epochs is not None:
        yield (("train", "rescale_epochs"), spec.train.rescale_epochs,
               settings.limit_train_epochs, "AUTOQ_LIMIT_TRAIN_EPOCHS")
    if isinstance(spec.model, FactoryConfig):
        yield (("model", "finetune_epochs"), spec.model.finetune_epochs,
               settings.limit_train_epochs, "AUTOQ_LIMIT_TRAIN_EPOCHS")
    yield ("qat", "epochs"), spec.qat.epochs, settings.limit_qat_epochs, "AUTOQ_LIMIT_QAT_EPOCHS"
    if spec.search.timeout is not None:
        yield (("search", "timeout"), spec.search.timeout, settings.limit_job_seconds,
               "AUTOQ_LIMIT_JOB_SECONDS")


def _check_limits(spec: SearchSpec, settings: Settings, where: Locator) -> None:
    """Refuse every value of ``spec`` above the server's limit for it.

    Raises:
        InvalidRequestError: one ``detail`` entry per value over its limit, naming the field,
            the limit and its setting.
    """
    errors = [_over_limit(where(*field), value, limit, variable)
              for field, value, limit, variable in _limited_values(spec, settings)
              if value > limit]
    if errors:
        raise InvalidRequestError(errors[0]["msg"], errors=errors)


def _over_limit(loc: Loc, value: float, limit: float, variable: str) -> dict[str, Any]:
    return error_item(loc, f"at most {limit} on this server ({variable}), got {value}",
                      "limit_exceeded")


def trial_budget(request: SearchCreate, spec: SearchSpec, settings: Settings) -> int:
    """The job's trial budget: the body's ``trials``, else the spec's; at most the limit.

    Raises:
        InvalidRequestError: the budget exceeds ``settings.limit_trials``; ``loc`` names the
            field it came from.
    """
    loc: Loc
    if request.trials is not None:
        budget, loc = request.trials, ("body", "trials")
    else:
        budget, loc = spec.search.trials, _locator(request)("search", "trials")
    if budget > settings.limit_trials:
        error = _over_limit(loc, budget, settings.limit_trials, "AUTOQ_LIMIT_TRIALS")
        raise InvalidRequestError(error["msg"], errors=[error])
    return budget
