"""Per-layer precision: which layers can be quantized, and what a trial asks of each.

A trial is a spatial scale factor plus, for every quantizable layer (by its ``named_modules()``
path), a pair ``(weight_bits, act_bits)`` or ``None`` for float. Quantizable layers are those whose
work is a matrix multiplication (the paper, section 3.3): linear layers, convolutions and
transposed convolutions, FNO spectral convolutions (autoq's, and neuraloperator's when a model
holds one), and products of two activations (:class:`~autoq.models.layers.MatMul`). For a
``MatMul`` the right operand plays the weight's part: ``weight_bits`` is its bitwidth and
``act_bits`` that of the left operand.

Any other module that multiplies by learned weights (``nn.MultiheadAttention``, ``nn.Bilinear``,
a recurrent layer, a custom module with its own weight matrix used through ``@``, ``einsum`` or
``F.linear``) is not quantized: :func:`unquantized_weight_modules` names those modules, the cost
model prices their work as float work, and :func:`warn_unquantized` says so once.

This module is the vocabulary shared by :mod:`autoq.quant` (which builds the quantized model) and
:mod:`autoq.cost` (which prices it); it imports neither AIMET nor a profiler, nor an optional
library (:data:`OPTIONAL_TYPES`).
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

from torch import nn

# Re-exported: the quantizer and the cost model take the vocabulary from here.
from autoq.bits import (  # noqa: F401
    FLOAT,
    FLOAT_EQUIVALENT_BITS,
    MAX_BITS,
    MIN_BITS,
    TRANSFORMS,
    Bits,
    Granularity,
    Rank,
    Resample,
    Scheme,
    Transform,
    WeightGranularity,
)
from autoq.data.resample import RESAMPLE_METHODS, check_scale
from autoq.errors import QuantizationError
from autoq.models import first_and_last_layers
from autoq.models.layers import MatMul, SpectralConv

_OWN_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.modules.conv._ConvNd,
    SpectralConv,
    MatMul,
)

OPTIONAL_TYPES: tuple[tuple[str, str], ...] = (
    ("neuralop.layers.spectral_convolution", "SpectralConv"),  # neuraloperator 2.0 (extra)
)
"""Quantizable layers of optional libraries, as ``(module, class)``: a model can only hold one
once its library is imported, so they are looked up among the imported modules and their library
is never imported here."""


def optional_types() -> tuple[type[nn.Module], ...]:
    """The :data:`OPTIONAL_TYPES` whose library is imported."""
    found = []
    for module_name, class_name in OPTIONAL_TYPES:
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if isinstance(cls, type) and issubclass(cls, nn.Module):
            found.append(cls)
    return tuple(found)


def quantizable_types() -> tuple[type[nn.Module], ...]:
    """The layer types a trial gives bits to: torch's linear layers and convolutions, autoq's
    spectral convolution and activation product, and the :func:`optional_types`."""
    return (*_OWN_TYPES, *optional_types())


def __getattr__(name: str) -> tuple[type[nn.Module], ...]:  # pragma: no mutate block
    # (Not mutated: import statements call a module's __getattr__, mutmut's wrapper breaks them.)
    # QUANTIZABLE_TYPES is computed when read: the optional libraries may be imported later.
    if name == "QUANTIZABLE_TYPES":
        return quantizable_types()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_FUNCTIONAL_OWNERS: tuple[type[nn.Module], ...] = (nn.MultiheadAttention,)
"""Modules that use their children's weights through functionals, without calling the children:
``nn.MultiheadAttention`` passes ``out_proj.weight`` to ``F.multi_head_attention_forward`` and
never runs ``out_proj``. Their children are part of them: not layers of their own."""

_NO_PRODUCT_TYPES: tuple[type[nn.Module], ...] = (
    nn.Embedding,  # a lookup: rows selected, nothing multiplied
    nn.EmbeddingBag,
    nn.modules.batchnorm._NormBase,  # BatchNorm*, InstanceNorm*: element-wise scale and shift
    nn.LayerNorm,  # element-wise, even over a normalized_shape of two axes or more
    nn.GroupNorm,
    nn.RMSNorm,
)
"""Modules whose weights, whatever their shape, never enter a matrix product."""


def _inside(name: str, roots: list[str]) -> bool:
    """Whether module path ``name`` lies strictly inside one of the module paths ``roots``."""
    return any((root == "" and name != "") or name.startswith(root + ".") for root in roots)


def quantizable_layers(model: nn.Module) -> list[str]:
    """Names of every matrix-multiplication layer of ``model``, in module order.

    A layer inside a module that reads its weights without running it (``nn.MultiheadAttention``'s
    ``out_proj``) is not one: its work is its parent's, which stays float.
    """
    types = quantizable_types()
    owners = [name for name, module in model.named_modules()
              if isinstance(module, _FUNCTIONAL_OWNERS)]
    return [name for name, module in model.named_modules()
            if isinstance(module, types) and not _inside(name, owners)]


def spectral_layers(model: nn.Module) -> list[str]:
    """Names of ``model``'s spectral convolutions that can run their transforms as DFT matrix
    products (autoq's :class:`~autoq.models.layers.SpectralConv`; neuraloperator's has no such
    path), in module order."""
    return [name for name in quantizable_layers(model)
            if isinstance(model.get_submodule(name), SpectralConv)]


def _is_weight_matrix(parameter: nn.Parameter) -> bool:
    """At least two axes longer than one: a matrix (or a stack of them) that a product can run
    over. A ``(1, C, 1)`` per-channel gate (neuraloperator's ``SoftGating``) is a broadcast scale,
    a 1-D bias or norm weight a vector."""
    return sum(1 for size in parameter.shape if size > 1) >= 2


def unquantized_weight_modules(model: nn.Module) -> list[str]:
    """Paths of the modules that multiply by learned weights autoq does not quantize.

    Every module that owns (directly, not through a child) a learned parameter with at least two
    axes longer than one, and is not a quantizable layer (:func:`quantizable_layers`) nor inside
    one: ``nn.MultiheadAttention`` (its ``in_proj_weight``), ``nn.Bilinear``, recurrent layers, a
    custom module whose own ``nn.Parameter`` of shape ``(out, in)`` goes through ``@``,
    ``einsum`` or ``F.linear`` in its forward. Lookups (``nn.Embedding``) and normalisation
    layers do no products and are not named; nor are the children of a module that uses their
    weights itself (``nn.MultiheadAttention.out_proj``). In module order. The cost model prices
    these modules' work as float work (:mod:`autoq.cost`); they stay float in every trial.
    """
    types = quantizable_types()
    modules = list(model.named_modules())
    covered = [name for name, module in modules if isinstance(module, types + _FUNCTIONAL_OWNERS)]
    return [
        name
        for name, module in modules
        if not isinstance(module, types + _NO_PRODUCT_TYPES)
        and not _inside(name, covered)
        and any(_is_weight_matrix(p) for p in module.parameters(recurse=False))
    ]


class UnquantizedWeightWarning(UserWarning):
    """A model holds modules that multiply by learned weights autoq does not quantize
    (:func:`unquantized_weight_modules`): they stay float and are priced as float work."""


def _describe_modules(model: nn.Module, names: list[str]) -> str:
    """``'path' (package.Class), ...`` for the modules of ``model`` named ``names``."""
    modules = dict(model.named_modules())
    return ", ".join(f"{name or '(root)'!r} ({type(modules[name]).__module__}."
                     f"{type(modules[name]).__qualname__})" for name in names)


def warn_unquantized(model: nn.Module, names: list[str] | None = None, *,
                     stacklevel: int = 2) -> list[str]:
    """Emit one :class:`UnquantizedWeightWarning` naming the model's unquantized weight modules
    (their paths and types), if it has any; returns their paths.

    Args:
        model: the network.
        names: its :func:`unquantized_weight_modules`, when already known.
        stacklevel: as for :func:`warnings.warn`.
    """
    names = unquantized_weight_modules(model) if names is None else names
    if names:
        warnings.warn(
            f"{type(model).__name__} has {len(names)} module(s) that multiply by learned weights "
            f"autoq does not quantize: {_describe_modules(model, names)}. They stay float in "
            f"every trial, and their products are priced as float work (16/16 bits) in the cost "
            f"breakdown, under their paths.",
            UnquantizedWeightWarning,
            stacklevel=stacklevel + 1,
        )
    return names


def _check_bits(layer: str, bits: Any) -> Bits:
    if bits is None or bits == FLOAT:
        return None
    if (not isinstance(bits, list | tuple) or len(bits) != 2
            or not all(isinstance(b, int) and not isinstance(b, bool) for b in bits)):
        raise QuantizationError(
            f"bits of layer {layer!r} must be [weight_bits, act_bits] or 'float', got {bits!r}")
    for role, value in zip(("weight", "activation"), bits, strict=True):
        if not MIN_BITS <= value <= MAX_BITS:
            raise QuantizationError(f"{role} bitwidth of layer {layer!r} must lie in "
                                    f"{MIN_BITS}..{MAX_BITS}, got {value}")
    return (bits[0], bits[1])


SCHEMES: tuple[Scheme, ...] = get_args(Scheme)
WEIGHT_GRANULARITIES: tuple[WeightGranularity, ...] = get_args(WeightGranularity)


@dataclass(frozen=True)
class TrialConfig:
    """What one trial runs: a scale factor, the precision of every quantizable layer and, in a
    search over factorization ranks, the rank of the model's factorized weights.

    Build it with :meth:`for_model` (checked against a model) or :meth:`from_json`.

    Attributes:
        scale: spatial scale factor in (0, 1] at which the network runs.
        bits: every quantizable layer's ``(weight_bits, act_bits)``, or ``None`` for float.
        rank: the factorization rank the model is built with (its factory's ``rank`` keyword),
            or ``None`` when the search does not vary it.
        scheme: which tensors of a quantized layer are quantized (:data:`autoq.bits.Scheme`).
        resample: how the input is resized to the network's grid and the output back
            (:data:`autoq.bits.Resample`); it decides what the resizes cost.
        weight_granularity: one grid per weight tensor or per output channel
            (:data:`autoq.bits.WeightGranularity`).
        transforms: how spectral convolutions compute their Fourier transforms
            (:data:`autoq.bits.Transform`), by layer; a layer not named uses ``fft``. A ``dft``
            layer must be quantized: its DFT products run at its bits.
    """

    scale: float
    bits: Mapping[str, Bits]
    rank: Rank | None = None
    scheme: Scheme = "paper"
    resample: Resample = "linear"
    weight_granularity: WeightGranularity = "per_tensor"
    transforms: Mapping[str, Transform] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_scale(self.scale)
        if self.scheme not in SCHEMES:
            raise QuantizationError(f"scheme must be one of {list(SCHEMES)}, got "
                                    f"{self.scheme!r}")
        if self.resample not in RESAMPLE_METHODS:
            raise QuantizationError(f"resample must be one of {list(RESAMPLE_METHODS)}, got "
                                    f"{self.resample!r}")
        if self.weight_granularity not in WEIGHT_GRANULARITIES:
            raise QuantizationError(f"weight_granularity must be one of "
                                    f"{list(WEIGHT_GRANULARITIES)}, got "
                                    f"{self.weight_granularity!r}")
        object.__setattr__(self, "bits", {k: _check_bits(k, v) for k, v in self.bits.items()})
        object.__setattr__(self, "transforms", dict(self.transforms))
        for layer, transform in self.transforms.items():
            if transform not in TRANSFORMS:
                raise QuantizationError(f"transform of layer {layer!r} must be one of "
                                        f"{list(TRANSFORMS)}, got {transform!r}")
            if transform == "dft" and self.bits.get(layer) is None:
                raise QuantizationError(f"layer {layer!r}: the dft transform runs at the "
                                        f"layer's bits, and the layer is float (or not named "
                                        f"in bits); a float layer's transforms stay FFTs")

    @property
    def dft_layers(self) -> list[str]:
        """The layers whose transforms run as DFT matrix products, in the order of ``bits``."""
        return [layer for layer in self.bits if self.transforms.get(layer) == "dft"]

    @classmethod
    def for_model(cls, model: nn.Module, *, scale: float, bits: Mapping[str, Any],
                  rank: Rank | None = None, scheme: Scheme = "paper",
                  resample: Resample = "linear",
                  weight_granularity: WeightGranularity = "per_tensor",
                  transforms: Mapping[str, Transform] | None = None) -> TrialConfig:
        """A config for ``model``: ``bits`` may name any subset of its quantizable layers; the
        rest stay float. ``transforms`` may name any of its :func:`spectral_layers`. A name
        that is not such a layer is an error that names it."""
        layers = quantizable_layers(model)
        unknown = sorted(set(bits) - set(layers))
        if unknown:
            raise QuantizationError(f"no quantizable layer named {unknown[0]!r} in "
                                    f"{type(model).__name__}; layers: {layers}")
        transforms = transforms or {}
        spectral = spectral_layers(model)
        outside = sorted(set(transforms) - set(spectral))
        if outside:
            raise QuantizationError(f"a transform is given for {outside[0]!r}, which is not one "
                                    f"of {type(model).__name__}'s spectral convolutions "
                                    f"(autoq's SpectralConv): {spectral}")
        return cls(scale=scale, bits={name: bits.get(name) for name in layers}, rank=rank,
                   scheme=scheme, resample=resample, weight_granularity=weight_granularity,
                   transforms=transforms)

    @classmethod
    def uniform(
        cls,
        model: nn.Module,
        *,
        scale: float,
        weight_bits: int | None,
        act_bits: int | None,
        first_last_float: bool = True,
    ) -> TrialConfig:
        """One precision for every layer (``None`` bits: all float), the paper's regimes."""
        pair = None if weight_bits is None or act_bits is None else (weight_bits, act_bits)
        groups = layer_groups(model, "uniform", first_last_float=first_last_float)
        return cls.for_model(model, scale=scale,
                             bits=expand_groups(groups, {g: pair for g in groups}))

    @property
    def quantized_layers(self) -> dict[str, tuple[int, int]]:
        return {name: bits for name, bits in self.bits.items() if bits is not None}

    def to_json(self) -> dict[str, Any]:
        """``{"scale": s, "bits": {layer: [w, a] or "float"}}`` (and ``"rank": r`` when the
        config has one, ``"scheme": "integer"`` under that scheme, ``"resample"`` and
        ``"weight_granularity"`` when not the defaults, ``"transforms": {layer: "fft" or
        "dft"}`` when it names any), the shape the API returns."""
        payload: dict[str, Any] = {
            "scale": self.scale,
            "bits": {k: FLOAT if v is None else list(v) for k, v in self.bits.items()}}
        if self.rank is not None:
            payload["rank"] = self.rank
        if self.scheme != "paper":
            payload["scheme"] = self.scheme
        if self.resample != "linear":
            payload["resample"] = self.resample
        if self.weight_granularity != "per_tensor":
            payload["weight_granularity"] = self.weight_granularity
        if self.transforms:
            payload["transforms"] = dict(self.transforms)
        return payload

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> TrialConfig:
        return cls(scale=payload["scale"], bits=dict(payload["bits"]), rank=payload.get("rank"),
                   scheme=payload.get("scheme", "paper"),
                   resample=payload.get("resample", "linear"),
                   weight_granularity=payload.get("weight_granularity", "per_tensor"),
                   transforms=payload.get("transforms", {}))


_BLOCK = re.compile(r"^(.*?\.\d+)(?:\.|$)")


def layer_groups(
    model: nn.Module, granularity: Granularity, *, first_last_float: bool = True
) -> dict[str, list[str]]:
    """Group the quantizable layers that share one precision choice.

    ``uniform``: one group ``"all"``. ``per_block``: one group per repeated block (the module path
    up to its first ``ModuleList`` index, e.g. ``blocks.2``) or per top-level module otherwise.
    ``per_layer``: every layer its own group. With ``first_last_float`` the model's first and last
    layers belong to no group (they stay float).
    """
    layers = quantizable_layers(model)
    if first_last_float:
        excluded = set(first_and_last_layers(model))
        layers = [name for name in layers if name not in excluded]
    groups: dict[str, list[str]] = {}
    for name in layers:
        if granularity == "uniform":
            key = "all"
        elif granularity == "per_block":
            match = _BLOCK.match(name)
            key = match.group(1) if match else name.split(".")[0]
        elif granularity == "per_layer":
            key = name
        else:
            raise QuantizationError(f"granularity must be uniform, per_block or per_layer, got "
                                    f"{granularity!r}")
        groups.setdefault(key, []).append(name)
    return groups


def expand_groups(
    groups: Mapping[str, list[str]], group_bits: Mapping[str, Bits]
) -> dict[str, Bits]:
    """Per-layer bits from per-group bits; every group must be given."""
    missing = sorted(set(groups) - set(group_bits))
    if missing:
        raise QuantizationError(f"no bits given for layer group {missing[0]!r}")
    return {layer: group_bits[group] for group, layers in groups.items() for layer in layers}
