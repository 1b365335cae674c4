"""The paper's hand grid (van den Dool et al. 2023, section 4.1): its uniform quantization
regimes and its spatial scale factors. Plain data, importable without torch."""

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
