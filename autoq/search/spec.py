"""Search spaces: a YAML file (``search_spaces/*.yaml``) validated into a :class:`SearchSpec`.

The spec is the single description of a search: the data, the model, the float-training and QAT
recipes, the space of scale factors and bitwidths, and how to search it. Unknown keys and bad
values are :class:`~autoq.errors.SpecError`\\ s whose message names the key, e.g.
``space.weight_bits.0: Input should be greater than or equal to 2``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from autoq.bits import MAX_BITS, MIN_BITS, Granularity, Resample, Scheme, WeightGranularity
from autoq.data import Selection
from autoq.data.registry import LAYOUTS, PDES, family_layout, solver_options
from autoq.errors import SpecError, describe_validation_error
from autoq.models.config import FactoryConfig, ModelConfig
from autoq.models.registry import MODELS, UNION_TAGS
from autoq.search.executors import EXECUTORS
from autoq.search.records import mse_bound
from autoq.search.samplers import SAMPLERS
from autoq.settings import get_settings
from autoq.train.config import QATConfig, TrainConfig
from autoq.train.metrics import METRICS


def _registered(registry: Mapping[str, object], kind: str
                ) -> tuple[AfterValidator, WithJsonSchema]:
    """``(check, schema)`` of a string field whose allowed values are the keys of ``registry``
    (checked, and listed as the schema's enum), so the registry is the one list of them; the
    field's type is ``Annotated[str, check, schema]``."""

    def check(value: str) -> str:
        if value not in registry:
            raise ValueError(f"unknown {kind} {value!r}; known: {sorted(registry)}")
        return value

    return AfterValidator(check), WithJsonSchema({"type": "string", "enum": sorted(registry)})


_PDE_CHECK, _PDE_SCHEMA = _registered(PDES, "pde")
_LAYOUT_CHECK, _LAYOUT_SCHEMA = _registered(LAYOUTS, "layout")
_SAMPLER_CHECK, _SAMPLER_SCHEMA = _registered(SAMPLERS, "sampler")
_EXECUTOR_CHECK, _EXECUTOR_SCHEMA = _registered(EXECUTORS, "executor")
PDEName = Annotated[str, _PDE_CHECK, _PDE_SCHEMA]
LayoutName = Annotated[str, _LAYOUT_CHECK, _LAYOUT_SCHEMA]
SamplerName = Annotated[str, _SAMPLER_CHECK, _SAMPLER_SCHEMA]
ExecutorName = Annotated[str, _EXECUTOR_CHECK, _EXECUTOR_SCHEMA]
CUSTOM_METRIC_PREFIX = "custom:"
"""A metric passed as a callable through the Python API is recorded as ``custom:<name>``."""


def _check_metric(value: str) -> str:
    if value not in METRICS and not value.startswith(CUSTOM_METRIC_PREFIX):
        raise ValueError(f"unknown metric {value!r}; known: {sorted(METRICS)} (or a callable "
                         f"through the Python API)")
    return value


MetricName = Annotated[str, AfterValidator(_check_metric),
                       WithJsonSchema({"type": "string", "enum": sorted(METRICS)})]
BitWidth = Annotated[int, Field(ge=MIN_BITS, le=MAX_BITS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenerateSpec(_Strict):
    """How to make the data file with autoq's own solver when it does not exist yet.

    Attributes:
        samples: trajectories (or coefficient fields) to generate.
        resolution: grid points per axis; ``None`` means the public resolution.
        frames: saved frames per trajectory; ``None`` means the public count.
        seed: seed of the generator.
        options: the solver's own physical parameters (e.g. ``nu`` for Burgers, ``frame_dt``
            for Navier–Stokes), checked against the solver's signature when the spec loads.
    """

    samples: int = Field(ge=3)
    resolution: int | None = Field(None, ge=8)
    frames: int | None = Field(None, ge=2)
    seed: int = 0
    options: dict[str, float] = Field(default_factory=dict)


class DataSpec(_Strict):
    """The data: a file in a named layout, the part of it to read, and the window the model sees.

    Attributes:
        layout: the file's layout, a key of :data:`~autoq.data.LAYOUTS`
            (``pdebench-advection``, ``generic``, …); implied by ``pde`` when not given.
        pde: a PDE family autoq can generate (a key of :data:`~autoq.data.PDES`), standing for
            its layout (``burgers`` → ``pdebench-burgers``); filled in from a family's layout.
            When both are given they must agree.
        path: the data file (relative paths resolve against the working directory).
        key: generic layout: the name of the ``(samples, time, *space, fields)`` array (an
            HDF5 dataset or an ``.npz`` member; an ``.npy`` file takes none).
        coord_keys: generic layout: names of the 1D coordinate arrays, one per spatial axis.
        time_key: generic layout: name of the ``(time,)`` frame times.
        coefficient_key: generic layout: name of a steady problem's ``(samples, *space,
            channels)`` input (the trajectories then hold one frame, the solution).
        max_samples: read at most this many samples (every ``sample_stride``-th from the
            first); ``None``: all. At least 3, for the train/val/test split.
        sample_stride: read every n-th sample.
        time_stride: read every n-th frame.
        space_stride: read every n-th grid point along each spatial axis.
        input_steps: past states in (1 for steady problems such as Darcy).
        target_steps: future states out per pass (1 for steady problems).
        split_seed: seed of the train/val/test split by sample.
        generate: if given and the file is missing, generate it with autoq's solver (needs a
            ``pde``, or the layout of one).
    """

    layout: LayoutName
    pde: PDEName | None = None
    path: str
    key: str | None = Field(None, min_length=1)
    coord_keys: list[Annotated[str, Field(min_length=1)]] | None = Field(None, min_length=1)
    time_key: str | None = Field(None, min_length=1)
    coefficient_key: str | None = Field(None, min_length=1)
    max_samples: int | None = Field(None, ge=3)
    sample_stride: int = Field(1, ge=1)
    time_stride: int = Field(1, ge=1)
    space_stride: int = Field(1, ge=1)
    input_steps: int = Field(1, ge=1)
    target_steps: int = Field(1, ge=1)
    split_seed: int = 0
    generate: GenerateSpec | None = None

    LAYOUT_OPTIONS: ClassVar[tuple[str, ...]] = ("key", "coord_keys", "time_key",
                                                 "coefficient_key")
    """The fields that are options of some layout's reader."""

    @model_validator(mode="before")
    @classmethod
    def _layout_of_pde(cls, data: Any) -> Any:
        """``pde`` stands for its family's layout; a family's layout names its ``pde``."""
        if not isinstance(data, Mapping):
            return data
        pde, layout = data.get("pde"), data.get("layout")
        if pde is None and layout is None:
            raise ValueError(f"give layout (one of {sorted(LAYOUTS)}) or pde (one of "
                             f"{sorted(PDES)}, standing for its layout)")
        filled = dict(data)
        if isinstance(pde, str) and pde in PDES:
            named = family_layout(pde)
            if layout is None:
                filled["layout"] = named
            elif layout != named:
                raise ValueError(f"pde {pde!r} reads layout {named!r}, but layout is "
                                 f"{layout!r}; give one of them, or both agreeing")
        elif pde is None and isinstance(layout, str) and layout in LAYOUTS:
            filled["pde"] = LAYOUTS[layout].family
        return filled

    @model_validator(mode="after")
    def _options_fit_the_layout(self) -> DataSpec:
        given = [name for name in self.LAYOUT_OPTIONS if getattr(self, name) is not None]
        refused = [name for name in given if name not in LAYOUTS[self.layout].options]
        if refused:
            takers = sorted(name for name, layout in LAYOUTS.items() if layout.options)
            raise ValueError(f"layout {self.layout!r} takes no {', '.join(refused)} (only "
                             f"{takers} do)")
        return self

    @model_validator(mode="after")
    def _solver_knows_options(self) -> DataSpec:
        if self.generate is None:
            return self
        if self.pde is None:
            raise ValueError(f"generate: autoq has no generator for layout {self.layout!r}; "
                             f"generate needs a pde (one of {sorted(PDES)}) or its layout")
        if not self.generate.options:
            return self
        accepted = solver_options(self.pde)
        unknown = sorted(set(self.generate.options) - set(accepted))
        if unknown:
            raise ValueError(f"generate.options: unknown parameter(s) {unknown} for the "
                             f"{self.pde} solver; allowed: {sorted(accepted)}")
        return self

    @property
    def selection(self) -> Selection:
        """The part of the file to read."""
        return Selection(max_samples=self.max_samples, sample_stride=self.sample_stride,
                         time_stride=self.time_stride, space_stride=self.space_stride)

    @property
    def read_options(self) -> dict[str, Any]:
        """The layout's options as its reader takes them (unset ones left out)."""
        return {name: getattr(self, name) for name in LAYOUTS[self.layout].options
                if getattr(self, name) is not None}


TransformSetting = Literal["fft", "dft", "search"]
"""``space.transform``: one :data:`~autoq.bits.Transform` for every quantized spectral layer, or
``search`` to choose per layer group."""
SEARCHED_TRANSFORM = "search"


class SpaceSpec(_Strict):
    """The search space: scale factors × per-layer (or grouped) bitwidths, and optionally the
    factorization rank of the model's factorized weights.

    Attributes:
        scales: spatial scale factors in (0, 1].
        ranks: factorization ranks to choose from (``None``: the model's own, not searched),
            passed to the factory as its ``rank`` keyword (neuraloperator's TFNO): all integers
            (the rank itself) or all fractions (of the dense tensor's parameters, as
            tensorly-torch reads a float). The largest is the reference: the float model the
            relative bounds compare with, and the rank of the paper's baseline regimes. A
            checkpoint is re-factorized to each rank and fine-tuned (``model.finetune_epochs``).
        weight_bits: weight bitwidths to choose from.
        act_bits: input-activation bitwidths to choose from.
        scheme: which tensors of a quantized layer are quantized: ``paper`` (weights and
            inputs, outputs float: the paper's choice) or ``integer`` (outputs too, so ONNX
            runtimes run integer kernels; see ``autoq latency``).
        allow_float: also allow a group to stay float (priced at 16 bits).
        granularity: one choice for all layers, per block or per layer.
        first_last_float: keep the first and last layer float (the paper's choice).
        resample: how a network at a scale below 1 resizes its input down and its output up,
            one method for the whole search: ``linear`` (the paper's (bi)linear), ``cubic``
            (Keys' cubic convolution) or ``fourier`` (spectral truncation and zero-padding;
            the grid is taken as one period, so it is refused on layouts known not to be
            periodic, such as Darcy's). Float models are trained through the resizes, so each
            method has float models of its own (:mod:`autoq.data.resample`).
        weight_granularity: ``per_tensor`` (the paper: one grid per weight tensor) or
            ``per_channel`` (one grid per output channel of linear layers, convolutions and
            spectral convolutions). The bit-op cost is the same for both.
        transform: how the FNO's spectral convolutions (autoq's ``SpectralConv``) compute
            their truncated Fourier transforms: ``fft`` (the default: float FFTs, priced as
            16-bit work, ``5 N log2 N`` per complex transform), ``dft`` (every quantized spectral
            layer runs them as real DFT matrix products on its grid, the matrices quantized at
            the layer's weight bits and the signal entering each product at its activation
            bits, priced as the matrix products they are at those bits) or ``search`` (a choice
            per layer group holding a spectral layer, the sampler parameter
            ``transform:<group>``: fft or dft. autoq's sampler, whose error model has no term
            for it, is not given the parameter: each such group takes the cheaper transform at
            its bits and scale, as do the baseline regimes; every trial records its
            per-layer transforms). A float layer's transforms stay FFTs. Refused (when the
            space is built) for a model without autoq spectral convolutions in its groups.
    """

    scales: list[Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=lambda: [1.0, 0.7, 0.5, 0.3, 0.2], min_length=1)
    weight_bits: list[BitWidth] = Field(default_factory=lambda: [4, 8, 16], min_length=1)
    act_bits: list[BitWidth] = Field(default_factory=lambda: [4, 8, 16], min_length=1)
    ranks: list[Annotated[int, Field(ge=1)] | Annotated[float, Field(gt=0)]] | None = Field(
        None, min_length=1)
    scheme: Scheme = "paper"
    allow_float: bool = False
    granularity: Granularity = "per_layer"
    first_last_float: bool = True
    resample: Resample = "linear"
    weight_granularity: WeightGranularity = "per_tensor"
    transform: TransformSetting = "fft"

    @field_validator("scales", "weight_bits", "act_bits")
    @classmethod
    def _sorted_unique(cls, values: list[Any]) -> list[Any]:
        return sorted(set(values), reverse=True)

    @field_validator("ranks")
    @classmethod
    def _ranks_of_one_kind(cls, values: list[int | float] | None) -> list[int | float] | None:
        if values is None:
            return None
        if len({type(value) for value in values}) > 1:
            raise ValueError(f"give every rank as an integer (the rank) or every rank as a "
                             f"fraction (of the dense tensor's parameters), not both: {values}")
        return sorted(set(values), reverse=True)


class ConstraintsSpec(_Strict):
    """Optional feasibility limits, handed to Optuna as constraints (feasible when met).

    Attributes:
        max_cost: bounds the cost objective, whichever it is.
        max_mse: bounds the validation error.
        max_mse_ratio: bounds the validation error as a multiple of the float model's at full
            resolution (which every trial measures), for a user who knows the accuracy they can
            give up but not, before the search, the float model's error; at most one of the
            two error bounds.
    """

    max_cost: float | None = Field(None, gt=0)
    max_mse: float | None = Field(None, gt=0)
    max_mse_ratio: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_error_bound(self) -> ConstraintsSpec:
        if self.max_mse is not None and self.max_mse_ratio is not None:
            raise ValueError("give at most one of max_mse (an absolute error bound) and "
                             "max_mse_ratio (relative to the float model's error)")
        return self

    def mse_bound(self, float_reference: float | None) -> float | None:
        """The absolute error bound: ``max_mse``, or ``max_mse_ratio`` × ``float_reference``
        (the float model's error at full resolution; ``None`` while it is not known, before
        the first trial)."""
        return mse_bound(self.max_mse, self.max_mse_ratio, float_reference)


class TrialResources(_Strict):
    """What one trial reserves on a Ray node (executor ``ray``); fractions share a device."""

    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)


CostObjective = Literal["bitops", "latency"]
ObjectiveName = Literal["error", "bitops", "latency"]
OBJECTIVES: tuple[list[ObjectiveName], ...] = (["error", "bitops"], ["error", "latency"])
"""The objective pairs a search may minimise: the error and one of the two costs."""


class LatencySettings(_Strict):
    """How each trial's deployable model is timed when latency is an objective (the same
    procedure as ``autoq latency``: warm-up, then interleaved rounds with the float model).

    Attributes:
        runtime: ``onnxruntime-cpu``, ``onnxruntime-gpu`` or ``tensorrt``.
        threads: onnxruntime intra-op threads.
        batch: inputs per run.
        warmup: untimed runs of each model first.
        repeats: timed rounds; the median is the figure.
    """

    runtime: Literal["onnxruntime-cpu", "onnxruntime-gpu", "tensorrt"] = "onnxruntime-cpu"
    threads: int = Field(1, ge=1, le=256)
    batch: int = Field(1, ge=1, le=4096)
    warmup: int = Field(3, ge=0, le=1000)
    repeats: int = Field(20, ge=3, le=10_000)


class FidelitySettings(_Strict):
    """Multi-fidelity QAT: every sampled trial is first screened on a prefix of its QAT, and
    only a configuration predicted to reach the Pareto front is trained to full length.

    A trial runs its QAT to step ``ceil(screening × steps)`` of the full schedule (the same
    warm-up and cosine, so the prefix is exactly the full run's beginning) and is scored there:
    its screened error. It is promoted, and its QAT continues from that state to the full
    length (no step is repeated), unless its predicted full-length error is clearly dominated:
    the screened error times the ratio full/screened of the search's earlier full-length trials
    (geometric mean; 1 before any), divided by ``1 + margin``, is no better than the error of a
    full-length, feasible trial costing no more; or it is above
    :attr:`~autoq.search.samplers.CostAwareSampler.REFERENCE_MSE_FACTOR` × the best
    full-length error (no hypervolume there); or it breaks the search's constraints
    (``max_cost`` exactly, ``max_mse`` as predicted). A trial not promoted is complete with its
    screened error, recorded as ``fidelity: screened`` and with the constraint
    ``full_fidelity`` unmet, so Optuna's ``best_trials``, optuna-dashboard, the Pareto set, the
    hypervolume and the operating point leave it out while it stays visible; autoq's sampler
    learns from it through the same correction. Baseline (enqueued grid) trials are always
    trained to full length. Every trial of such a search records the error at the screening
    step (``screened_mse``), which is where the ratio is measured.

    Attributes:
        screening: the fraction of the QAT's optimiser steps (``qat.epochs`` × steps per
            epoch) a configuration is screened on, in (0, 1).
        margin: how much better than predicted a screened configuration may still turn out
            (0.25: by a quarter): a larger margin promotes more.
    """

    screening: float = Field(gt=0, lt=1)
    margin: float = Field(0.25, ge=0)


class WarmStartSettings(_Strict):
    """Warm-started QAT: a trial starts from the QAT-trained weights of the nearest finished
    trial at the same scale (and factorization rank) instead of the float model.

    The trial runner keeps, in memory of its process, the weights of the last ``keep`` trials
    it trained to full length; nearest is the least sum, over the quantizable layers, of
    ``|log2 w − log2 w'| + |log2 a − log2 a'|`` (a float layer counted as 16 bits), ties to the
    latest trial. The encodings are calibrated afresh for the new bitwidths. A trial records the
    trial it started from (``warm_start``). Per process: under the Ray executor every trial runs
    in a fresh worker, so it starts from the float model.

    Attributes:
        keep: trained weights kept, the most recent first out.
    """

    keep: int = Field(16, ge=1, le=1024)


class SensitivitySettings(_Strict):
    """A calibration-only sensitivity pass as the prior of autoq's sampler
    (:mod:`autoq.search.sensitivity`).

    Before the search's first trial, on the float model at the space's largest scale (and
    rank), each quantizer group alone has its weights, then alone its activations, at ``bits``
    (the rest float), is calibrated (no QAT) and scored: its error relative to the float
    model's is the prior centre of that group's sensitivity in the sampler's error model. The
    result (and the seconds it took) is recorded on the study, so a resumed search reads it.

    Attributes:
        bits: the bitwidth each group is measured at, alone: at most 8 (above, one group's
            quantization noise is too small against the float model's error to be measured).
    """

    bits: int = Field(4, ge=MIN_BITS, le=8)


class SearchSettings(_Strict):
    """How to search: objectives, sampler, budget, executor.

    Attributes:
        objectives: ``[error, bitops]`` (the paper's proxy, known before training) or
            ``[error, latency]``: each trial then times its deployable ONNX model against the
            float full-resolution model in the same run, and its cost is that latency relative
            to the float model's (1: as fast as float; 0.25: four times faster).
        latency: how trials are timed under the latency objective.
        constraints: ``max_cost`` bounds the cost objective, whichever it is (bit-ops, or the
            latency relative to float); ``max_mse`` or ``max_mse_ratio`` the error
            (:class:`ConstraintsSpec`).
        resources: per-trial reservation of the Ray executor.
        max_concurrent: the Ray executor's cap on trials at once (``None``: as many as the
            cluster's resources allow).
        fidelity: multi-fidelity QAT (:class:`FidelitySettings`); ``None`` (the default):
            every trial runs the whole QAT.
        warm_start: warm-started QAT (:class:`WarmStartSettings`); ``None`` (the default):
            every trial starts from the float model.
        sensitivity: a calibration-only sensitivity pass as autoq's sampler's prior
            (:class:`SensitivitySettings`); ``None`` (the default): no pass.
    """

    objectives: list[ObjectiveName] = Field(default_factory=lambda: list(OBJECTIVES[0]))
    latency: LatencySettings = Field(default_factory=LatencySettings)
    sampler: SamplerName = "autoq"
    trials: int = Field(40, ge=1)
    timeout: float | None = Field(None, gt=0, description="seconds")
    seed: int = 0
    executor: ExecutorName = "local"
    constraints: ConstraintsSpec = Field(default_factory=ConstraintsSpec)
    float_seed: int = 0
    resources: TrialResources = Field(default_factory=TrialResources)
    max_concurrent: int | None = Field(None, ge=1)
    fidelity: FidelitySettings | None = None
    warm_start: WarmStartSettings | None = None
    sensitivity: SensitivitySettings | None = None

    @field_validator("objectives")
    @classmethod
    def _an_error_and_a_cost(cls, values: list[ObjectiveName]) -> list[ObjectiveName]:
        if values not in OBJECTIVES:
            raise ValueError(f"objectives must be one of {list(OBJECTIVES)}, got {values}")
        return values

    @model_validator(mode="after")
    def _sensitivity_is_autoq_samplers_prior(self) -> SearchSettings:
        if self.sensitivity is not None and self.sampler != "autoq":
            raise ValueError(f"sensitivity: the pass is the prior of autoq's sampler, and "
                             f"sampler is {self.sampler!r}; use sampler autoq or drop "
                             f"sensitivity")
        return self

    @property
    def cost_objective(self) -> CostObjective:
        """What the second objective measures: ``bitops`` or ``latency``."""
        return "latency" if self.objectives[1] == "latency" else "bitops"


class SearchSpec(_Strict):
    """A whole search, as read from ``search_spaces/<name>.yaml``."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    data: DataSpec
    model: ModelConfig
    metric: MetricName = Field("mse", description="the error the search minimises")
    train: TrainConfig = Field(default_factory=TrainConfig)
    qat: QATConfig = Field(default_factory=QATConfig)
    space: SpaceSpec = Field(default_factory=SpaceSpec)
    search: SearchSettings = Field(default_factory=SearchSettings)

    def with_paths_under(self, root: str | os.PathLike[str]) -> SearchSpec:
        """This spec with its relative file paths (``data.path``, a factory model's
        ``checkpoint``) made absolute under ``root``: how a server runs the specs it stores
        with paths relative to its data root."""
        base = Path(root).resolve()
        update: dict[str, Any] = {
            "data": self.data.model_copy(update={"path": str(base / self.data.path)})}
        if isinstance(self.model, FactoryConfig) and self.model.checkpoint is not None:
            update["model"] = self.model.model_copy(
                update={"checkpoint": str(base / self.model.checkpoint)})
        return self.model_copy(update=update)

    @model_validator(mode="after")
    def _fidelity_needs_qat_and_a_known_cost(self) -> SearchSpec:
        if self.search.fidelity is None:
            return self
        if self.qat.epochs == 0:
            raise ValueError("search.fidelity: screens a configuration on a prefix of its QAT, "
                             "and qat.epochs is 0; give qat.epochs ≥ 1 or drop search.fidelity")
        if self.search.cost_objective == "latency":
            raise ValueError("search.fidelity: the promotion rule compares a screened "
                             "configuration's cost before it is timed, so it needs objectives "
                             "[error, bitops], not [error, latency]")
        return self

    @model_validator(mode="after")
    def _fourier_needs_periodic_data(self) -> SearchSpec:
        if self.space.resample == "fourier" and LAYOUTS[self.data.layout].periodic is False:
            raise ValueError(f"space.resample: fourier takes the grid as one period, and "
                             f"layout {self.data.layout!r} is not periodic (the jump between "
                             f"its ends would ring over the whole grid); use linear or cubic")
        return self

    @model_validator(mode="after")
    def _one_way_to_fine_tune_below_full_resolution(self) -> SearchSpec:
        if (self.train.rescale_epochs is not None and isinstance(self.model, FactoryConfig)
                and self.model.checkpoint is not None):
            raise ValueError("train.rescale_epochs: the float models below full resolution "
                             "fine-tune model.checkpoint, for model.finetune_epochs; drop "
                             "train.rescale_epochs and set model.finetune_epochs")
        return self

    @model_validator(mode="after")
    def _ranks_need_a_factory(self) -> SearchSpec:
        if self.space.ranks is not None and not isinstance(self.model, FactoryConfig):
            raise ValueError(f"space.ranks: the factorization rank is a keyword of a model built "
                             f"by a factory (model.factory, e.g. neuralop.models:TFNO); "
                             f"model.arch {self.model.arch!r} has no factorized weights")
        return self


def parse_spec(payload: Mapping[str, Any], *, source: str = "spec") -> SearchSpec:
    """Validate a spec mapping; a SpecError names ``source`` and every bad key."""
    if not isinstance(payload, Mapping):
        raise SpecError(f"{source}: a search space must be a mapping, got "
                        f"{type(payload).__name__}")
    try:
        return SearchSpec.model_validate(payload)
    except ValidationError as e:
        described = describe_validation_error(e, union_tags=UNION_TAGS, tag_choices=MODELS)
        raise SpecError(f"{source}: {described}") from e


PAPER_SETTING: dict[str, dict[str, Any]] = {
    "space": {"first_last_float": True, "scheme": "paper", "resample": "linear",
              "weight_granularity": "per_tensor", "transform": "fft"},
    "search": {"warm_start": None, "fidelity": None, "sensitivity": None},
    "train": {"rescale_epochs": None},
}
"""The paper's value of every spec option that changes what one of its uniform-regime trials
computes or costs: first and last layers float, weights and inputs quantized per tensor,
bilinear resizes, FFTs, each trial a full QAT from the float model, and each scale's float
model trained from scratch (``allow_float`` and ``granularity`` shape what a sampler may
propose, not a uniform regime)."""


def paper_setting(spec: SearchSpec) -> SearchSpec:
    """``spec`` with every option of :data:`PAPER_SETTING` at the paper's value, the model,
    data, scales, bitwidths and training recipe left as they are; ``spec`` itself when it has
    them all. The paper's regimes run here whatever a space's defaults: in a space that searches
    its first and last layers, a regime in the space's own setting would quantize them too."""
    payload = spec.model_dump(mode="json")
    for section, values in PAPER_SETTING.items():
        payload[section].update(values)
    paper = parse_spec(payload, source=f"the paper's setting of {spec.name}")
    return spec if paper == spec else paper


def bundled_spaces(directory: Path | None = None) -> dict[str, Path]:
    """The bundled search-space files by name (the file stem), sorted by name; ``directory``
    defaults to the ``search_spaces`` setting (the spaces shipped in the package)."""
    folder = directory if directory is not None else get_settings().search_spaces
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))}


def load_spec(path: str | os.PathLike[str]) -> SearchSpec:
    """Read and validate a search space: a YAML file, or the name of a bundled space
    (``burgers-fno-small``)."""
    source = Path(path)
    if not source.is_file():
        bundled = bundled_spaces()
        if str(path) not in bundled:
            raise SpecError(f"search space file not found: {source} (nor is it a bundled space; "
                            f"bundled: {sorted(bundled)})")
        source = bundled[str(path)]
    try:
        payload = yaml.safe_load(source.read_text())
    except yaml.YAMLError as e:
        raise SpecError(f"{source}: not valid YAML: {e}") from e
    return parse_spec(payload, source=str(source))
