"""The (bi)linear resolution operators used to run a network at a scale factor."""

from __future__ import annotations

import math

import pytest
import torch

from autoq.data import network_shape, resize
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
