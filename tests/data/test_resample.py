"""The resolution operators used to run a network at a scale factor: (bi)linear, Keys' cubic
convolution and Fourier truncation."""

from __future__ import annotations

import math

import pytest
import torch

from autoq.data import network_shape, resize
from autoq.data.resample import KEYS_A, cubic_taps, fourier_matrix
from autoq.errors import SpecError


@pytest.mark.parametrize("shape", [(256,), (64, 64)])
def test_scale_one_is_the_identity(shape: tuple[int, ...]) -> None:
    x = torch.randn(2, 3, *shape)
    assert network_shape(shape, 1.0) == shape
    assert torch.equal(resize(x, network_shape(shape, 1.0)), x)


def test_network_shape_scales_every_axis() -> None:
    assert network_shape((256,), 0.5) == (128,)
    assert network_shape((64, 64), 0.3) == (19, 19)
    assert network_shape((64, 32), 0.2) == (13, 6)


@pytest.mark.parametrize("scale", [0.0, -0.5, 1.5, float("nan")])
def test_scale_outside_unit_interval_is_rejected(scale: float) -> None:
    with pytest.raises(SpecError, match="scale factor must lie in"):
        network_shape((64,), scale)


@pytest.mark.parametrize("dims", [1, 2])
def test_down_then_up_of_a_smooth_periodic_field_is_accurate(dims: int) -> None:
    n = 128
    centres = (torch.arange(n) + 0.5) / n
    grids = torch.meshgrid(*([centres] * dims), indexing="ij")
    field = sum(torch.sin(2 * math.pi * g) for g in grids)[None, None]
    small = resize(field, network_shape(field.shape[2:], 0.5))
    assert small.shape[2:] == (64,) * dims
    back = resize(small, field.shape[2:])
    interior = (slice(None), slice(None)) + (slice(4, -4),) * dims
    error = (back - field)[interior].abs().max().item()
    # (bi)linear error is O(h²): about 1e-3 per unit sine at h = 1/64; nearest-neighbour is O(h)
    assert error < 2e-3 * dims
    rough = torch.randn_like(field)
    assert (resize(resize(rough, small.shape[2:]), rough.shape[2:]) - rough).abs().max() > 0.5


@pytest.mark.parametrize(("size", "target"), [(64, 40), (64, 16), (50, 13)])
def test_a_cell_centred_linear_ramp_is_resized_exactly(size: int, target: int) -> None:
    # Samples of a + b·x at cell centres (i + ½)/n, as the data files hold them: resized to m
    # cells they are the ramp at (j + ½)/m (a corner-aligned grid would be shifted).
    def ramp(n: int) -> torch.Tensor:
        return 0.3 + 2.0 * (torch.arange(n, dtype=torch.float64) + 0.5) / n

    line = resize(ramp(size).view(1, 1, size), (target,))
    assert torch.allclose(line.view(-1), ramp(target), rtol=0, atol=1e-12)
    plane = resize(ramp(size).view(1, 1, size, 1).expand(1, 1, size, size), (target, target))
    assert torch.allclose(plane[0, 0, :, 0], ramp(target), rtol=0, atol=1e-12)


def test_a_network_grid_keeps_two_points_at_least() -> None:
    assert network_shape((3,), 0.1) == (2,)
    assert network_shape((100, 64), 0.01) == (2, 2)
    assert network_shape((10,), 0.25) == (3,)  # rounded, not truncated: 2.5 → 3


@pytest.mark.parametrize("shape", [(8,), (4, 6)])
def test_resize_to_the_same_grid_returns_its_input_itself(shape: tuple[int, ...]) -> None:
    x = torch.randn(1, 2, *shape)
    assert resize(x, shape) is x
    assert resize(x, list(shape)) is x


@pytest.mark.parametrize("shape", [(2, 2, 2), ()])
def test_resize_names_a_tensor_it_cannot_resize(shape: tuple[int, ...]) -> None:
    x = torch.zeros(1, 1, *shape)
    with pytest.raises(SpecError) as caught:
        resize(x, (2,))
    assert str(caught.value) == ("resize supports 1 or 2 spatial dimensions, got tensor of "
                                 f"shape {(1, 1, *shape)}")


def _centres(n: int) -> torch.Tensor:
    return (torch.arange(n, dtype=torch.float64) + 0.5) / n


def _band_limited(shape: tuple[int, ...]) -> torch.Tensor:
    """A few sines of frequencies below 4 per axis at the cell centres of ``shape``, as
    ``(1, 2, *shape)`` (two channels)."""
    grids = torch.meshgrid(*[_centres(n) for n in shape], indexing="ij")
    first = 0.3 + torch.sin(2 * math.pi * grids[0]) + 0.5 * torch.cos(6 * math.pi * grids[0] + 0.4)
    second = torch.cos(2 * math.pi * sum((axis + 2) * g for axis, g in enumerate(grids)) - 1.0)
    if len(shape) == 2:
        first = first + 0.2 * torch.sin(2 * math.pi * (grids[0] - 3 * grids[1]))
    return torch.stack([first, second])[None]


@pytest.mark.parametrize(("shape", "small"), [((64,), (24,)), ((64,), (9,)), ((63,), (32,)),
                                              ((32, 30), (15, 12)), ((32, 32), (16, 9))])
def test_fourier_reproduces_a_band_limited_periodic_signal_down_and_back_up(
        shape: tuple[int, ...], small: tuple[int, ...]) -> None:
    # Frequencies up to 3 (4 on the second channel's second axis) per axis: held by every grid
    # here (|k| < 9/2); the coarse values are the signal at the coarse cell centres (the phase
    # of cell-centred grids), and zero-padding brings the fine grid back.
    signal = _band_limited(shape)
    down = resize(signal, small, "fourier")
    assert torch.allclose(down, _band_limited(small), rtol=0, atol=1e-12)
    assert torch.allclose(resize(down, shape, "fourier"), signal, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("coarse", "fine"), [(9, 20), (7, 16), ((5, 7), (12, 10))])
def test_fourier_upsampling_keeps_every_coarse_value_of_an_odd_grid(
        coarse: int | tuple[int, ...], fine: int | tuple[int, ...]) -> None:
    # An odd grid holds every one of its frequencies unambiguously: zero-padding them and
    # truncating again is the identity, whatever the values.
    small = (coarse,) if isinstance(coarse, int) else coarse
    large = (fine,) if isinstance(fine, int) else fine
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(2, 3, *small, dtype=torch.float64, generator=generator)
    back = resize(resize(values, large, "fourier"), small, "fourier")
    assert torch.allclose(back, values, rtol=0, atol=1e-12)


def test_fourier_drops_the_nyquist_frequency_of_an_even_grid() -> None:
    # cos(π m x) at the centres of m cells is ±cos(π(j + ½)) = 0 there, but the fine grid sees
    # it: a coarse grid of m points cannot tell it from its alias, so it is dropped, not folded.
    fine, m = 64, 16
    nyquist = torch.cos(math.pi * m * _centres(fine)).view(1, 1, fine)
    assert resize(nyquist, (m,), "fourier").abs().max() < 1e-12
    below = torch.cos(math.pi * (m - 2) * _centres(fine)).view(1, 1, fine)
    assert resize(below, (m,), "fourier").abs().max() > 0.9


@pytest.mark.parametrize(("n_in", "n_out"), [(20, 9), (20, 10), (9, 20), (12, 7)])
def test_fourier_matrix_is_the_fft_path_written_out(n_in: int, n_out: int) -> None:
    # The ONNX export computes the resize as this matrix (torch.onnx has no FFT).
    x = torch.randn(2, 3, n_in, dtype=torch.float64)
    assert torch.allclose(resize(x, (n_out,), "fourier"), x @ fourier_matrix(n_in, n_out).T,
                          rtol=0, atol=1e-12)


def _quadratic(shape: tuple[int, ...]) -> torch.Tensor:
    grids = torch.meshgrid(*[_centres(n) for n in shape], indexing="ij")
    value = 1.0 + 2.0 * grids[0] - 3.0 * grids[0] ** 2
    if len(shape) == 2:
        value = value + grids[0] * grids[1] - 0.5 * grids[1] ** 2
    return value[None, None]


@pytest.mark.parametrize(("shape", "target"), [((64,), (31,)), ((31,), (64,)), ((20,), (7,)),
                                               ((63,), (21,)), ((5,), (16,)),
                                               ((24, 18), (11, 40))])
def test_cubic_reproduces_a_quadratic_to_rounding_up_to_the_edges(
        shape: tuple[int, ...], target: tuple[int, ...]) -> None:
    # Keys' kernel with a = −1/2 reproduces quadratics (torch's bicubic, a = −3/4, does not),
    # and his quadratic extrapolation beyond the ends keeps that up to the grid's edges. 63 → 21
    # puts output points exactly on input points (taps at distances 0, 1 and 2).
    out = resize(_quadratic(shape), target, "cubic")
    assert torch.allclose(out, _quadratic(target), rtol=0, atol=1e-12)


def test_cubic_is_third_order_on_a_cubic() -> None:
    # Not exact on a cubic (Keys: O(h³)): halving h cuts the error about eightfold.
    errors = []
    for n in (40, 80):
        line = (_centres(n) ** 3).view(1, 1, n)
        errors.append((resize(line, (n // 2 + 3,), "cubic").view(-1)
                       - _centres(n // 2 + 3) ** 3).abs().max().item())
    assert 0 < errors[1] < errors[0] / 5


@pytest.mark.parametrize("method", ["cubic", "fourier"])
def test_resize_keeps_a_float32_tensor_float32(method: str) -> None:
    x = torch.randn(1, 2, 12, 9)
    assert resize(x, (5, 20), method).dtype == torch.float32


def test_cubic_in_2d_resizes_each_axis_as_in_1d() -> None:
    x = torch.randn(1, 2, 12, 9, dtype=torch.float64)
    both = resize(x, (5, 20), "cubic")
    rows = resize(x.transpose(2, 3).reshape(1, 2 * 9, 12), (5,), "cubic")  # axis 0 first
    rows = rows.reshape(1, 2, 9, 5).transpose(2, 3)
    columns = resize(rows.reshape(1, 2 * 5, 9), (20,), "cubic").reshape(1, 2, 5, 20)
    assert torch.allclose(both, columns, rtol=0, atol=1e-12)


def test_resize_names_an_unknown_method_and_a_wrong_size() -> None:
    x = torch.zeros(1, 1, 8)
    with pytest.raises(SpecError) as caught:
        resize(x, (4,), "nearest")  # type: ignore[arg-type]
    assert str(caught.value) == ("resample method must be one of ['linear', 'cubic', "
                                 "'fourier'], got 'nearest'")
    with pytest.raises(SpecError, match=r"needs 1 sizes, got \(4, 4\)"):
        resize(x, (4, 4), "cubic")


def _keys_by_padding(x: torch.Tensor, n_out: int) -> torch.Tensor:
    """Keys' cubic convolution of a 1-D signal written the other way round: the signal padded
    with two ghost samples per side, each the parabola through the three nearest samples, then
    the kernel's four taps summed."""
    n = len(x)
    left = [3 * x[0] - 3 * x[1] + x[2], 6 * x[0] - 8 * x[1] + 3 * x[2]]  # at -1, -2
    right = [3 * x[-1] - 3 * x[-2] + x[-3], 6 * x[-1] - 8 * x[-2] + 3 * x[-3]]  # at n, n+1
    padded = torch.stack([left[1], left[0], *x, right[0], right[1]])  # index i ↦ i + 2

    def kernel(t: float) -> float:
        t, a = abs(t), KEYS_A
        if t <= 1:
            return (a + 2) * t**3 - (a + 3) * t**2 + 1
        return a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a if t < 2 else 0.0

    out = []
    for j in range(n_out):
        s = (j + 0.5) * n / n_out - 0.5
        base = math.floor(s)
        out.append(sum(kernel(s - p) * padded[p + 2] for p in range(base - 1, base + 3)))
    return torch.stack(out)


@pytest.mark.parametrize(("n_in", "n_out"), [(8, 19), (19, 8), (12, 36), (36, 12)])
def test_cubic_equals_keys_kernel_on_the_signal_padded_with_ghost_samples(
        n_in: int, n_out: int) -> None:
    x = torch.randn(n_in, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    got = resize(x.view(1, 1, n_in), (n_out,), "cubic").view(-1)
    assert torch.allclose(got, _keys_by_padding(x, n_out), rtol=0, atol=1e-12)
    index, weight = cubic_taps(n_in, n_out)
    assert index.shape == weight.shape == (n_out, 4)  # four taps per point: what is priced
    assert abs(weight.sum(axis=1) - 1).max() < 1e-12


def test_fourier_under_onnx_export_is_the_same_map_as_matrices(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # While torch.onnx exports (no FFT there), each axis is one matrix product: the same values.
    x = torch.randn(2, 3, 17, 12, generator=torch.Generator().manual_seed(2))
    expected = resize(x, (8, 25), "fourier")
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    got = resize(x, (8, 25), "fourier")
    assert got.dtype == x.dtype and got.shape == expected.shape
    assert torch.allclose(got, expected, rtol=0, atol=1e-5)
