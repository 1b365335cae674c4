"""The vocabulary of precision, shared by every layer of autoq and importable without torch.

A layer's precision is a pair ``(weight_bits, act_bits)`` or float. Records, specs, samplers, the
quantizer and the cost model all speak it; it is defined here once.
"""

from __future__ import annotations

from typing import Literal

FLOAT = "float"
"""The marker of a layer left in floating point, in records (``{layer: [w, a] or "float"}``)
and in sampler parameters."""

Bits = tuple[int, int] | None
"""``(weight_bits, act_bits)`` of one layer, or ``None`` to keep it in float."""

Granularity = Literal["uniform", "per_block", "per_layer"]
"""How layers share precision choices: one for all, one per repeated block, one per layer."""

MIN_BITS, MAX_BITS = 2, 32
FLOAT_EQUIVALENT_BITS = 16
"""Float layers are priced as 16-bit integer work (the paper saw no loss at Int16)."""

Rank = int | float
"""A factorization rank as tensorly-torch takes it (neuraloperator's TFNO ``rank`` keyword): an
int is the rank itself, a float the fraction of the dense tensor's parameters the factorization
keeps. A search over ranks varies it beside the bits."""

Scheme = Literal["paper", "integer"]
"""Which tensors of a quantized layer carry quantizers. ``paper`` (van den Dool et al. 2023,
section 3.3): weights and inputs; outputs stay float, which is what the bit-op count prices but
no integer kernel of a runtime can run. ``integer``: outputs too, at the layer's activation bits,
so that a runtime fuses QuantizeLinear → op → QuantizeLinear into integer kernels
(QLinearConv, QLinearMatMul)."""

WeightGranularity = Literal["per_tensor", "per_channel"]
"""How many grids one weight tensor is quantized on. ``per_tensor`` (the paper, equation 5): one
scale per tensor. ``per_channel``: one scale per output channel of a linear layer, convolution
or autoq's spectral convolution, so a channel of small weights is not rounded on the grid of
the largest. The bit-op count does not depend on it."""

Resample = Literal["linear", "cubic", "fourier"]
"""How a network at a scale below 1 resizes its input down and its output up
(:func:`autoq.data.resample.resize`): ``linear`` (the paper: linear in 1D, bilinear in 2D),
``cubic`` (Keys' cubic convolution, separable) or ``fourier`` (spectral truncation down,
zero-padding up; periodic data)."""

Transform = Literal["fft", "dft"]
"""How an FNO spectral convolution (:class:`~autoq.models.layers.SpectralConv`) computes its
truncated Fourier transforms. ``fft``: float FFTs (priced as 16-bit work). ``dft``: real DFT
matrix products on the kept modes, whose operands are quantized at the layer's bits like its
channel mixing (priced as the matrix products they are, at those bits)."""

TRANSFORMS: tuple[Transform, ...] = ("fft", "dft")
