"""The paper's hand grid (van den Dool et al. 2023, section 4.1): its uniform quantization
regimes and its spatial scale factors; and its models' sizes (Table 2). Plain data, importable
without torch."""

from __future__ import annotations

from collections.abc import Mapping

from autoq.bits import Bits

REGIMES: Mapping[str, Bits] = {
    "float": None,
    "w8a16": (8, 16),
    "w8a8": (8, 8),
    "w4a8": (4, 8),
    "w4a4": (4, 4),
}
"""Regime name → ``(weight_bits, act_bits)`` of every layer (``None``: all float), as in the
paper's section 4.1."""

PAPER_SCALES: tuple[float, ...] = (1.0, 0.7, 0.5, 0.3, 0.2)
"""The spatial scale factors of the paper's experiments: with :data:`REGIMES`, its hand grid."""

PAPER_MFLOPS: Mapping[str, Mapping[str, int]] = {
    "diffsorp": {"fno": 15, "unet": 7, "transformer": 4},
    "burgers": {"fno": 21, "unet": 14, "transformer": 9},
    "darcy": {"fno": 150, "unet": 34, "transformer": 69},
    "ns2d": {"fno": 210, "unet": 181, "transformer": 118},
}
"""The paper's Table 2: float FLOPs (millions) of its models, PDE → architecture → MFLOPs, as
DeepSpeed's profiler reports them at batch 1 on the data grid (:func:`autoq.cost.deepspeed_flops`).
The bundled ``<pde>-<arch>-paper`` spaces are sized to them."""
