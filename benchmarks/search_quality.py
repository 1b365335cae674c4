"""Search quality side by side: the paper's grid, generic samplers, AIMET AMP and autoq's sampler.

Usage:
    python benchmarks/search_quality.py [--spaces small | NAME ... | SPEC.yaml ...]
        [--methods grid random tpe nsga2 gp amp autoq] [--knobs KNOB[+KNOB...] ...]
        [--seeds 0 1 2] [--budget 25] [--amp-points 5] [--out benchmarks/search_quality_runs]
        [--storage URL] [--plot-dir DIR] [--floor] [--summary | --copy-to URL]

Every method searches the same space with the same float model per scale and the same trial
(calibration + QAT + validation MSE + bit-op cost). The work is cut into pieces, one per (space,
method, seed), each an Optuna study named ``<space>-<method>-seed<seed>`` on one storage
(``--storage``; default a SQLite file under ``--out``), so the benchmark runs in pieces and
resumes: a finished piece is read, not re-run; an interrupted one resumes its study (trials of a
killed process are failed and run again). Run one process per storage at a time. ``--summary``
only reads the storage; a run prints the same report at its end. ``--copy-to URL`` copies the
finished pieces asked for to another storage (``optuna.copy_study``), for instance a SQLite file
to keep beside RESULTS.md when the machine's own storage will not outlive it; each process's
record on a piece names the code's revision (a ``git archive`` carries it in
``benchmarks/REVISION``), so pieces run from different commits are told apart.

Per space it prints, per method, the hypervolume (log10 cost × log10 MSE, one reference per
space: the float model's cost at full resolution and 10 × its MSE), the cheapest cost at MSE ≤
1.1× and ≤ 2× the float full-resolution MSE, the trials and the charged wall time — median and
range over the finished seeds — then the fronts, the hypervolume reached at a few wall times
(multiples of the grid's), the wall time each method takes to reach the grid's final
hypervolume, the machine and load every piece ran under, and writes two figures: the fronts
(first seed), and hypervolume against wall time and against trials (one curve per method, first
seed). Last, one table over all spaces: each method's hypervolume relative to the grid's (median
over seeds), ``*`` on the best method of each space, missing pieces shown as missing, beside two
ceilings: one point at the space's cheapest cost and lowest MSE any trial reached, and (``by
scale``) each scale's cheapest cost at its float model's MSE, which is where a goal such as
"1.2× the grid's" is out of reach for any sampler because the coarse scales' float models are.

Wall time is charged, not read off the clock: a trial costs its duration less its float-model
time (which is a load, or a training run only for whichever search came first), and every search
is charged the training seconds of each float model (scale, rank) it used, once: the full
resolution model (every trial records the float reference) from the start, the others at their
first trial. The training seconds are the cache's record of the run that trained the model
(``FloatModel.train_seconds``). A trial interrupted by a kill is not charged; its re-run is.

The paper's grid is its regimes at its scale factors (those in the space), 25 trials, in the
paper's setting whatever the space's defaults (``autoq.search.spec.paper_setting``: first and
last layers float, per-tensor weights, bilinear resizes, FFTs, each trial a full QAT from the
float model); it and AMP are deterministic and run once, as seed 0. AIMET AMP runs per paper
scale factor (brute force, whole curve, score −MSE) on the float model, its curves are stored
on the piece's study, then up to ``--amp-points`` points of its curves (spread over the cost
range) are QAT-fine-tuned, scored like every other trial and stored as trials of that study;
its calibration-only evaluations are counted in its trials and its AMP seconds charged from
the start. ``--floor`` adds what the space allows at all (the cost floor per scale; it trains
the float model at every scale).

Knobs (issue 17 item 3: every option beyond the paper is measured on and off before it becomes
a default of the small spaces). ``--knobs allow_float first_last+transform`` adds the methods
``autoq+allow_float`` and ``autoq+first_last+transform``: autoq's sampler on the space's spec
with the knob's values (a ``+`` joins knobs applied together), validated as a spec file is, in
studies ``<space>-autoq+<knobs>-seed<seed>`` beside the space's others, shown after the
``--methods`` in every table and figure, against the same reference (the space's own float
model at full resolution) and charged the same way (its float models once each: a knob that
changes ``space.resample`` trains float models of its own, the others load the space's from
the cache; a sensitivity pass is charged before the first trial). The knobs (:data:`KNOBS`):
``allow_float``, ``first_last`` (first and last layers searched; ``float_ends`` the reverse,
for a space that searches them by default), ``transform`` (``search``; FNO only),
``per_channel``, ``cubic`` and ``fourier`` (``space.resample``), ``low_scales`` (scale
factors 0.15 and 0.1 added to the space's), ``sensitivity``
(4 bits), ``warm`` (``search.warm_start``), ``reuse`` (``train.rescale_epochs``: float models
below full resolution fine-tuned from the full-resolution one, charged their fine-tune) and
``fidelity`` (screening 0.25; a screened trial
counts towards the budget, as in a search, and is on no front). A knob that does not apply to
a space (another architecture, a value the space has already, a spec the validation refuses)
is skipped there with the reason and shown ``n/a``. ``--summary`` reads knob pieces back when
given the same ``--knobs``.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import socket
import statistics
import subprocess
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from autoq.cost import PAPER_SCALES, REGIMES
from autoq.errors import SpecError
from autoq.search import records
from autoq.search.results import hypervolume, operating_point, pareto_front
from autoq.search.spec import (
    SearchSpec,
    bundled_spaces,
    load_spec,
    paper_setting,
    parse_spec,
)
from autoq.search.storage import (
    create_or_resume,
    fail_orphan_trials,
    open_storage,
    study_exists,
)

if TYPE_CHECKING:
    from optuna.storages import RDBStorage

    from autoq.search import SearchSpace, TrialPoint, TrialRunner

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("grid", "random", "tpe", "nsga2", "gp", "amp", "autoq")
DETERMINISTIC = ("grid", "amp")
"""Methods that propose the same configurations whatever the seed: they run once, as seed 0."""
PAPER_CANDIDATES = [(16, 16), (8, 16), (8, 8), (4, 8), (4, 4)]
DEFAULT_OUT = ROOT / "benchmarks" / "search_quality_runs"
TIME_MULTIPLES = (0.25, 0.5, 1.0, 2.0)
"""The wall times of the hypervolume-against-time table, as multiples of the grid's."""
MSE_BOUNDS = (1.1, 2.0)

# The benchmark's own attributes on a piece's study (autoq's records are in records.py).
REFERENCE_ATTR = "benchmark_reference"
"""``[cost, mse]``: the space's hypervolume reference (float at full resolution, 10 × its MSE)."""
BUDGET_ATTR = "benchmark_budget"
"""Counted trials the piece needs to be finished (the grid's size, the budget, AMP's picks)."""
FLOAT_MODELS_ATTR = "benchmark_float_models"
"""``{model key: {"seconds": training seconds, "upfront": bool}}``: the float models the search
used, charged once each; ``upfront`` ones before the first trial, the others at first use."""
RUNS_ATTR = "benchmark_runs"
"""One entry per process that worked on the piece: host, cores, torch threads, the code's
revision, load average at start and end, start and end times (no end: the process was killed)."""
REVISION_FILE = ROOT / "benchmarks" / "REVISION"
"""``$Format:%H$``, which ``git archive`` replaces with the commit it archives
(``.gitattributes``: export-subst): the revision of a run from an archive, which has no .git."""
AMP_CURVE_PREFIX = "benchmark_amp_curve:"
"""``+ scale``: AMP's curve there, ``{"curve": [bits, ...], "evaluations": n, "seconds": s}``."""
AMP_PICK_ATTR = "benchmark_amp_pick"
AMP_POINTS_ATTR = "benchmark_amp_points"
"""The ``--amp-points`` the AMP piece's picks were made for."""
"""Trial attribute of an AMP point: its index in the curves sorted by cost."""

KNOB_SEPARATOR = "+"
"""Joins autoq to its knobs in a method's name (``autoq+first_last+transform``): a spec name
cannot hold it, so a study name splits back into space, method and seed."""


@dataclass(frozen=True)
class Knob:
    """A named override of a space's spec, searched by autoq's sampler as a method of its own.

    Attributes:
        why: what it changes and why it may pay, in a line.
        space: ``space.<key>`` values it sets.
        search: ``search.<key>`` values it sets.
        train: ``train.<key>`` values it sets.
        architectures: the ``model.arch`` values it applies to (empty: every one).
        scales: scale factors it adds to the space's menu (``space.scales``).
    """

    why: str
    space: Mapping[str, Any] = field(default_factory=dict)
    search: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    architectures: tuple[str, ...] = ()
    scales: tuple[float, ...] = ()

    def values(self) -> dict[str, Mapping[str, Any]]:
        """The values it sets by spec section (``space``, ``search``, ``train``)."""
        return {"space": self.space, "search": self.search, "train": self.train}

    @property
    def keys(self) -> list[str]:
        """The spec keys it sets, ``<section>.<key>``."""
        return [*(f"{section}.{key}" for section, values in self.values().items()
                  for key in values),
                *(["space.scales"] if self.scales else [])]


KNOBS: dict[str, Knob] = {
    "allow_float": Knob("a group may stay float (priced at 16 bits), as the grid's float regime "
                        "does", space={"allow_float": True}),
    "first_last": Knob("the first and last layers are searched too (the paper keeps them "
                       "float): a cheaper floor", space={"first_last_float": False}),
    "float_ends": Knob("the first and last layers stay float, as the paper keeps them: the "
                       "off state of a space that searches them",
                       space={"first_last_float": True}),
    "transform": Knob("each spectral group takes the cheaper of FFT and quantized DFT at its "
                      "bits and scale", space={"transform": "search"}, architectures=("fno",)),
    "per_channel": Knob("one weight grid per output channel: may cut the error at the same "
                        "bit-ops",
                        space={"weight_granularity": "per_channel"}),
    "cubic": Knob("cubic-convolution resizes below scale 1 (float models of their own)",
                  space={"resample": "cubic"}),
    "fourier": Knob("spectral resizes below scale 1 (float models of their own; periodic data "
                    "only)", space={"resample": "fourier"}),
    "sensitivity": Knob("a calibration-only pass at 4 bits as the sampler's prior",
                        search={"sensitivity": {"bits": 4}}),
    "warm": Knob("QAT starts from the nearest earlier trial's weights",
                 search={"warm_start": {}}),
    "fidelity": Knob("every sampled trial screened on a quarter of its QAT, as "
                     "benchmarks/fidelity.py ran it", search={"fidelity": {"screening": 0.25}}),
    "bounded": Knob("the search bounded at 1.1× the float model's error "
                    "(search.constraints.max_mse_ratio): every trial spent on the cheapest "
                    "configuration within it, the front above it not searched",
                    search={"constraints": {"max_mse_ratio": MSE_BOUNDS[0]}}),
    "reuse": Knob("each float model below full resolution is the full-resolution one "
                  "fine-tuned for 2 epochs, not trained from scratch: float training is most "
                  "of a 2D search's wall time", train={"rescale_epochs": 2}),
    "low_scales": Knob("scale factors 0.15 and 0.1 too, below the paper's lowest (0.2): a "
                       "cheaper floor where the data are smooth enough", scales=(0.15, 0.1)),
}
"""The knobs beyond the paper (issue 17 item 3), each measured on against the space's own
autoq piece (off) before it becomes a default of the small spaces."""

_PIECE_NAME = re.compile(
    rf"^(?P<space>.+)-(?P<method>{'|'.join(METHODS)}|autoq(?:{re.escape(KNOB_SEPARATOR)}\w+)+)"
    rf"-seed(?P<seed>\d+)$")


@dataclass(frozen=True)
class Piece:
    """One (space, method, seed) of the benchmark: one study on the storage."""

    space: str
    method: str
    seed: int

    @property
    def study_name(self) -> str:
        return f"{self.space}-{self.method}-seed{self.seed}"

    @classmethod
    def from_study_name(cls, name: str) -> Piece | None:
        """The piece a study holds, or None for a study the benchmark did not name."""
        match = _PIECE_NAME.match(name)
        if match is None:
            return None
        return cls(match["space"], match["method"], int(match["seed"]))


def pieces(space: str, methods: Sequence[str], seeds: Sequence[int]) -> list[Piece]:
    """The pieces of ``space``, seed-major (every method's first seed before any second seed),
    so that an interrupted benchmark has a complete comparison first; deterministic methods
    once."""
    ordered: list[Piece] = []
    for seed in seeds:
        for method in methods:
            piece = Piece(space, method, 0 if method in DETERMINISTIC else seed)
            if piece not in ordered:
                ordered.append(piece)
    return ordered


def knob_method(knobs: str) -> str:
    """The method that runs autoq's sampler with ``knobs`` (one knob, or several joined by
    ``+``, all applied): ``autoq+<knobs>``. A SpecError names an unknown knob (listing the
    known ones), a knob given twice, or two knobs setting the same key."""
    names = knobs.split(KNOB_SEPARATOR)
    unknown = [name for name in names if name not in KNOBS]
    if unknown:
        raise SpecError(f"--knobs: unknown knob {unknown[0]!r}; known: {', '.join(KNOBS)}")
    if len(set(names)) < len(names):
        raise SpecError(f"--knobs: {knobs!r} names a knob twice")
    set_by: dict[str, str] = {}
    for name in names:
        knob = KNOBS[name]
        for key in knob.keys:
            if key in set_by:
                raise SpecError(f"--knobs: {knobs!r}: {set_by[key]} and {name} both set {key}")
            set_by[key] = name
    return KNOB_SEPARATOR.join(["autoq", *names])


def method_knobs(method: str) -> list[str]:
    """The knobs a method applies (none for the plain methods)."""
    return method.split(KNOB_SEPARATOR)[1:]


def benchmark_methods(methods: Sequence[str], knobs: Sequence[str]) -> list[str]:
    """The methods of a run: ``--methods``, then one ``autoq+<knob>`` per ``--knobs``."""
    return list(dict.fromkeys([*methods, *(knob_method(knob) for knob in knobs)]))


def _merge(section: dict[str, Any], values: Mapping[str, Any]) -> None:
    """Set ``values`` in ``section``, key by key into nested sections, so that a knob setting
    ``search.constraints.max_mse_ratio`` keeps the space's ``max_cost``."""
    for key, value in values.items():
        if isinstance(value, Mapping) and value and isinstance(section.get(key), dict):
            _merge(section[key], value)
        else:
            section[key] = value


def method_spec(spec: SearchSpec, method: str) -> SearchSpec:
    """The spec a method searches: the grid's is the paper's setting (:func:`paper_setting`);
    a knob method's is the space's with its knobs' values and autoq's sampler, validated as a
    spec file is; the others search the space's. A SpecError names the knob and the space
    when the knob is for other architectures, leaves the spec as it was, or makes a spec the
    validation refuses."""
    if method == "grid":
        return paper_setting(spec)
    knobs = method_knobs(method)
    if not knobs:
        return spec
    where = f"knob {KNOB_SEPARATOR.join(knobs)!r} on {spec.name}"
    payload = spec.model_dump(mode="json")
    payload["search"]["sampler"] = "autoq"  # what the piece runs (search.sensitivity needs it)
    for name in knobs:
        knob = KNOBS[name]
        # A factory model's title is its factory path, which is no architecture.
        if knob.architectures and spec.model.title not in knob.architectures:
            raise SpecError(f"{where}: {name} is for model.arch {' or '.join(knob.architectures)}"
                            f", and the space's model is {spec.model.title!r}")
        for section, values in knob.values().items():
            _merge(payload[section], values)
        if knob.scales:
            payload["space"]["scales"] = sorted({*payload["space"]["scales"], *knob.scales},
                                                reverse=True)
    knobbed = parse_spec(payload, source=where)
    for name in knobs:
        knob = KNOBS[name]
        same = [f"{section}.{key}" for section, values in knob.values().items()
                for key in values
                if getattr(getattr(knobbed, section), key) == getattr(getattr(spec, section), key)]
        if knob.scales and set(knob.scales) <= set(spec.space.scales):
            same.append("space.scales holding " + ", ".join(map(str, knob.scales)))
        if same:
            raise SpecError(f"{where}: the space has {', '.join(same)} so already")
    return knobbed


def refusals(spec: SearchSpec, methods: Sequence[str]) -> dict[str, str]:
    """The methods that do not run on ``spec``, each with why: AMP on a space with
    ``space.ranks``, a knob :func:`method_spec` refuses there."""
    refused = {}
    for method in methods:
        if method == "amp" and spec.space.ranks:
            refused[method] = "AMP runs on spaces without space.ranks"
        elif method_knobs(method):
            try:
                method_spec(spec, method)
            except SpecError as e:
                refused[method] = str(e)
    return refused


def model_key(scale: float, rank: Any = None) -> str:
    """The float model (scale, rank) as a storage key: ``"0.5"``, ``"0.5@rank8"``."""
    return f"{scale:g}" if rank is None else f"{scale:g}@rank{rank}"


# --- reading a piece back: charged wall time and hypervolume as the search went ---------------


@dataclass(frozen=True)
class Step:
    """The search after one more counted trial.

    Attributes:
        seconds: charged wall time so far (see :func:`charged_steps`).
        trials: counted trials so far.
        hypervolume: of those trials, against the space's reference.
    """

    seconds: float
    trials: int
    hypervolume: float


def own_seconds(trial: FrozenTrial) -> float:
    """A trial's wall time less its float-model time (a training run for whichever search came
    first, a load for the others): that is charged per model, see :func:`charged_steps`."""
    assert trial.datetime_start is not None and trial.datetime_complete is not None
    duration = (trial.datetime_complete - trial.datetime_start).total_seconds()
    float_seconds = trial.user_attrs.get(records.TIMINGS_ATTR, {}).get("float", 0.0)
    return max(0.0, duration - float_seconds)


def counted_trials(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The trials that count towards a budget (complete, or failed by the objective), finished,
    in the order they ran; a trial of a killed process does not count (its re-run does)."""
    return sorted((t for t in trials if records.counts_towards_budget(t)
                   and t.datetime_start is not None and t.datetime_complete is not None),
                  key=lambda t: t.number)


def charged_steps(trials: Sequence[FrozenTrial], *, float_models: Mapping[str, Mapping[str, Any]],
                  reference: tuple[float, float], upfront_seconds: float = 0.0) -> list[Step]:
    """The search's hypervolume after each counted trial, at its charged wall time.

    The clock starts at ``upfront_seconds`` (AMP's calibration-only phase) plus the training
    seconds of the ``upfront`` float models; every other float model in ``float_models`` is
    charged at the first trial at its (scale, rank); each trial adds :func:`own_seconds`. A
    model the trials used that ``float_models`` lacks is charged nothing (see
    :func:`unpriced_models`).
    """
    counted = counted_trials(trials)
    elapsed = upfront_seconds + sum(model["seconds"] for model in float_models.values()
                                    if model["upfront"])
    charged = {key for key, model in float_models.items() if model["upfront"]}
    steps: list[Step] = []
    points: list[TrialPoint] = []
    for trial in counted:
        key = model_key(trial.params[records.SCALE_PARAM], trial.params.get(records.RANK_PARAM))
        if key not in charged and key in float_models:
            elapsed += float_models[key]["seconds"]
            charged.add(key)
        elapsed += own_seconds(trial)
        points.append(records.trial_point(trial))
        steps.append(Step(elapsed, len(points), hypervolume(points, reference)))
    return steps


def unpriced_models(trials: Sequence[FrozenTrial], float_models: Mapping[str, Any]) -> list[str]:
    """Float models the counted trials used whose training seconds the piece did not record."""
    used = {model_key(t.params[records.SCALE_PARAM], t.params.get(records.RANK_PARAM))
            for t in counted_trials(trials)}
    return sorted(used - set(float_models))


@dataclass(frozen=True)
class PieceResult:
    """A piece as read from the storage.

    Attributes:
        piece: which piece.
        points: its counted trials, in order.
        steps: its hypervolume after each counted trial, at charged wall time.
        budget: counted trials it needs (None: never set up).
        evaluations: AMP's calibration-only evaluations (0 for the other methods).
        upfront_seconds: wall time charged before the first trial (float models, AMP's phase,
            the sensitivity pass).
        runs: the machine and load of every process that worked on it.
        unpriced: float models its trials used whose training seconds are not recorded.
        amp_points: the ``--amp-points`` an AMP piece picked its points for.
    """

    piece: Piece
    points: list[TrialPoint]
    steps: list[Step]
    budget: int | None
    evaluations: int = 0
    upfront_seconds: float = 0.0
    runs: list[dict[str, Any]] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)
    amp_points: int | None = None

    @property
    def finished(self) -> bool:
        return self.budget is not None and len(self.points) >= self.budget

    @property
    def hypervolume(self) -> float:
        return self.steps[-1].hypervolume if self.steps else 0.0

    @property
    def wall(self) -> float:
        """Charged wall time of the whole piece."""
        return self.steps[-1].seconds if self.steps else self.upfront_seconds

    @property
    def trials(self) -> int:
        """The trials column: counted trials plus AMP's calibration-only evaluations."""
        return len(self.points) + self.evaluations


def piece_result(piece: Piece, trials: Sequence[FrozenTrial], attrs: Mapping[str, Any],
                 reference: tuple[float, float]) -> PieceResult:
    """A piece from its study's trials and user attributes, against the space's reference;
    AMP's calibration-only phase and the sensitivity pass (``search.sensitivity``) are charged
    before the first trial, where they ran."""
    float_models = attrs.get(FLOAT_MODELS_ATTR, {})
    amp = [value for key, value in attrs.items() if key.startswith(AMP_CURVE_PREFIX)]
    sensitivity = records.recorded_sensitivities(attrs)
    phase_seconds = (sum(phase["seconds"] for phase in amp)
                     + (0.0 if sensitivity is None else sensitivity.seconds))
    steps = charged_steps(trials, float_models=float_models, reference=reference,
                          upfront_seconds=phase_seconds)
    upfront = phase_seconds + sum(m["seconds"] for m in float_models.values() if m["upfront"])
    return PieceResult(piece=piece,
                       points=[records.trial_point(t) for t in counted_trials(trials)],
                       steps=steps, budget=attrs.get(BUDGET_ATTR),
                       evaluations=sum(phase["evaluations"] for phase in amp),
                       upfront_seconds=upfront, runs=list(attrs.get(RUNS_ATTR, [])),
                       unpriced=unpriced_models(trials, float_models),
                       amp_points=attrs.get(AMP_POINTS_ATTR))


def done_as_asked(result: PieceResult | None, *, budget: int, amp_points: int) -> bool:
    """Whether a stored piece needs no more work for this run: finished with its float models
    priced, at least ``budget`` trials for a sampler, AMP's points picked for ``amp_points``."""
    if result is None or not result.finished or result.unpriced:
        return False
    if result.piece.method == "amp":
        return result.amp_points == amp_points
    return result.piece.method == "grid" or len(result.points) >= budget


def read_space(storage: RDBStorage, space: str, wanted: Sequence[Piece]
               ) -> tuple[tuple[float, float] | None, dict[Piece, PieceResult]]:
    """The space's reference and every wanted piece the storage holds."""
    studies = {piece: optuna.load_study(study_name=piece.study_name, storage=storage)
               for piece in wanted if study_exists(storage, piece.study_name)}
    references = [study.user_attrs[REFERENCE_ATTR] for study in studies.values()
                  if REFERENCE_ATTR in study.user_attrs]
    if not references:
        return None, {}
    reference = (float(references[0][0]), float(references[0][1]))
    return reference, {piece: piece_result(piece, study.get_trials(deepcopy=False),
                                           study.user_attrs, reference)
                       for piece, study in studies.items()}


# --- the report --------------------------------------------------------------------------------


def summarise(values: Sequence[float | None]) -> str:
    """Median and range of a metric over seeds."""
    finite = [v for v in values if v is not None]
    if not finite:
        return "—"
    if len(finite) == 1:
        return f"{finite[0]:.3g}"
    return f"{statistics.median(finite):.3g} [{min(finite):.3g}, {max(finite):.3g}]"


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as left-aligned columns (the first row is the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows]


def finished_by_method(results: Mapping[Piece, PieceResult], methods: Sequence[str]
                       ) -> dict[str, list[PieceResult]]:
    """Each method's finished pieces, by seed."""
    return {method: sorted((r for p, r in results.items() if p.method == method and r.finished),
                           key=lambda r: r.piece.seed) for method in methods}


def grid_piece(results: Mapping[Piece, PieceResult]) -> PieceResult | None:
    """The grid's finished piece, the one every method is compared with (None: none)."""
    grid = finished_by_method(results, ["grid"])["grid"]
    return grid[0] if grid else None


def hypervolume_at(steps: Sequence[Step], seconds: float) -> float:
    """The hypervolume of the trials finished by ``seconds`` of charged wall time."""
    reached = [step.hypervolume for step in steps if step.seconds <= seconds]
    return reached[-1] if reached else 0.0


def time_to_reach(steps: Sequence[Step], target: float) -> float | None:
    """The charged wall time at which the hypervolume first reached ``target`` (None: never)."""
    return next((step.seconds for step in steps if step.hypervolume >= target), None)


def method_rows(results: Mapping[Piece, PieceResult], methods: Sequence[str],
                float_mse: float, refused: Collection[str] = ()) -> list[list[str]]:
    """The per-space table: a row per method over its finished seeds, or what is missing
    (``n/a``: a method in ``refused`` does not run on the space). Its last column is each
    seed's hypervolume over the grid's, seed by seed: a median hides a seed that lost."""
    rows = [["method", "trials", "hypervolume", *(f"cost @ MSE≤{b:g}×float" for b in MSE_BOUNDS),
             "wall s (charged)", "hv / grid, by seed"]]
    by_method = finished_by_method(results, methods)
    grid = grid_piece(results)
    grid_hypervolume = grid.hypervolume if grid else 0.0
    for method in methods:
        done = by_method[method]
        if not done:
            partial = [r for p, r in results.items() if p.method == method]
            status = ("n/a" if method in refused else "missing" if not partial
                      else "partial " + ", ".join(
                f"seed {r.piece.seed}: {len(r.points)}/{r.budget}" for r in partial))
            rows.append([method, status, "", *("" for _ in MSE_BOUNDS), "", ""])
            continue
        cheapest = []
        for bound in MSE_BOUNDS:
            chosen = [operating_point(r.points, bound * float_mse) for r in done]
            cheapest.append(summarise([None if c is None else c.cost for c in chosen]))
        by_seed = (", ".join(f"{r.hypervolume / grid_hypervolume:.3f}" for r in done)
                   if grid_hypervolume > 0 else "no grid")
        rows.append([method, summarise([r.trials for r in done]),
                     summarise([r.hypervolume for r in done]), *cheapest,
                     summarise([r.wall for r in done]), by_seed])
    return rows


def relative_hypervolumes(results: Mapping[Piece, PieceResult], methods: Sequence[str]
                          ) -> dict[str, float | None]:
    """Each method's hypervolume over the grid's, median over its finished seeds (None: the
    method or the grid has no finished piece)."""
    by_method = finished_by_method(results, methods)
    grid = grid_piece(results)
    if grid is None or grid.hypervolume <= 0:
        return dict.fromkeys(methods)
    return {method: (statistics.median(r.hypervolume for r in by_method[method])
                     / grid.hypervolume if by_method[method] else None)
            for method in methods}


@dataclass(frozen=True)
class Ceilings:
    """What no search of a space exceeds without more accurate trials than it has seen.

    Attributes:
        corner: :func:`hypervolume_ceiling`, one point at the cheapest cost and lowest MSE.
        by_scale: :func:`scale_ceiling`, each scale's cheapest cost at its float model's MSE.
    """

    corner: float | None = None
    by_scale: float | None = None


def summary_rows(spaces: Mapping[str, Mapping[Piece, PieceResult]], methods: Sequence[str],
                 seeds: Sequence[int], ceilings: Mapping[str, Ceilings],
                 refused: Mapping[str, Collection[str]] | None = None) -> list[list[str]]:
    """The table over all spaces: per space the grid's hypervolume, the space's
    :class:`Ceilings` relative to it, and each method's relative to it (median over
    seeds; ``(k/n)``: only k of the n seeds finished), ``*`` on the best, and ``missing`` where a
    method has no finished piece (``no grid`` where the grid has none; ``n/a`` where
    ``refused[space]`` holds the method: it does not run there)."""
    rows = [["space", "grid hv", "ceiling", "by scale", *methods]]
    for space, results in spaces.items():
        relative = relative_hypervolumes(results, methods)
        by_method = finished_by_method(results, methods)
        known = {m: v for m, v in relative.items() if v is not None}
        best = max(known, key=lambda m: known[m]) if known else None
        grid = grid_piece(results)
        cells = []
        for method in methods:
            wanted = 1 if method in DETERMINISTIC else len(seeds)
            done = len(by_method[method])
            if not done:
                cells.append("n/a" if method in (refused or {}).get(space, ()) else "missing")
            elif relative[method] is None:
                cells.append("no grid")
            else:
                cell = f"{relative[method]:.2f}" + ("*" if method == best else "")
                cells.append(cell + (f" ({done}/{wanted})" if done < wanted else ""))
        bounds = ceilings.get(space, Ceilings())
        rows.append([space, f"{grid.hypervolume:.3g}" if grid else "missing",
                     *(f"{bound / grid.hypervolume:.2f}" if grid and bound is not None
                       and grid.hypervolume > 0 else "—"
                       for bound in (bounds.corner, bounds.by_scale)), *cells])
    return rows


def knob_rows(spaces: Mapping[str, Mapping[Piece, PieceResult]], methods: Sequence[str]
              ) -> list[list[str]]:
    """Each knob method against plain autoq, and against every knob method of ``methods`` whose
    knobs it adds to (``autoq+a+b`` against ``autoq+a``: does ``b`` pay on top of ``a``?), seed
    by seed (a knob is a default candidate where it wins on every seed): per space, method and
    base, for every seed both finished, its hypervolume over the base's, on how many of those
    seeds it is at least the base's, and the charged wall time it took to reach the base's final
    hypervolume over the base's whole wall time (issue 17 item 2: autoq's own 25-trial
    hypervolume in half its wall time)."""
    rows = [["space", "method", "against", "hv / base's (seed: ratio)", "at least base's",
             "time to base's hv / base's wall"]]
    for space, results in spaces.items():
        by_method = finished_by_method(results, [*methods, "autoq"])
        for method in methods:
            knobs = set(method_knobs(method))
            if not knobs:
                continue
            bases = ["autoq", *(base for base in methods
                                if method_knobs(base) and set(method_knobs(base)) < knobs)]
            for base in bases:
                off_by_seed = {r.piece.seed: r for r in by_method[base] if r.hypervolume > 0}
                pairs = [(r, off_by_seed[r.piece.seed]) for r in by_method[method]
                         if r.piece.seed in off_by_seed]
                if not pairs:
                    continue
                ratios = [knob.hypervolume / off.hypervolume for knob, off in pairs]
                times = [time_to_reach(knob.steps, off.hypervolume) for knob, off in pairs]
                rows.append([
                    space, method, base,
                    ", ".join(f"{knob.piece.seed}: {ratio:.3f}"
                              for (knob, _), ratio in zip(pairs, ratios, strict=True)),
                    f"{sum(ratio >= 1 for ratio in ratios)}/{len(ratios)}",
                    ", ".join(f"{knob.piece.seed}: "
                              + ("never" if seconds is None else f"{seconds / off.wall:.2f}")
                              for (knob, off), seconds in zip(pairs, times, strict=True))])
    return rows


def machine_lines(results: Mapping[Piece, PieceResult], methods: Sequence[str]) -> list[str]:
    """Where and under what load each piece ran: one line per piece (seed-major, in the order
    of ``methods``), one entry per process."""
    lines = []
    for piece, result in sorted(results.items(), key=lambda item: (
            item[0].seed, methods.index(item[0].method))):
        runs = []
        for run in result.runs:
            end = run.get("load_end")
            load = f"{run['load_start'][0]:.2f}→" + (f"{end[0]:.2f}" if end
                                                       else "? (running, or killed)")
            code = f"code {run['code'][:10]}, " if "code" in run else ""
            runs.append(f"{run['host']} {run['cores']} cores {run['torch_threads']} thread(s), "
                        f"{code}load {load}, {run['started'][:16]}"
                        + (f"→{run['finished'][11:16]}" if run.get("finished") else "")
                        + (" interrupted" if run.get("interrupted") else ""))
        lines.append(f"{piece.method}/seed {piece.seed}: " + ("; ".join(runs) or "not recorded"))
    return lines


def wall_time_lines(results: Mapping[Piece, PieceResult], methods: Sequence[str]) -> list[str]:
    """Hypervolume at multiples of the grid's wall time (first seed), and each method's wall
    time to reach the grid's final hypervolume (median over seeds, and per seed)."""
    by_method = finished_by_method(results, methods)
    grid = grid_piece(results)
    if grid is None:
        return ["wall time: no finished grid piece to compare with"]
    target, grid_wall = grid.hypervolume, grid.wall
    rows = [["method (first seed)", *(f"hv @ {k:g}× grid ({k * grid_wall:.0f} s)"
                                      for k in TIME_MULTIPLES)]]
    for method in methods:
        if by_method[method]:
            first = by_method[method][0]
            rows.append([f"{method} (seed {first.piece.seed})",
                         *(f"{hypervolume_at(first.steps, k * grid_wall):.3g}"
                           for k in TIME_MULTIPLES)])
    lines = table(rows)
    width = max([7, *(len(method) for method in methods)])
    lines.append(f"wall time to reach the grid's final hypervolume {target:.3g} "
                 f"(grid: {grid_wall:.0f} s), median over seeds [per seed]:")
    for method in methods:
        if not by_method[method]:
            continue
        reached = [time_to_reach(r.steps, target) for r in by_method[method]]
        median = statistics.median(math.inf if t is None else t for t in reached)
        shown = "never" if math.isinf(median) else f"{median:.0f} s ({median / grid_wall:.2f}×)"
        per_seed = ", ".join("never" if t is None else f"{t:.0f}" for t in reached)
        lines.append(f"  {method:{width}s} {shown} [{per_seed}]")
    return lines


def space_report(space: str, reference: tuple[float, float] | None,
                 results: Mapping[Piece, PieceResult], methods: Sequence[str],
                 refused: Mapping[str, str] | None = None) -> list[str]:
    """Everything printed for one space, from its pieces on the storage; ``refused``: the
    methods that do not run on it, with why."""
    refused = refused or {}
    if reference is None:
        return [f"{space}: nothing on the storage yet"]
    float_mse = reference[1] / 10
    lines = [f"{space}: float model at full resolution: MSE {float_mse:.3e}, cost "
             f"{reference[0]:.3e}; hypervolume reference (cost, MSE) = ({reference[0]:.3e}, "
             f"{reference[1]:.3e})"]
    lines += ["  " + line for line in table(method_rows(results, methods, float_mse, refused))]
    lines += [f"  {method}: n/a: {why}" for method, why in refused.items() if method in methods]
    for method, done in finished_by_method(results, methods).items():
        if done:
            lines.append(f"  {method} front (seed {done[0].piece.seed}): " + "; ".join(
                f"{p.cost:.2e}/{p.mse:.2e}@{p.scale:g} {_bits_summary(p.bits)}"
                for p in pareto_front(done[0].points)))
        unpriced = sorted({key for r in done for key in r.unpriced})
        if unpriced:
            lines.append(f"  {method}: float training not recorded for models {unpriced} "
                         f"(charged 0 s)")
    lines += ["  " + line for line in wall_time_lines(results, methods)]
    lines += ["  machine and load: " + line for line in machine_lines(results, methods)]
    return lines


def _bits_summary(bits: Mapping[str, Any]) -> str:
    from autoq.search.report import bits_summary

    return bits_summary(bits)


def _line_style(method: str) -> str:
    """Knob methods dashed: past ten methods the colours repeat."""
    return "--" if method_knobs(method) else "-"


def plot_space(space: str, results: Mapping[Piece, PieceResult], methods: Sequence[str],
               reference: tuple[float, float], plot_dir: Path, budget: int) -> list[Path]:
    """The fronts (first seed) on one log-log figure, and hypervolume against charged wall time
    (log scale) and against trials, one curve per method (first seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from autoq.search.report import save_cost_mse_figure

    first = {m: done[0] for m, done in finished_by_method(results, methods).items() if done}
    if not first:
        return []
    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    for method, result in first.items():
        front = records.complete_points(pareto_front(result.points))
        ax.step([p.cost for p in front], [p.mse for p in front], where="post", lw=1.4,
                ls=_line_style(method), marker="o", ms=3.5, label=method)
    ax.scatter([reference[0]], [reference[1] / 10], marker="*", s=180, c="gold",
               edgecolors="k", zorder=5, label="float, full resolution")
    fronts = save_cost_mse_figure(fig, ax, plot_dir / f"search_quality_{space}.png",
                                  title=f"{space}: fronts at {budget} trials")

    fig, (by_time, by_trials) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120)
    for method, result in first.items():
        seconds = [result.upfront_seconds] + [s.seconds for s in result.steps]
        volumes = [0.0] + [s.hypervolume for s in result.steps]
        by_time.step(seconds, volumes, where="post", lw=1.4, ls=_line_style(method),
                     label=method)
        label = method if not result.evaluations else \
            f"{method} (+{result.evaluations} calibration-only evaluations)"
        by_trials.step([0] + [s.trials for s in result.steps], volumes, where="post", lw=1.4,
                       ls=_line_style(method), label=label)
    if "grid" in first:
        for ax in (by_time, by_trials):
            ax.axhline(first["grid"].hypervolume, color="grey", ls="--", lw=0.8)
    by_time.set_xscale("log")
    by_time.set_xlabel("charged wall time, s (float training included)")
    by_trials.set_xlabel("QAT trials")
    for ax in (by_time, by_trials):
        ax.set_ylabel("hypervolume")
        ax.grid(True, which="both", lw=0.3, alpha=0.5)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{space}: hypervolume as the search goes (first seed)")
    fig.tight_layout()
    curves = plot_dir / f"search_quality_{space}_time.png"
    curves.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(curves)
    plt.close(fig)
    return [fronts, curves]


# --- running pieces ----------------------------------------------------------------------------


def code_revision() -> str:
    """The commit the benchmark's code is: ``git rev-parse HEAD`` in a work tree (``+changes``
    when it differs from that commit), :data:`REVISION_FILE` in a ``git archive`` of one,
    ``unknown`` otherwise."""
    def git(*command: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *command], capture_output=True,
                              text=True, check=True).stdout.strip()

    try:
        if git("rev-parse", "--show-toplevel") == str(ROOT):
            return git("rev-parse", "HEAD") + ("+changes" if git("status", "--porcelain",
                                                                 "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        pass  # no git, or not a work tree: an archive
    archived = REVISION_FILE.read_text().strip() if REVISION_FILE.exists() else ""
    return archived if re.fullmatch(r"[0-9a-f]{40}", archived) else "unknown"


@contextmanager
def machine_record(study: optuna.Study, *, torch_threads: int) -> Iterator[None]:
    """Record on the study which machine and load this process works on it under: the entry
    is written at the start, and completed at the end (or marked interrupted)."""
    runs = list(study.user_attrs.get(RUNS_ATTR, []))
    entry: dict[str, Any] = {
        "host": socket.gethostname(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "torch_threads": torch_threads, "code": code_revision(),
        "load_start": list(os.getloadavg()),
        "started": datetime.now().isoformat(timespec="seconds")}
    runs.append(entry)
    study.set_user_attr(RUNS_ATTR, runs)
    try:
        yield
    except BaseException:
        entry["interrupted"] = True
        raise
    finally:
        entry["load_end"] = list(os.getloadavg())
        entry["finished"] = datetime.now().isoformat(timespec="seconds")
        study.set_user_attr(RUNS_ATTR, runs)


def paper_scales(spec: SearchSpec) -> list[float]:
    return [scale for scale in PAPER_SCALES if scale in spec.space.scales]


def piece_spec(spec: SearchSpec, piece: Piece, budget: int) -> SearchSpec:
    """The spec a piece searches: ``spec`` (the space's, or its knob method's), with the
    piece's sampler (autoq's for a knob method) and seed (the grid's trials are enqueued; a
    random sampler would fill any trial beyond them)."""
    sampler = ("random" if piece.method in DETERMINISTIC
               else piece.method.split(KNOB_SEPARATOR)[0])
    return spec.model_copy(update={"search": spec.search.model_copy(
        update={"sampler": sampler, "seed": piece.seed, "trials": budget})})


def record_float_models(study: optuna.Study, runner: TrialRunner, *,
                        upfront: Sequence[tuple[float, Any]]) -> None:
    """Write the training seconds of the float models (scale, rank) the study's trials used,
    and of the ``upfront`` ones, on the study: what :func:`charged_steps` charges."""
    used = [(t.params[records.SCALE_PARAM], t.params.get(records.RANK_PARAM))
            for t in counted_trials(study.get_trials(deepcopy=False))]
    first = {model_key(*model) for model in upfront}
    models = {model_key(scale, rank): {"seconds": runner.float_model(scale, rank).train_seconds,
                                       "upfront": model_key(scale, rank) in first}
              for scale, rank in [*upfront, *used]}
    study.set_user_attr(FLOAT_MODELS_ATTR, models)


def run_search_piece(piece: Piece, spec: SearchSpec, runner: TrialRunner, storage: RDBStorage,
                     *, budget: int, reference: tuple[float, float], threads: int) -> None:
    """A search with one of the registered samplers, or the paper's grid (its regimes at its
    scale factors, enqueued; the budget is the grid's size); resumed if it is on the storage."""
    from autoq.search import enqueue_baseline_grid, prepare_run
    from autoq.search.executors.local import LocalExecutor

    scales = paper_scales(spec)
    if piece.method == "grid":
        budget = len(REGIMES) * len(scales)
    # One benchmark process per storage: a running trial left there is a killed process's.
    fail_orphan_trials(storage, piece.study_name, reason="the benchmark process was killed")
    run = prepare_run(piece_spec(spec, piece, budget), name=piece.study_name, storage=storage,
                      trials=budget, space=runner.space)
    study = run.study
    if piece.method == "grid":
        # Queues again a regime an interrupt cut off (and nothing the study still holds).
        enqueue_baseline_grid(study, run.spec, scales=scales)
    study.set_user_attr(BUDGET_ATTR, budget)
    study.set_user_attr(REFERENCE_ATTR, list(reference))
    try:
        if run.remaining:
            with machine_record(study, torch_threads=threads):
                LocalExecutor(runner=runner).run(run, artifact_dir=None, callbacks=[],
                                                 should_stop=None)
    finally:
        record_float_models(study, runner,
                            upfront=[(max(spec.space.scales), runner.space.ranks[0])])


def amp_trial(config_json: Mapping[str, Any], scales: Sequence[float], *, mse: float,
              cost: float, pick: int, timings: Mapping[str, float], float_mse: float,
              float_reference: float, started: datetime, finished: datetime) -> FrozenTrial:
    """One QAT'd AMP point as a complete trial, recorded as :mod:`autoq.search.records` defines
    (so :func:`~autoq.search.results.study_points` reads it back like any search's trial)."""
    trial = optuna.trial.create_trial(
        state=TrialState.COMPLETE, values=[mse, cost],
        params={records.SCALE_PARAM: config_json["scale"]},
        distributions={records.SCALE_PARAM: CategoricalDistribution(list(scales))},
        user_attrs={records.BITS_ATTR: config_json["bits"], records.BITOPS_ATTR: cost,
                    records.TIMINGS_ATTR: dict(timings), records.FLOAT_MSE_ATTR: float_mse,
                    records.FLOAT_REFERENCE_ATTR: float_reference, AMP_PICK_ATTR: pick})
    trial.datetime_start, trial.datetime_complete = started, finished
    return trial


def spread_picks(count: int, points: int) -> list[int]:
    """Indices of up to ``points`` of ``count`` items sorted by cost, spread evenly from the
    cheapest to the dearest."""
    return list(dict.fromkeys(round(k * (count - 1) / max(1, points - 1))
                              for k in range(min(points, count))))


def run_amp_piece(piece: Piece, spec: SearchSpec, runner: TrialRunner, storage: RDBStorage, *,
                  points: int, reference: tuple[float, float], threads: int) -> None:
    """AIMET AMP per paper scale, its curves stored on the piece's study; then QAT on up to
    ``points`` of its curves' points, each stored as a trial as soon as it is scored.

    AMP's brute-force phase costs 2·layers·(candidates − 1) evaluations per scale, so it runs at
    the paper's scales with the paper's regimes as candidates, plus the space's narrowest
    (weight, activation) pair so that its curve reaches the space's cheapest corner."""
    import torch

    from autoq.data import TrajectoryWindows
    from autoq.precision import TrialConfig
    from autoq.quant import amp_front
    from autoq.train import evaluate
    from autoq.train.solver import ScaledSolver

    space, problem = runner.space, runner.problem
    study = create_or_resume(piece_spec(spec, piece, points), name=piece.study_name,
                             storage=storage)
    study.set_user_attr(REFERENCE_ATTR, list(reference))
    layers = [layer for group in space.groups.values() for layer in group]
    narrowest = (min(spec.space.weight_bits), min(spec.space.act_bits))
    candidates = list(dict.fromkeys([*PAPER_CANDIDATES, narrowest]))
    scales = paper_scales(spec)
    try:
        with machine_record(study, torch_threads=threads):
            curve: list[TrialConfig] = []
            for scale in scales:
                key = f"{AMP_CURVE_PREFIX}{scale:g}"
                solver = runner.float_model(scale).solver  # its training is charged apart
                if key not in study.user_attrs:
                    windows = problem.train_windows
                    chosen = torch.randperm(len(windows),
                                            generator=torch.Generator().manual_seed(0))
                    chosen = chosen[:max(1, round(spec.qat.calibration_fraction
                                                  * len(windows)))]

                    def batches(solver: ScaledSolver = solver, chosen: torch.Tensor = chosen,
                                windows: TrajectoryWindows = windows) -> Iterator[torch.Tensor]:
                        with torch.no_grad():
                            for batch in chosen.split(spec.qat.batch_size):
                                yield solver.normalise(solver.to_network(windows.batch(batch)[0]))

                    def score(network: torch.nn.Module, solver: ScaledSolver = solver
                              ) -> float:
                        original = solver.network
                        solver.network = network
                        try:
                            return -evaluate(solver, problem.val_windows)
                        finally:
                            solver.network = original

                    started = time.perf_counter()
                    result = amp_front(
                        solver.network,
                        dummy_input=torch.zeros(1, windows.in_channels, *solver.net_shape),
                        calibration_batches=batches, score=score, candidates=candidates,
                        layers=layers)
                    study.set_user_attr(key, {
                        "curve": [TrialConfig.for_model(space.reference_network, scale=scale,
                                                        bits=point.bits).to_json()["bits"]
                                  for point in result.curve],
                        "evaluations": result.evaluations,
                        "seconds": time.perf_counter() - started})
                curve += [TrialConfig.from_json({"scale": scale, "bits": bits})
                          for bits in study.user_attrs[key]["curve"]]
            curve.sort(key=lambda config: space.cost(config).total)
            picks = spread_picks(len(curve), points)
            study.set_user_attr(BUDGET_ATTR, len(picks))
            study.set_user_attr(AMP_POINTS_ATTR, points)
            done = {t.user_attrs.get(AMP_PICK_ATTR) for t in study.get_trials(deepcopy=False)}
            for number, index in enumerate(picks):
                if index in done:
                    continue
                started_at = datetime.now()
                outcome = runner.run(curve[index], seed=number)
                study.add_trial(amp_trial(
                    curve[index].to_json(), spec.space.scales, mse=outcome.mse,
                    cost=outcome.cost.total, pick=index, timings=outcome.timings,
                    float_mse=outcome.float_mse, float_reference=outcome.float_reference,
                    started=started_at, finished=datetime.now()))
    finally:
        record_float_models(study, runner, upfront=[(scale, None) for scale in scales])


def lowest_bits(spec: SearchSpec) -> tuple[int, int]:
    """The narrowest weight and activation bitwidths the space offers."""
    return (min(b for b in spec.space.weight_bits if isinstance(b, int)),
            min(b for b in spec.space.act_bits if isinstance(b, int)))


def cost_floors(spec: SearchSpec, space: SearchSpace) -> dict[float, float]:
    """Per scale, the cost of the space's cheapest configuration: every group at the lowest
    bitwidths (what the space keeps float, such as the first and last layers, stays float)."""
    lowest = lowest_bits(spec)
    return {scale: space.cost(space.config(scale, dict.fromkeys(space.groups, lowest))).total
            for scale in spec.space.scales}


def scale_floors(spec: SearchSpec, space: SearchSpace, methods: Sequence[str]
                 ) -> dict[float, float]:
    """Per scale, the cheapest configuration's cost in the space (``space``, built from
    ``spec``) and in the spaces of its knob methods among ``methods``: a knob may open a
    cheaper corner (``first_last`` quantizes the first and last layers, ``low_scales`` adds
    scales)."""
    from autoq.search import SearchSpace

    floors = cost_floors(spec, space)
    refused = refusals(spec, methods)
    for method in methods:
        searched = spec if method in refused else method_spec(spec, method)
        if searched.space != spec.space:
            for scale, cost in cost_floors(searched, SearchSpace(searched)).items():
                floors[scale] = min(cost, floors.get(scale, math.inf))
    return floors


def hypervolume_ceiling(results: Mapping[Piece, PieceResult], reference: tuple[float, float],
                        floor: float) -> float | None:
    """The hypervolume of one point at the space's cheapest cost ``floor`` (its knobs' spaces
    included) and the lowest MSE any complete, feasible trial of any method reached (None:
    none; a trial screened by ``search.fidelity`` is on no front). No search of the space
    exceeds it unless one of its trials reaches a lower MSE than all of these did: the goal
    "≥ k × the grid's hypervolume" is out of reach wherever this is below k × the grid's."""
    lowest = min((p.mse for r in results.values() for p in records.complete_points(r.points)
                  if p.point.feasible), default=None)
    if lowest is None:
        return None
    point = records.TrialPoint(number=0, state="COMPLETE", mse=lowest, cost=floor, scale=None,
                               bits={})
    return hypervolume([point], reference)


def scale_ceiling(results: Mapping[Piece, PieceResult], reference: tuple[float, float],
                  floors: Mapping[float, float]) -> float | None:
    """The hypervolume of one point per scale that a complete, feasible trial of any method
    ran at: the scale's cheapest cost (``floors``) at the lower of its float model's MSE (as
    the trials recorded it) and the lowest MSE a trial reached there (None: no such trial).
    Quantization adds error to the float model a trial starts from, and QAT takes off at most
    a little, so this is about the most a search reaches with the scales and float models it
    has: where the coarse scales' float models are far less accurate, the cheap corner
    :func:`hypervolume_ceiling` assumes is out of reach, and this says by how much."""
    lowest: dict[float, float] = {}
    for result in results.values():
        for complete in records.complete_points(result.points):
            point = complete.point
            if not point.feasible or point.scale is None or point.scale not in floors:
                continue
            float_mse = point.details.get(records.FLOAT_MSE_ATTR)
            known = [complete.mse, *([float_mse] if isinstance(float_mse, float) else [])]
            lowest[point.scale] = min(lowest.get(point.scale, math.inf), *known)
    if not lowest:
        return None
    return hypervolume([records.TrialPoint(number=i, state="COMPLETE", mse=mse,
                                           cost=floors[scale], scale=scale, bits={})
                        for i, (scale, mse) in enumerate(sorted(lowest.items()))], reference)


def floor_report(spec: SearchSpec, runner: TrialRunner, grid: PieceResult | None) -> list[str]:
    """What the space allows at all: per scale, the cost of its cheapest configuration (every
    group at the lowest bitwidths) and the float model's MSE there; per MSE bound, half the
    grid's cheapest cost beside the cheapest floor among the scales whose float model meets
    the bound (QAT moves a model's MSE by a few per cent at most, so those are the scales a
    configuration under the bound can run at)."""
    floors = cost_floors(spec, runner.space)
    lowest = lowest_bits(spec)
    float_mse = {scale: runner.float_model(scale).val_mse for scale in spec.space.scales}
    full = float_mse[max(spec.space.scales)]
    per_scale = "; ".join(f"{scale:g}: {floors[scale]:.3g} / {float_mse[scale]:.3g}"
                          for scale in floors)
    lines = [f"cost floor (w{lowest[0]}a{lowest[1]} everywhere) / float MSE per scale: "
             f"{per_scale}"]
    for factor in MSE_BOUNDS:
        chosen = None if grid is None else operating_point(grid.points, factor * full)
        if chosen is None or chosen.cost is None:
            continue
        reachable = [floors[s] for s in floors if float_mse[s] <= factor * full]
        floor = f"{min(reachable):.3g}" if reachable else "none"
        lines.append(f"MSE ≤ {factor:g}× float: half the grid's cheapest = "
                     f"{chosen.cost / 2:.3g}; lowest floor at a scale whose float model meets "
                     f"the bound = {floor}")
    return lines


def resolve_spaces(arguments: Sequence[str]) -> list[SearchSpec]:
    """The specs ``--spaces`` names: ``small`` (every bundled ``*-small`` space), bundled names
    and spec files; a SpecError names an argument that is none of these."""
    bundled = bundled_spaces()
    sources: list[str | Path] = []
    for argument in arguments:
        if argument == "small":
            sources += sorted(name for name in bundled if name.endswith("-small"))
        elif argument in bundled or Path(argument).is_file():
            sources.append(argument)
        else:
            raise SpecError(f"--spaces: {argument!r} is neither 'small', a bundled space nor a "
                            f"spec file; bundled: {sorted(bundled)}")
    specs = [load_spec(source) for source in dict.fromkeys(sources)]
    for spec in specs:
        if spec.search.cost_objective != "bitops":
            raise SpecError(f"--spaces: {spec.name} searches latency; this benchmark compares "
                            f"bit-op searches")
    return specs


def method_runner(spec: SearchSpec, base: TrialRunner) -> TrialRunner:
    """A runner of a method's own spec (a knob's, or the grid's paper setting) sharing
    ``base``'s data and float-model cache (a spec that leaves ``space.resample`` as it is loads
    the space's float models from it, another resample trains its own), and its search space
    where the spec leaves ``space`` alone."""
    from autoq.search import TrialRunner

    return TrialRunner(spec, cache=base.cache, problem=base.problem,
                       space=base.space if spec.space == base.spec.space else None)


def run_space(spec: SearchSpec, wanted: Sequence[Piece], storage: RDBStorage,
              args: argparse.Namespace, threads: int) -> TrialRunner | None:
    """Run every wanted piece of ``spec`` that the storage does not hold finished; the space's
    runner (None when nothing ran), whose data and float models all pieces shared (a piece
    whose method has a spec of its own, :func:`method_spec`, runs it through
    :func:`method_runner`, against the space's reference). A
    piece that fails is reported with its error and the others go on (the report shows it
    unfinished); a method that does not run on the space (:func:`refusals`) is skipped."""
    from autoq.search import TrialRunner

    _, stored = read_space(storage, spec.name, wanted)
    refused = refusals(spec, list(dict.fromkeys(piece.method for piece in wanted)))
    runner, reference = None, (0.0, 0.0)
    method_runners: dict[str, TrialRunner] = {}
    for piece in wanted:
        if done_as_asked(stored.get(piece), budget=args.budget, amp_points=args.amp_points):
            print(f"  {piece.study_name}: finished on the storage, read", flush=True)
            continue
        if piece.method in refused:
            print(f"  {piece.study_name}: skipped: {refused[piece.method]}")
            continue
        if runner is None:
            runner = TrialRunner(spec)
            float_model = runner.float_model(max(spec.space.scales), runner.space.ranks[0])
            float_cost = runner.space.cost(runner.space.regime(
                "float", max(spec.space.scales), runner.space.ranks[0])).total
            reference = (float_cost, 10 * float_model.val_mse)
        started = time.perf_counter()
        try:
            if piece.method == "amp":
                run_amp_piece(piece, spec, runner, storage, points=args.amp_points,
                              reference=reference, threads=threads)
            else:
                searched, piece_runner = method_spec(spec, piece.method), runner
                if searched is not spec:
                    if piece.method not in method_runners:
                        method_runners[piece.method] = method_runner(searched, runner)
                    piece_runner = method_runners[piece.method]
                run_search_piece(piece, searched, piece_runner, storage, budget=args.budget,
                                 reference=reference, threads=threads)
        except Exception as e:  # one broken method must not cost the hours of the others
            print(f"  {piece.study_name}: FAILED: {type(e).__name__}: {e}", flush=True)
            continue
        print(f"  {piece.study_name}: done in {time.perf_counter() - started:.0f} s",
              flush=True)
    return runner


def report(specs: Sequence[SearchSpec], storage: RDBStorage, args: argparse.Namespace,
           runners: Mapping[str, TrialRunner]) -> None:
    """Print every space's report and the table over all spaces, from the storage."""
    from autoq.search import SearchSpace

    methods = benchmark_methods(args.methods, args.knobs)
    everything: dict[str, dict[Piece, PieceResult]] = {}
    ceilings: dict[str, Ceilings] = {}
    refused: dict[str, dict[str, str]] = {}
    for spec in specs:
        wanted = pieces(spec.name, methods, args.seeds)
        reference, results = read_space(storage, spec.name, wanted)
        everything[spec.name] = results
        # A knob that became the space's default after its pieces ran is refused now; what
        # they measured stays on the storage and is shown, with why it would not run today.
        stored = {piece.method for piece in results}
        refusing = refusals(spec, methods)
        refused[spec.name] = {method: why for method, why in refusing.items()
                              if method not in stored}
        print()
        for line in space_report(spec.name, reference, results, methods, refused[spec.name]):
            print(line)
        for method, why in refusing.items():
            if method in stored:
                print(f"  {method}: its stored pieces are shown; it would not run on the space "
                      f"as it is now: {why}")
        if reference is not None:
            space = runners[spec.name].space if spec.name in runners else SearchSpace(spec)
            floors = scale_floors(spec, space, methods)
            floor = min(floors.values())
            bounds = ceilings[spec.name] = Ceilings(
                hypervolume_ceiling(results, reference, floor),
                scale_ceiling(results, reference, floors))
            if bounds.corner is not None:
                print(f"  ceiling: hypervolume {bounds.corner:.3g} at the space's cheapest "
                      f"cost {floor:.3g} (its knobs' spaces included) and the lowest MSE any "
                      f"trial reached")
            if bounds.by_scale is not None:
                print(f"  ceiling by scale: hypervolume {bounds.by_scale:.3g} with each scale's "
                      f"cheapest cost at its float model's MSE (or its best trial's, if lower)")
        if args.floor and spec.name in runners:
            for line in floor_report(spec, runners[spec.name], grid_piece(results)):
                print("  " + line)
        if reference is not None:
            for path in plot_space(spec.name, results, methods, reference, args.plot_dir,
                                   args.budget):
                print(f"  plot: {path}")
    print("\nhypervolume relative to the grid's (median over seeds; * best of the space; "
          "(k/n): k of n seeds finished; ceiling: the most any search reaches without a lower "
          "MSE than every trial so far; by scale: the same with each scale's float model as "
          "its accuracy)")
    for line in table(summary_rows(everything, methods, args.seeds, ceilings, refused)):
        print("  " + line)
    knobs = knob_rows(everything, methods)
    if len(knobs) > 1:
        print("\nknobs against plain autoq and against the knobs they add to, seed by seed")
        for line in table(knobs):
            print("  " + line)


def copy_pieces(specs: Sequence[SearchSpec], methods: Sequence[str], seeds: Sequence[int],
                source: RDBStorage, destination: RDBStorage, *, budget: int,
                amp_points: int) -> list[str]:
    """Copy every finished piece (:func:`done_as_asked`) of ``specs`` × ``methods`` × ``seeds``
    from ``source`` to ``destination`` (``optuna.copy_study``: trials, their attributes and the
    study's, so the report reads the same from either); one line per piece saying what
    happened. A piece ``destination`` holds already, finished or not, is left as it is."""
    lines = []
    for spec in specs:
        wanted = pieces(spec.name, methods, seeds)
        _, results = read_space(source, spec.name, wanted)
        for piece in wanted:
            if study_exists(destination, piece.study_name):
                lines.append(f"{piece.study_name}: on the destination already, left as it is")
            elif done_as_asked(results.get(piece), budget=budget, amp_points=amp_points):
                optuna.copy_study(from_study_name=piece.study_name, from_storage=source,
                                  to_storage=destination)
                lines.append(f"{piece.study_name}: copied")
            elif piece in results:
                lines.append(f"{piece.study_name}: not finished, not copied")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="knobs: " + "; ".join(f"{name}: {knob.why}" for name, knob in KNOBS.items()))
    parser.add_argument("--spaces", nargs="+", default=["small"],
                        help="'small' (all 12 small spaces), bundled names or spec files")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--knobs", nargs="+", default=[], metavar="KNOB[+KNOB...]",
                        help="also run autoq's sampler with each knob (several joined by '+' "
                             "apply together), as method autoq+KNOB; known: "
                             + ", ".join(KNOBS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=25, help="trials per method and seed")
    parser.add_argument("--amp-points", type=int, default=5,
                        help="AMP curve points fine-tuned with QAT")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="where the default storage (search_quality.db) lives")
    parser.add_argument("--storage", help="SQLAlchemy URL (default: a SQLite file under --out)")
    parser.add_argument("--plot-dir", type=Path, default=ROOT / "benchmarks")
    parser.add_argument("--floor", action="store_true",
                        help="also print the cost floor per scale (trains every scale's model)")
    parser.add_argument("--summary", action="store_true",
                        help="only read the storage and print the report")
    parser.add_argument("--copy-to", metavar="URL",
                        help="only copy the finished pieces of the spaces, methods and seeds "
                             "asked for from --storage to the storage at URL (a SQLAlchemy "
                             "URL), leaving any piece it holds already as it is")
    args = parser.parse_args()
    if args.budget < 1 or args.amp_points < 1:
        parser.error("--budget and --amp-points must be at least 1")
    try:
        methods = benchmark_methods(args.methods, args.knobs)
    except SpecError as e:
        parser.error(str(e))
    specs = resolve_spaces(args.spaces)
    if args.storage is None:
        args.out.mkdir(parents=True, exist_ok=True)
    storage = open_storage(args.storage or f"sqlite:///{args.out.resolve()}/search_quality.db")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.copy_to:
        for line in copy_pieces(specs, methods, args.seeds, storage, open_storage(args.copy_to),
                                budget=args.budget, amp_points=args.amp_points):
            print(line)
        return
    runners: dict[str, TrialRunner] = {}
    if not args.summary:
        from autoq.device import configure_threads
        from autoq.quant import quiet_aimet_logs

        threads = configure_threads()
        quiet_aimet_logs()
        print(f"search quality, budget {args.budget} trials, seeds {args.seeds}, "
              f"{threads} thread(s), storage {storage.url}")
        try:
            for spec in specs:
                print(f"\n{spec.name}:", flush=True)
                runner = run_space(spec, pieces(spec.name, methods, args.seeds), storage,
                                   args, threads)
                if runner is None and args.floor:  # nothing left to run; --floor still trains
                    from autoq.search import TrialRunner

                    runner = TrialRunner(spec)
                if runner is not None:
                    runners[spec.name] = runner
        except KeyboardInterrupt:
            raise SystemExit("\ninterrupted: the same command resumes where this one stopped"
                             ) from None
    report(specs, storage, args, runners)


if __name__ == "__main__":
    main()
