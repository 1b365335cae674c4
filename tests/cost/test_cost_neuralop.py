"""neuraloperator's FNO and TFNO priced as they run, held against hand counts: their FFTs, their
spectral contraction (dense, and Tucker / CP / TT factors as tensorly contracts them), their
channel MLPs through DeepSpeed."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

pytest.importorskip("neuralop", reason="needs the neuralop extra")

import opt_einsum

from autoq.cost import bitops
from autoq.cost._contractions import CONTRACTIONS, call_operations, einsum_operations
from autoq.cost._counts import Operations, spectral_mixing_operations
from autoq.models import build_model
from autoq.models.config import FactoryConfig
from autoq.precision import TrialConfig

SPECTRAL = "module.fno_blocks.convs.0"


def _network(factory: str, grid: tuple[int, ...], **kwargs: object) -> nn.Module:
    torch.manual_seed(0)
    config = FactoryConfig(factory=factory, kwargs={"in_channels": 2, "out_channels": 1,
                                                    **kwargs})
    return build_model(config, spatial_dims=len(grid), in_channels=2, out_channels=1, grid=grid)


def _entries(network: nn.Module, grid: tuple[int, ...]) -> dict[str, tuple[int, int]]:
    config = TrialConfig.for_model(network, scale=1.0, bits={})
    report = bitops(network, config, data_shape=grid, in_channels=2)
    return {name: (c.multiplications, c.additions) for name, c in report.layers.items()}


def _complex(outputs: int, terms: int) -> tuple[int, int]:
    """Hand count of ``outputs`` complex dot products of ``terms`` terms: 4 real products of
    ``terms`` MACs each, then one subtraction and one addition per output."""
    return 4 * outputs * terms, 4 * outputs * terms + 2 * outputs


def _sum(*counts: tuple[int, int]) -> tuple[int, int]:
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def _real_fft(n: int, lines: int) -> tuple[float, float]:
    """Hand count of ``lines`` real FFTs of ``n`` points: half of (2 n log2 n, 3 n log2 n)."""
    return lines * n * math.log2(n), 1.5 * lines * n * math.log2(n)


def _complex_fft(n: int, lines: int) -> tuple[float, float]:
    return 2 * lines * n * math.log2(n), 3 * lines * n * math.log2(n)


def _rounded(*counts: tuple[float, float]) -> tuple[int, int]:
    return round(sum(c[0] for c in counts)), round(sum(c[1] for c in counts))


def test_fno_1d_every_entry_against_a_hand_count() -> None:
    # hidden 8, lifting/projection 16, channel MLP 4 (expansion 0.5); 32 points; n_modes 8 keeps
    # 8 // 2 + 1 = 5 modes of the real FFT. neuraloperator's MLPs are Conv1d over the points.
    network = _network("neuralop.models:FNO", (32,), n_modes=[8], hidden_channels=8, n_layers=2)
    counts = _entries(network, (32,))
    points = 32

    def conv(cin: int, cout: int, bias: bool = True) -> tuple[int, int]:
        return cin * cout * points, cin * cout * points + bias * cout * points

    expected = {
        "module.lifting.fcs.0": conv(3, 16),  # 2 channels + 1 grid coordinate
        "module.lifting.fcs.1": conv(16, 8),
        "module.projection.fcs.0": conv(8, 16),
        "module.projection.fcs.1": conv(16, 1),
    }
    for block in (0, 1):
        expected |= {
            # 8 × 8 channels × 5 modes complex MACs
            f"module.fno_blocks.convs.{block}": _complex(outputs=8 * 5, terms=8),
            # rfft / irfft of 32 points on each of 8 channels
            f"module.fno_blocks.convs.{block}.fft": _rounded(_real_fft(points, 8)),
            f"module.fno_blocks.convs.{block}.ifft": _rounded(_real_fft(points, 8)),
            f"module.fno_blocks.fno_skips.{block}.conv": conv(8, 8, bias=False),
            f"module.fno_blocks.channel_mlp.{block}.fcs.0": conv(8, 4),
            f"module.fno_blocks.channel_mlp.{block}.fcs.1": conv(4, 8),
        }
    assert {name: counts[name] for name in expected} == expected
    # The dense contraction is autoq's spectral-mixing convention.
    mixing = spectral_mixing_operations(in_channels=8, out_channels=8, kept=(5,))
    assert counts[SPECTRAL] == (mixing.multiplications, mixing.additions)


# 2D TFNO: hidden 4, n_modes (8, 6) → kept modes 8 × (6 // 2 + 1 = 4); Tucker rank 0.5 of the
# weight (4, 4, 8, 4) gives a core (3, 3, 6, 3) and factors in (4, 3), out (4, 3), x (8, 6),
# y (4, 3). The coefficients entering the contraction: (1, 4, 8, 4).
TFNO = {"n_modes": [8, 6], "hidden_channels": 4, "n_layers": 1, "rank": 0.5}


def _fft_2d(channels: int, n: int) -> tuple[int, int]:
    """rfftn / irfftn of n × n points: a real FFT along the last axis on every row, a complex one
    along the first axis on each of the n // 2 + 1 kept columns."""
    return _rounded(_real_fft(n, channels * n), _complex_fft(n, channels * (n // 2 + 1)))


def test_tfno_2d_factorized_tucker_counts_the_pairwise_contractions_that_run() -> None:
    network = _network("neuralop.models:TFNO", (16, 16), **TFNO)
    counts = _entries(network, (16, 16))
    # tensorly hands neuraloperator's equation to opt-einsum, which contracts, for these shapes:
    hand = _sum(
        _complex(outputs=3 * 8 * 4, terms=4),  # x with the input factor over the 4 in-channels
        _complex(outputs=8 * 3 * 3 * 3, terms=6),  # core with the x factor over rank 6
        _complex(outputs=3 * 8 * 4 * 3, terms=1),  # that (r0, kx, ky) with the y factor (r3, ky)
        _complex(outputs=8 * 4 * 3, terms=3 * 3),  # the two results, over ranks r0 and r3
        _complex(outputs=8 * 4 * 4, terms=3),  # with the output factor over rank r1
    )
    assert counts[SPECTRAL] == hand == (12864, 14512)
    assert counts[SPECTRAL + ".fft"] == counts[SPECTRAL + ".ifft"] == _fft_2d(4, 16)


def test_tfno_2d_reconstructed_tucker_counts_the_rebuild_and_the_dense_contraction() -> None:
    network = _network("neuralop.models:TFNO", (16, 16), implementation="reconstructed", **TFNO)
    counts = _entries(network, (16, 16))
    hand = _sum(
        # tucker_to_tensor: one mode product per axis, each a matrix product with the unfolding
        _complex(outputs=4 * 3 * 6 * 3, terms=3),  # in-channel factor (4, 3) · core
        _complex(outputs=4 * 4 * 6 * 3, terms=3),  # out-channel factor (4, 3)
        _complex(outputs=8 * 4 * 4 * 3, terms=6),  # x factor (8, 6)
        _complex(outputs=4 * 4 * 4 * 8, terms=3),  # y factor (4, 3)
        _complex(outputs=4 * 8 * 4, terms=4),  # the dense contraction, as in an FNO
    )
    assert counts[SPECTRAL] == hand == (23456, 26512)


# neuraloperator's contraction equations for a 2D layer (x: batch, in, kx, ky), read from
# neuralop/layers/spectral_convolution.py.
EQUATIONS = {
    "tucker": "abcd,fghi,bf,eg,ch,di->aecd",
    "cp": "abcd,e,be,fe,ce,de->afcd",
    "tt": "abcd,fbg,geh,hci,idj->aecd",
}


@pytest.mark.parametrize("factorization", list(EQUATIONS))
def test_factorized_contractions_follow_opt_einsum_s_optimal_path(factorization: str) -> None:
    """Independently of the profiler: the pairwise steps of opt-einsum's optimal path for
    neuraloperator's equation, each a complex contraction of its output by its summed indices."""
    network = _network("neuralop.models:TFNO", (16, 16), **{**TFNO, "rank": 0.4,
                                                            "factorization": factorization})
    counts = _entries(network, (16, 16))
    layer = dict(network.named_modules())[SPECTRAL]
    shapes = [(1, 4, 8, 4), *(tuple(p.shape) for p in layer.weight.parameters())]
    _, path = opt_einsum.contract_path(EQUATIONS[factorization], *shapes, shapes=True,
                                       optimize="optimal")
    expected = (0, 0)
    for step in path.contraction_list:
        inputs, output = step[2].split("->")
        summed = set(inputs.replace(",", "")) - set(output)
        expected = _sum(expected, _complex(
            outputs=math.prod(path.size_dict[c] for c in output),
            terms=math.prod(path.size_dict[c] for c in summed)))
    assert counts[SPECTRAL] == expected


def test_the_spectral_entry_is_priced_at_its_bits() -> None:
    network = _network("neuralop.models:TFNO", (16, 16), **TFNO)
    config = TrialConfig.for_model(network, scale=1.0, bits={SPECTRAL: (4, 6)})
    entry = bitops(network, config, data_shape=(16, 16), in_channels=2).layers[SPECTRAL]
    assert (entry.weight_bits, entry.act_bits, entry.quantized) == (4, 6, True)
    assert entry.cost == (12864 * 4 + 14512) * 6


def test_profiling_restores_the_contraction_functions() -> None:
    before = {name: getattr(torch, name) for name in CONTRACTIONS}
    network = _network("neuralop.models:FNO", (32,), n_modes=[8], hidden_channels=4, n_layers=1)
    _entries(network, (32,))
    assert {name: getattr(torch, name) for name in CONTRACTIONS} == before


# The call counts -------------------------------------------------------------------------------


def test_a_call_counts_its_products_by_the_operands_dtypes() -> None:
    real, cplx = torch.ones(2, 3), torch.ones(3, 5, dtype=torch.cfloat)
    # 2 × 5 outputs of 3 terms: 30 real MACs; a complex operand doubles them, two make four
    # (plus two additions per output to combine the parts).
    assert call_operations("mm", (real, torch.ones(3, 5)), {}) == Operations(30, 30)
    assert call_operations("matmul", (real, cplx), {}) == Operations(60, 60)
    assert call_operations("matmul", (real.to(torch.cfloat), cplx), {}) == Operations(120, 140)
    assert call_operations("tensordot", (torch.ones(2, 3, 4), torch.ones(4, 3, 6)),
                           {"dims": ([1, 2], [1, 0])}) == Operations(2 * 6 * 12, 2 * 6 * 12)
    assert call_operations("tensordot", (torch.ones(2, 3, 4), torch.ones(3, 4, 6), 2), {}) == \
        Operations(144, 144)
    assert call_operations("bmm", (torch.ones(7, 2, 3), torch.ones(7, 3, 5)), {}) == \
        Operations(7 * 30, 7 * 30)


def test_einsum_forms_are_one_count() -> None:
    a, b = torch.ones(2, 3, 4), torch.ones(4, 5)
    explicit = call_operations("einsum", ("bij,jk->bik", a, b), {})
    assert explicit == Operations(2 * 3 * 5 * 4, 2 * 3 * 5 * 4)
    assert call_operations("einsum", ("bij,jk->bik", [a, b]), {}) == explicit  # opt-einsum's
    assert einsum_operations("...j,jk->...k", [a, b]) == explicit
    assert einsum_operations("bij,jk", [a, b]) == explicit  # implicit output: bik
    assert einsum_operations("ij->ji", [torch.ones(2, 3)]) == Operations(0, 0)


def test_an_einsum_of_three_operands_is_the_sum_of_the_pairs_torch_contracts() -> None:
    a, b, c = torch.ones(8, 2), torch.ones(2, 9), torch.ones(9, 3)
    # Any order opt-einsum picks for a chain of three matrices costs what its two steps cost.
    first = einsum_operations("ij,jk->ik", [a, b]) + einsum_operations("ik,kl->il",
                                                                       [torch.ones(8, 9), c])
    second = einsum_operations("jk,kl->jl", [b, c]) + einsum_operations("ij,jl->il",
                                                                        [a, torch.ones(2, 3)])
    assert einsum_operations("ij,jk,kl->il", [a, b, c]) in (first, second)
    assert einsum_operations("ij,jk,kl->il", [a, b, c]) == min(
        first, second, key=lambda o: o.multiplications)
