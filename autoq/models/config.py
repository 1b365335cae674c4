"""Model configs: one pydantic model per architecture, told apart by ``arch``.

A search space's ``model:`` block parses into :data:`ModelConfig`, the discriminated union of
every config registered in :data:`autoq.models.registry.MODELS` (it lives there, with
:func:`parse_model_config`, and is re-exported here). The spatial dimension and the channel counts
are not part of a model config: they follow the data (see :func:`autoq.models.build_model`). The
defaults are the ``small`` sizes, which train in about a minute on 2 CPU cores for 1D Burgers at
256 points and 2D Darcy at 64².
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

if TYPE_CHECKING:
    from autoq.models.registry import ModelConfig, parse_model_config

__all__ = [
    "ArchConfig",
    "FNOConfig",
    "FactoryConfig",
    "ModelConfig",
    "PadMode",
    "TransformerConfig",
    "UNetConfig",
    "parse_model_config",
]

PadMode = Literal["replicate", "zeros"]


class ArchConfig(BaseModel):
    """What every architecture's config shares: frozen, no unknown keys, and the ``arch`` tag
    (each subclass narrows it to its own literal, the registry key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arch: str

    @property
    def title(self) -> str:
        """What the model is, in a word, for listings."""
        return self.arch


class FNOConfig(ArchConfig):
    """Fourier neural operator (Li et al. 2021, arXiv 2010.08895).

    Attributes:
        width: channels of the Fourier layers.
        modes: Fourier modes kept per spatial axis (per sign on all but the last axis).
        layers: number of Fourier layers.
        projection_width: hidden channels of the two-layer pointwise projection.
        coordinates: append the cell-centre coordinates as input channels, as Li et al. do.
    """

    arch: Literal["fno"] = "fno"
    width: PositiveInt = 32
    modes: PositiveInt = 12
    layers: PositiveInt = 4
    projection_width: PositiveInt = 128
    coordinates: bool = True


class UNetConfig(ArchConfig):
    """UNet for PDEs, as in PDEBench and PDEArena (Ronneberger et al. 2015, arXiv 1505.04597).

    Attributes:
        width: channels of the first level; each level down doubles them.
        levels: number of down-samplings; inputs are padded to a multiple of ``2**levels``.
        norm_groups: GroupNorm groups (reduced to a divisor of the channel count where needed).
        pad_mode: how inputs are padded to a multiple of ``2**levels``.
    """

    arch: Literal["unet"] = "unet"
    width: PositiveInt = 16
    levels: Annotated[int, Field(ge=1, le=8)] = 3
    norm_groups: PositiveInt = 8
    pad_mode: PadMode = "replicate"


class TransformerConfig(ArchConfig):
    """Galerkin Transformer (Cao 2021, arXiv 2105.14995) on patches of the grid.

    Attributes:
        width: token channels.
        heads: attention heads; must divide ``width``.
        layers: number of attention + feed-forward blocks.
        patch: patch edge in grid points (``patch`` points in 1D, ``patch × patch`` in 2D).
        feed_forward_width: hidden channels of each block's feed-forward MLP.
        pad_mode: how inputs are padded to a multiple of ``patch``.
    """

    arch: Literal["transformer"] = "transformer"
    width: PositiveInt = 64
    heads: PositiveInt = 4
    layers: PositiveInt = 3
    patch: PositiveInt = 4
    feed_forward_width: PositiveInt = 128
    pad_mode: PadMode = "replicate"

    @model_validator(mode="after")
    def _heads_divide_width(self) -> TransformerConfig:
        if self.width % self.heads:
            raise ValueError(
                f"heads={self.heads} must divide width={self.width} (each head gets width/heads "
                "channels)"
            )
        return self


def __getattr__(name: str) -> Any:
    # The union is derived from the registry, which imports this module: re-exported lazily.
    if name in ("ModelConfig", "parse_model_config"):
        from autoq.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


FACTORY_PATH = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"


class FactoryConfig(BaseModel):
    """The user's own model: a callable that builds an ``nn.Module``, and its checkpoint.

    The module maps ``(batch, input_steps·fields, *space)`` to ``(batch, target_steps·fields,
    *space)`` in physical units (Darcy-like problems: coefficient channels → solution), at any
    grid autoq runs it on; autoq adds no normalisation and no residual around it. One forward
    pass checks the contract when the model is built.

    Attributes:
        factory: ``"package.module:callable"``; called with ``kwargs``, it returns the module (a
            class is a callable too).
        kwargs: keyword arguments of the factory (JSON values).
        checkpoint: a ``state_dict`` of the built module (``torch.save``; a dict holding it
            under ``"state_dict"`` works too). It replaces float training at scale 1.
        checkpoint_kwargs: the factory's keyword arguments the checkpoint was saved with, when
            they differ from ``kwargs`` in the factorization of spectral weights (its rank, or
            ``factorization``): each factorized weight of the checkpoint is rebuilt as a dense
            tensor and factorized again at ``kwargs``' (tensorly-torch's ``init_from_tensor``),
            every other weight is copied, and the model is fine-tuned for ``finetune_epochs``
            at every scale. A search over ranks (``space.ranks``) sets it.
        rescale: at a scale factor below 1, ``finetune`` the checkpoint at the network's grid
            for ``finetune_epochs`` (cached like trained float models) or use it ``as_is``.
        finetune_epochs: epochs of that fine-tune (the ``train`` recipe's other settings apply).
        channels_last: the module takes and returns ``(batch, *space, channels)``.
        first_layer: ``named_modules()`` path (in the built module) of its first
            matrix-multiplication layer; default: the first quantizable layer to run.
        last_layer: the same for the last; default: the last quantizable layer to run.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    factory: str = Field(pattern=FACTORY_PATH, max_length=256)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    checkpoint: str | None = None
    checkpoint_kwargs: dict[str, Any] | None = None
    rescale: Literal["finetune", "as_is"] = "finetune"
    finetune_epochs: PositiveInt = 3
    channels_last: bool = False
    first_layer: str | None = None
    last_layer: str | None = None

    @property
    def title(self) -> str:
        """What the model is, in a word, for listings."""
        return self.factory

    @property
    def module_name(self) -> str:
        """The module the factory is imported from."""
        return self.factory.partition(":")[0]

    @property
    def refactorized(self) -> bool:
        """The checkpoint was saved with other kwargs and is re-factorized to these."""
        return self.checkpoint is not None and self.checkpoint_kwargs is not None

    def with_kwargs(self, **overrides: Any) -> FactoryConfig:
        """The same model with some factory keyword arguments changed (e.g. ``rank``); a
        checkpoint keeps the kwargs it was saved with, as ``checkpoint_kwargs``."""
        kwargs = {**self.kwargs, **overrides}
        saved = self.checkpoint_kwargs if self.checkpoint_kwargs is not None else self.kwargs
        return self.model_copy(update={
            "kwargs": kwargs,
            "checkpoint_kwargs": saved if self.checkpoint is not None and saved != kwargs
            else None})
