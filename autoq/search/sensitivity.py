"""The calibration-only sensitivity pass (``search.sensitivity``): autoq's sampler's prior.

As AMP and HAWQ measure per-layer sensitivity before choosing bitwidths, the pass quantizes one
quantizer group at a time on the float model at the space's largest scale (and rank): the
group's weights alone at ``bits`` (its activations at
:data:`~autoq.bits.FLOAT_EQUIVALENT_BITS`, every other group float), then its activations
alone; each is calibrated exactly as a trial calibrates
(:meth:`~autoq.search.trial.TrialRunner.calibrated_sim`: AIMET's ``compute_encodings`` on the
same share of the training windows), with no QAT, and scored in the search's metric. A group's
sensitivity is its error relative to the float model's, minus one. That is 2 × groups
calibrations and evaluations, each far cheaper than a trial's QAT.

The result is written on the study (:data:`~autoq.search.records.SENSITIVITY_ATTR`) with the
seconds it took, before the first trial, so a resumed search reads it instead of measuring it
again and optuna-dashboard shows it among the study's attributes. How the sampler uses it, and
why only as a prior of the ratios between sensitivities, is in
:mod:`autoq.search.samplers.cost_aware`.
"""

from __future__ import annotations

import copy
import time

import optuna

from autoq.bits import FLOAT_EQUIVALENT_BITS, Bits
from autoq.search.records import SENSITIVITY_ATTR, Sensitivities, recorded_sensitivities
from autoq.search.trial import TrialRunner


def measure_sensitivities(runner: TrialRunner, bits: int, *, seed: int = 0) -> Sensitivities:
    """Each group of ``runner``'s space quantized alone (weights, then activations, at
    ``bits``), calibrated, not trained, and scored against the float model at the space's
    largest scale and rank; ``seed`` draws the calibration windows, as a trial's seed does."""
    started = time.perf_counter()
    space = runner.space
    scale, rank = max(runner.spec.space.scales), space.ranks[0]
    float_model = runner.float_model(scale, rank)
    float_error = runner.float_error(scale, rank)

    def relative_error(group: str, bits_of_group: Bits) -> float:
        alone = {other: bits_of_group if other == group else None for other in space.groups}
        solver = copy.deepcopy(float_model.solver)
        # A trial's own quantize-and-calibrate path, so the pass measures what a trial starts
        # its QAT from.
        runner.calibrated_sim(solver, space.config(scale, alone, rank), seed=seed)
        return runner.metric(solver, runner.problem) / float_error - 1.0

    weight = {group: relative_error(group, (bits, FLOAT_EQUIVALENT_BITS))
              for group in space.groups}
    act = {group: relative_error(group, (FLOAT_EQUIVALENT_BITS, bits)) for group in space.groups}
    return Sensitivities(bits=bits, scale=scale, rank=rank, float_error=float_error,
                         weight=weight, act=act, seconds=time.perf_counter() - started)


def ensure_sensitivities(study: optuna.Study, runner: TrialRunner) -> Sensitivities | None:
    """Under ``search.sensitivity``, the pass recorded on ``study``, measured and recorded now
    when the study holds none (or one at other bits or of other groups); ``None`` without the
    option."""
    settings = runner.spec.search.sensitivity
    if settings is None:
        return None
    recorded = recorded_sensitivities(study.user_attrs)
    if (recorded is not None and recorded.bits == settings.bits
            and set(recorded.weight) == set(runner.space.groups)):
        return recorded
    measured = measure_sensitivities(runner, settings.bits, seed=runner.spec.search.seed)
    study.set_user_attr(SENSITIVITY_ATTR, measured.to_json())
    return measured
