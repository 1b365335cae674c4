"""Model configs: one pydantic model per architecture, told apart by ``arch``.

A search space's ``model:`` block parses into :data:`ModelConfig`. The spatial dimension and the
channel counts are not part of a model config: they follow the data (see
:func:`autoq.models.build_model`). The defaults are the ``small`` sizes, which train in about a
minute on 2 CPU cores for 1D Burgers at 256 points and 2D Darcy at 64².
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from autoq.errors import SpecError

PadMode = Literal["replicate", "zeros"]


class _ArchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FNOConfig(_ArchConfig):
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


class UNetConfig(_ArchConfig):
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


class TransformerConfig(_ArchConfig):
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


ModelConfig = Annotated[FNOConfig | UNetConfig | TransformerConfig, Field(discriminator="arch")]
"""Any model config; the ``arch`` key picks the class."""

_MODEL_CONFIG_ADAPTER: TypeAdapter[ModelConfig] = TypeAdapter(ModelConfig)
_ARCHS = tuple(c.model_fields["arch"].default for c in (FNOConfig, UNetConfig, TransformerConfig))


def parse_model_config(data: Mapping[str, Any]) -> ModelConfig:
    """Validate a ``model:`` mapping (e.g. from YAML) into its config class.

    Raises:
        SpecError: unknown ``arch``, unknown key or bad value; the message names the key.
    """
    try:
        return _MODEL_CONFIG_ADAPTER.validate_python(data)
    except ValidationError as e:
        raise SpecError(
            f"invalid model config: {'; '.join(_describe(err) for err in e.errors())}"
        ) from e


def _describe(error: Mapping[str, Any]) -> str:
    """One pydantic error as ``model.<key>: <message>``, without the union's tag in the path."""
    loc = [str(part) for part in error["loc"]]
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc = ["arch"]
    elif loc and loc[0] in _ARCHS:
        loc = loc[1:]
    return f"{'.'.join(['model', *loc])}: {error['msg']}"
