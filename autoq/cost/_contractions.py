"""Operations of the tensor contractions a layer runs, read from the torch calls themselves.

neuraloperator's spectral convolution contracts its Fourier coefficients with a dense or
factorized complex weight through ``tensorly.einsum``, which opt-einsum splits into pairwise
``torch.einsum`` / ``torch.tensordot`` calls along the path it chose for the operands' shapes; a
factorized weight that is reconstructed first (``implementation="reconstructed"``) runs
``torch.matmul`` mode products. DeepSpeed's profiler cannot count these (it counts ``einsum``
without MACs, ignores complex dtypes and fails on the operand list opt-einsum passes), so while
such a layer runs :mod:`autoq.cost._profile` routes the calls named in :data:`CONTRACTIONS` here,
with the operands they really got.

Each call is ``outputs`` dot products of ``terms`` terms (:func:`contraction_operations`), with
the real products a complex operand needs. Element-wise products written as operators, index
selection and copies are not counted (as everywhere in autoq's cost model).
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from typing import Any

import torch

from autoq.cost._counts import Operations, contraction_operations

CONTRACTIONS: tuple[str, ...] = ("einsum", "tensordot", "matmul", "mm", "bmm")
"""The ``torch`` functions whose calls are counted."""


def call_operations(function: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Operations:
    """Real operations of one call ``torch.<function>(*args, **kwargs)``.

    Raises:
        ValueError: ``function`` is not one of :data:`CONTRACTIONS`.
    """
    if function == "einsum":
        equation, *operands = args
        if len(operands) == 1 and isinstance(operands[0], list | tuple):
            operands = list(operands[0])  # torch.einsum(equation, [a, b]), as opt-einsum calls it
        return einsum_operations(equation, operands)
    if function == "tensordot":
        a, b, *rest = args
        dims = kwargs.get("dims", rest[0] if rest else 2)
        return tensordot_operations(a, b, dims)
    if function in ("matmul", "mm", "bmm"):
        a, b, *_ = (*args, *(kwargs[k] for k in ("other", "mat2") if k in kwargs))
        return matmul_call_operations(a, b)
    raise ValueError(f"function must be one of {CONTRACTIONS}, got {function!r}")


def _complex_operands(*operands: torch.Tensor) -> int:
    return sum(operand.is_complex() for operand in operands)


def einsum_operations(equation: str, operands: Sequence[torch.Tensor]) -> Operations:
    """Real operations of ``torch.einsum(equation, *operands)``.

    Two operands are one contraction: the output's elements times the sizes of the summed
    indices. More operands are contracted pairwise as torch does it: along opt-einsum's path for
    torch's strategy when opt-einsum is enabled, else from the left; each intermediate keeps the
    indices still needed. (opt-einsum, as tensorly runs it for neuraloperator, only ever passes
    pairs.) One operand is a permutation or a sum: no product.
    """
    inputs, output = _parse_einsum(equation, [operand.dim() for operand in operands])
    sizes: dict[str, int] = {}
    for letters, operand in zip(inputs, operands, strict=True):
        sizes.update(zip(letters, operand.shape, strict=True))
    pending = [(letters, operand.is_complex()) for letters, operand
               in zip(inputs, operands, strict=True)]
    total = Operations(0, 0)
    for first, second in _einsum_path(inputs, output, [tuple(o.shape) for o in operands]):
        (left, left_complex), (right, right_complex) = pending[first], pending[second]
        for position in sorted((first, second), reverse=True):
            del pending[position]
        later = set(output).union(*(letters for letters, _ in pending))
        result = "".join(dict.fromkeys(c for c in left + right if c in later))
        total += contraction_operations(
            outputs=math.prod(sizes[c] for c in result),
            terms=math.prod(sizes[c] for c in set(left + right) - set(result)),
            complex_operands=int(left_complex) + int(right_complex),
        )
        pending.append((result, left_complex or right_complex))
    return total


def _einsum_path(
    inputs: Sequence[str], output: str, shapes: Sequence[tuple[int, ...]]
) -> list[tuple[int, int]]:
    """The pairs torch contracts, as positions in the list of pending operands (each pair is
    removed and its result appended)."""
    if len(inputs) < 2:
        return []
    backend = torch.backends.opt_einsum
    if len(inputs) > 2 and backend.enabled and backend.is_available():
        import opt_einsum  # torch uses it when it is installed; tensorly needs it anyway

        path, _ = opt_einsum.contract_path(f"{','.join(inputs)}->{output}", *shapes,
                                           shapes=True, optimize=backend.strategy)
        return [(pair[0], pair[1]) for pair in path]
    return [(0, 1)] * (len(inputs) - 1)


def _parse_einsum(equation: str, ranks: Sequence[int]) -> tuple[list[str], str]:
    """Input and output index letters of an einsum equation, ``...`` spelled out."""
    equation = equation.replace(" ", "")
    lhs, arrow, rhs = equation.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(ranks):
        raise ValueError(f"einsum {equation!r} names {len(inputs)} operands, got {len(ranks)}")
    unused = iter(c for c in string.ascii_letters if c not in equation)
    ellipsis_rank = max((rank - len(term.replace("...", "")) for term, rank
                         in zip(inputs, ranks, strict=True) if "..." in term), default=0)
    broadcast = "".join(next(unused) for _ in range(ellipsis_rank))
    expanded = []
    for term, rank in zip(inputs, ranks, strict=True):
        if "..." in term:
            own = rank - len(term.replace("...", ""))
            term = term.replace("...", broadcast[ellipsis_rank - own:])
        expanded.append(term)
    if arrow:
        output = rhs.replace("...", broadcast)
    else:  # implicit output: broadcast axes, then the letters seen once, in order
        letters = "".join(expanded)
        output = broadcast + "".join(sorted(c for c in set(letters)
                                            if letters.count(c) == 1 and c not in broadcast))
    return expanded, output


def tensordot_operations(a: torch.Tensor, b: torch.Tensor, dims: Any) -> Operations:
    """Real operations of ``torch.tensordot(a, b, dims)``: every free element of ``a`` times every
    free element of ``b``, each a dot product over the contracted axes."""
    if isinstance(dims, int):
        dims_a, dims_b = list(range(a.dim() - dims, a.dim())), list(range(dims))
    else:
        dims_a, dims_b = (list(d) if isinstance(d, list | tuple) else [d] for d in dims)
    terms = math.prod(a.shape[d] for d in dims_a)
    outputs = (a.numel() // max(terms, 1)) * (b.numel() // max(math.prod(b.shape[d]
                                                                          for d in dims_b), 1))
    return contraction_operations(outputs=outputs, terms=terms,
                                  complex_operands=_complex_operands(a, b))


def matmul_call_operations(a: torch.Tensor, b: torch.Tensor) -> Operations:
    """Real operations of ``torch.matmul(a, b)`` (``mm`` and ``bmm`` alike), batch dimensions
    broadcast, a 1-D left operand a row and a 1-D right operand a column."""
    shape_a = tuple(a.shape) if a.dim() > 1 else (1, *a.shape)
    shape_b = tuple(b.shape) if b.dim() > 1 else (*b.shape, 1)
    batch = math.prod(torch.broadcast_shapes(shape_a[:-2], shape_b[:-2]))
    return contraction_operations(outputs=batch * shape_a[-2] * shape_b[-1], terms=shape_a[-1],
                                  complex_operands=_complex_operands(a, b))
