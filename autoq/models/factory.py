"""The user's own model as an autoq network: built by their factory, checked, its layers found.

A :class:`~autoq.models.config.FactoryConfig` names a callable (``"package.module:callable"``)
that returns an ``nn.Module`` mapping ``(batch, input_steps·fields, *space)`` to ``(batch,
target_steps·fields, *space)`` in physical units. :class:`FactoryNetwork` holds that module as
``module`` (so its layers are ``module.<path>``), adapts a channels-last module, checks the shape
contract with one forward pass, and finds the first and last matrix-multiplication layers by the
order they run in (the paper keeps those two in float), unless the config names them.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autoq.errors import SpecError
from autoq.models.config import FactoryConfig

PROBE_POINTS = 32
"""Grid points per axis of the contract check when the data's grid is not known."""


def load_factory(config: FactoryConfig) -> Callable[..., Any]:
    """The callable ``config.factory`` names; a SpecError names the field and the cause."""
    module_name, _, attribute = config.factory.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise SpecError(f"model.factory: cannot import {module_name!r} "
                        f"({type(e).__name__}: {e})") from e
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise SpecError(f"model.factory: module {module_name!r} has no attribute "
                            f"{attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise SpecError(f"model.factory: {config.factory} is a {type(target).__name__}, not a "
                        f"callable that builds a torch.nn.Module")
    return target


def build_user_module(config: FactoryConfig) -> nn.Module:
    """Call the factory with the config's kwargs; errors name ``model.factory``."""
    factory = load_factory(config)
    try:
        module = factory(**config.kwargs)
    except Exception as e:
        raise SpecError(f"model.factory: {config.factory}(**{config.kwargs}) raised "
                        f"{type(e).__name__}: {e}") from e
    if not isinstance(module, nn.Module):
        raise SpecError(f"model.factory: {config.factory} returned a {type(module).__name__}, "
                        f"not a torch.nn.Module")
    return module


class FactoryNetwork(nn.Module):
    """A user's module as autoq's network.

    Args:
        config: the factory, its kwargs and how to adapt the module.
        spatial_dims: spatial axes of the data.
        in_channels: ``input_steps · fields`` (or the coefficient channels).
        out_channels: ``target_steps · fields``.
        grid: the spatial shape of the contract check (default :data:`PROBE_POINTS` per axis).
        module: an already built module to use (a deep copy is taken) instead of calling the
            factory: the Python API's model instances.

    Attributes:
        module: the user's module.
        first_layer, last_layer: ``named_modules()`` paths of the first and last
            matrix-multiplication layers, as autoq's architectures name theirs.
        physical_units: the module works in physical units: the solver around it adds no
            normalisation and no residual.
    """

    physical_units = True

    def __init__(self, config: FactoryConfig, *, spatial_dims: int, in_channels: int,
                 out_channels: int, grid: tuple[int, ...] | None = None,
                 module: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        self.module = copy.deepcopy(module) if module is not None else build_user_module(config)
        self.channels_last = config.channels_last
        probe = torch.randn(1, in_channels, *(grid or (PROBE_POINTS,) * spatial_dims))
        order = self._check_contract(probe, out_channels)
        self.first_layer = self._layer("first_layer", config.first_layer, order[:1])
        self.last_layer = self._layer("last_layer", config.last_layer, order[-1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, *space)`` → ``(batch, out_channels, *space)``."""
        if not self.channels_last:
            return self.module(x)
        out = self.module(x.movedim(1, -1))
        return out.movedim(-1, 1)

    def _check_contract(self, probe: torch.Tensor, out_channels: int) -> list[str]:
        """Run the module once; returns the quantizable layers in the order they ran."""
        from autoq.precision import QUANTIZABLE_TYPES

        order: list[str] = []
        hooks = [layer.register_forward_hook(lambda *_, name=name: order.append(name))
                 for name, layer in self.named_modules() if isinstance(layer, QUANTIZABLE_TYPES)]
        expected = (1, out_channels, *probe.shape[2:])
        try:
            with torch.no_grad():
                out = self(probe)
        except Exception as e:
            raise SpecError(f"model: a forward pass on {tuple(probe.shape)} = (batch, "
                            f"input_steps·fields, *space) raised {type(e).__name__}: {e}") from e
        finally:
            for hook in hooks:
                hook.remove()
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise SpecError(f"model: the model maps {tuple(probe.shape)} to {got}; expected "
                            f"{expected} = (batch, target_steps·fields, *space)")
        if not order:
            raise SpecError(f"model: {type(self.module).__name__} ran no quantizable layer "
                            f"(Linear, Conv*, ConvTranspose*, spectral convolutions)")
        return order

    def _layer(self, field: str, named: str | None, ran: list[str]) -> str:
        if named is None:
            return ran[0]
        path = f"module.{named}"
        if path not in dict(self.named_modules()):
            raise SpecError(f"model.{field}: {type(self.module).__name__} has no layer "
                            f"{named!r}")
        return path


def _factorized_tensors(module: nn.Module) -> dict[str, Any]:
    """tensorly-torch ``FactorizedTensor`` children by path (neuraloperator's spectral weights
    are, dense or factorized), found by their interface so tensorly-torch is not imported."""
    return {name: child for name, child in module.named_modules()
            if callable(getattr(child, "to_tensor", None))
            and callable(getattr(child, "init_from_tensor", None))}


def refactorize(target: nn.Module, source: nn.Module) -> None:
    """Give ``target`` the weights of ``source``, the same model built with another factorization
    of its spectral weights (another rank, or dense): each factorized tensor is rebuilt dense
    from ``source`` and factorized at ``target``'s rank (the truncation loses what the rank
    cannot hold: fine-tuning recovers it); every other parameter and buffer is copied. A
    SpecError names ``model.checkpoint_kwargs`` and the first entry that does not fit."""
    factorized = _factorized_tensors(target)
    sources = _factorized_tensors(source)
    with torch.no_grad():
        for name, tensor in factorized.items():
            if name not in sources:
                raise SpecError(f"model.checkpoint_kwargs: {name!r} is a factorized tensor in "
                                f"the model but not in the checkpoint's")
            dense = sources[name].to_tensor().detach()
            shape = tuple(tensor.to_tensor().shape)
            if tuple(dense.shape) != shape:
                raise SpecError(f"model.checkpoint_kwargs: {name!r} is {tuple(dense.shape)} in "
                                f"the checkpoint's model, {shape} in the model")
            tensor.init_from_tensor(dense)
    prefixes = tuple(f"{name}." for name in factorized)
    state = target.state_dict()
    given = source.state_dict()
    for key, value in state.items():
        if key.startswith(prefixes) or not isinstance(value, torch.Tensor):
            continue
        if key not in given or given[key].shape != value.shape:
            found = "missing" if key not in given else f"{tuple(given[key].shape)}"
            raise SpecError(f"model.checkpoint_kwargs: {key!r} of the model "
                            f"{tuple(value.shape)} does not fit the checkpoint's ({found})")
        state[key] = given[key]
    target.load_state_dict(state)


_REGISTERED: dict[str, nn.Module] = {}
"""Module instances handed to the Python API in this process, by content hash."""


def tensor_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module.state_dict()`` without the entries that are not tensors (neuraloperator adds its
    constructor arguments as ``_metadata``), so that ``torch.load(weights_only=True)`` reads it
    back; ``load_state_dict`` does not need them."""
    return {name: value for name, value in module.state_dict().items()
            if isinstance(value, torch.Tensor)}


def register_module(module: nn.Module, *, folder: Path) -> FactoryConfig:
    """A factory config for a module instance: the instance is kept in this process (its
    factory is :func:`registered_module`) and its weights are written to ``folder`` as the
    checkpoint, so float models start from them. The config's key is a content hash of the
    module's class and weights: the same module registers once, a changed one anew."""
    state = {name: tensor.detach().cpu() for name, tensor in tensor_state(module).items()}
    sha = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    for name, tensor in sorted(state.items()):
        sha.update(name.encode())
        sha.update(tensor.contiguous().numpy().tobytes())
    key = sha.hexdigest()[:32]
    _REGISTERED[key] = module
    checkpoint = folder / f"{key}.pt"
    if not checkpoint.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        temporary = checkpoint.with_name(f".{checkpoint.name}.{uuid.uuid4().hex}.tmp")
        torch.save(state, temporary)
        os.replace(temporary, checkpoint)
    return FactoryConfig(factory=f"{__name__}:registered_module", kwargs={"key": key},
                         checkpoint=str(checkpoint))


def registered_module(key: str) -> nn.Module:
    """A fresh copy of the module instance registered as ``key`` in this process."""
    if key not in _REGISTERED:
        raise SpecError(f"model.factory: the module instance {key} was handed to autoq.search in "
                        f"another Python process; pass it again, or give a factory path "
                        f"(\"package.module:callable\") to resume the search anywhere")
    return copy.deepcopy(_REGISTERED[key])


def factory_config_of(factory: Callable[..., Any], **kwargs: Any) -> FactoryConfig:
    """The config of a factory callable (a class or a function defined at module level)."""
    module = getattr(factory, "__module__", None) or ""
    qualname = getattr(factory, "__qualname__", None) or ""
    unreachable = SpecError(f"model: {factory!r} cannot be imported back by name; define it at "
                            f"the top level of a module, or pass a built module instance")
    if not module or not qualname or "<" in qualname:
        raise unreachable
    config = FactoryConfig(factory=f"{module}:{qualname}", kwargs=kwargs)
    if load_factory(config) is not factory:
        raise unreachable
    return config
