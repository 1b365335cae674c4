"""The paper's bit-operation cost of one trial config (van den Dool et al. 2023, section 3.5)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from torch import nn

from autoq.bits import FLOAT
from autoq.cost._counts import Operations, resize_operations
from autoq.cost._profile import FFT_SUFFIX, IFFT_SUFFIX, network_operations
from autoq.data.resample import network_shape
from autoq.errors import QuantizationError, SpecError
from autoq.precision import FLOAT_EQUIVALENT_BITS, Bits, TrialConfig

RESIZE_IN = "resize.in"
RESIZE_OUT = "resize.out"
DFT_SUFFIX = ".dft"
IDFT_SUFFIX = ".idft"
"""Entry suffixes of a spectral convolution's forward and inverse transforms when the config
runs them as DFT matrix products (its ``dft`` transform), in place of ``.fft`` and ``.ifft``."""


@dataclass(frozen=True)
class LayerCost:
    """One entry of a cost breakdown: ``M · b_w · b_a + A · b_a``.

    Attributes:
        multiplications: ``M``, real multiplications per forward pass (batch size 1).
        additions: ``A``, every other real operation.
        weight_bits: ``b_w`` (for a product of two activations, the right operand's bits).
        act_bits: ``b_a``.
        quantized: whether the trial quantizes this entry; float work (float layers, FFTs,
            resizes, activations, norms) is priced at 16/16 bits.
    """

    multiplications: int
    additions: int
    weight_bits: int
    act_bits: int
    quantized: bool

    @classmethod
    def priced(cls, operations: Operations, bits: Bits) -> LayerCost:
        """Price ``operations`` at ``bits``; ``None`` (float) is priced as 16-bit integer work."""
        weight_bits, act_bits = bits or (FLOAT_EQUIVALENT_BITS, FLOAT_EQUIVALENT_BITS)
        return cls(
            multiplications=operations.multiplications,
            additions=operations.additions,
            weight_bits=weight_bits,
            act_bits=act_bits,
            quantized=bits is not None,
        )

    @property
    def cost(self) -> int:
        """Bit operations: ``M · b_w · b_a + A · b_a``."""
        return (self.multiplications * self.weight_bits + self.additions) * self.act_bits

    @property
    def flops(self) -> int:
        """Float operations ``M + A``, whatever the bits."""
        return self.multiplications + self.additions


@dataclass(frozen=True)
class CostReport:
    """The bit-operation cost of one trial config, per entry and in total.

    Entries, in order: ``resize.in`` (when the network runs on a coarser grid), every layer,
    every unquantized weight module and every other module with counted work by its
    ``named_modules()`` path, each spectral convolution's ``<path>.fft`` and ``<path>.ifft``
    (float work), or ``<path>.dft`` and ``<path>.idft`` at the layer's bits when the config runs
    its transforms as DFT matrix products, then ``resize.out``.

    Attributes:
        scale: the trial's scale factor.
        network_shape: the grid the network runs on.
        layers: entry name → its :class:`LayerCost`.
        unquantized: the entries of modules that multiply by learned weights autoq does not
            quantize (:func:`autoq.precision.unquantized_weight_modules`): float work in every
            trial.
    """

    scale: float
    network_shape: tuple[int, ...]
    layers: Mapping[str, LayerCost]
    unquantized: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        """The network's bit-operation cost, the search's second objective."""
        return sum(layer.cost for layer in self.layers.values())

    @property
    def flops(self) -> int:
        """Float operations ``M + A`` of every entry (the measure of the paper's Table 2)."""
        return sum(layer.flops for layer in self.layers.values())

    def to_json(self) -> dict[str, Any]:
        """``{scale, network_shape, total, flops, layers: {name: cost}, operations: {name:
        {multiplications, additions, bits: [w, a] or "float"}}, unquantized: [name]}``."""
        return {
            "scale": self.scale,
            "network_shape": list(self.network_shape),
            "total": self.total,
            "flops": self.flops,
            "unquantized": list(self.unquantized),
            "layers": {name: layer.cost for name, layer in self.layers.items()},
            "operations": {
                name: {
                    "multiplications": layer.multiplications,
                    "additions": layer.additions,
                    "bits": [layer.weight_bits, layer.act_bits] if layer.quantized else FLOAT,
                }
                for name, layer in self.layers.items()
            },
        }


def bitops(
    network: nn.Module, config: TrialConfig, *, data_shape: tuple[int, ...], in_channels: int
) -> CostReport:
    """The bit-operation cost of running ``network`` as ``config`` asks, on data of ``data_shape``.

    Per entry ``M · b_w · b_a + A · b_a``, float work at 16/16 bits, summed; with the resizes
    before and after the network when ``config.scale`` puts it on a coarser grid, counted as
    ``config.resample`` computes them. Operation
    counts come from DeepSpeed's flops profiler plus analytic and aten-level counts (see
    :mod:`autoq.cost`), profiled once per (architecture, grid) and cached, so pricing is cheap
    after the first call. Modules that multiply by learned weights autoq does not quantize are
    float entries of their own; the first profile of such a network warns, naming them
    (:class:`~autoq.precision.UnquantizedWeightWarning`).

    Args:
        network: the float model (any module mapping ``(1, in_channels, *grid)`` to
            ``(1, out_channels, *grid)``); it is run once, in eval mode, without gradients.
        config: the trial's scale factor and per-layer bits; layers it does not name are float.
        data_shape: the data's spatial shape, e.g. ``(256,)`` or ``(64, 64)``.
        in_channels: channels of the network's input.

    Raises:
        SpecError: a bad ``data_shape``, or the network does not run on that input.
        QuantizationError: ``config`` names a layer that is not one of the network's quantizable
            layers.
    """
    if not (
        isinstance(data_shape, tuple | list)
        and data_shape
        and all(isinstance(n, int) and n > 0 for n in data_shape)
    ):
        raise SpecError(
            f"data_shape must be a non-empty tuple of positive ints, got {data_shape!r}"
        )
    data_shape = tuple(data_shape)
    grid = network_shape(data_shape, config.scale)
    counts = network_operations(network, shape=grid, in_channels=in_channels)
    unknown = sorted(set(config.bits) - counts.quantizable)
    if unknown:
        raise QuantizationError(
            f"no quantizable layer named {unknown[0]!r} in {type(network).__name__}; layers: "
            f"{sorted(counts.quantizable)}"
        )
    layers: dict[str, LayerCost] = {}
    resized = grid != data_shape
    if resized:
        layers[RESIZE_IN] = LayerCost.priced(
            resize_operations(channels=in_channels, in_shape=data_shape, out_shape=grid,
                              method=config.resample), None
        )
    dft_layers = set(config.dft_layers)
    missing = sorted(dft_layers - set(counts.dft))
    if missing:
        raise QuantizationError(f"layer {missing[0]!r} is given the dft transform, and it is not "
                                f"one of {type(network).__name__}'s spectral convolutions: "
                                f"{sorted(counts.dft)}")
    for entry in counts.layers:
        bits = config.bits.get(entry.name) if entry.quantizable else None
        layers[entry.name] = LayerCost.priced(entry.operations, bits)
        if entry.name in dft_layers:  # its transforms, as the products they are, at its bits
            forward, inverse = counts.dft[entry.name]
            layers[entry.name + DFT_SUFFIX] = LayerCost.priced(forward, bits)
            layers[entry.name + IDFT_SUFFIX] = LayerCost.priced(inverse, bits)
    for layer in dft_layers:  # instead of its FFTs
        del layers[layer + FFT_SUFFIX], layers[layer + IFFT_SUFFIX]
    if resized:
        layers[RESIZE_OUT] = LayerCost.priced(
            resize_operations(channels=counts.out_channels, in_shape=grid, out_shape=data_shape,
                              method=config.resample), None
        )
    return CostReport(scale=config.scale, network_shape=grid, layers=MappingProxyType(layers),
                      unquantized=counts.unquantized)
