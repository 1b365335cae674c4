"""Showing a search the way the field reads it: a Pareto table and a log-log cost vs MSE plot."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from autoq.bits import FLOAT
from autoq.search.records import (
    BITOPS_ATTR,
    COST_OBJECTIVE,
    FLOAT_REFERENCE_ATTR,
    LATENCY_ATTR,
    LATENCY_OBJECTIVE,
    CompletePoint,
    TrialPoint,
    complete_points,
)

COST_HEADERS = {COST_OBJECTIVE: "cost (bit-ops)", LATENCY_OBJECTIVE: "latency (× float)"}
"""The cost column's header by the search's cost objective."""
COST_AXES = {COST_OBJECTIVE: "inference cost (bit operations per step)",
             LATENCY_OBJECTIVE: "measured latency relative to the float full-resolution model"}


def bits_summary(bits: Mapping[str, Sequence[int] | str]) -> str:
    """Per-layer bits condensed, e.g. ``w4a8×5 w8a16×2 float×2``, most common first."""
    counts = Counter(FLOAT if b == FLOAT else f"w{b[0]}a{b[1]}" for b in bits.values())
    return " ".join(f"{label}×{n}" for label, n in counts.most_common())


def pareto_table(front: Sequence[TrialPoint], *, reference_mse: float | None = None,
                 objective: str = COST_OBJECTIVE) -> str:
    """The Pareto set as a text table sorted by cost; ``reference_mse`` adds an MSE ratio, and
    measured latencies (``autoq latency``, or a latency search's own) add the latency and its
    speed-up over the float model at full resolution. In a latency search (``objective``) the
    cost is the latency relative to float, and the bit-ops get their own column."""
    ranked = _any_rank(front)
    timed = any(LATENCY_ATTR in p.details for p in front)
    by_latency = objective == LATENCY_OBJECTIVE
    header = ["trial", COST_HEADERS[objective], "MSE", *(["× float"] if reference_mse else []),
              *(["latency (ms)", "speed-up"] if timed else []),
              *(["bit-ops"] if by_latency else []),
              "scale", *(["rank"] if ranked else []), "bits", "baseline"]
    rows = []
    for p in front:
        ratio = [_number(p.mse / reference_mse, ".2f")] if reference_mse and p.mse else []
        rank = [_number(p.rank, "g")] if ranked else []
        bitops = [_number(p.details.get(BITOPS_ATTR))] if by_latency else []
        rows.append([str(p.number), _cost(p.cost, objective), _number(p.mse), *ratio,
                     *(_latency_cells(p) if timed else []), *bitops,
                     _number(p.scale, "g"), *rank, bits_summary(p.bits), p.baseline or ""])
    return _table(header, rows)


def _cost(value: float | None, objective: str) -> str:
    return _number(value, ".3f" if objective == LATENCY_OBJECTIVE else ".3e")


def _latency_cells(point: TrialPoint) -> list[str]:
    """``[median latency in ms, speed-up × over float]`` of a timed trial, blanks otherwise."""
    latency = point.details.get(LATENCY_ATTR)
    if not latency:
        return ["", ""]
    return [_number(1e3 * latency["median_s"], ".3g"), _number(latency["speedup"], ".2f") + "×"]


def trials_table(points: Sequence[TrialPoint], *, objective: str = COST_OBJECTIVE) -> str:
    """Every trial as a text table in trial order: state, MSE, cost (``objective``'s), scale,
    bits, error."""
    ranked = _any_rank(points)
    header = ["trial", "state", "MSE", COST_HEADERS[objective], "scale",
              *(["rank"] if ranked else []), "bits", "baseline", "error"]
    rows = [[str(p.number), _state(p),
             _number(p.mse), _cost(p.cost, objective), _number(p.scale, "g"),
             *([_number(p.rank, "g")] if ranked else []), bits_summary(p.bits),
             p.baseline or "", p.error or ""] for p in points]
    return _table(header, rows)


def _state(point: TrialPoint) -> str:
    """A trial's state, marked when it was screened (multi-fidelity: not a full-length result)
    or breaks a constraint of the search."""
    if point.screened:
        return f"{point.state} (screened)"
    return point.state if point.feasible else f"{point.state} (infeasible)"


def _any_rank(points: Sequence[TrialPoint]) -> bool:
    """A search over factorization ranks: its tables get a rank column."""
    return any(p.rank is not None for p in points)


def _number(value: float | None, spec: str = ".3e") -> str:
    return "" if value is None else format(value, spec)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def plot_front(
    points: Sequence[TrialPoint], front: Sequence[TrialPoint], path: str | Path, *, title: str,
    x_axis: Literal["cost", "latency"] = "cost", objective: str = COST_OBJECTIVE,
) -> Path:
    """Cost vs MSE on log-log axes: every trial, the front, the paper's grid and the float model.
    The cost is the search's cost ``objective``: bit-ops, or the latency relative to float.

    With ``x_axis="latency"`` the x-axis is the measured latency (``autoq latency``) instead of
    the bit-op count: only timed trials are drawn, the front is the measured one, and the star
    is the float model at full resolution timed in the same run.

    Returns the written PNG path.
    """
    if x_axis == "latency":
        return _plot_latency_front(points, path, title=title)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    searched: list[CompletePoint] = []
    grid: dict[str, list[CompletePoint]] = {}
    floats: list[CompletePoint] = []
    for c in complete_points(points):
        if c.point.baseline is None:
            searched.append(c)
        elif c.point.baseline == "float":
            floats.append(c)
        else:
            grid.setdefault(c.point.baseline, []).append(c)
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    if searched:
        ax.scatter([c.cost for c in searched], [c.mse for c in searched], s=18, c="0.65",
                   label="searched trials", zorder=2)
    for regime in sorted(grid):
        chosen = sorted(grid[regime], key=lambda c: c.cost)
        ax.plot([c.cost for c in chosen], [c.mse for c in chosen], marker="^", ms=5, lw=0.8,
                label=f"paper grid {regime}", zorder=3)
    if floats:
        chosen = sorted(floats, key=lambda c: c.cost)
        ax.plot([c.cost for c in chosen], [c.mse for c in chosen], marker="o", ms=5, lw=0.8,
                c="0.3", label="float (scaled)", zorder=3)
        # Scales are positive: a trial without one (none should be) is never the full one.
        full = max(chosen, key=lambda c: c.point.scale or 0.0)
        ax.scatter([full.cost], [full.mse], marker="*", s=180, c="gold", edgecolors="k",
                   label="float, full resolution", zorder=5)
    on_front = complete_points(front)
    if on_front:
        ax.step([c.cost for c in on_front], [c.mse for c in on_front], where="post", c="k",
                lw=1.6, zorder=4)
        ax.scatter([c.cost for c in on_front], [c.mse for c in on_front], c="k", s=30,
                   zorder=4, label="Pareto front")
    return save_cost_mse_figure(fig, ax, path, title=title, xlabel=COST_AXES[objective])


def _plot_latency_front(points: Sequence[TrialPoint], path: str | Path, *, title: str) -> Path:
    """Measured latency vs MSE of the timed trials, their own front, and the float reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed = [(1e3 * c.point.details[LATENCY_ATTR]["median_s"], c) for c in complete_points(points)
             if c.point.feasible and LATENCY_ATTR in c.point.details]
    if not timed:
        raise ValueError("no trial has a measured latency: run `autoq latency NAME` first")
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    ax.scatter([ms for ms, _ in timed], [c.mse for _, c in timed], s=18, c="0.65",
               label="timed trials", zorder=2)
    front, best = [], math.inf
    for ms, c in sorted(timed, key=lambda pair: (pair[0], pair[1].mse)):
        if c.mse < best:
            front.append((ms, c.mse))
            best = c.mse
    ax.step([ms for ms, _ in front], [mse for _, mse in front], where="post", c="k", lw=1.6,
            zorder=4)
    ax.scatter([ms for ms, _ in front], [mse for _, mse in front], c="k", s=30, zorder=4,
               label="measured front")
    reference = timed[0][1].point.details
    if FLOAT_REFERENCE_ATTR in reference:
        latency = reference[LATENCY_ATTR]
        ax.scatter([1e3 * latency["float_median_s"]], [reference[FLOAT_REFERENCE_ATTR]],
                   marker="*", s=180, c="gold", edgecolors="k", zorder=5,
                   label="float, full resolution")
    setting = timed[0][1].point.details[LATENCY_ATTR]
    return save_cost_mse_figure(
        fig, ax, path, title=title,
        xlabel=f"measured latency (ms per batch of {setting['batch']}, {setting['runtime']}, "
               f"{setting['threads']} thread(s))")


def save_cost_mse_figure(fig: Any, ax: Any, path: str | Path, *, title: str,
                         xlabel: str = COST_AXES[COST_OBJECTIVE]) -> Path:
    """Finish a cost vs MSE figure the one way autoq draws them (log-log, labelled, legend) and
    write it as PNG."""
    import matplotlib.pyplot as plt

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("validation MSE")
    ax.set_title(title)
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
