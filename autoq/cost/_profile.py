"""Operation counts of one network forward pass on one grid: DeepSpeed's flops profiler for what it
counts right, analytic counts for what it does not (see :mod:`autoq.cost._counts`).

The profiler's per-module ``__flops__`` / ``__macs__`` hold the work of the functionals a module
calls itself, not its children's, so every module's entry is its own work. DeepSpeed counts
``F.linear`` and ``F.conv*`` (MACs and FLOPs), activations, norms and pooling (FLOPs, no MACs);
it counts ``torch.einsum`` as FLOPs without MACs and never sees ``torch.fft``. So, during the same
forward pass:

- a spectral convolution's channel mixing is counted from the modes it keeps on the grid;
- a layer of an optional library (:func:`autoq.precision.optional_types`: neuraloperator's
  spectral convolution) is counted from the contractions it runs: every ``torch.einsum``,
  ``tensordot``, ``matmul``, ``mm`` and ``bmm`` call inside it, with its operands
  (:mod:`autoq.cost._contractions`), bypassing DeepSpeed's patches of them;
- every ``torch.fft`` call is recorded with the shapes it ran on and charged to the innermost
  module running, as ``<module>.fft`` (forward transforms) and ``<module>.ifft`` (inverse), so
  the count follows whatever transforms the layer really does (e.g. truncated axis by axis);
- a spectral convolution's transforms are also counted as the DFT matrix products of its ``dft``
  transform on the same grid (:func:`~autoq.cost._counts.dft_operations`), kept beside the
  entries (:attr:`NetworkOperations.dft`) for configs that run it so;
- a product of two activations is counted from its operand shapes, independent of which matmul
  function a (quantized) layer calls;
- a module that multiplies by learned weights autoq does not quantize
  (:func:`autoq.precision.unquantized_weight_modules`: ``nn.MultiheadAttention``, ``nn.Bilinear``,
  a custom module with its own weight matrix) is an entry of its own, float work, always listed:
  its products (and the additions of its biases) are counted at the aten level as they run
  (:mod:`autoq.cost._aten`), and what DeepSpeed attributed to it for the product functions it
  patches (``F.linear``, ``F.conv*``,
  ``torch.matmul``/``mm``/``bmm``/``addmm``/``baddbmm``/``einsum``, ``@``,
  ``F.scaled_dot_product_attention``) is taken out of its DeepSpeed count, so nothing is counted
  twice; the rest of that count (softmax, activations: additions) stays. Both counts charge a call
  to the innermost module running, so a child's work stays the child's. A recurrent layer
  (``nn.RNN``/``LSTM``/``GRU`` and their cells, which DeepSpeed prices with a formula of its own
  and torch runs in one native kernel) is counted analytically: ``gates · (inputs + hidden)`` MACs
  per step, layer and direction, plus its two biases. The first profile of a network with such
  modules emits one :class:`~autoq.precision.UnquantizedWeightWarning` naming them.

DeepSpeed counts a convolution's bias (one addition per output) but not a linear layer's; the
linear layer's is added here, so that a 1×1 convolution and the equivalent ``nn.Linear`` cost the
same. Operations written as Python operators (``x + y``, ``x / n``) are not counted, as in
DeepSpeed.

Profiling monkey-patches ``torch.nn.functional``, ``torch`` and ``torch.fft`` globally and turns
torch's attention fast path off (``torch.backends.mha``: ``nn.MultiheadAttention`` and
``nn.TransformerEncoderLayer`` would otherwise run one native kernel nothing can count), so it runs
under a lock and always restores the originals (DeepSpeed's ``end_profile`` for its patches). A
thread running a model meanwhile would see the patches: price configs before training starts, as
the search does. Results are cached per (architecture, grid), so pricing thousands of trial
configs at one scale profiles once.
"""

from __future__ import annotations

import contextlib
import math
import threading
import weakref
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from autoq.cost._aten import ProductCounter, decomposed_attention, parameter_storages
from autoq.cost._contractions import CONTRACTIONS, call_operations
from autoq.cost._counts import (
    Operations,
    dft_operations,
    fft_operations,
    matmul_operations,
    spectral_mixing_operations,
)
from autoq.device import pin_deepspeed_accelerator
from autoq.errors import SpecError
from autoq.models.layers import MatMul, SpectralConv
from autoq.precision import (
    optional_types,
    quantizable_layers,
    unquantized_weight_modules,
    warn_unquantized,
)

FFT_SUFFIX = ".fft"
IFFT_SUFFIX = ".ifft"
ROOT_NAME = "(root)"
"""The entry name of work the top-level module does itself (its ``named_modules()`` path is
empty)."""

_FFT_FUNCTIONS = (
    "fft", "ifft", "rfft", "irfft", "fft2", "ifft2", "rfft2", "irfft2", "fftn", "ifftn", "rfftn",
    "irfftn",
)  # fmt: skip

_DEEPSPEED_PRODUCTS: tuple[tuple[Any, str], ...] = (
    (F, "linear"), (F, "conv1d"), (F, "conv2d"), (F, "conv3d"), (F, "conv_transpose1d"),
    (F, "conv_transpose2d"), (F, "conv_transpose3d"), (F, "scaled_dot_product_attention"),
    (torch, "matmul"), (torch, "mm"), (torch, "bmm"), (torch, "addmm"), (torch, "baddbmm"),
    (torch, "einsum"), (torch.Tensor, "matmul"), (torch.Tensor, "__matmul__"),
    (torch.Tensor, "mm"), (torch.Tensor, "bmm"), (torch.Tensor, "addmm"),
)  # fmt: skip
"""The product functions DeepSpeed patches: what it counts of them inside an unquantized weight
module is replaced by the aten count, one convention whatever path the module takes (DeepSpeed
counts ``einsum`` as FLOPs without MACs, ignores ``F.linear``'s bias and sees no product it does
not patch: ``torch.bilinear``, ``tensordot``, ``mv``...)."""

_RECURRENT_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


@dataclass(frozen=True)
class LayerOperations:
    """One entry of a network's counts.

    Attributes:
        name: the ``named_modules()`` path, or ``<path>.fft`` / ``<path>.ifft`` for the
            transforms a module runs.
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
        layers: every quantizable layer (even if it did no work), every unquantized weight
            module (float work, even if it did none), every other module that did counted work
            (activations, norms, pooling), each followed by its transforms, in module order.
        out_channels: channels of the network's output (resized back when the scale is below 1).
        unquantized: entry names of the unquantized weight modules
            (:func:`autoq.precision.unquantized_weight_modules`), in module order.
        dft: per spectral convolution, its ``(forward, inverse)`` transforms counted as the
            DFT matrix products of its ``dft`` transform, for configs that run it so (its
            entries ``<path>.fft`` / ``<path>.ifft`` count the FFTs).
    """

    layers: tuple[LayerOperations, ...]
    out_channels: int
    unquantized: tuple[str, ...] = ()
    dft: Mapping[str, tuple[Operations, Operations]] = field(default_factory=dict)

    @property
    def quantizable(self) -> frozenset[str]:
        return frozenset(layer.name for layer in self.layers if layer.quantizable)


_LOCK = threading.Lock()
_BY_ARCHITECTURE: dict[Hashable, NetworkOperations] = {}
_BY_MODULE: weakref.WeakKeyDictionary[nn.Module, dict[Hashable, NetworkOperations]] = (
    weakref.WeakKeyDictionary()
)
_WARNED: weakref.WeakSet[nn.Module] = weakref.WeakSet()
"""Networks whose unquantized weight modules were warned about: once per network."""


def network_operations(
    network: nn.Module, *, shape: tuple[int, ...], in_channels: int
) -> NetworkOperations:
    """Count a network's operations on a ``(1, in_channels, *shape)`` input, cached.

    Models from :func:`~autoq.models.build_model` are cached by their class, config and channels,
    so a rebuilt model of the same architecture is not profiled again; other modules by identity.
    The first profile of a network that has unquantized weight modules emits one
    :class:`~autoq.precision.UnquantizedWeightWarning` naming them (not one per grid or trial).

    Raises:
        SpecError: the network does not run on that input.
    """
    grid = (tuple(shape), in_channels)
    architecture = _architecture_key(network)
    warn = False
    with _LOCK:
        if architecture is not None:
            cache = _BY_ARCHITECTURE
            key: Hashable = (architecture, grid)
        else:
            cache = _BY_MODULE.setdefault(network, {})
            key = grid
        if key not in cache:
            cache[key] = _profile(network, shape=tuple(shape), in_channels=in_channels)
            warn = bool(cache[key].unquantized) and network not in _WARNED
            if warn:
                _WARNED.add(network)
        counts = cache[key]
    if warn:
        warn_unquantized(network, stacklevel=3)  # the caller of bitops
    return counts


def clear_cache() -> None:
    """Forget every cached count (for tests, and after changing a module in place)."""
    with _LOCK:
        _BY_ARCHITECTURE.clear()
        _BY_MODULE.clear()
        _WARNED.clear()


def deepspeed_flops(network: nn.Module, *, data_shape: tuple[int, ...], in_channels: int) -> int:
    """The FLOPs DeepSpeed's flops profiler reports for one forward pass of ``network`` on a
    ``(1, in_channels, *data_shape)`` input: the measure of the paper's Table 2 (its section 4.2,
    "flops, as taken from deepspeed"), for holding a space's size against the paper's.

    It is DeepSpeed's ``get_total_flops()`` as it stands, nothing added or taken out: two per MAC
    of ``F.linear`` (bias not counted) and ``F.conv*`` (bias counted), one per element for
    activations, pooling and softmax and a few for norms, ``torch.matmul``/``bmm`` two per MAC,
    ``torch.einsum`` as numpy's ``einsum_path`` FLOP count of the operand shapes. It differs from
    autoq's count (:attr:`CostReport.flops <autoq.cost.CostReport.flops>`, the operations that
    :func:`~autoq.cost.bitops` prices) because DeepSpeed does not see ``torch.fft`` (no FFTs), nor
    operators written in Python (residual additions), nor complex arithmetic: an einsum is counted
    from its shapes whatever the dtype, so the one complex einsum of the original FNO code counts
    as one real product, while autoq's :class:`~autoq.models.layers.SpectralConv` writes the same
    mixing as four real einsums and counts four; and it counts no linear-layer bias and no
    resize around a scaled network. Torch's fused attention fast path, if a module takes it, is
    invisible to it, as it was to the paper.

    Raises:
        SpecError: the network does not run on that input.
    """
    pin_deepspeed_accelerator()
    from deepspeed.profiling.flops_profiler import profiler as ds_profiler

    parameter = next(network.parameters(), None)
    x = torch.zeros(
        (1, in_channels, *data_shape),
        dtype=parameter.dtype if parameter is not None else None,
        device=parameter.device if parameter is not None else None,
    )
    training = {module: module.training for module in network.modules()}
    with _LOCK:  # DeepSpeed patches torch globally, as _profile does
        profiler = ds_profiler.FlopsProfiler(network)
        try:
            network.eval()
            profiler.start_profile()
            with torch.no_grad():
                network(x)
            return int(profiler.get_total_flops())
        except (RuntimeError, AssertionError) as e:
            raise SpecError(
                f"{type(network).__name__} does not run on an input of shape {tuple(x.shape)} "
                f"(in_channels={in_channels}, grid {data_shape}): {e}"
            ) from e
        finally:
            profiler.end_profile()
            ds_profiler.module_flop_count.clear()
            ds_profiler.module_mac_count.clear()
            for module, mode in training.items():
                module.training = mode


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
    # DeepSpeed is heavy to import: only when counting.
    pin_deepspeed_accelerator()
    from deepspeed.profiling.flops_profiler import profiler as ds_profiler

    analytic: dict[str, Operations] = {}
    dft: dict[str, tuple[Operations, Operations]] = {}
    running: list[str] = []  # the modules whose forward is running, innermost last
    contracting = _contracting_layers(network)
    unquantized = unquantized_weight_modules(network)
    modules = dict(network.named_modules())
    recurrent = frozenset(name for name in unquantized
                          if isinstance(modules[name], nn.RNNBase | nn.RNNCellBase))
    aten_counted = frozenset(unquantized) - recurrent
    aten: dict[str, Operations] = {}  # aten-level products of the unquantized weight modules
    biases = {name: parameter_storages(modules[name]) for name in aten_counted}
    deepspeed_products: dict[str, Operations] = {}  # what DeepSpeed counted of the same calls
    # DeepSpeed names a patched function's records by the original's __str__ (taken before it
    # patches them).
    product_names = {getattr(owner, attribute).__str__ for owner, attribute in _DEEPSPEED_PRODUCTS}

    def leave(*_: Any) -> None:
        running.pop()

    def innermost_unquantized() -> str | None:
        return running[-1] if running and running[-1] in aten_counted else None

    handles = []
    for name, module in network.named_modules():
        handles.append(module.register_forward_pre_hook(lambda *_, n=name: running.append(n)))
        handles.append(module.register_forward_hook(leave))
        if isinstance(module, SpectralConv | MatMul):
            handles.append(module.register_forward_hook(_recorder(name, analytic)))
        if isinstance(module, SpectralConv):
            handles.append(module.register_forward_hook(_dft_recorder(name, dft)))
        elif name in recurrent:
            handles.append(module.register_forward_hook(_recurrent_recorder(name, analytic)))
        elif name in aten_counted:
            # Runs before DeepSpeed's own forward hook (registered later), which sums and pops
            # this module's records.
            handles.append(module.register_forward_hook(
                _deepspeed_products_recorder(name, deepspeed_products, product_names,
                                             ds_profiler)))
    training = {module: module.training for module in network.modules()}
    # Taken before DeepSpeed patches them: the contracting layers' calls bypass its counts.
    unpatched = {name: getattr(torch, name) for name in CONTRACTIONS}
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
            with (torch.no_grad(), decomposed_attention(), _counting_ffts(running, analytic),
                  _counting_contractions(running, contracting, analytic, unpatched),
                  ProductCounter(innermost_unquantized, aten, biases) if aten_counted
                  else contextlib.nullcontext()):
                output = network(x)
        except (RuntimeError, AssertionError) as e:  # DeepSpeed asserts on conv input channels
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
    for name in aten_counted:  # the aten count replaces DeepSpeed's count of the products
        counted = deepspeed_products.get(name, Operations(0, 0))
        flops, macs, module = profiled[name]
        profiled[name] = (flops - counted.multiplications - counted.additions,
                          macs - counted.multiplications, module)
        _add(analytic, name, aten.get(name, Operations(0, 0)))
    for name in recurrent:  # DeepSpeed's own formula (FLOPs, no MACs) is replaced
        flops, macs, module = profiled[name]
        profiled[name] = (0, 0, module)
    return NetworkOperations(
        layers=tuple(_entries(profiled, analytic, set(quantizable_layers(network)),
                              analytic_only=contracting, unquantized=frozenset(unquantized))),
        out_channels=int(output.shape[1]),
        unquantized=tuple(name or ROOT_NAME for name in unquantized),
        dft=dft,
    )


def _add(analytic: dict[str, Operations], entry: str, operations: Operations) -> None:
    analytic[entry] = analytic.get(entry, Operations(0, 0)) + operations


def _recorder(name: str, analytic: dict[str, Operations]) -> Callable[..., None]:
    """A forward hook adding a spectral convolution's mixing or a matrix product's counts."""

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        if isinstance(module, SpectralConv):
            x = inputs[0]
            mixing = spectral_mixing_operations(
                in_channels=x.shape[1],
                out_channels=output.shape[1],
                kept=module.kept_modes(tuple(x.shape[2:])),
                batch=x.shape[0],
            )
            _add(analytic, name, mixing)
        else:
            a, b = inputs[0].shape, inputs[1].shape
            # torch.matmul promotes a 1-D left operand to a row, a 1-D right one to a column.
            a = a if len(a) > 1 else (1, *a)
            b = b if len(b) > 1 else (*b, 1)
            batch = math.prod(torch.broadcast_shapes(a[:-2], b[:-2]))
            _add(analytic, name, matmul_operations(batch=batch, n=a[-2], k=a[-1], m=b[-1]))

    return hook


def _dft_recorder(name: str, store: dict[str, tuple[Operations, Operations]]
                  ) -> Callable[..., None]:
    """A forward hook counting a spectral convolution's transforms as DFT matrix products on
    the grid it ran on (:func:`~autoq.cost._counts.dft_operations`)."""

    def hook(module: SpectralConv, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        x = inputs[0]
        spatial = tuple(x.shape[2:])
        kept = module.kept_modes(spatial)
        store[name] = (
            dft_operations(channels=x.shape[1], spatial=spatial, kept=kept, inverse=False,
                           batch=x.shape[0]),
            dft_operations(channels=output.shape[1], spatial=spatial, kept=kept, inverse=True,
                           batch=x.shape[0]))

    return hook


def _deepspeed_products_recorder(
    name: str, store: dict[str, Operations], product_names: set[Any], ds_profiler: Any
) -> Callable[..., None]:
    """A forward hook adding what DeepSpeed counted of the module's own product calls (its
    records on top of DeepSpeed's per-module stack, before DeepSpeed's hook pops them)."""

    def hook(*_: Any) -> None:
        if not ds_profiler.module_flop_count:
            return
        flops = sum(f for n, f in ds_profiler.module_flop_count[-1] if n in product_names)
        macs = sum(m for n, m in ds_profiler.module_mac_count[-1] if n in product_names)
        _add(store, name, Operations(macs, flops - macs))

    return hook


def _recurrent_recorder(name: str, analytic: dict[str, Operations]) -> Callable[..., None]:
    """A forward hook adding a recurrent layer's products (:func:`_recurrent_operations`)."""

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        _add(analytic, name, _recurrent_operations(module, inputs[0]))

    return hook


def _recurrent_operations(module: nn.Module, x: Any) -> Operations:
    """Products of ``nn.RNN``/``LSTM``/``GRU`` (every layer, direction and step) or of one of
    their cells: ``gates · (inputs + hidden)`` MACs per step (plus an LSTM projection's
    ``hidden · proj_size``), each with its addition, and one addition per gate for each of the
    two biases. Gate non-linearities and element-wise state updates are not products."""
    if isinstance(module, nn.RNNCellBase):
        steps = x.shape[0] if x.dim() == 2 else 1
        gates = module.weight_ih.shape[0]
        macs = steps * gates * (module.input_size + module.hidden_size)
        return Operations(macs, macs + (2 * steps * gates if module.bias else 0))
    assert isinstance(module, nn.RNNBase)
    if isinstance(x, PackedSequence):
        steps = x.data.shape[0]  # every sequence's steps
    else:
        steps = x.shape[0] if x.dim() == 2 else x.shape[0] * x.shape[1]
    directions = 2 if module.bidirectional else 1
    gates = _RECURRENT_GATES[module.mode] * module.hidden_size
    state = module.proj_size or module.hidden_size
    macs = bias = 0
    for layer in range(module.num_layers):
        inputs = module.input_size if layer == 0 else state * directions
        macs += gates * (inputs + state) + module.hidden_size * module.proj_size
        bias += 2 * gates if module.bias else 0
    scale = steps * directions
    return Operations(scale * macs, scale * (macs + bias))


@contextlib.contextmanager
def _counting_ffts(running: list[str], analytic: dict[str, Operations]) -> Iterator[None]:
    """Wrap every ``torch.fft`` transform to charge its operations to the innermost module."""
    originals = {name: getattr(torch.fft, name) for name in _FFT_FUNCTIONS}

    def counting(name: str, function: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        def wrapper(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            owner = (running[-1] if running else "") or ROOT_NAME
            suffix = IFFT_SUFFIX if name.startswith("i") else FFT_SUFFIX
            _add(analytic, owner + suffix, _transform_operations(name, x, args, kwargs))
            return function(x, *args, **kwargs)

        return wrapper

    try:
        for name, function in originals.items():
            setattr(torch.fft, name, counting(name, function))
        yield
    finally:
        for name, function in originals.items():
            setattr(torch.fft, name, function)


def _contracting_layers(network: nn.Module) -> frozenset[str]:
    """Paths of the layers whose work is the contractions they run (:func:`optional_types`)."""
    types = optional_types()
    if not types:
        return frozenset()
    return frozenset(name for name, module in network.named_modules()
                     if isinstance(module, types))


@contextlib.contextmanager
def _counting_contractions(
    running: list[str],
    layers: frozenset[str],
    analytic: dict[str, Operations],
    unpatched: dict[str, Callable[..., torch.Tensor]],
) -> Iterator[None]:
    """Wrap the :data:`CONTRACTIONS` so that a call made while one of ``layers`` is the innermost
    running module is charged to it and runs unpatched; other calls go on to DeepSpeed."""
    if not layers:
        yield
        return
    patched = {name: getattr(torch, name) for name in CONTRACTIONS}

    def counting(name: str) -> Callable[..., torch.Tensor]:
        def wrapper(*args: Any, **kwargs: Any) -> torch.Tensor:
            owner = running[-1] if running else None
            if owner not in layers:
                return patched[name](*args, **kwargs)
            _add(analytic, owner, call_operations(name, args, kwargs))
            return unpatched[name](*args, **kwargs)

        return wrapper

    try:
        for name in CONTRACTIONS:
            setattr(torch, name, counting(name))
        yield
    finally:
        for name, function in patched.items():
            setattr(torch, name, function)


def _transform_operations(
    name: str, x: torch.Tensor, args: Sequence[Any], kwargs: dict[str, Any]
) -> Operations:
    """Operations of one ``torch.fft.<name>(x, n|s, dim, ...)`` call, one axis at a time, as
    pocketfft runs it: for a real transform, the real one on the last of ``dim`` (first when
    forward, last when inverse) and complex ones on the other axes over the half spectrum; for a
    complex transform, complex ones on every axis of ``dim``."""
    one_axis = not name.endswith(("2", "n"))
    size = kwargs.get("n" if one_axis else "s", args[0] if args else None)
    given_dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    sizes: list[int] | None
    dims: list[int]
    if one_axis:
        sizes, dims = (None if size is None else [size]), [-1 if given_dim is None else given_dim]
    else:
        sizes = None if size is None else list(size)
        if given_dim is not None:
            dims = [given_dim] if isinstance(given_dim, int) else list(given_dim)
        elif name.endswith("2"):
            dims = [-2, -1]
        else:
            dims = list(range(-len(sizes), 0) if sizes is not None else range(x.dim()))
    dims = [d % x.dim() for d in dims]
    # torch reads a size of -1 as "no change", like None.
    lengths = [None if n == -1 else n for n in sizes] if sizes else [None] * len(dims)
    real, inverse = "rfft" in name, name.startswith("i")
    shape = list(x.shape)  # the tensor's shape at the current stage of the transform
    for axis, length in zip(dims[:-1], lengths[:-1], strict=True):
        shape[axis] = length or shape[axis]
    last = dims[-1]
    if real and inverse:
        n_last = lengths[-1] or 2 * (shape[last] - 1)
        shape[last] = n_last // 2 + 1
    else:
        n_last = shape[last] = lengths[-1] or shape[last]

    def along(axis: int, *, real_axis: bool) -> Operations:
        n = n_last if real_axis else shape[axis]
        return fft_operations(n, lines=math.prod(shape) // shape[axis], real=real_axis)

    operations = Operations(0, 0)
    if real and not inverse:
        operations += along(last, real_axis=True)
        shape[last] = n_last // 2 + 1
    for axis in dims if not real else dims[:-1]:
        operations += along(axis, real_axis=False)
    if real and inverse:
        operations += along(last, real_axis=True)
    return operations


def _entries(
    profiled: dict[str, tuple[int, int, nn.Module]],
    analytic: dict[str, Operations],
    quantizable: set[str],
    *,
    analytic_only: frozenset[str] = frozenset(),
    unquantized: frozenset[str] = frozenset(),
) -> list[LayerOperations]:
    entries = []
    for name, (flops, macs, module) in profiled.items():
        entry = name or ROOT_NAME
        if isinstance(module, SpectralConv | MatMul) or name in analytic_only:
            entries.append(LayerOperations(entry, analytic.get(name, Operations(0, 0)), True))
        elif name in unquantized:  # always listed, float work
            operations = Operations(macs, flops - macs) + analytic.get(name, Operations(0, 0))
            entries.append(LayerOperations(entry, operations, False))
        else:
            additions = flops - macs
            if isinstance(module, nn.Linear) and module.bias is not None:
                additions += macs // module.in_features  # one per output element
            if name in quantizable or flops:
                operations = Operations(macs, additions)
                entries.append(LayerOperations(entry, operations, name in quantizable))
        entries += [
            LayerOperations(entry + suffix, analytic[entry + suffix], False)
            for suffix in (FFT_SUFFIX, IFFT_SUFFIX)
            if entry + suffix in analytic
        ]
    return entries
