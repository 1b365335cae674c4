"""Operation counts of one network forward pass on one grid: DeepSpeed's flops profiler for what it
counts right, analytic counts for what it does not (see :mod:`autoq.cost._counts`).

The profiler's per-module ``__flops__`` / ``__macs__`` hold the work of the functionals a module
calls itself, not its children's, so every module's entry is its own work. DeepSpeed counts
``F.linear`` and ``F.conv*`` (MACs and FLOPs), activations, norms and pooling (FLOPs, no MACs);
it counts ``torch.einsum`` as FLOPs without MACs and never sees ``torch.fft``, so spectral
convolutions are counted here; matrix products of two activations are counted here too, from the
operand shapes, so the count does not depend on which matmul function a (quantized) layer calls.
DeepSpeed counts a convolution's bias (one addition per output) but not a linear layer's; the
linear layer's is added here so that a 1×1 convolution and the equivalent ``nn.Linear`` cost the
same. Operations written as Python operators (``x + y``, ``x / n``) are not counted, as in
DeepSpeed.

Profiling monkey-patches ``torch.nn.functional`` and ``torch`` globally, so it runs under a lock
and always ends with DeepSpeed's ``end_profile``, which restores the originals. Results are cached
per (architecture, grid): pricing thousands of trial configs at one scale profiles once.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from autoq.cost._counts import (
    Operations,
    fft_operations,
    matmul_operations,
    spectral_mixing_operations,
)
from autoq.errors import SpecError
from autoq.models.layers import MatMul, SpectralConv
from autoq.precision import quantizable_layers

FFT_SUFFIX = ".fft"
IFFT_SUFFIX = ".ifft"
ROOT_NAME = "(root)"
"""The entry name of work the top-level module does itself (its ``named_modules()`` path is
empty)."""


@dataclass(frozen=True)
class LayerOperations:
    """One entry of a network's counts.

    Attributes:
        name: the ``named_modules()`` path; a spectral convolution's transforms are
            ``<path>.fft`` and ``<path>.ifft``.
        operations: multiplications and additions per forward pass.
        quantizable: a matrix-multiplication layer a trial config gives bits to.
    """

    name: str
    operations: Operations
    quantizable: bool


@dataclass(frozen=True)
class NetworkOperations:
    """A network's counts on one grid, batch size 1.

    Attributes:
        layers: every quantizable layer (even if it did no work), each spectral convolution's
            transforms right after it, and every other module that did counted work (activations,
            norms, pooling), in module order.
        out_channels: channels of the network's output (resized back when the scale is below 1).
    """

    layers: tuple[LayerOperations, ...]
    out_channels: int

    @property
    def quantizable(self) -> frozenset[str]:
        return frozenset(layer.name for layer in self.layers if layer.quantizable)


_LOCK = threading.Lock()
_BY_ARCHITECTURE: dict[Hashable, NetworkOperations] = {}
_BY_MODULE: weakref.WeakKeyDictionary[nn.Module, dict[Hashable, NetworkOperations]] = (
    weakref.WeakKeyDictionary()
)


def network_operations(
    network: nn.Module, *, shape: tuple[int, ...], in_channels: int
) -> NetworkOperations:
    """Count a network's operations on a ``(1, in_channels, *shape)`` input, cached.

    Models from :func:`~autoq.models.build_model` are cached by their class, config and channels,
    so a rebuilt model of the same architecture is not profiled again; other modules by identity.

    Raises:
        SpecError: the network does not run on that input.
    """
    grid = (tuple(shape), in_channels)
    architecture = _architecture_key(network)
    with _LOCK:
        if architecture is not None:
            cache = _BY_ARCHITECTURE
            key: Hashable = (architecture, grid)
        else:
            cache = _BY_MODULE.setdefault(network, {})
            key = grid
        if key not in cache:
            cache[key] = _profile(network, shape=tuple(shape), in_channels=in_channels)
        return cache[key]


def clear_cache() -> None:
    """Forget every cached count (for tests, and after changing a module in place)."""
    with _LOCK:
        _BY_ARCHITECTURE.clear()
        _BY_MODULE.clear()


def _architecture_key(network: nn.Module) -> Hashable | None:
    """``(class, config, channels)`` for a registry model, whose structure its config fixes."""
    config = getattr(network, "config", None)
    if config is None:
        return None
    key = (
        type(network).__module__,
        type(network).__qualname__,
        config,
        getattr(network, "spatial_dims", None),
        getattr(network, "in_channels", None),
        getattr(network, "out_channels", None),
    )
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _profile(network: nn.Module, *, shape: tuple[int, ...], in_channels: int) -> NetworkOperations:
    # DeepSpeed is heavy to import and warns about its accelerator: only when counting.
    from deepspeed.profiling.flops_profiler import profiler as ds_profiler

    analytic: dict[str, Operations] = {}
    handles = [
        module.register_forward_hook(_recorder(name, analytic))
        for name, module in network.named_modules()
        if isinstance(module, SpectralConv | MatMul)
    ]
    training = {module: module.training for module in network.modules()}
    profiler = ds_profiler.FlopsProfiler(network)
    try:
        network.eval()  # a training-mode norm would update running statistics
        parameter = next(network.parameters(), None)
        x = torch.zeros(
            (1, in_channels, *shape),
            dtype=parameter.dtype if parameter is not None else None,
            device=parameter.device if parameter is not None else None,
        )
        profiler.start_profile()
        try:
            with torch.no_grad():
                output = network(x)
        except RuntimeError as e:
            raise SpecError(
                f"{type(network).__name__} does not run on an input of shape {tuple(x.shape)} "
                f"(in_channels={in_channels}, grid {shape}): {e}"
            ) from e
        profiled = {
            name: (int(module.__flops__), int(module.__macs__), module)
            for name, module in network.named_modules()
        }
    finally:
        profiler.end_profile()
        # A forward that raised leaves DeepSpeed's per-module stacks half-filled.
        ds_profiler.module_flop_count.clear()
        ds_profiler.module_mac_count.clear()
        for handle in handles:
            handle.remove()
        for module, mode in training.items():
            module.training = mode
    return NetworkOperations(
        layers=tuple(_entries(profiled, analytic, set(quantizable_layers(network)))),
        out_channels=int(output.shape[1]),
    )


def _recorder(name: str, analytic: dict[str, Operations]) -> Callable[..., None]:
    """A forward hook adding a spectral convolution's or a matrix product's analytic counts."""

    def add(entry: str, operations: Operations) -> None:
        analytic[entry] = analytic.get(entry, Operations(0, 0)) + operations

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        if isinstance(module, SpectralConv):
            x = inputs[0]
            batch, spatial = x.shape[0], tuple(x.shape[2:])
            add(name, spectral_mixing_operations(
                in_channels=x.shape[1], out_channels=output.shape[1],
                kept=module.kept_modes(spatial), batch=batch,
            ))
            add(name + FFT_SUFFIX, fft_operations(spatial, batch * x.shape[1]))
            add(name + IFFT_SUFFIX, fft_operations(spatial, batch * output.shape[1]))
        else:
            a, b = inputs[0].shape, inputs[1].shape
            # torch.matmul promotes a 1-D left operand to a row, a 1-D right one to a column.
            a = a if len(a) > 1 else (1, *a)
            b = b if len(b) > 1 else (*b, 1)
            batch = math.prod(torch.broadcast_shapes(a[:-2], b[:-2]))
            add(name, matmul_operations(batch=batch, n=a[-2], k=a[-1], m=b[-1]))

    return hook


def _entries(
    profiled: dict[str, tuple[int, int, nn.Module]],
    analytic: dict[str, Operations],
    quantizable: set[str],
) -> list[LayerOperations]:
    entries = []
    for name, (flops, macs, module) in profiled.items():
        if isinstance(module, SpectralConv | MatMul):
            entries.append(LayerOperations(name, analytic.get(name, Operations(0, 0)), True))
            entries += [
                LayerOperations(name + suffix, analytic[name + suffix], False)
                for suffix in (FFT_SUFFIX, IFFT_SUFFIX)
                if name + suffix in analytic
            ]
            continue
        additions = flops - macs
        if isinstance(module, nn.Linear) and module.bias is not None:
            additions += macs // module.in_features  # one per output element
        if name in quantizable or flops:
            operations = Operations(macs, additions)
            entries.append(LayerOperations(name or ROOT_NAME, operations, name in quantizable))
    return entries
