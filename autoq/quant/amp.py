"""AIMET's automatic mixed precision (AMP) on autoq's networks: the benchmark's baseline search.

:func:`amp_front` runs aimet-torch's greedy AMP (the algorithm behind
``aimet_torch.mixed_precision.choose_mixed_precision``) with the brute-force phase-2 search and no
accuracy target, so it returns AMP's whole curve, and translates every point into autoq's
per-layer precision vocabulary (:mod:`autoq.precision`).

What AMP does, in the order it spends score evaluations (``G`` varied layers, ``C`` candidates):

1. the float network (every quantizer off): 1 evaluation;
2. every candidate uniformly on all varied layers: ``C``; the best-scoring one is AMP's
   *baseline*. It is chosen by score, not by bits: when the candidates' errors are at noise
   level (seen on tiny networks: ``(8, 8)`` scored above ``(16, 16)``) it is not the highest
   precision, and phase 1 then includes flips *up* to higher candidates;
3. phase 1, sensitivity: each layer alone at each non-baseline candidate, the other varied layers
   float: ``G·(C−1)``;
4. phase 2, brute force: the (layer, candidate) flips sorted by their phase-1 score, best first,
   applied cumulatively to the baseline, every prefix calibrated and scored: ``G·(C−1)``;
5. the final state (all flips applied; the same assignment as the curve's last point): 1.

In all ``2 + C + 2·G·(C−1)`` calls of ``score``; each is post-training (calibrated, no QAT).

The curve (:attr:`AMPResult.curve`) is the baseline followed by AMP's pareto list, in AMP's
order: point ``k`` is the baseline with the first ``k`` flips applied, so consecutive points differ
in one layer. A later flip can move a layer back up (e.g. ``(4, 4)`` then ``(8, 8)`` when the
latter scored lower alone), so cost is not guaranteed to fall at every step, and the list is
AMP's path, not a filtered Pareto set.

Mapping to autoq's scheme. The simulation is :func:`~autoq.quant.build_sim`'s (the paper's
scheme: each layer's weights and its input quantized, outputs float; layers outside ``layers``
carry no quantizer). AMP varies one *quantizer group* per layer in ``layers``: its input
quantizer takes the candidate's activation bitwidth and its weight quantizers the candidate's
parameter bitwidth, so AMP's candidate ``((a, int), (w, int))`` is exactly autoq's ``(w, a)`` on
that layer. For :class:`~autoq.quant.QuantizedSpectralConv` the weights are ``weight_real`` and
``weight_imag``; for :class:`~autoq.quant.QuantizedMatMul` the "parameter" is the right operand
(``input_quantizers[1]``), which plays the weight's part in autoq's vocabulary. Layers AMP does
not vary are ``None`` (float) in every point.

Why not ``choose_mixed_precision`` itself: that function builds the algorithm with AIMET's own
quantizer-group finder and MAC counter, which do not fit autoq's networks (seen on aimet-torch
2.42): the finder walks AIMET's connected graph, where a spectral convolution is traced into its
FFT and einsum ops and so belongs to no group (AMP would never vary it); where one module runs
twice (the UNet's shared ``activation``) the second call wipes the first's children, so every
UNet block's ``conv2`` gets no group; and a ``MatMul``'s operands become two activation-only
groups, which yields ``(w, a)`` pairs outside the candidates. Its MAC counter knows only
``Conv2d`` and ``Linear``, so on 1D networks every count is zero and phase 2 divides by zero. This
module therefore subclasses AIMET's ``GreedyMixedPrecisionAlgo`` with exactly two changes, one
group per layer (above) and MAC counts from :func:`autoq.cost.bitops` (multiplications ``M`` of
each layer), and runs it as ``choose_mixed_precision`` does (v1-quantizer view of the v2 sim,
``phase1_optimize=True``, ``use_all_amp_candidates=True``) minus its plots. Phases 1 and 2, the
sorting and the search are AIMET's. AMP's scratch files go to a temporary directory that is
removed afterwards. AIMET logs every evaluation at INFO; :func:`~autoq.quant.quiet_aimet_logs`
silences it.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from aimet_torch.amp.mixed_precision_algo import GreedyMixedPrecisionAlgo
from aimet_torch.amp.quantizer_groups import QuantizerGroup, get_module_name_to_module_dict
from aimet_torch.amp.utils import _mock_v1_quantizers
from aimet_torch.common.amp.utils import AMPSearchAlgo
from aimet_torch.common.defs import CallbackFunc, QuantizationDataType
from torch import nn

from autoq.cost import bitops
from autoq.errors import QuantizationError
from autoq.precision import MAX_BITS, MIN_BITS, Bits, TrialConfig, quantizable_layers
from autoq.quant.logs import known_aimet_warnings
from autoq.quant.modules import QuantizedMatMul
from autoq.quant.sim import Calibration, build_sim, calibrate

_INT = QuantizationDataType.int

AimetCandidate = tuple[tuple[int, QuantizationDataType], tuple[int, QuantizationDataType]]


@dataclass(frozen=True)
class AMPPoint:
    """One point of AMP's curve.

    Attributes:
        bits: every quantizable layer of the network → ``(weight_bits, act_bits)``, or ``None``
            (float) for the layers AMP did not vary; ready for
            ``TrialConfig.for_model(network, scale=…, bits=point.bits)``.
        score: AMP's own score of this assignment (calibrated, post-training, no QAT).
    """

    bits: Mapping[str, Bits]
    score: float


@dataclass(frozen=True)
class AMPResult:
    """What :func:`amp_front` found and what it cost.

    Attributes:
        baseline: every varied layer at AMP's baseline candidate (the best-scoring uniform one),
            with the score AMP measured for it.
        points: AMP's pareto list in its order: point ``k`` is the baseline with AMP's first
            ``k + 1`` flips applied.
        float_score: the score of the float network (AMP's reference).
        evaluations: how many times ``score`` was called, ``2 + C + 2·G·(C−1)``.
    """

    baseline: AMPPoint
    points: tuple[AMPPoint, ...]
    float_score: float
    evaluations: int

    @property
    def curve(self) -> tuple[AMPPoint, ...]:
        """The baseline followed by :attr:`points`: AMP's whole path, in AMP's order."""
        return (self.baseline, *self.points)


def amp_front(
    network: nn.Module,
    *,
    dummy_input: torch.Tensor,
    calibration_batches: Callable[[], Iterable[torch.Tensor]],
    score: Callable[[nn.Module], float],
    candidates: Sequence[tuple[int, int]],
    layers: Sequence[str],
    calibration: Calibration = "min_max",
) -> AMPResult:
    """Run AIMET's AMP (brute force, whole curve) on a trained float network.

    Args:
        network: the trained float network, ``(batch, channels, *spatial) → (batch,
            out_channels, *spatial)``; it is copied, never modified.
        dummy_input: ``(batch, channels, *spatial)`` at the network's resolution, on its device.
        calibration_batches: returns a fresh iterable of network inputs ``(batch, channels,
            *spatial)`` each time; AMP recalibrates after every change of bitwidths.
        score: higher is better (e.g. −validation MSE of the given quantized network run inside
            its solver); every call counts towards :attr:`AMPResult.evaluations`. A NaN score is
            passed to AMP as ``-inf`` (the worst), so AMP's sorting stays defined.
        candidates: at least two ``(weight_bits, act_bits)`` pairs AMP may give a layer, e.g.
            ``[(16, 16), (8, 16), (8, 8), (4, 8), (4, 4)]``.
        layers: the quantizable layers AMP may vary (``named_modules()`` paths); every other
            layer stays float.
        calibration: how ranges are initialized at each recalibration (see
            :func:`~autoq.quant.build_sim`).

    Returns:
        AMP's curve in autoq's vocabulary, its scores and the number of evaluations it spent.

    Raises:
        QuantizationError: a bad candidate or layer, or no calibration batch.
    """
    checked = _check_candidates(candidates)
    varied = _check_layers(network, layers)
    if not callable(calibration_batches):
        raise QuantizationError("calibration_batches must be a zero-argument callable returning "
                                f"an iterable of network inputs, got {calibration_batches!r}")
    highest = max(checked, key=lambda pair: (pair[0] * pair[1], pair))
    qnet = build_sim(network, TrialConfig.for_model(network, scale=1.0,
                                                    bits=dict.fromkeys(varied, highest)),
                     dummy_input=dummy_input, calibration=calibration)
    calibrate(qnet, calibration_batches())  # AIMET's algorithm runs the sim once at set-up
    macs = _multiplications(network, varied, dummy_input)
    counted = _CountedScore(score)
    forward = CallbackFunc(_calibration_pass, calibration_batches)

    with (tempfile.TemporaryDirectory(prefix="autoq-amp-") as results_dir,
          _mock_v1_quantizers(qnet.sim)):
        modules = get_module_name_to_module_dict(qnet.sim)
        groups = {_quantizer_group(layer, modules[layer]): layer for layer in varied}
        algo = _LayerwiseAMP(
            qnet.sim, dummy_input, [_to_aimet(pair) for pair in checked], counted, counted,
            results_dir, True, forward, groups=list(groups), modules=modules, macs=macs,
            use_all_amp_candidates=True, phase2_reverse=False, phase1_optimize=True)
        with known_aimet_warnings():
            algo.run(None, AMPSearchAlgo.BruteForce)
        final = {layer: _from_aimet(group.get_candidate(modules))
                 for group, layer in groups.items()}

    every_layer = dict.fromkeys(quantizable_layers(network))
    current: dict[str, Bits] = {**every_layer,
                                **dict.fromkeys(varied, _from_aimet(algo.baseline_candidate))}
    baseline = AMPPoint(bits=dict(current), score=algo.uniform_scores[algo.baseline_candidate])
    points = []
    for _, point_score, group, candidate in algo.pareto_list or []:
        current[groups[group]] = _from_aimet(candidate)
        points.append(AMPPoint(bits=dict(current), score=float(point_score)))
    last = points[-1].bits if points else baseline.bits
    if any(last[layer] != bits for layer, bits in final.items()):
        raise QuantizationError(f"AMP's final bitwidths {final} differ from its curve's last "
                                f"point {dict(last)}; the mapping to autoq's layers is wrong")
    return AMPResult(baseline=baseline, points=tuple(points), float_score=algo.fp32_accuracy,
                     evaluations=counted.calls)


class _MatMulQuantizerGroup(QuantizerGroup):
    """A :class:`QuantizedMatMul`'s two operands as one group: the left operand is the
    "activation", the right operand (``input_quantizers[1]``) the "parameter"."""

    def _get_param_quantizers(self, name_to_quantizer_dict: dict) -> list:
        return [name_to_quantizer_dict[name].input_quantizers[1]
                for name in self.parameter_quantizers]


def _quantizer_group(layer: str, module: nn.Module) -> QuantizerGroup:
    # Names follow AIMET's convention (``<module>_input_quantizer_idx_<i>``, parameters by module
    # name). No supported_kernel_ops: every candidate is allowed on every layer.
    group_type = _MatMulQuantizerGroup if isinstance(module, QuantizedMatMul) else QuantizerGroup
    return group_type(input_quantizers=(f"{layer}_input_quantizer_idx_0",),
                      parameter_quantizers=(layer,))


class _LayerwiseAMP(GreedyMixedPrecisionAlgo):
    """AIMET's greedy AMP with autoq's quantizer groups and MAC counts (see module docstring)."""

    def __init__(self, *args: Any, groups: list[QuantizerGroup], modules: dict[str, nn.Module],
                 macs: dict[str, int], **kwargs: Any) -> None:
        self._autoq_groups = groups
        self._autoq_modules = modules
        super().__init__(*args, **kwargs)
        self._mac_dict = macs  # AIMET's own counter sees only Conv2d and Linear

    def _find_quantizer_group(self, sim: Any) -> tuple[dict, list[QuantizerGroup]]:
        return self._autoq_modules, list(self._autoq_groups)

    @property
    def uniform_scores(self) -> dict[AimetCandidate, float]:
        """Score of every candidate applied to all groups (AMP's baseline sweep)."""
        return {candidate: score for score, candidate in self._eval_scores}


class _CountedScore:
    """``score`` as AMP calls it, counted; NaN becomes ``-inf`` so AMP's sort stays defined."""

    def __init__(self, score: Callable[[nn.Module], float]) -> None:
        self._score = score
        self.calls = 0

    def __call__(self, model: nn.Module) -> float:
        self.calls += 1
        value = float(self._score(model))
        return -math.inf if math.isnan(value) else value


def _calibration_pass(model: nn.Module,
                      batches: Callable[[], Iterable[torch.Tensor]]) -> None:
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    seen = 0
    with torch.no_grad():
        for batch in batches():
            model(batch.to(device))
            seen += 1
    if not seen:
        raise QuantizationError("calibration_batches() yielded no batch of network inputs")


def _multiplications(network: nn.Module, layers: Sequence[str],
                     dummy_input: torch.Tensor) -> dict[str, int]:
    """``M`` of every varied layer at the network's resolution (autoq's cost model)."""
    report = bitops(network, TrialConfig.for_model(network, scale=1.0, bits={}),
                    data_shape=tuple(dummy_input.shape[2:]), in_channels=dummy_input.shape[1])
    return {layer: report.layers[layer].multiplications for layer in layers}


def _to_aimet(pair: tuple[int, int]) -> AimetCandidate:
    weight_bits, act_bits = pair
    return (act_bits, _INT), (weight_bits, _INT)


def _from_aimet(candidate: AimetCandidate) -> tuple[int, int]:
    (act_bits, _), (weight_bits, _) = candidate
    return weight_bits, act_bits


def _check_candidates(candidates: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    checked: list[tuple[int, int]] = []
    for pair in candidates:
        if (not isinstance(pair, list | tuple) or len(pair) != 2
                or not all(isinstance(b, int) and not isinstance(b, bool) for b in pair)
                or not all(MIN_BITS <= b <= MAX_BITS for b in pair)):
            raise QuantizationError(f"each candidate must be (weight_bits, act_bits) with bits in "
                                    f"{MIN_BITS}..{MAX_BITS}, got {pair!r}")
        if tuple(pair) in checked:
            raise QuantizationError(f"candidate {tuple(pair)} is given twice")
        checked.append((pair[0], pair[1]))
    if len(checked) < 2:  # with one, AIMET's phase 2 has nothing to search and fails
        raise QuantizationError(f"candidates must name at least two (weight_bits, act_bits) "
                                f"pairs, got {list(candidates)!r}")
    return checked


def _check_layers(network: nn.Module, layers: Sequence[str]) -> list[str]:
    """The requested layers in module order (AMP breaks score ties by this order)."""
    known = quantizable_layers(network)
    if isinstance(layers, str):
        raise QuantizationError(f"layers must be a sequence of layer names, got {layers!r}")
    unknown = sorted(set(layers) - set(known))
    if unknown:
        raise QuantizationError(f"no quantizable layer named {unknown[0]!r} in "
                                f"{type(network).__name__}; layers: {known}")
    if len(set(layers)) != len(layers):
        raise QuantizationError(f"layers names a layer twice: {list(layers)}")
    if not layers:
        raise QuantizationError("layers must name at least one quantizable layer for AMP to vary")
    return [layer for layer in known if layer in set(layers)]
