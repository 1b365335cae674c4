"""Quantized definitions of the spectral convolution and the activation product."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autoq.bits import Transform
from autoq.errors import QuantizationError
from autoq.models.layers import MatMul, SpectralConv
from autoq.precision import TrialConfig
from autoq.quant import QuantizedSpectralConv, build_sim, calibrate


class _Product(nn.Module):
    """``a @ b`` of two inputs packed in one tensor ``(batch, 2, n, n)``."""

    def __init__(self) -> None:
        super().__init__()
        self.product = MatMul()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.product(x[:, 0], x[:, 1])


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize(
    ("spatial", "modes"),
    [((32,), (4,)), ((16,), (9,)), ((33,), (20,)), ((12, 16), (3, 5)), ((8, 10), (4, 6)),
     ((7, 9), (5, 5))],
)
def test_spectral_dft_path_equals_the_fft_layer(spatial: tuple[int, ...], modes: tuple[int, ...]):
    """The ONNX-export path (DFT matrix products) is the FFT layer, also with truncated modes,
    odd grids and the Nyquist frequency kept."""
    torch.manual_seed(0)
    layer = SpectralConv(3, 2, modes).double()
    x = torch.randn(2, 3, *spatial, dtype=torch.float64)
    quantized = QuantizedSpectralConv.from_module(layer)
    torch.testing.assert_close(quantized._forward_dft(x), layer(x), rtol=0, atol=1e-12)


def _spectral_case(spatial_dims: int) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    """A seeded 6-channel spectral layer (5 modes per axis), a batch of inputs on a 24-point
    grid, and the float layer's output on them."""
    torch.manual_seed(0)
    network = nn.Sequential(SpectralConv(6, 6, (5,) * spatial_dims))
    x = torch.randn(8, 6, *(24,) * spatial_dims)
    with torch.no_grad():
        return network, x, network(x)


@pytest.mark.parametrize("spatial_dims", [1, 2])
def test_spectral_quantized_at_16_bits_matches_float_and_differs_at_4(spatial_dims: int) -> None:
    network, x, reference = _spectral_case(spatial_dims)
    errors = {}
    for bits in (16, 4):
        qnet = build_sim(network, TrialConfig(scale=1.0, bits={"0": (bits, bits)}),
                         dummy_input=x[:1], calibration="min_max")
        assert isinstance(qnet.model[0], QuantizedSpectralConv)
        calibrate(qnet, [x])
        with torch.no_grad():
            errors[bits] = _relative_error(qnet.model(x), reference)
    assert errors[16] < 1e-3
    assert errors[4] > 2e-2


def test_spectral_coefficients_share_one_grid_of_both_parts() -> None:
    torch.manual_seed(0)
    network = nn.Sequential(SpectralConv(4, 4, (6,)))
    x = torch.randn(8, 4, 32)
    qnet = build_sim(network, TrialConfig(scale=1.0, bits={"0": (8, 4)}), dummy_input=x[:1],
                     calibration="min_max")
    calibrate(qnet, [x])
    coefficients = torch.fft.rfft(x, norm="forward")[..., :6]
    parts = torch.stack((coefficients.real, coefficients.imag))
    quantizer = qnet.model[0].input_quantizers[0]
    assert quantizer.bitwidth == 4 and not quantizer.symmetric
    low, high = float(quantizer.get_min().detach()), float(quantizer.get_max().detach())
    step = (high - low) / 15
    # Min-max over both parts at once, up to AIMET's shift that puts zero on the grid.
    for part in parts:
        assert low - step / 2 <= float(part.min()) and float(part.max()) <= high + step / 2
    assert abs(low - float(parts.min())) <= step and abs(high - float(parts.max())) <= step


def test_matmul_quantizes_both_operands_at_their_own_bits() -> None:
    torch.manual_seed(0)
    network = _Product()
    x = torch.randn(16, 2, 8, 8)
    with torch.no_grad():
        reference = network(x)
    qnet = build_sim(network, TrialConfig(scale=1.0, bits={"product": (4, 8)}), dummy_input=x[:1],
                     calibration="min_max")
    calibrate(qnet, [x])
    left, right = qnet.model.product.input_quantizers
    assert (left.bitwidth, left.symmetric, right.bitwidth, right.symmetric) == (8, False, 4, True)
    with torch.no_grad():
        a = left(x[:, 0]).dequantize()
        b = right(x[:, 1]).dequantize()
        torch.testing.assert_close(qnet.model(x), a @ b)
        assert 1e-3 < _relative_error(qnet.model(x), reference) < 0.3


def _dft_config(bits: tuple[int, int], transform: Transform = "dft") -> TrialConfig:
    return TrialConfig(scale=1.0, bits={"0": bits}, transforms={"0": transform})


@pytest.mark.parametrize("spatial_dims", [1, 2])
def test_spectral_dft_transform_quantizes_every_matrix_product(spatial_dims: int) -> None:
    """Under the dft transform each DFT product has its matrix pair quantized at the weight
    bits (symmetric, on a grid the constant matrix's values take at most 2^b of) and its signal
    at the activation bits; at 16 bits the layer is the float one, at 4 bits it is further from
    it than the fft transform at 4 bits (more tensors are rounded)."""
    network, x, reference = _spectral_case(spatial_dims)
    errors = {}
    for bits, transform in (((16, 16), "dft"), ((4, 6), "dft"), ((4, 6), "fft")):
        qnet = build_sim(network, _dft_config(bits, transform), dummy_input=x[:1])
        calibrate(qnet, [x])
        with torch.no_grad():
            errors[bits, transform] = _relative_error(qnet.model(x), reference)
    assert network[0].transform == "fft"  # the float network is left as it was
    stages = 2 * spatial_dims
    qnet = build_sim(network, _dft_config((3, 5)), dummy_input=x[:1])
    calibrate(qnet, [x])
    layer = qnet.model[0]
    assert layer.transform == "dft" and layer.dft_grid == (24,) * spatial_dims
    slots = {slot: quantizer for _, slot, quantizer in qnet.quantizers()}
    assert set(slots) == ({"weight:weight_real", "weight:weight_imag", "input:0"}
                          | {f"weight:dft_matrix_{s}" for s in range(stages)}
                          | {f"input:{1 + s}" for s in range(stages)})
    for stage in range(stages):
        matrix = slots[f"weight:dft_matrix_{stage}"]
        signal = slots[f"input:{1 + stage}"]
        assert (matrix.bitwidth, matrix.symmetric, signal.bitwidth, signal.symmetric) == (
            3, True, 5, False)
        assert matrix.is_initialized() and signal.is_initialized()  # each saw its tensor
        with torch.no_grad():
            quantized = matrix(getattr(layer, f"dft_matrix_{stage}")).dequantize()
        assert len(torch.unique(quantized)) <= 2 ** 3
    assert errors[(16, 16), "dft"] < 1e-3
    assert errors[(4, 6), "dft"] > errors[(4, 6), "fft"] > 1e-2


def test_spectral_dft_transform_trains_its_ranges() -> None:
    """QAT through the DFT products: the loss reaches the layer's weights, the DFT matrices'
    ranges and the signals' ranges (straight-through estimator)."""
    torch.manual_seed(0)
    network = nn.Sequential(SpectralConv(4, 4, (5,)))
    x = torch.randn(8, 4, 32)
    qnet = build_sim(network, _dft_config((4, 8)), dummy_input=x[:1])
    calibrate(qnet, [x])
    qnet.model(x).square().mean().backward()
    layer = qnet.model[0]
    assert layer.weight_real.grad is not None and layer.weight_real.grad.abs().sum() > 0
    for quantizer in (layer.param_quantizers["dft_matrix_0"], layer.input_quantizers[1],
                      layer.input_quantizers[2]):
        assert quantizer.max.grad is not None and quantizer.max.grad.abs().sum() > 0


def test_the_dft_transform_is_refused_where_there_is_none() -> None:
    network = nn.Sequential(nn.Conv1d(4, 4, 1))
    with pytest.raises(QuantizationError, match=r"transform is autoq's SpectralConv's.*Conv1d"):
        build_sim(network, _dft_config((4, 8)), dummy_input=torch.zeros(1, 4, 8))
