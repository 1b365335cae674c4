"""Modules that multiply by learned weights autoq does not quantize: named by discovery, priced as
float work with their products counted as they run (held against hand counts), and warned about
once, by name."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from autoq.cost import CostReport, bitops, clear_cache
from autoq.cost._aten import ProductCounter
from autoq.cost._counts import Operations
from autoq.models import FNOConfig, TransformerConfig, UNetConfig, build_model
from autoq.models.config import FactoryConfig
from autoq.models.factory import FactoryNetwork
from autoq.precision import (
    FLOAT_EQUIVALENT_BITS,
    TrialConfig,
    UnquantizedWeightWarning,
    quantizable_layers,
    unquantized_weight_modules,
)

pytestmark = pytest.mark.filterwarnings("ignore::autoq.precision.UnquantizedWeightWarning")

C, N = 3, 6  # input channels, grid points (= tokens)
E, HEADS = 8, 2  # attention width and heads
OUT = 5  # outputs of the einsum and bilinear layers


class Attention(nn.Module):
    """Lift, self-attention over the grid points, project: ``(1, C, N) → (1, 1, N)``."""

    def __init__(self, *, need_weights: bool = False, contiguous: bool = False) -> None:
        super().__init__()
        self.lift = nn.Conv1d(C, E, 1)
        self.attn = nn.MultiheadAttention(E, HEADS, batch_first=True)
        self.proj = nn.Conv1d(E, 1, 1)
        self.need_weights, self.contiguous = need_weights, contiguous

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.lift(x).transpose(1, 2)
        if self.contiguous:
            tokens = tokens.contiguous()
        mixed, _ = self.attn(tokens, tokens, tokens, need_weights=self.need_weights)
        return self.proj(mixed.transpose(1, 2))


class EinsumMix(nn.Module):
    """A channel mixing of the user's own: an ``(out, in)`` weight through ``torch.einsum``."""

    def __init__(self, in_channels: int, out_channels: int, *, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels) / in_channels**0.5)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.einsum("bin,oi->bon", x, self.weight)
        return y if self.bias is None else y + self.bias[:, None]


class EinsumNet(nn.Module):
    def __init__(self, *, bias: bool = True) -> None:
        super().__init__()
        self.mix = EinsumMix(C, OUT, bias=bias)
        self.out = nn.Conv1d(OUT, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.mix(x))


class GatedMix(nn.Module):
    """Its own ``(E, E)`` weight through ``@``, after a child ``nn.Linear`` it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = nn.Linear(E, E)
        self.weight = nn.Parameter(torch.randn(E, E))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.gate(tokens) @ self.weight.T


class Tokens(nn.Module):
    """``(1, C, N)`` → lift → a token module on ``(1, N, E)`` → project."""

    def __init__(self, body: nn.Module, width: int = E) -> None:
        super().__init__()
        self.lift = nn.Conv1d(C, E, 1)
        self.body = body
        self.proj = nn.Conv1d(width, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(self.lift(x).transpose(1, 2))
        out = out[0] if isinstance(out, tuple) else out
        return self.proj(out.transpose(1, 2))


class BilinearTokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pair = nn.Bilinear(E, E, OUT)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.pair(tokens, tokens)


class ConvOnly(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(C, E, 3, padding=1), nn.GELU(), nn.GroupNorm(2, E),
                                 nn.Conv1d(E, 1, 1))
        self.head = nn.Linear(N, N)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.net(x))


def _report(network: nn.Module) -> CostReport:
    return bitops(network, TrialConfig.for_model(network, scale=1.0, bits={}),
                  data_shape=(N,), in_channels=C)


@contextlib.contextmanager
def _caught() -> Iterator[list[warnings.WarningMessage]]:
    """The UnquantizedWeightWarnings raised inside, every one (no once-per-location filter)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found: list[warnings.WarningMessage] = []
        yield found
    found += [w for w in caught if issubclass(w.category, UnquantizedWeightWarning)]


def _float(network: nn.Module, entry: str) -> tuple[int, int]:
    """``(M, A)`` of an entry, checked to be priced as float work."""
    report = _report(network)
    cost = report.layers[entry]
    bits = FLOAT_EQUIVALENT_BITS
    assert (cost.weight_bits, cost.act_bits, cost.quantized) == (bits, bits, False)
    assert cost.cost == (cost.multiplications * bits + cost.additions) * bits
    assert entry in report.unquantized
    assert report.to_json()["operations"][entry]["bits"] == "float"
    return cost.multiplications, cost.additions


# --- discovery ---------------------------------------------------------------------------------


def test_discovery_names_attention_and_a_custom_einsum_layer() -> None:
    assert unquantized_weight_modules(Attention()) == ["attn"]
    assert unquantized_weight_modules(EinsumNet()) == ["mix"]
    assert unquantized_weight_modules(EinsumMix(C, OUT)) == [""]  # the root itself


def test_attention_s_out_projection_is_part_of_the_attention() -> None:
    # nn.MultiheadAttention passes out_proj's weight to F.multi_head_attention_forward and never
    # runs out_proj: it is neither a layer to give bits to nor a module of its own.
    model = Attention()
    assert quantizable_layers(model) == ["lift", "proj"]
    assert "attn.out_proj" not in unquantized_weight_modules(model)


def test_discovery_skips_lookups_norms_gates_and_what_quantizable_layers_hold() -> None:
    class Gate(nn.Module):  # a (1, C, 1) per-channel scale, as neuraloperator's SoftGating
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(1, E, 1))

    class WideLinear(nn.Linear):  # a quantizable layer with an extra matrix of its own
        def __init__(self) -> None:
            super().__init__(E, E)
            self.extra = nn.Parameter(torch.ones(E, E))

    model = nn.ModuleDict({
        "embed": nn.Embedding(10, E), "layer_norm": nn.LayerNorm([E, N]),
        "batch_norm": nn.BatchNorm1d(E), "group_norm": nn.GroupNorm(2, E), "gate": Gate(),
        "linear": WideLinear(), "pair": nn.Bilinear(E, E, OUT), "rnn": nn.LSTM(E, E),
        "gated": GatedMix(),
    })
    assert unquantized_weight_modules(model) == ["pair", "rnn", "gated"]
    assert quantizable_layers(model) == ["linear", "gated.gate"]


@pytest.mark.parametrize("config", [
    FNOConfig(width=8, modes=4, layers=2, projection_width=16),
    UNetConfig(width=4, levels=2, norm_groups=2),
    TransformerConfig(width=8, heads=2, layers=2, patch=4, feed_forward_width=16),
], ids=lambda c: c.arch)
def test_autoq_s_own_architectures_have_none(
    config: FNOConfig | UNetConfig | TransformerConfig,
) -> None:
    model = build_model(config, spatial_dims=1, in_channels=C, out_channels=1)
    assert unquantized_weight_modules(model) == []


def test_neuraloperator_s_fno_has_none() -> None:
    pytest.importorskip("neuralop", reason="needs the neuralop extra")
    from neuralop.models import FNO

    # Its SoftGating weights are (1, C, 1): broadcast scales, not matrices.
    assert unquantized_weight_modules(FNO(n_modes=(4,), hidden_channels=8, in_channels=2,
                                          out_channels=1)) == []


# --- pricing, against hand counts --------------------------------------------------------------

# Attention on L = N tokens of width E, HEADS heads of width E / HEADS, batch 1:
#   in-projection (q, k, v)   3·L·E·E MACs, one addition per MAC, 3·L·E bias additions
#   Q·Kᵀ per head             HEADS·L·L·(E/HEADS) = L·L·E MACs and additions
#   weights·V per head        L·L·E MACs and additions
#   out-projection            L·E·E MACs and additions, L·E bias additions
# With need_weights the weights come out of F.softmax, which DeepSpeed counts (one operation per
# weight, an addition); without, softmax runs inside the fused attention kernel, uncounted.
ATTENTION_M = 3 * N * E * E + N * N * E + N * N * E + N * E * E
ATTENTION_A = ATTENTION_M + 3 * N * E + N * E
SOFTMAX = HEADS * N * N


@pytest.mark.parametrize("contiguous", [False, True])
@pytest.mark.parametrize("need_weights", [False, True])
def test_attention_is_float_work_counted_as_it_runs(need_weights: bool,
                                                    contiguous: bool) -> None:
    # contiguous: F.linear fuses the bias (addmm) or adds it after (mm, add_); same count.
    model = Attention(need_weights=need_weights, contiguous=contiguous)
    expected = (ATTENTION_M, ATTENTION_A + (SOFTMAX if need_weights else 0))
    assert _float(model, "attn") == expected == ((2112, 2376) if need_weights else (2112, 2304))
    assert "attn.out_proj" not in _report(model).layers


def test_attention_leaves_the_layers_around_it_as_they_were() -> None:
    report, plain = _report(Attention()), _report(Tokens(nn.Identity()))
    for layer in ("lift", "proj"):
        assert report.layers[layer] == plain.layers[layer]
    assert plain.unquantized == ()


@pytest.mark.parametrize("bias", [True, False])
def test_an_einsum_layer_is_float_work_counted_as_it_runs(bias: bool) -> None:
    # y[o, n] = Σ_i W[o, i] x[i, n] (+ b[o]): OUT·N dot products of C terms, OUT·N bias additions.
    # DeepSpeed counts einsum as FLOPs without MACs: that count is replaced, not added to.
    macs = OUT * N * C
    assert macs == 90
    assert _float(EinsumNet(bias=bias), "mix") == (macs, macs + (OUT * N if bias else 0))


def test_a_module_s_children_keep_their_own_work() -> None:
    # GatedMix runs its child Linear (counted there, autoq's Linear convention), then multiplies
    # by its own weight with `@` (DeepSpeed sees Tensor.__matmul__; counted once, here).
    model = Tokens(GatedMix())
    assert _float(model, "body") == (N * E * E, N * E * E)
    gate = _report(model).layers["body.gate"]
    assert (gate.multiplications, gate.additions) == (N * E * E, N * E * E + N * E)
    assert "body.gate" in quantizable_layers(model)  # a layer of its own, bits if asked


def test_a_bilinear_layer_is_float_work_counted_as_aten_runs_it() -> None:
    # torch.bilinear: per output o, x·W[o] summed over i (N·E·E MACs), then times x summed over
    # j (N·E MACs); then its bias, one addition per output.
    macs = OUT * (N * E * E + N * E)
    assert _float(Tokens(BilinearTokens(), width=OUT), "body.pair") == (macs, macs + N * OUT)


def test_a_recurrent_layer_is_float_work_counted_per_step() -> None:
    # An LSTM of hidden size H over N steps: 4H gates, each a dot product over E inputs and H
    # hidden values per step, plus two biases of 4H per step.
    hidden = 4
    macs = N * 4 * hidden * (E + hidden)
    lstm = Tokens(nn.LSTM(E, hidden, batch_first=True), width=hidden)
    assert _float(lstm, "body") == (macs, macs + N * 2 * 4 * hidden)


def test_the_product_counter_charges_only_the_named_entry() -> None:
    counts: dict[str, Operations] = {}
    weight = nn.Parameter(torch.randn(OUT, C))
    owner: list[str | None] = [None]
    storages = {"mine": frozenset({weight.untyped_storage().data_ptr()})}
    with torch.no_grad(), ProductCounter(lambda: owner[0], counts, storages):
        torch.randn(4, C) @ weight.T  # nobody's
        owner[0] = "mine"
        torch.randn(4, C) @ weight.T + torch.zeros(OUT)  # an activation added: not a bias
    assert counts == {"mine": Operations(4 * OUT * C, 4 * OUT * C)}


# --- the warning -------------------------------------------------------------------------------


def test_one_warning_names_the_modules_and_says_they_are_float() -> None:
    clear_cache()
    model = Attention()
    with _caught() as found:
        _report(model)
        for scale in (1.0, 0.5):  # more trials, another grid: no more warnings
            bitops(model, TrialConfig.for_model(model, scale=scale, bits={"lift": (8, 8)}),
                   data_shape=(N,), in_channels=C)
    assert len(found) == 1
    message = str(found[0].message)
    assert "'attn' (torch.nn.modules.activation.MultiheadAttention)" in message
    assert "stay float" in message and "float work" in message
    assert issubclass(found[0].category, UserWarning)


def test_the_warning_names_an_einsum_layer_by_path_and_type() -> None:
    with _caught() as found:
        _report(EinsumNet())
    assert len(found) == 1
    assert f"'mix' ({__name__}.EinsumMix)" in str(found[0].message)


def test_a_model_of_linear_and_conv_layers_warns_nothing() -> None:
    assert unquantized_weight_modules(ConvOnly()) == []
    with _caught() as found:
        report = _report(ConvOnly())
    assert found == [] and report.unquantized == ()
    assert report.to_json()["unquantized"] == []


def test_a_user_s_factory_network_prices_and_names_them_under_its_module() -> None:
    network = FactoryNetwork(FactoryConfig(factory="tests.mine:Attention"), spatial_dims=1,
                             in_channels=C, out_channels=1, grid=(N,), module=Attention())
    assert unquantized_weight_modules(network) == ["module.attn"]
    assert network.first_layer == "module.lift" and network.last_layer == "module.proj"
    with _caught() as found:
        assert _float(network, "module.attn") == (ATTENTION_M, ATTENTION_A)
    assert len(found) == 1 and "'module.attn'" in str(found[0].message)


def test_profiling_restores_torch_s_attention_fast_path_and_the_model() -> None:
    clear_cache()
    before = torch.backends.mha.get_fastpath_enabled()
    model = Attention()
    _report(model)
    assert torch.backends.mha.get_fastpath_enabled() == before
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
