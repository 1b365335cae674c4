"""Bit-operation cost of a trial config (van den Dool et al. 2023, arXiv 2308.07350, section 3.5).

Per entry ``M · b_w · b_a + A · b_a``, summed over the network, with ``M`` multiplications and
``A`` additions per forward pass at batch size 1. Float work (float layers, FFTs, resizes,
activations, norms) is priced at 16/16 bits. Counts:

- linear and convolution layers, activations, norms, pooling: DeepSpeed's flops profiler, ``M`` =
  MACs, ``A`` = FLOPs − MACs (a ``k``-term dot product is ``k`` MACs and ``k`` additions), plus
  one addition per output for a linear layer's bias, which DeepSpeed counts for convolutions only;
- spectral convolutions: four real products per complex multiply-accumulate on the modes kept at
  that grid (``4·C_in·C_out·K`` MACs) plus two additions per output coefficient;
- neuraloperator's spectral convolutions (FNO, TFNO): the contractions they run, as they run them
  (:mod:`autoq.cost._contractions`): the dense weight's einsum with the kept coefficients (the
  same count as above); a factorized weight's pairwise contractions along opt-einsum's path
  (``implementation="factorized"``), or the mode products that rebuild the weight plus the dense
  einsum (``"reconstructed"``); each output of a complex contraction of ``K`` terms is ``4K``
  MACs and two additions, a real × complex one ``2K`` MACs;
- FFTs: every ``torch.fft`` transform a module runs, with the shapes it runs on, as the entries
  ``<path>.fft`` (forward) and ``<path>.ifft`` (inverse); ``5 N log2 N`` real operations per
  complex transform of ``N`` points, split ``2 N log2 N`` multiplications and ``3 N log2 N``
  additions (one complex multiplication and two complex additions per radix-2 butterfly), a real
  transform half that; when the config runs a spectral convolution's transforms as DFT matrix
  products (``TrialConfig.transforms``, its ``dft`` transform), the entries ``<path>.dft`` and
  ``<path>.idft`` instead, priced at the layer's bits: the products as the layer computes them
  (:func:`~autoq.cost._counts.dft_operations`: the real DFT of the last axis, ``2·n_d·k_d`` MACs
  per channel and line; the complex DFT of each signed axis on the kept columns only, 4 real
  MACs per complex MAC plus 2 additions per output; the inverses in reverse order, the last
  axis' two products joined by one addition per grid point);
- products of two activations (:class:`~autoq.models.layers.MatMul`): ``n·k·m`` MACs per batch
  entry and head, counted like DeepSpeed counts a linear layer;
- the resizes before and after the network when it runs on a coarser grid, as the space's
  ``resample`` method computes them (:func:`~autoq.cost._counts.resize_operations`): ``linear``
  one MAC per tap (2 in 1D, 4 in 2D) per output point and channel; ``cubic`` four taps per point
  per axis, axis after axis; ``fourier`` its FFTs and one complex multiplication per kept
  coefficient;
- modules that multiply by learned weights autoq does not quantize
  (:func:`autoq.precision.unquantized_weight_modules`: ``nn.MultiheadAttention``, ``nn.Bilinear``,
  recurrent layers, a custom module's own weight matrix used through ``@``, ``einsum`` or
  ``F.linear``): an entry each, by module path, always float work (16/16 bits) and listed in
  :attr:`CostReport.unquantized`. Their products are counted at the aten level as torch runs them
  (:mod:`autoq.cost._aten`), ``M`` = matmul/convolution FLOPs / 2, one addition per MAC, one per
  output element for a bias (fused into the product or added after); what DeepSpeed counted of
  the same calls is taken out of its count so that nothing is counted twice, and its count of
  their other functionals (softmax, activations) stays. Recurrent layers: ``gates · (inputs +
  hidden)`` MACs per step, layer and direction, plus two biases. Torch's attention fast path is
  off while profiling, so attention runs as separate, countable operators. The first profile of
  a network with such modules emits one :class:`~autoq.precision.UnquantizedWeightWarning` that
  names them (paths and types).

Counts are profiled once per (architecture, grid) and cached.

Names are imported on first use (PEP 562): the paper's grid (:data:`REGIMES`,
:data:`PAPER_SCALES`) loads without torch; pricing brings torch and DeepSpeed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autoq._lazy import lazy_exports

if TYPE_CHECKING:
    from autoq.cost._bitops import (
        DFT_SUFFIX,
        IDFT_SUFFIX,
        RESIZE_IN,
        RESIZE_OUT,
        CostReport,
        LayerCost,
        bitops,
    )
    from autoq.cost._counts import Operations
    from autoq.cost._paper import PAPER_MFLOPS, PAPER_SCALES, REGIMES
    from autoq.cost._profile import FFT_SUFFIX, IFFT_SUFFIX, clear_cache, deepspeed_flops
    from autoq.cost._regimes import format_cost_table, regime_costs, uniform_regimes

__all__ = [
    "DFT_SUFFIX",
    "FFT_SUFFIX",
    "IDFT_SUFFIX",
    "IFFT_SUFFIX",
    "PAPER_MFLOPS",
    "PAPER_SCALES",
    "REGIMES",
    "RESIZE_IN",
    "RESIZE_OUT",
    "CostReport",
    "LayerCost",
    "Operations",
    "bitops",
    "clear_cache",
    "deepspeed_flops",
    "format_cost_table",
    "regime_costs",
    "uniform_regimes",
]

_SOURCES = {
    "DFT_SUFFIX": "_bitops",
    "FFT_SUFFIX": "_profile",
    "IDFT_SUFFIX": "_bitops",
    "IFFT_SUFFIX": "_profile",
    "PAPER_MFLOPS": "_paper",
    "PAPER_SCALES": "_paper",
    "REGIMES": "_paper",
    "RESIZE_IN": "_bitops",
    "RESIZE_OUT": "_bitops",
    "CostReport": "_bitops",
    "LayerCost": "_bitops",
    "Operations": "_counts",
    "bitops": "_bitops",
    "clear_cache": "_profile",
    "deepspeed_flops": "_profile",
    "format_cost_table": "_regimes",
    "regime_costs": "_regimes",
    "uniform_regimes": "_regimes",
}
"""Each public name → the submodule defining it."""


__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, __all__)
