"""Every analytic and profiled count held against a hand count, one layer type at a time."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from autoq.cost import LayerCost, bitops
from autoq.models import TransformerConfig, build_model
from autoq.models.layers import SpectralConv
from autoq.precision import TrialConfig


def entries(
    model: nn.Module, *, data_shape: tuple[int, ...], in_channels: int, scale: float = 1.0
) -> dict[str, tuple[int, int]]:
    """Every entry's (M, A) for an all-float config."""
    config = TrialConfig.for_model(model, scale=scale, bits={})
    report = bitops(model, config, data_shape=data_shape, in_channels=in_channels)
    return {name: (c.multiplications, c.additions) for name, c in report.layers.items()}


def layer(
    model: nn.Module, name: str, *, data_shape: tuple[int, ...], in_channels: int
) -> LayerCost:
    config = TrialConfig.for_model(model, scale=1.0, bits={})
    return bitops(model, config, data_shape=data_shape, in_channels=in_channels).layers[name]


@pytest.mark.parametrize("bias", [True, False])
def test_linear_counts_one_mac_per_weight_use_and_one_add_per_bias(bias: bool) -> None:
    # (1, 3, 16) → Linear over the last axis: 3 rows × 16 inputs × 8 outputs.
    model = nn.Sequential(nn.Linear(16, 8, bias=bias))
    macs = 3 * 16 * 8
    assert entries(model, data_shape=(16,), in_channels=3)["0"] == (macs, macs + bias * 3 * 8)


@pytest.mark.parametrize("bias", [True, False])
def test_conv1d_with_padding_and_stride(bias: bool) -> None:
    # Length 17, kernel 3, padding 1, stride 2: (17 + 2 - 3) // 2 + 1 = 9 outputs.
    model = nn.Sequential(nn.Conv1d(3, 4, 3, padding=1, stride=2, bias=bias))
    macs = 3 * 3 * 4 * 9
    assert entries(model, data_shape=(17,), in_channels=3)["0"] == (macs, macs + bias * 4 * 9)


@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_with_padding_and_stride(bias: bool) -> None:
    # 9×8 grid, 3×3 kernel, padding 1, stride 2: a 5×4 output.
    model = nn.Sequential(nn.Conv2d(2, 5, 3, padding=1, stride=2, bias=bias))
    macs = 2 * 9 * 5 * 20
    assert entries(model, data_shape=(9, 8), in_channels=2)["0"] == (macs, macs + bias * 5 * 20)


@pytest.mark.parametrize(
    ("transpose", "data_shape", "out_points"),
    [(nn.ConvTranspose1d, (5,), 10), (nn.ConvTranspose2d, (3, 5), 60)],
)
def test_conv_transpose_counts_each_input_point_times_the_kernel(
    transpose: type[nn.Module], data_shape: tuple[int, ...], out_points: int
) -> None:
    # Kernel 2, stride 2: every input point feeds kernel-size outputs per output channel.
    model = nn.Sequential(transpose(4, 3, 2, stride=2))
    kernel = 2 ** len(data_shape)
    macs = 4 * 3 * kernel * math.prod(data_shape)
    counts = entries(model, data_shape=data_shape, in_channels=4)
    assert counts["0"] == (macs, macs + 3 * out_points)


def real_fft(n: int) -> tuple[float, float]:
    """Hand count of a real FFT of n points: half of 2 n log2 n mults and 3 n log2 n adds."""
    return n * math.log2(n), 1.5 * n * math.log2(n)


def complex_fft(n: int) -> tuple[float, float]:
    return 2 * n * math.log2(n), 3 * n * math.log2(n)


@pytest.mark.parametrize(("points", "kept"), [(32, 5), (6, 4)])
def test_spectral_conv_1d_counts_kept_modes_and_transforms(points: int, kept: int) -> None:
    # modes=5; a 6-point grid has only 6 // 2 + 1 = 4 modes.
    model = nn.Sequential(SpectralConv(3, 4, (5,)))
    counts = entries(model, data_shape=(points,), in_channels=3)
    assert counts["0"] == (4 * 3 * 4 * kept, 4 * 3 * 4 * kept + 2 * 4 * kept)
    mults, adds = real_fft(points)
    assert counts["0.fft"] == (round(3 * mults), round(3 * adds))
    assert counts["0.ifft"] == (round(4 * mults), round(4 * adds))


@pytest.mark.parametrize(
    ("grid", "kept"),
    [((16, 8), (4, 3)), ((6, 4), (3, 3))],  # coarse: min(4, 6 // 2), min(3, 4 // 2 + 1)
)
def test_spectral_conv_2d_counts_kept_modes_and_transforms(
    grid: tuple[int, int], kept: tuple[int, int]
) -> None:
    model = nn.Sequential(SpectralConv(2, 3, (4, 3)))
    counts = entries(model, data_shape=grid, in_channels=2)
    modes = 2 * kept[0] * kept[1]
    assert counts["0"] == (4 * 2 * 3 * modes, 4 * 2 * 3 * modes + 2 * 3 * modes)
    rows, cols = grid
    # A real transform of every row, then complex ones down the kept columns only (the layer
    # truncates the last axis before transforming the first).
    real_m, real_a = real_fft(cols)
    cplx_m, cplx_a = complex_fft(rows)
    per_channel = (rows * real_m + kept[1] * cplx_m, rows * real_a + kept[1] * cplx_a)
    assert counts["0.fft"] == tuple(round(2 * c) for c in per_channel)
    assert counts["0.ifft"] == tuple(round(3 * c) for c in per_channel)


def dft_entries(model: nn.Module, *, data_shape: tuple[int, ...], in_channels: int,
                bits: tuple[int, int]) -> dict[str, LayerCost]:
    """Every entry of a config that runs layer ``0``'s transforms as DFT matrix products."""
    config = TrialConfig.for_model(model, scale=1.0, bits={"0": bits}, transforms={"0": "dft"})
    return dict(bitops(model, config, data_shape=data_shape, in_channels=in_channels).layers)


@pytest.mark.parametrize(("points", "kept"), [(32, 5), (6, 4)])
def test_spectral_conv_1d_dft_transform_counts_its_matrix_products(points: int,
                                                                   kept: int) -> None:
    # 3 channels in, 4 out. Forward: x (3, n) @ cos (n, k) and @ sin: 2 products of n terms for
    # each of 3·k outputs. Inverse: real (4, k) @ (k, n) and imag @ (k, n), each 4·n outputs of
    # k terms, then one addition joining them per output.
    model = nn.Sequential(SpectralConv(3, 4, (5,)))
    counts = dft_entries(model, data_shape=(points,), in_channels=3, bits=(2, 3))
    forward = 2 * 3 * kept * points
    inverse = 2 * 4 * points * kept
    assert (counts["0.dft"].multiplications, counts["0.dft"].additions) == (forward, forward)
    assert (counts["0.idft"].multiplications, counts["0.idft"].additions) == (
        inverse, inverse + 4 * points)
    assert "0.fft" not in counts and "0.ifft" not in counts
    mixing = 4 * 3 * 4 * kept
    assert (counts["0"].multiplications, counts["0"].additions) == (mixing, mixing + 2 * 4 * kept)
    # At the layer's bits, M·b_w·b_a + A·b_a.
    assert counts["0.dft"].cost == forward * 2 * 3 + forward * 3
    assert counts["0.idft"].cost == inverse * 2 * 3 + (inverse + 4 * points) * 3
    assert list(counts) == ["0", "0.dft", "0.idft"]


@pytest.mark.parametrize(
    ("grid", "kept"),
    [((16, 8), (4, 3)), ((6, 4), (3, 3))],  # coarse: min(4, 6 // 2), min(3, 4 // 2 + 1)
)
def test_spectral_conv_2d_dft_transform_counts_its_matrix_products(
    grid: tuple[int, int], kept: tuple[int, int]
) -> None:
    model = nn.Sequential(SpectralConv(2, 3, (4, 3)))
    counts = dft_entries(model, data_shape=grid, in_channels=2, bits=(4, 8))
    rows, cols = grid
    k1, k2 = kept
    # Forward, 2 channels: the real DFT of every row, (rows, cols) @ (cols, k2) for cos and sin;
    # then down the k2 kept columns only, the complex (2·k1, rows) DFT: 4 real products of
    # `rows` terms per output, 2·k1·k2 outputs per channel, and a subtraction (real part) and
    # an addition (imaginary part) per output.
    last = 2 * 2 * rows * cols * k2
    signed = 4 * 2 * (2 * k1 * k2) * rows
    assert (counts["0.dft"].multiplications, counts["0.dft"].additions) == (
        last + signed, last + signed + 2 * 2 * (2 * k1 * k2))
    # Inverse, 3 channels: the complex (rows, 2·k1) inverse down the k2 columns (rows·k2
    # outputs, 2·k1 terms, 2 joining additions each), then the real inverse of every row,
    # (rows, k2) @ (k2, cols) for both parts joined by one addition per grid point.
    signed = 4 * 3 * (rows * k2) * (2 * k1)
    last = 2 * 3 * rows * k2 * cols
    assert (counts["0.idft"].multiplications, counts["0.idft"].additions) == (
        signed + last, signed + 2 * 3 * rows * k2 + last + 3 * rows * cols)
    assert counts["0.dft"].weight_bits == 4 and counts["0.dft"].act_bits == 8
    assert counts["0.idft"].quantized


@pytest.mark.parametrize(("grid", "modes"), [((32,), (5,)), ((16, 8), (4, 3)), ((7, 9), (5, 5))])
def test_dft_counts_are_the_products_torch_runs(grid: tuple[int, ...],
                                                modes: tuple[int, ...]) -> None:
    """torch's own FLOP counter over the layer's DFT path (its matrix products and the einsums
    of the mixing, 2 FLOPs per multiply-accumulate) agrees with the count's multiplications."""
    layer = SpectralConv(3, 4, modes)
    counts = dft_entries(nn.Sequential(layer), data_shape=grid, in_channels=3, bits=(8, 8))
    layer.set_transform("dft", grid)
    with FlopCounterMode(display=False) as counter:
        layer(torch.zeros(1, 3, *grid))
    assert counter.get_total_flops() == 2 * sum(
        counts[name].multiplications for name in ("0", "0.dft", "0.idft"))


class FullSpectrumRoundTrip(nn.Module):
    """rfftn, a complex fft and its inverse, then irfftn, over the last two axes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spectrum = torch.fft.ifft(torch.fft.fft(torch.fft.rfftn(x, dim=(-2, -1)), dim=-2), dim=-2)
        return torch.fft.irfftn(spectrum, s=x.shape[-2:], dim=(-2, -1))


def test_every_torch_fft_call_is_charged_to_its_module() -> None:
    model = nn.Sequential(FullSpectrumRoundTrip())
    rows, cols, channels = 8, 12, 2
    counts = entries(model, data_shape=(rows, cols), in_channels=channels)
    half = cols // 2 + 1
    real_m, real_a = real_fft(cols)
    cplx_m, cplx_a = complex_fft(rows)
    # rfftn: rows real transforms, then half columns of complex ones; fft down the same columns.
    rfftn = (rows * real_m + half * cplx_m, rows * real_a + half * cplx_a)
    fft = (half * cplx_m, half * cplx_a)
    expected = tuple(
        round(channels * a) + round(channels * b) for a, b in zip(rfftn, fft, strict=True)
    )
    assert counts["0.fft"] == expected
    assert counts["0.ifft"] == expected


@pytest.mark.parametrize(("data_shape", "tokens"), [((32,), 8), ((8, 12), 6)])
def test_attention_products_count_n_k_m_per_head(data_shape: tuple[int, ...], tokens: int) -> None:
    config = TransformerConfig(width=12, heads=2, layers=1, patch=4, feed_forward_width=16)
    model = build_model(config, spatial_dims=len(data_shape), in_channels=3, out_channels=1)
    counts = entries(model, data_shape=data_shape, in_channels=3)
    heads, head_width = 2, 6
    key_value = heads * head_width * tokens * head_width  # Kᵀ (d × n) · V (n × d)
    query = heads * tokens * head_width * head_width  # Q (n × d) · KV (d × d)
    assert counts["blocks.0.attention.key_value_product"] == (key_value, key_value)
    assert counts["blocks.0.attention.query_product"] == (query, query)
    assert counts["blocks.0.attention.query"] == (tokens * 12 * 12, tokens * 12 * 12 + tokens * 12)


def test_matmul_and_linear_conventions_agree_with_deepspeed() -> None:
    """Our MatMul count is DeepSpeed's torch.matmul count; our Linear adds DeepSpeed's missing
    bias additions and nothing else."""
    from deepspeed.profiling.flops_profiler import FlopsProfiler

    config = TransformerConfig(width=8, heads=2, layers=1, patch=4, feed_forward_width=16)
    model = build_model(config, spatial_dims=1, in_channels=2, out_channels=1)
    ours = entries(model, data_shape=(24,), in_channels=2)
    profiler = FlopsProfiler(model)
    profiler.start_profile()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 2, 24))
        theirs = {n: (m.__macs__, m.__flops__ - m.__macs__) for n, m in model.named_modules()}
    finally:
        profiler.end_profile()
    for name in ("blocks.0.attention.key_value_product", "blocks.0.attention.query_product"):
        assert ours[name] == theirs[name]
    tokens = 24 // 4
    macs, adds = theirs["blocks.0.feed_forward.hidden"]
    assert ours["blocks.0.feed_forward.hidden"] == (macs, adds + tokens * 16)


@pytest.mark.parametrize(("data_shape", "grid"), [((20,), (10,)), ((8, 6), (4, 3))])
def test_resizes_count_one_mac_per_tap_per_output_point_and_channel(
    data_shape: tuple[int, ...], grid: tuple[int, ...]
) -> None:
    conv = nn.Conv1d if len(data_shape) == 1 else nn.Conv2d
    model = nn.Sequential(conv(2, 3, 1))
    counts = entries(model, data_shape=data_shape, in_channels=2, scale=0.5)
    taps = 2 ** len(data_shape)  # linear: 2, bilinear: 4
    into = 2 * math.prod(grid) * taps
    back = 3 * math.prod(data_shape) * taps
    assert counts["resize.in"] == (into, into)
    assert counts["resize.out"] == (back, back)
    assert list(counts) == ["resize.in", "0", "resize.out"]


def test_no_resize_entries_at_full_scale() -> None:
    model = nn.Sequential(nn.Conv1d(2, 3, 1))
    assert list(entries(model, data_shape=(20,), in_channels=2)) == ["0"]


def _resize_entries(data_shape: tuple[int, ...], resample: str) -> dict[str, tuple[int, int]]:
    """(M, A) of the two resizes around a 2 → 3 channel pointwise convolution at scale 0.5."""
    conv = nn.Conv1d if len(data_shape) == 1 else nn.Conv2d
    model = nn.Sequential(conv(2, 3, 1))
    config = TrialConfig.for_model(model, scale=0.5, bits={}, resample=resample)
    report = bitops(model, config, data_shape=data_shape, in_channels=2)
    return {name: (c.multiplications, c.additions) for name, c in report.layers.items()
            if name.startswith("resize.")}


def test_cubic_resizes_count_four_taps_per_point_axis_after_axis() -> None:
    # 1D 20 → 10 → 20: 4 taps per output point and channel.
    assert _resize_entries((20,), "cubic") == {"resize.in": (2 * 10 * 4, 2 * 10 * 4),
                                               "resize.out": (3 * 20 * 4, 3 * 20 * 4)}
    # 2D (8, 6) → (4, 3): axis 0 first, to (4, 6), then axis 1, to (4, 3); and back up, to
    # (8, 3) then (8, 6), where an axis of 3 points has 3 taps, not 4.
    into = 2 * (4 * 6) * 4 + 2 * (4 * 3) * 4
    back = 3 * (8 * 3) * 4 + 3 * (8 * 6) * 3
    assert _resize_entries((8, 6), "cubic") == {"resize.in": (into, into),
                                                "resize.out": (back, back)}


def _fft(n: int, lines: int, *, real: bool) -> tuple[float, float]:
    """5 N log2 N per complex transform, 2 of them multiplications; half for a real one."""
    n_log_n = lines * n * math.log2(n) * (0.5 if real else 1.0)
    return 2 * n_log_n, 3 * n_log_n


def test_fourier_resizes_count_their_ffts_and_one_complex_product_per_kept_mode() -> None:
    # 1D 20 → 10, 2 channels: |k| < 5 kept, so frequencies 0..4 of the half spectrum.
    # rfft of 20 points (2 lines), 5 complex products (4 real products and 2 combining
    # additions each, counted as MACs), irfft of 10 points (2 lines).
    parts = [_fft(20, 2, real=True), (4 * 2 * 5, 6 * 2 * 5), _fft(10, 2, real=True)]
    into = (round(parts[0][0]) + parts[1][0] + round(parts[2][0]),
            round(parts[0][1]) + parts[1][1] + round(parts[2][1]))
    assert _resize_entries((20,), "fourier")["resize.in"] == into
    # 2D (8, 6) → (4, 3), 2 channels: 2 frequencies of the half spectrum on axis 1 (|k| < 3/2),
    # 3 signed ones on axis 0 (|k| < 2). rfft along axis 1 (6 points, 8 lines per channel), fft
    # along axis 0 on the 2 kept columns only (8 points), 3 × 2 complex products, ifft along
    # axis 0 (4 points, 2 columns), irfft along axis 1 (3 points, 4 lines).
    ffts = [_fft(6, 2 * 8, real=True), _fft(8, 2 * 2, real=False), _fft(4, 2 * 2, real=False),
            _fft(3, 2 * 4, real=True)]
    products = 2 * 3 * 2
    expected = (sum(round(m) for m, _ in ffts) + 4 * products,
                sum(round(a) for _, a in ffts) + 6 * products)
    assert _resize_entries((8, 6), "fourier")["resize.in"] == expected


def test_resize_counts_refuse_an_unknown_method_and_mismatched_grids() -> None:
    from autoq.cost._counts import Operations, resize_operations

    # Linear unless told: 2 taps per point of a 1-D grid.
    assert resize_operations(channels=1, in_shape=(8,), out_shape=(4,)) == Operations(8, 8)
    with pytest.raises(ValueError, match="linear, cubic or fourier, got 'nearest'"):
        resize_operations(channels=1, in_shape=(8,), out_shape=(4,), method="nearest")
    with pytest.raises(ValueError, match=r"in_shape \(8,\) and out_shape \(4, 4\)"):
        resize_operations(channels=1, in_shape=(8,), out_shape=(4, 4))


def test_dft_operations_count_each_axis_of_a_3d_grid_by_hand() -> None:
    """The count is written for any number of axes (the layer runs 1D and 2D): on a 3D grid
    each signed axis' complex DFT sees the axes before it already in the spectrum (forward) or
    back on the grid (inverse), and the others as they are then. Batch 1 unless given."""
    from autoq.cost._counts import Operations, dft_operations

    c, (n1, n2, n3), (k1, k2, k3) = 3, (8, 14, 10), (2, 3, 4)  # no axis with n = 2·k
    forward = dft_operations(channels=c, spatial=(n1, n2, n3), kept=(k1, k2, k3), inverse=False)
    last = 2 * c * n1 * n2 * n3 * k3  # x @ cos and x @ sin: n3 terms per kept mode
    first = c * 2 * k1 * n2 * k3  # axis 1 to its 2·k1 modes, n1 terms each; axis 2 still n2
    second = c * 2 * k1 * 2 * k2 * k3  # axis 2 to its 2·k2 modes, n2 terms each
    assert forward == Operations(last + 4 * first * n1 + 4 * second * n2,
                                 last + 4 * first * n1 + 2 * first + 4 * second * n2 + 2 * second)
    inverse = dft_operations(channels=c, spatial=(n1, n2, n3), kept=(k1, k2, k3), inverse=True)
    first = c * n1 * 2 * k2 * k3  # axis 1 back to n1 points, 2·k1 terms; axis 2 still 2·k2
    second = c * n1 * n2 * k3  # axis 2 back to n2 points, 2·k2 terms
    points = c * n1 * n2 * n3  # real @ cos + imag @ sin, k3 terms each, and one joining add
    assert inverse == Operations(
        4 * first * 2 * k1 + 4 * second * 2 * k2 + 2 * points * k3,
        4 * first * 2 * k1 + 2 * first + 4 * second * 2 * k2 + 2 * second + 2 * points * k3
        + points)
    assert dft_operations(channels=c, spatial=(n1, n2, n3), kept=(k1, k2, k3), inverse=True,
                          batch=2) == inverse + inverse
