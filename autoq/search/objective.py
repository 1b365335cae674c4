"""The objective Optuna optimises: one trial of a search, recorded the way
:mod:`autoq.search.records` defines.

A trial asks the sampler for a configuration (or runs an enqueued baseline regime), records its
per-layer bits (and spectral transforms, when the space decides them) before training, runs the
QAT trial, then records the result: the values (error, and bit-op cost or measured latency), the
constraints of the search (``trial.set_constraint``), the cost breakdown, timings and artifact.
A trial that raises records its error and fails; the search goes on.

In a multi-fidelity search (``search.fidelity``) a sampled trial decides at its screening step,
from the study as it is then (:func:`screening_decision`), whether to train on to full length;
a baseline always does.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna

from autoq.bits import TRANSFORMS, Bits, Transform
from autoq.search import records
from autoq.search.fidelity import promotes, screening_ratio
from autoq.search.results import float_reference, pareto_front, study_points
from autoq.search.samplers.cost_aware import CostAwareSampler
from autoq.search.sensitivity import ensure_sensitivities
from autoq.search.space import SearchSpace
from autoq.search.spec import ConstraintsSpec, FidelitySettings
from autoq.search.trial import Promotion, TrialResult, TrialRunner

StudyCallback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]


def suggest_group_bits(trial: optuna.Trial, space: SearchSpace) -> dict[str, Bits]:
    """Ask the sampler for every group's ``(weight_bits, act_bits)`` (or float); a float group
    asks no activation bits."""
    chosen: dict[str, Bits] = {}
    for group in space.groups:
        weight = trial.suggest_categorical(records.weight_param(group),
                                           list(space.weight_choices))
        if weight == records.FLOAT:
            chosen[group] = None
            continue
        if not isinstance(weight, int):  # Optuna types a choice as any categorical value
            raise TypeError(f"{records.weight_param(group)}: expected a bitwidth or "
                            f"{records.FLOAT!r}, got {weight!r}")
        act = trial.suggest_categorical(records.act_param(group), list(space.act_choices))
        chosen[group] = (weight, act)
    return chosen


def suggest_group_transforms(trial: optuna.Trial, space: SearchSpace,
                             group_bits: dict[str, Bits]) -> dict[str, Transform]:
    """Under ``space.transform: search``, ask the sampler for the transform (``fft`` or ``dft``)
    of every quantized group holding a spectral convolution. Not autoq's sampler: its error
    model has no term for the transform, so it is left to the space, which gives each group the
    cheaper one at its bits (:meth:`~autoq.search.space.SearchSpace.config`)."""
    if not space.transform_choices or isinstance(trial.study.sampler, CostAwareSampler):
        return {}
    chosen: dict[str, Transform] = {}
    for group in space.spectral_groups:
        if group_bits.get(group) is None:
            continue
        transform = trial.suggest_categorical(records.transform_param(group),
                                              list(space.transform_choices))
        if transform not in TRANSFORMS:  # Optuna types a choice as any categorical value
            raise TypeError(f"{records.transform_param(group)}: expected one of "
                            f"{list(TRANSFORMS)}, got {transform!r}")
        chosen[group] = "dft" if transform == "dft" else "fft"
    return chosen


def screening_decision(study: optuna.Study, settings: FidelitySettings,
                       limits: ConstraintsSpec) -> Promotion:
    """The promotion rule of ``search.fidelity`` for a trial of ``study``: at its screening
    step, the screened error times the study's :func:`~autoq.search.fidelity.screening_ratio`
    is the predicted full-length error, judged by :func:`~autoq.search.fidelity.promotes`
    against the Pareto set of the full-length trials finished by then and the search's
    ``limits`` (an error bound relative to the float model's as the finished trials measured
    it)."""

    def decide(screened_mse: float, cost: float) -> bool:
        trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        points = study_points(study)
        front = [(p.cost, p.mse) for p in pareto_front(points)
                 if p.cost is not None and p.mse is not None]
        return promotes(screened_mse * screening_ratio(trials), cost, front,
                        margin=settings.margin,
                        useful_factor=CostAwareSampler.REFERENCE_MSE_FACTOR,
                        max_mse=limits.mse_bound(float_reference(points)),
                        max_cost=limits.max_cost)

    return decide


def record_result(trial: optuna.Trial, result: TrialResult, *, max_mse: float | None,
                  max_cost: float | None) -> None:
    """Write a finished trial's measurements and constraints on ``trial``."""
    trial.set_user_attr(records.COST_BREAKDOWN_ATTR,
                        {name: layer.cost for name, layer in result.cost.layers.items()})
    trial.set_user_attr(records.BITOPS_ATTR, result.cost.total)
    trial.set_user_attr(records.FLOPS_ATTR, result.cost.flops)
    trial.set_user_attr(records.FLOAT_MSE_ATTR, result.float_mse)
    trial.set_user_attr(records.FLOAT_REFERENCE_ATTR, result.float_reference)
    if result.rollout_mse is not None:
        trial.set_user_attr(records.ROLLOUT_MSE_ATTR, result.rollout_mse)
    trial.set_user_attr(records.TIMINGS_ATTR, result.timings)
    if result.artifact is not None:
        trial.set_user_attr(records.ARTIFACT_ATTR, str(result.artifact))
    if result.deployable is not None:
        trial.set_user_attr(records.DEPLOYABLE_ATTR, str(result.deployable))
    if result.deployed_error is not None:
        trial.set_user_attr(records.DEPLOYED_ERROR_ATTR, result.deployed_error)
    if result.deploy_error is not None:
        trial.set_user_attr(records.DEPLOY_ERROR_ATTR, result.deploy_error)
    if result.latency is not None:
        trial.set_user_attr(records.LATENCY_ATTR, result.latency.to_json())
    trial.set_user_attr(records.QAT_STEPS_ATTR, result.qat_steps)
    if result.screened_mse is not None:
        trial.set_user_attr(records.SCREENED_MSE_ATTR, result.screened_mse)
    if result.warm_start is not None:
        trial.set_user_attr(records.WARM_START_ATTR, result.warm_start)
    if result.fidelity is not None:
        trial.set_user_attr(records.FIDELITY_ATTR, result.fidelity)
        trial.set_constraint(records.FIDELITY_CONSTRAINT,
                             1.0 if result.fidelity == records.SCREENED else 0.0)
    if max_mse is not None:
        trial.set_constraint(records.MAX_MSE_CONSTRAINT, result.mse - max_mse)
    if max_cost is not None:
        trial.set_constraint(records.MAX_COST_CONSTRAINT, result.objective_cost - max_cost)


def make_objective(runner: TrialRunner, study_name: str
                   ) -> Callable[[optuna.Trial], tuple[float, float]]:
    """The function Optuna optimises: one QAT trial → (validation error, cost: bit-ops, or
    the measured latency relative to the float model under the latency objective)."""
    spec = runner.spec
    limits = spec.search.constraints

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        try:
            scale = trial.suggest_categorical(records.SCALE_PARAM, list(spec.space.scales))
            rank = None if spec.space.ranks is None else trial.suggest_categorical(
                records.RANK_PARAM, list(spec.space.ranks))
            regime = trial.user_attrs.get(records.BASELINE_ATTR)
            if regime is not None:
                config = runner.space.regime(regime, scale, rank)
            else:
                group_bits = suggest_group_bits(trial, runner.space)
                config = runner.space.config(
                    scale, group_bits, rank,
                    suggest_group_transforms(trial, runner.space, group_bits))
            trial.set_user_attr(records.BITS_ATTR, config.to_json()["bits"])
            if config.transforms:
                trial.set_user_attr(records.TRANSFORMS_ATTR, dict(config.transforms))
            fidelity = spec.search.fidelity
            promote = None if fidelity is None or regime is not None else screening_decision(
                trial.study, fidelity, limits)
            result = runner.run(config, seed=spec.search.seed + trial.number,
                                artifact_name=f"{study_name}/trial-{trial.number:05d}",
                                trial_number=trial.number, search=study_name, promote=promote)
        except Exception as e:
            trial.set_user_attr(records.ERROR_ATTR, f"{type(e).__name__}: {e}")
            raise
        record_result(trial, result, max_mse=limits.mse_bound(result.float_reference),
                      max_cost=limits.max_cost)
        return result.mse, result.objective_cost

    return objective


def run_trials(
    study: optuna.Study,
    runner: TrialRunner,
    *,
    n_trials: int,
    timeout: float | None = None,
    callbacks: list[StudyCallback] | None = None,
) -> None:
    """Run up to ``n_trials`` trials of ``runner``'s spec in ``study``, one after another.

    Every executor runs its trials through here, so their records are the same. A trial that
    raises is recorded as failed (with its error) and the next one runs; heartbeats (from
    :func:`~autoq.search.storage.open_storage`) fail and requeue trials of dead processes at
    each trial's start. Under ``search.sensitivity`` the calibration-only sensitivity pass runs
    first, unless the study has recorded it
    (:func:`~autoq.search.sensitivity.ensure_sensitivities`).
    """
    # Under search.sensitivity, the sampler's prior is measured (once per study) before the
    # first trial it proposes.
    ensure_sensitivities(study, runner)
    study.optimize(make_objective(runner, study.study_name), n_trials=n_trials, timeout=timeout,
                   catch=(Exception,), callbacks=callbacks, gc_after_trial=True)
