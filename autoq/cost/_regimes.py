"""The paper's uniform quantization regimes, priced at a search space's scale factors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from torch import nn

from autoq.bits import Resample
from autoq.cost._bitops import CostReport, bitops
from autoq.cost._paper import REGIMES
from autoq.errors import SpecError
from autoq.models import ModelConfig, build_model
from autoq.precision import TrialConfig


def uniform_regimes(
    model: nn.Module, *, scale: float, first_last_float: bool = True
) -> dict[str, TrialConfig]:
    """One :class:`~autoq.precision.TrialConfig` per regime of :data:`REGIMES` for ``model``.

    Args:
        model: a model from :func:`~autoq.models.build_model`.
        scale: the scale factor of every config.
        first_last_float: keep the first and last layers float, as the paper does.
    """
    return {
        name: TrialConfig.uniform(
            model,
            scale=scale,
            weight_bits=bits and bits[0],
            act_bits=bits and bits[1],
            first_last_float=first_last_float,
        )
        for name, bits in REGIMES.items()
    }


def regime_costs(
    model_config: ModelConfig,
    *,
    data_shape: tuple[int, ...],
    in_channels: int,
    out_channels: int,
    scales: Iterable[float],
    first_last_float: bool = True,
    resample: Resample = "linear",
) -> dict[str, dict[float, CostReport]]:
    """The cost of every regime of :data:`REGIMES` at every scale factor (``autoq cost``).

    The network is profiled once per scale (its grid), whatever the number of regimes.

    Args:
        model_config: the search space's ``model`` block.
        data_shape: the data's spatial shape; its length is the model's spatial dimension.
        in_channels: channels of the network's input.
        out_channels: channels of its output.
        scales: scale factors in (0, 1].
        first_last_float: keep the first and last layers float.
        resample: the resize method priced at scales below 1 (:data:`autoq.bits.Resample`).

    Returns:
        ``{regime: {scale: CostReport}}``, regimes in the order of :data:`REGIMES`.

    Raises:
        SpecError: no scales, or a bad model config, shape or channel count.
    """
    scales = list(scales)
    if not scales:
        raise SpecError("scales must name at least one scale factor, got none")
    model = build_model(
        model_config,
        spatial_dims=len(data_shape),
        in_channels=in_channels,
        out_channels=out_channels,
    )
    costs: dict[str, dict[float, CostReport]] = {name: {} for name in REGIMES}
    for scale in scales:
        configs = uniform_regimes(model, scale=scale, first_last_float=first_last_float)
        for name, config in configs.items():
            costs[name][scale] = bitops(
                model, replace(config, resample=resample), data_shape=data_shape,
                in_channels=in_channels
            )
    return costs


def format_cost_table(costs: Mapping[str, Mapping[float, CostReport]]) -> str:
    """Render :func:`regime_costs`' result as text: per scale a per-entry table (``M``, ``A`` and
    the cost in every regime), then the totals of every regime at every scale.

    Args:
        costs: ``{regime: {scale: CostReport}}``; every regime priced at the same scales.
    """
    regimes = list(costs)
    if not regimes:
        return ""
    scales = list(costs[regimes[0]])
    blocks = [_scale_table(scale, {r: costs[r][scale] for r in regimes}) for scale in scales]
    header = ["regime", *(f"scale {s:g}" for s in scales)]
    rows = [[r, *(f"{costs[r][s].total:.3e}" for s in scales)] for r in regimes]
    rows.append(["FLOPs (M + A)", *(f"{costs[regimes[0]][s].flops:.3e}" for s in scales)])
    blocks.append("total bit operations\n" + _render(header, rows))
    return "\n\n".join(blocks) + "\n"


def _scale_table(scale: float, reports: Mapping[str, CostReport]) -> str:
    first = next(iter(reports.values()))
    grid = "×".join(str(n) for n in first.network_shape)
    header = ["entry", "M", "A", *reports]
    rows = [
        [
            name,
            f"{layer.multiplications:,}",
            f"{layer.additions:,}",
            *(f"{report.layers[name].cost:.3e}" for report in reports.values()),
        ]
        for name, layer in first.layers.items()
    ]
    rows.append(["total", "", "", *(f"{report.total:.3e}" for report in reports.values())])
    return f"scale {scale:g} (network grid {grid})\n" + _render(header, rows)


def _render(header: list[str], rows: list[list[str]]) -> str:
    """Left-align the first column, right-align the others."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]
    return "\n".join(lines)
