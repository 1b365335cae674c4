"""AIMET's AMP on tiny trained networks: its curve in autoq's vocabulary, its budget, no side
effects."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from aimet_torch.nn import BaseQuantizationMixin
from torch import nn

from autoq.cost import bitops
from autoq.errors import QuantizationError
from autoq.models import FNOConfig, TransformerConfig, UNetConfig, build_model
from autoq.models import first_and_last_layers as ends
from autoq.precision import Bits, TrialConfig, quantizable_layers
from autoq.quant import AMPResult, QuantizedMatMul, amp_front

POINTS = 32
ALL_CANDIDATES = [(16, 16), (8, 16), (8, 8), (4, 8), (4, 4)]
FEW_CANDIDATES = [(16, 16), (8, 8), (4, 4)]


@dataclass(frozen=True)
class Case:
    """One architecture: its config, the layers AMP varies (None: all but first and last) and
    the candidates."""

    config: FNOConfig | UNetConfig | TransformerConfig
    layers: tuple[str, ...] | None
    candidates: list[tuple[int, int]]


CASES = {
    "fno": Case(FNOConfig(width=8, modes=4, layers=2, projection_width=16), None, ALL_CANDIDATES),
    # Both products of two activations, and a linear layer.
    "transformer": Case(
        TransformerConfig(width=8, heads=2, layers=2, patch=4, feed_forward_width=16),
        ("blocks.0.attention.key_value_product", "blocks.0.attention.query_product",
         "blocks.1.feed_forward.hidden"),
        FEW_CANDIDATES),
    # encoders.0.conv2 follows a reused activation module, which AIMET's own group finder misses.
    "unet": Case(UNetConfig(width=4, levels=2, norm_groups=2),
                 ("encoders.0.conv2", "bottleneck.conv1", "decoders.1.conv2"), FEW_CANDIDATES),
}


def smoothing_pairs(samples: int, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random periodic signals ``(samples, 2, POINTS)`` and a smoothed sum ``(samples, 1,
    POINTS)`` of their channels: a task a tiny network learns in a few steps."""
    x = torch.randn(samples, 2, POINTS, generator=torch.Generator().manual_seed(seed))
    total = x.sum(1, keepdim=True)
    y = (total.roll(1, -1) + 2 * total + total.roll(-1, -1)) / 4
    return x, y


TRAIN = smoothing_pairs(128, seed=0)
VALID = smoothing_pairs(32, seed=1)


def trained(case: Case) -> nn.Module:
    torch.manual_seed(0)
    network = build_model(case.config, spatial_dims=1, in_channels=2, out_channels=1)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(40):
        index = torch.randint(0, len(TRAIN[0]), (32,), generator=generator)
        loss = ((network(TRAIN[0][index]) - TRAIN[1][index]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return network.eval()


class RecordingScore:
    """−validation MSE; counts its calls and records which bits every layer had when called."""

    def __init__(self, layers: list[str]) -> None:
        self.layers = layers
        self.calls = 0
        self.seen: list[tuple[dict[str, Bits], float]] = []

    def __call__(self, model: nn.Module) -> float:
        self.calls += 1
        with torch.no_grad():
            value = -float(((model(VALID[0]) - VALID[1]) ** 2).mean())
        modules = dict(model.named_modules())
        self.seen.append(({layer: active_bits(modules[layer]) for layer in self.layers}, value))
        return value


def active_bits(module: nn.Module) -> Bits:
    """The (weight_bits, act_bits) a quantized layer runs at, None when its quantizers are off."""

    def active(quantizer: nn.Module | None) -> bool:  # AMP's view marks quantizers `enabled`
        return quantizer is not None and getattr(quantizer, "enabled", True)

    weights = ([module.input_quantizers[1]] if isinstance(module, QuantizedMatMul)
               else list(module.param_quantizers.values()))
    weights = [q for q in weights if active(q)]
    act = module.input_quantizers[0]
    if not weights and not active(act):
        return None
    assert weights and active(act), "AMP switched half a layer's quantizers"
    assert len({q.bitwidth for q in weights}) == 1
    return weights[0].bitwidth, act.bitwidth


@dataclass(frozen=True)
class Run:
    network: nn.Module
    varied: list[str]
    candidates: list[tuple[int, int]]
    result: AMPResult
    score: RecordingScore
    state_before: dict[str, torch.Tensor]
    scratch: Path


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=sorted(CASES))
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        _one_thread: None) -> Run:
    case = CASES[request.param]
    network = trained(case)
    varied = list(case.layers or [name for name in quantizable_layers(network)
                                  if name not in ends(network)])
    state_before = {k: v.clone() for k, v in network.state_dict().items()}
    score = RecordingScore(varied)
    scratch = tmp_path_factory.mktemp("amp_scratch")
    calibration = TRAIN[0][:26]
    previous, tempfile.tempdir = tempfile.tempdir, str(scratch)
    try:
        result = amp_front(network, dummy_input=TRAIN[0][:1],
                           calibration_batches=lambda: calibration.split(13), score=score,
                           candidates=case.candidates, layers=varied)
    finally:
        tempfile.tempdir = previous
    return Run(network, varied, case.candidates, result, score, state_before, scratch)


def cost(run: Run, bits: dict[str, Bits]) -> int:
    config = TrialConfig.for_model(run.network, scale=1.0, bits=bits)
    return bitops(run.network, config, data_shape=(POINTS,), in_channels=2).total


def test_amp_points_use_only_the_candidates_on_the_given_layers(run: Run) -> None:
    layers = quantizable_layers(run.network)
    groups, candidates = len(run.varied), len(run.candidates)
    assert len(run.result.points) == groups * (candidates - 1)
    for point in run.result.curve:
        assert list(point.bits) == layers
        for layer, bits in point.bits.items():
            if layer in run.varied:
                assert bits in run.candidates
            else:
                assert bits is None
        assert math.isfinite(point.score)
        TrialConfig.for_model(run.network, scale=1.0, bits=point.bits)  # our vocabulary
    assert math.isfinite(run.result.float_score)


def test_amp_counts_every_score_call(run: Run) -> None:
    groups, candidates = len(run.varied), len(run.candidates)
    assert run.result.evaluations == run.score.calls
    assert run.score.calls == 2 + candidates + 2 * groups * (candidates - 1)


def test_amp_points_are_what_amp_evaluated(run: Run) -> None:
    """Every point's bits are the bits the sim had when AMP scored it, with that score."""
    seen = run.score.seen
    for point in run.result.curve:
        varied_bits = {layer: point.bits[layer] for layer in run.varied}
        assert (varied_bits, point.score) in seen
    # The first call is the float network, and its score is AMP's reference.
    assert seen[0] == (dict.fromkeys(run.varied), run.result.float_score)


def test_amp_curve_starts_at_the_best_uniform_candidate_and_flips_one_layer_at_a_time(
    run: Run,
) -> None:
    """AMP's order: its baseline is the uniform candidate that scored best (at noise level, on
    these tiny networks, not always the highest), then one more layer flipped per point."""
    uniform = run.score.seen[1:1 + len(run.candidates)]
    assert [set(bits.values()) for bits, _ in uniform] == [{pair} for pair in run.candidates]
    best_bits, best_score = max(uniform, key=lambda seen: seen[1])
    curve = run.result.curve
    assert {layer: curve[0].bits[layer] for layer in run.varied} == best_bits
    assert curve[0].score == best_score
    costs = [cost(run, dict(point.bits)) for point in curve]
    for before, after, cost_before, cost_after in zip(curve, curve[1:], costs, costs[1:],
                                                      strict=False):
        changed = [layer for layer in run.varied if before.bits[layer] != after.bits[layer]]
        assert len(changed) == 1
        old, new = before.bits[changed[0]], after.bits[changed[0]]
        # The candidates are ordered componentwise: a lower pair always costs less.
        assert (cost_after < cost_before) == (new[0] <= old[0] and new[1] <= old[1])


def test_amp_leaves_the_float_network_and_no_scratch_files(run: Run) -> None:
    state = run.network.state_dict()
    assert state.keys() == run.state_before.keys()
    assert all(torch.equal(state[k], run.state_before[k]) for k in state)
    assert not any(isinstance(m, BaseQuantizationMixin) for m in run.network.modules())
    assert not any(run.scratch.iterdir())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"layers": ["nope"]}, "no quantizable layer named 'nope'"),
    ({"layers": []}, "at least one quantizable layer"),
    ({"layers": ["blocks.0.pointwise", "blocks.0.pointwise"]}, "twice"),
    ({"candidates": [(8, 1)]}, "2..32"),
    ({"candidates": [(8, 8), (8, 8)]}, "given twice"),
    ({"candidates": [(8, 8)]}, "at least two"),
])
def test_amp_refuses_bad_arguments(kwargs: dict, message: str) -> None:
    network = build_model(CASES["fno"].config, spatial_dims=1, in_channels=2, out_channels=1)
    arguments = {"dummy_input": TRAIN[0][:1], "calibration_batches": lambda: [TRAIN[0][:8]],
                 "score": lambda model: 0.0, "candidates": FEW_CANDIDATES,
                 "layers": ["blocks.0.pointwise"]} | kwargs
    with pytest.raises(QuantizationError, match=message):
        amp_front(network, **arguments)
