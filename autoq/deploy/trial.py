"""The deployable folder of a stored trial (``autoq export NAME --trial N --out DIR``).

A search stores, per trial, the directory its quantized network was exported to
(:data:`autoq.search.records.ARTIFACT_ATTR`, written by :func:`autoq.quant.export_artifact`: the
trial config, the weights and every quantizer's range). That is the network alone; the solver
around it is rebuilt from the study's spec: the data are read again and the normalisation is fitted
on the training windows exactly as the float model's was (:meth:`autoq.train.Problem.
build_solver`), at the trial's scale.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from autoq.deploy.export import DeploymentInfo, export_deployable
from autoq.errors import SpecError
from autoq.models.config import FactoryConfig
from autoq.quant import load_quantized
from autoq.search import records
from autoq.search.setup import load_spec_problem
from autoq.search.storage import load_study, study_spec

CHECK_WINDOWS = 8
"""Validation windows onnxruntime runs at export time against the torch solver."""


def stored_trial(study: optuna.Study, number: int) -> FrozenTrial:
    """Trial ``number`` of ``study``, complete and with an artifact.

    Raises:
        SpecError: no such trial; it failed (with its error), is not complete, or stored no
            artifact, or its artifact directory is gone. The message names the search and trial.
    """
    trials = study.get_trials(deepcopy=False)
    where = f"search {study.study_name!r}"
    chosen = next((t for t in trials if t.number == number), None)
    if chosen is None:
        numbers = [t.number for t in trials]
        known = f"trials 0–{max(numbers)}" if numbers else "no trials"
        raise SpecError(f"{where} has no trial {number} (it has {known})")
    if chosen.state == TrialState.FAIL:
        reason = chosen.user_attrs.get(records.ERROR_ATTR, "its process stopped responding")
        raise SpecError(f"trial {number} of {where} failed ({reason}): nothing to export")
    if chosen.state != TrialState.COMPLETE:
        raise SpecError(f"trial {number} of {where} is {chosen.state.name.lower()}, not "
                        f"complete: nothing to export yet")
    artifact = chosen.user_attrs.get(records.ARTIFACT_ATTR)
    if artifact is None:
        raise SpecError(f"trial {number} of {where} stored no artifact (a float trial, or a "
                        f"search run without an artifact directory): nothing to export")
    if not Path(artifact).is_dir():
        raise SpecError(f"trial {number} of {where}: its artifact directory {artifact} does "
                        f"not exist (moved, or written on another machine)")
    return chosen


def export_trial(name: str, number: int, out: str | Path, *, storage: str | None = None
                 ) -> Path:
    """Write the deployable folder of trial ``number`` of search ``name`` to ``out``.

    Args:
        name: the search (study) name.
        number: the trial's number.
        out: the folder to write (created; earlier files overwritten).
        storage: the database URL (default: the settings').

    Returns:
        ``out``.

    Raises:
        SpecError: unknown search or trial, a failed or incomplete trial, no artifact
            (:func:`stored_trial`), or the artifact does not fit the spec's solver.
        QuantizationError: the network cannot be exported, or onnxruntime disagrees with torch
            on the check windows.
    """
    study = load_study(name, storage=storage)
    trial = stored_trial(study, number)
    spec = study_spec(study)
    qnet = load_quantized(trial.user_attrs[records.ARTIFACT_ATTR])
    problem = load_spec_problem(spec, progress=False)
    solver = problem.build_solver(spec.model, scale=qnet.config.scale,
                                  resample=spec.space.resample)
    if tuple(qnet.input_shape) != (problem.in_channels, *solver.net_shape):
        raise SpecError(f"trial {number} of search {name!r}: its artifact's network input "
                        f"{list(qnet.input_shape)} does not fit the spec's data at scale "
                        f"{qnet.config.scale:g} ({[problem.in_channels, *solver.net_shape]})")
    solver.network = qnet.model
    attrs = trial.user_attrs
    error, cost = trial.values
    info = DeploymentInfo(
        search=study.study_name, trial=number, metric=spec.metric, error=error, cost=cost,
        float_error=attrs.get(records.FLOAT_MSE_ATTR),
        float_reference=attrs.get(records.FLOAT_REFERENCE_ATTR),
        extra={"artifact": attrs[records.ARTIFACT_ATTR], "bits": attrs.get(records.BITS_ATTR)})
    windows = problem.val_windows
    check = windows.batch(torch.arange(min(CHECK_WINDOWS, len(windows))))[0]
    model = spec.model
    if qnet.config.rank is not None and isinstance(model, FactoryConfig):
        model = model.with_kwargs(rank=qnet.config.rank)  # the network the trial ran
    return export_deployable(solver, qnet, out, info=info, model_config=model,
                             check_inputs=check)
