"""Products counted where torch runs them: the aten operators under a module's forward.

DeepSpeed's profiler sees the Python functions it patches; a module autoq does not quantize
(:func:`autoq.precision.unquantized_weight_modules`) may multiply by its weights through any
path: ``F.multi_head_attention_forward``, ``torch.bilinear``, ``torch.einsum``, ``@``... All of
them end in a few aten operators, which a :class:`~torch.utils._python_dispatch.TorchDispatchMode`
sees with the operands they really got (the mechanism of ``torch.utils.flop_counter``, whose
formulas this module takes where torch has one). :class:`ProductCounter` charges each product
operator to the module running it.

The convention is the rest of autoq's (:mod:`autoq.cost._counts`): ``M`` = multiply-accumulates
(torch's matmul/convolution FLOPs / 2), and a dot product of ``k`` terms is ``k`` MACs and ``k``
additions. A bias adds one addition per output element, as a linear layer's bias does everywhere
in autoq, whether torch fuses it into the product (``addmm``, ``baddbmm``, ``addmv``,
``addbmm``, ``addr``, a convolution's bias) or adds it after (``F.linear`` on an input that is
not contiguous runs ``mm`` then ``add_``; ``x @ w + b``): an ``add`` of one of the module's own
parameters counts one addition per output element. A complex operand multiplies the real
products as in :func:`~autoq.cost._counts.contraction_operations` (matrix products only). Other
element-wise operators (activations, softmax, products of activations) are not counted here.

Counted operators (:data:`PRODUCT_OPERATORS`): ``mm``, ``addmm``, ``bmm``, ``baddbmm``, ``mv``,
``addmv``, ``dot``, ``vdot``, ``addbmm``, ``addr``, ``convolution`` (also transposed, grouped),
the fused attention kernels (``scaled_dot_product_attention``'s CPU, flash, efficient and cuDNN
kernels: ``Q·Kᵀ`` and ``softmax·V``) and ``_trilinear`` (``torch.bilinear``, as ATen unrolls it).
Fused kernels that run a whole layer natively (``_native_multi_head_attention``,
``_transformer_encoder_layer_fwd``) are avoided while profiling: :func:`decomposed_attention`
turns torch's attention fast path off, so that attention runs the operators above.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import conv_flop_count

from autoq.cost._counts import Operations, contraction_operations

aten = torch.ops.aten


def _shape(tensor: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(n) for n in tensor.shape)


def _complex(*tensors: torch.Tensor) -> int:
    return sum(t.is_complex() for t in tensors)


def _bias(bias: Any, outputs: int, beta: Any, out: torch.Tensor) -> Operations:
    """One addition per output element for a bias added into the product (two for complex)."""
    if not isinstance(bias, torch.Tensor) or beta == 0:
        return Operations(0, 0)
    return Operations(0, outputs * (2 if out.is_complex() else 1))


def _beta(kwargs: dict[str, Any], args: Sequence[Any], position: int) -> Any:
    return kwargs.get("beta", args[position] if len(args) > position else 1)


def _mm(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Operations:
    a, b = args[0], args[1]
    n, k = _shape(a)
    m = _shape(b)[1]
    return contraction_operations(outputs=n * m, terms=k, complex_operands=_complex(a, b))


def _addmm(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Operations:
    return _mm(args[1:], {}, out) + _bias(args[0], out.numel(), _beta(kwargs, args, 3), out)


def _bmm(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Operations:
    a, b = args[0], args[1]
    batch, n, k = _shape(a)
    m = _shape(b)[2]
    return contraction_operations(outputs=batch * n * m, terms=k,
                                  complex_operands=_complex(a, b))


def _baddbmm(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Operations:
    return _bmm(args[1:], {}, out) + _bias(args[0], out.numel(), _beta(kwargs, args, 3), out)


def _addbmm(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Operations:
    # bias + Σ_b a[b] @ b[b]: every output sums batch · k terms.
    a, b = args[1], args[2]
    batch, n, k = _shape(a)
    m = _shape(b)[2]
    products = contraction_operations(outputs=n * m, terms=batch * k,
                                      complex_operands=_complex(a, b))
    return products + _bias(args[0], out.numel(), _beta(kwargs, args, 3), out)


def _mv(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Operations:
    a, v = args[0], args[1]
    n, k = _shape(a)
    return contraction_operations(outputs=n, terms=k, complex_operands=_complex(a, v))


def _addmv(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Operations:
    return _mv(args[1:], {}, out) + _bias(args[0], out.numel(), _beta(kwargs, args, 3), out)


def _dot(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Operations:
    a, b = args[0], args[1]
    return contraction_operations(outputs=1, terms=a.numel(), complex_operands=_complex(a, b))


def _addr(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Operations:
    # bias + outer(u, v): products with nothing summed, one term each.
    u, v = args[1], args[2]
    products = contraction_operations(outputs=u.numel() * v.numel(), terms=1,
                                      complex_operands=_complex(u, v))
    return products + _bias(args[0], out.numel(), _beta(kwargs, args, 3), out)


def _convolution(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Operations:
    # convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding,
    # groups): torch's count (weight's C_in is already per group) is 2 FLOPs per MAC.
    x, weight, bias, transposed = args[0], args[1], args[2], bool(args[6])
    macs = conv_flop_count(list(_shape(x)), list(_shape(weight)), list(_shape(out)),
                           transposed=transposed) // 2
    return Operations(macs, macs) + _bias(bias, out.numel(), 1, out)


def _attention(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Operations:
    # (query, key, value, ...): Q·Kᵀ over the head width, then the weights times V over the keys;
    # grouped-query attention broadcasts key/value heads, so the query's batch and heads count.
    query, key, value = args[0], args[1], args[2]
    *batch, length, width = _shape(query)
    keys, value_width = _shape(key)[-2], _shape(value)[-1]
    heads = math.prod(batch)
    return (contraction_operations(outputs=heads * length * keys, terms=width,
                                   complex_operands=0)
            + contraction_operations(outputs=heads * length * value_width, terms=keys,
                                     complex_operands=0))


def _trilinear(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> Operations:
    """``_trilinear(i1, i2, i3, expand1, expand2, expand3, sumdim, unroll_dim=1)`` as ATen runs
    it (``aten/src/ATen/native/Linear.cpp``): per slice of the unrolled axis, ``i1 · i2`` summed
    over the summed axes ``i3`` lacks, then that times ``i3`` summed over the others."""
    i1, i2, i3, expand1, expand2, expand3, sumdim = args[:7]
    unroll = int(kwargs.get("unroll_dim", args[7] if len(args) > 7 else 1))
    total = i1.dim() + len(expand1)
    shapes = []
    for tensor, expand in ((i1, expand1), (i2, expand2), (i3, expand3)):
        sizes = iter(_shape(tensor))
        shapes.append([1 if axis in expand else next(sizes) for axis in range(total)])
    s1, s2, s3 = shapes
    full = [max(a, b, c) for a, b, c in zip(s1, s2, s3, strict=True)]
    slices = full[unroll]
    summed = {axis for axis in sumdim if axis != unroll}
    first_sum = {axis for axis in summed if axis in expand3}  # summed in i1 · i2
    second_sum = summed - first_sum  # summed in (i1 · i2) · i3
    pair = [1 if axis == unroll else max(s1[axis], s2[axis]) for axis in range(total)]
    first = contraction_operations(
        outputs=math.prod(n for axis, n in enumerate(pair) if axis not in first_sum),
        terms=math.prod(pair[axis] for axis in first_sum),
        complex_operands=_complex(i1, i2))
    kept = [1 if axis in first_sum else n for axis, n in enumerate(pair)]
    both = [1 if axis == unroll else max(kept[axis], s3[axis]) for axis in range(total)]
    second = contraction_operations(
        outputs=math.prod(n for axis, n in enumerate(both) if axis not in second_sum),
        terms=math.prod(both[axis] for axis in second_sum),
        complex_operands=_complex(i3) + int(i1.is_complex() or i2.is_complex()))
    per_slice = first + second
    return Operations(slices * per_slice.multiplications, slices * per_slice.additions)


Counter = Callable[[Sequence[Any], dict[str, Any], Any], Operations]

PRODUCT_OPERATORS: dict[Any, Counter] = {
    aten.mm: _mm,
    aten.addmm: _addmm,
    aten.bmm: _bmm,
    aten.baddbmm: _baddbmm,
    aten.addbmm: _addbmm,
    aten.mv: _mv,
    aten.addmv: _addmv,
    aten.dot: _dot,
    aten.vdot: _dot,
    aten.addr: _addr,
    aten.convolution: _convolution,
    aten._convolution: _convolution,
    aten.convolution_overrideable: _convolution,
    aten._scaled_dot_product_flash_attention_for_cpu: _attention,
    aten._scaled_dot_product_flash_attention: _attention,
    aten._scaled_dot_product_efficient_attention: _attention,
    aten._scaled_dot_product_cudnn_attention: _attention,
    aten._trilinear: _trilinear,
}
"""Aten operator (overload packet) → its products' :class:`Operations`, from its arguments and
its result."""


def product_operations(operator: Any, args: Sequence[Any], kwargs: dict[str, Any],
                       out: Any) -> Operations | None:
    """The products of one aten call, or ``None`` when ``operator`` is not a product."""
    counter = PRODUCT_OPERATORS.get(getattr(operator, "_overloadpacket", operator))
    return None if counter is None else counter(args, kwargs, out)


_ADDITIONS = (aten.add, aten.add_)


def parameter_storages(module: torch.nn.Module) -> frozenset[int]:
    """Where ``module``'s parameters (its children's too) live: an operand that shares one of
    these storages is one of them or a view of one (a chunk of a packed bias)."""
    return frozenset(p.untyped_storage().data_ptr() for p in module.parameters())


def _adds_a_parameter(args: Sequence[Any], storages: frozenset[int]) -> bool:
    return any(isinstance(a, torch.Tensor) and a.untyped_storage().data_ptr() in storages
               for a in args[:2])


class ProductCounter(TorchDispatchMode):
    """While active, charge every product operator, and every addition of a parameter (a bias),
    to ``owner()`` when that names an entry.

    Args:
        owner: the entry the current call belongs to (the innermost running module), or
            ``None`` for calls that are counted elsewhere.
        counts: entry → operations, added to.
        parameters: entry → :func:`parameter_storages` of its module; an ``add`` with one of
            them as an operand is its bias: one addition per output element.
    """

    def __init__(self, owner: Callable[[], str | None], counts: dict[str, Operations],
                 parameters: Mapping[str, frozenset[int]] | None = None) -> None:
        super().__init__()
        self.owner = owner
        self.counts = counts
        self.parameters = parameters or {}

    def __torch_dispatch__(self, func: Any, types: Any, args: Sequence[Any] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        entry = self.owner()
        if entry is None:
            return out
        operations = product_operations(func, args, kwargs, out)
        if (operations is None and func._overloadpacket in _ADDITIONS
                and isinstance(out, torch.Tensor)
                and _adds_a_parameter(args, self.parameters.get(entry, frozenset()))):
            operations = Operations(0, out.numel() * (2 if out.is_complex() else 1))
        if operations is not None:
            self.counts[entry] = self.counts.get(entry, Operations(0, 0)) + operations
        return out


@contextlib.contextmanager
def decomposed_attention() -> Iterator[None]:
    """Turn torch's attention fast path off (``torch.backends.mha``), restored on the way out.

    In eval mode without gradients ``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer``
    otherwise run one native kernel that neither DeepSpeed nor an aten count can look into; with
    the fast path off they run the same products as separate operators.
    """
    backend = torch.backends.mha
    before = backend.get_fastpath_enabled()
    backend.set_fastpath_enabled(False)
    try:
        yield
    finally:
        backend.set_fastpath_enabled(before)
