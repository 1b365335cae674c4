"""SpectralConv and Galerkin attention against references written with plain torch ops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autoq.errors import SpecError
from autoq.models import GalerkinAttention, MatMul, SpectralConv


def _reference_spectral_conv(layer: SpectralConv, x: torch.Tensor) -> torch.Tensor:
    """Li et al.'s spectral convolution with complex weights, corner by corner."""
    spatial = x.shape[2:]
    dims = tuple(range(-len(spatial), 0))
    coeff = torch.fft.rfftn(x, dim=dims, norm="forward")
    weight = torch.complex(layer.weight_real, layer.weight_imag)
    out = torch.zeros(x.shape[0], layer.out_channels, *coeff.shape[2:], dtype=coeff.dtype)
    if len(spatial) == 1:
        k = min(layer.modes[0], spatial[0] // 2 + 1)
        out[..., :k] = torch.einsum("bix,iox->box", coeff[..., :k], weight[..., :k])
    else:
        k1 = min(layer.modes[0], spatial[0] // 2)
        k2 = min(layer.modes[1], spatial[1] // 2 + 1)
        for rows in (slice(0, k1), slice(-k1, None)):
            out[:, :, rows, :k2] = torch.einsum(
                "bixy,ioxy->boxy", coeff[:, :, rows, :k2], weight[:, :, rows, :k2]
            )
    return torch.fft.irfftn(out, s=spatial, dim=dims, norm="forward")


@pytest.mark.parametrize(
    ("modes", "spatial"),
    [
        ((12,), (64,)),
        ((12,), (13,)),  # coarser than the modes: only 7 of 12 fit
        ((6, 5), (24, 20)),
        ((6, 5), (13, 7)),  # 6 and 4 of the modes fit
        ((6, 5), (12, 8)),  # exactly 2·6 rows: both corners meet
    ],
)
def test_spectral_conv_matches_complex_reference(
    modes: tuple[int, ...], spatial: tuple[int, ...]
) -> None:
    torch.manual_seed(0)
    layer = SpectralConv(3, 4, modes)
    with torch.no_grad():  # Li's init is all-positive; random signs test the arithmetic better.
        layer.weight_real.normal_()
        layer.weight_imag.normal_()
    x = torch.randn(2, 3, *spatial)
    out = layer(x)
    assert out.shape == (2, 4, *spatial)
    torch.testing.assert_close(out, _reference_spectral_conv(layer, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("modes", "spatial"),
    [((12,), (64,)), ((12,), (13,)), ((9,), (16,)), ((6, 5), (24, 20)), ((6, 5), (13, 7)),
     ((6, 5), (12, 8))],
)
def test_spectral_conv_dft_transform_matches_complex_reference(
    modes: tuple[int, ...], spatial: tuple[int, ...]
) -> None:
    """The DFT-matrix transform is the same layer: truncated modes, odd grids, both corners
    meeting and the Nyquist frequency kept (16 points, 9 modes)."""
    torch.manual_seed(0)
    layer = SpectralConv(3, 4, modes).double()
    with torch.no_grad():
        layer.weight_real.normal_()
        layer.weight_imag.normal_()
    x = torch.randn(2, 3, *spatial, dtype=torch.float64)
    layer.set_transform("dft", spatial)
    assert layer.transform == "dft" and layer.dft_grid == spatial
    assert len(list(layer.buffers())) == layer.dft_stages == 2 * len(modes)
    assert layer.state_dict().keys() == {"weight_real", "weight_imag"}  # nothing new saved
    with torch.autograd.profiler.profile() as profile:
        out = layer(x)
    assert not any("fft" in event.name for event in profile.function_events)
    torch.testing.assert_close(out, _reference_spectral_conv(layer, x), rtol=1e-10,
                               atol=1e-10)
    layer.set_transform("fft")
    assert (layer.transform, layer.dft_grid, list(layer.buffers())) == ("fft", None, [])


def test_spectral_conv_dft_transform_refuses_other_grids_and_bad_requests() -> None:
    layer = SpectralConv(3, 4, (6, 5))
    layer.set_transform("dft", (12, 10))
    with pytest.raises(SpecError, match=r"DFT matrices of the grid \(12, 10\).*\(12, 8\)"):
        layer(torch.randn(1, 3, 12, 8))
    with pytest.raises(SpecError, match=r"one positive size per axis \(2\), got \(12,\)"):
        layer.set_transform("dft", (12,))
    with pytest.raises(SpecError, match=r"got None"):
        layer.set_transform("dft")
    with pytest.raises(SpecError, match=r"transform must be one of \['fft', 'dft'\], got 'fht'"):
        layer.set_transform("fht")  # type: ignore[arg-type]


@pytest.mark.parametrize(("modes", "spatial"), [((9,), (16,)), ((6, 6), (12, 10))])
def test_spectral_conv_with_all_modes_and_identity_weights_reproduces_input(
    modes: tuple[int, ...], spatial: tuple[int, ...]
) -> None:
    torch.manual_seed(0)
    channels = 3
    layer = SpectralConv(channels, channels, modes)
    assert all(k == m for k, m in zip(layer.kept_modes(spatial), modes, strict=True))
    with torch.no_grad():
        eye = torch.eye(channels).reshape(channels, channels, *(1,) * len(modes))
        layer.weight_real.copy_(eye.expand_as(layer.weight_real))
        layer.weight_imag.zero_()
    x = torch.randn(2, channels, *spatial)
    torch.testing.assert_close(layer(x), x, rtol=1e-5, atol=1e-5)


def test_spectral_conv_weight_shapes_follow_the_mode_layout() -> None:
    assert SpectralConv(3, 4, (12,)).weight_real.shape == (3, 4, 12)
    layer = SpectralConv(3, 4, (6, 5))
    assert layer.weight_real.shape == layer.weight_imag.shape == (3, 4, 12, 5)
    assert {name for name, _ in layer.named_parameters()} == {"weight_real", "weight_imag"}


def test_spectral_conv_mix_is_the_complex_product() -> None:
    torch.manual_seed(0)
    layer = SpectralConv(3, 4, (5,))
    coeff = torch.randn(2, 3, 5, dtype=torch.cfloat)
    weight = torch.randn(3, 4, 5, dtype=torch.cfloat)
    out_real, out_imag = layer.mix(coeff.real, coeff.imag, weight.real, weight.imag)
    expected = torch.einsum("bix,iox->box", coeff, weight)
    torch.testing.assert_close(torch.complex(out_real, out_imag), expected)


def test_galerkin_attention_matches_reference() -> None:
    torch.manual_seed(0)
    batch, tokens, width, heads = 2, 10, 12, 3
    attention = GalerkinAttention(width, heads)
    with torch.no_grad():  # non-trivial affine norms, so the reference must apply them too
        for norm in (attention.key_norm, attention.value_norm):
            norm.weight.normal_()
            norm.bias.normal_()
    x = torch.randn(batch, tokens, width)

    def heads_of(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(batch, tokens, heads, width // heads).transpose(1, 2)

    q = heads_of(x @ attention.query.weight.T + attention.query.bias)
    k = heads_of(x @ attention.key.weight.T + attention.key.bias)
    v = heads_of(x @ attention.value.weight.T + attention.value.bias)
    norm_k, norm_v = attention.key_norm, attention.value_norm
    k = F.layer_norm(k, (width // heads,), norm_k.weight, norm_k.bias, norm_k.eps)
    v = F.layer_norm(v, (width // heads,), norm_v.weight, norm_v.bias, norm_v.eps)
    attended = q @ (k.transpose(-2, -1) @ v) / tokens
    merged = attended.transpose(1, 2).reshape(batch, tokens, width)
    expected = merged @ attention.output.weight.T + attention.output.bias
    torch.testing.assert_close(attention(x), expected, rtol=1e-4, atol=1e-5)


def test_matmul_module_is_torch_matmul() -> None:
    a, b = torch.randn(2, 3, 4), torch.randn(2, 4, 5)
    assert torch.equal(MatMul()(a, b), torch.matmul(a, b))
