"""From a submitted body to the spec a worker runs: bundled spaces, overrides, data paths.

A body names a bundled space (``search_spaces/<name>.yaml``) with optional overrides, or carries
a whole spec. Either way the result is a validated :class:`~autoq.search.SearchSpec` whose data
path lies inside the configured data root, and a trial budget within the service's cap.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

import yaml
from pydantic import ValidationError

from autoq.models.config import FactoryConfig
from autoq.search import SearchSpec, bundled_spaces, load_spec
from service.config import Settings
from service.errors import InvalidRequestError, Loc, validation_errors
from service.schemas import InlineSearchCreate, SearchCreate


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


def confine(path: str, root: Path, *, loc: Loc) -> Path:
    """``path`` resolved inside ``root`` (relative paths resolve against it).

    Raises:
        InvalidRequestError: the path has a ``..`` part, or it (or a symlink on the way) leads
            outside ``root``.
    """
    if ".." in PurePath(path).parts:
        raise InvalidRequestError(f"{path!r}: '..' is not allowed in data paths", loc=loc)
    base = root.resolve()
    resolved = (base / path).resolve()
    if not resolved.is_relative_to(base):
        raise InvalidRequestError(f"{path!r} is outside the data root {base}", loc=loc)
    return resolved


def submitted_spec(request: SearchCreate, settings: Settings) -> SearchSpec:
    """The spec of a submission, validated, with its data path (and a user model's checkpoint)
    confined to the data root, and a user model's factory in the server's allow-list.

    Raises:
        InvalidRequestError: an unknown space, a bad override, a path outside the data root, or
            a factory whose module is not allow-listed; ``loc`` names the field.
    """
    if isinstance(request, InlineSearchCreate):
        spec, prefix = request.spec, ("body", "spec")
    else:
        spec = _bundled_with_overrides(request.space, request.overrides or {},
                                       settings.search_spaces)
        prefix = ("body", "overrides")
    _require_finite(spec.model_dump(mode="python"), prefix)
    path = confine(spec.data.path, settings.data_root, loc=(*prefix, "data", "path"))
    update: dict[str, Any] = {"data": spec.data.model_copy(update={"path": str(path)})}
    if isinstance(spec.model, FactoryConfig):
        update["model"] = _allowed_model(spec.model, settings, loc=(*prefix, "model"))
    return spec.model_copy(update=update)


def _allowed_model(model: FactoryConfig, settings: Settings, *, loc: Loc) -> FactoryConfig:
    """A user model a request may run: its factory's module allow-listed (importing a module a
    request names is running code of the request's choice), its checkpoint in the data root."""
    module = model.module_name
    if not any(module == allowed or module.startswith(f"{allowed}.")
               for allowed in settings.allowed_factories):
        allowed = sorted(settings.allowed_factories) or "none (AUTOQ_ALLOWED_FACTORIES is empty)"
        raise InvalidRequestError(f"factory module {module!r} is not allowed on this server; "
                                  f"allowed: {allowed}", loc=(*loc, "factory"))
    if model.checkpoint is None:
        return model
    checkpoint = confine(model.checkpoint, settings.data_root, loc=(*loc, "checkpoint"))
    return model.model_copy(update={"checkpoint": str(checkpoint)})


def _bundled_with_overrides(name: str, overrides: dict[str, Any], directory: Path
                            ) -> SearchSpec:
    files = bundled_spaces(directory)
    if name not in files:
        raise InvalidRequestError(f"no bundled search space {name!r}; bundled: {sorted(files)}",
                             loc=("body", "space"))
    base = yaml.safe_load(files[name].read_text())
    try:
        return SearchSpec.model_validate(deep_merge(base, overrides))
    except ValidationError as e:
        errors = validation_errors(e, ())
        for item in errors:
            source = "overrides" if _has_key(overrides, item["loc"]) else "space"
            item["loc"] = ["body", source, *item["loc"]]
        raise InvalidRequestError(errors[0]["msg"], errors=errors) from e


def _require_finite(payload: dict[str, Any], prefix: Loc) -> None:
    # JSON has no infinity or NaN; Python's parser accepts them, and nothing downstream should.
    try:
        json.dumps(payload, allow_nan=False)
    except ValueError as e:
        raise InvalidRequestError("numbers must be finite", loc=prefix) from e


def trial_budget(request: SearchCreate, spec: SearchSpec, settings: Settings) -> int:
    """The job's trial budget: the body's ``trials``, else the spec's; at most the cap.

    Raises:
        InvalidRequestError: the budget exceeds ``settings.max_trials``; ``loc`` names the field it
            came from.
    """
    loc: Loc
    if request.trials is not None:
        budget, loc = request.trials, ("body", "trials")
    else:
        budget = spec.search.trials
        loc = ("body", "spec" if isinstance(request, InlineSearchCreate) else "overrides",
               "search", "trials")
    if budget > settings.max_trials:
        raise InvalidRequestError(f"at most {settings.max_trials} trials per search, got {budget}",
                             loc=loc)
    return budget
