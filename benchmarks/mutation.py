"""Mutation testing of autoq's core modules (`make mutation`, issue 18).

Runs mutmut 3 as ``[tool.mutmut]`` in pyproject.toml configures it: the core modules below are
copied into ``mutants/`` and mutated; one run of the selected fast tests records which tests call
each function; each mutant then runs against those tests alone (``--max-children 2``). Then it
prints, per module, the killed mutants over the non-equivalent ones, the goal being ≥ 90 % in
every module, and each surviving mutant's change.

    .venv/bin/python benchmarks/mutation.py            # fresh run (deletes mutants/ first)
    .venv/bin/python benchmarks/mutation.py --keep     # reuse mutants/: only changed functions
    .venv/bin/python benchmarks/mutation.py --score    # score the last run, run nothing
    .venv/bin/python benchmarks/mutation.py --keep 'autoq.cost.*'   # (re-)run these mutants

A fresh run is the default because mutmut keeps a mutant's verdict until its function changes:
a test added since the last run would not be credited with the mutants it kills. To re-check a
few mutants after adding a test, ``.venv/bin/mutmut run 'autoq.precision.x_*'`` re-runs the
mutants it names; ``.venv/bin/mutmut show NAME`` shows one.

Timeouts count as killed (the mutant made a test loop or hang); "no tests" counts as not
killed (no selected test calls the mutated function). Functions with a decorator other than
``@staticmethod`` / ``@classmethod`` (``@property``, pydantic validators, ``@lru_cache``) and
module-level code are not mutated by mutmut 3 at all.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = Path(sys.executable).with_name("mutmut")
GOAL = 0.90

# The core modules of issue 18, each a group of the files `only_mutate` lists in pyproject.toml.
MODULES: dict[str, tuple[str, ...]] = {
    "pricing": ("autoq/cost/_bitops.py", "autoq/cost/_counts.py", "autoq/cost/_regimes.py"),
    "records and results": ("autoq/search/records.py", "autoq/search/results.py"),
    "sampler": ("autoq/search/samplers/cost_aware.py",),
    "resizing": ("autoq/data/resample.py",),
    "trial configuration": ("autoq/precision.py",),
    "service spec checks": ("service/specs.py",),
}

# Equivalent mutants: mutant name → (the mutated line as `mutmut show` prints it after "+",
# why no test can tell the mutant from the original). An entry whose mutant no longer shows that
# line (the function changed, so mutmut renumbered its mutants) is reported as stale and the
# mutant counts as not killed until the entry is brought up to date.
EQUIVALENT: dict[str, tuple[str, str]] = {
    "autoq.search.records.x_objective_names__mutmut_1": (
        'def objective_names(metric: str, cost: Literal["bitops", "latency"] = "XXbitopsXX")'
        ' -> list[str]:',
        "the default is only compared with 'latency': any other value names the bit-op cost"),
    "autoq.search.records.x_objective_names__mutmut_2": (
        'def objective_names(metric: str, cost: Literal["bitops", "latency"] = "BITOPS")'
        ' -> list[str]:',
        "the default is only compared with 'latency': any other value names the bit-op cost"),
    "autoq.search.results.x_study_points__mutmut_2": (
        "return [trial_point(t) for t in study.get_trials(deepcopy=None)]",
        "Optuna copies the trials only when deepcopy is true; None is false"),
    "autoq.search.results.x_study_points__mutmut_4": (
        "return [trial_point(t) for t in study.get_trials(deepcopy=True)]",
        "trial_point only reads the trials: copies of them give the same points, slower"),
    "autoq.search.results.x_hypervolume__mutmut_18": (
        "if point.cost > ref_cost or point.mse >= ref_mse:",
        "a front point at the reference cost adds a zero-width strip and is the front's last"),
    "autoq.search.results.x_hypervolume__mutmut_19": (
        "if point.cost >= ref_cost or point.mse > ref_mse:",
        "a front point at the reference MSE adds a zero-height strip and leaves the MSE level "
        "at the reference"),
    "autoq.data.resample.x_resize__mutmut_26": (
        "align_corners=None)",
        "F.interpolate takes align_corners=None as False for (bi)linear modes, silently"),
    "autoq.data.resample.x_resize__mutmut_30": (
        ")",
        "align_corners defaults to None, which F.interpolate takes as False, silently"),
    "autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁ_mutate__mutmut_17": (
        "keep = self._rng.random(len(configs)) <= 0.5",
        "random() draws from a continuum: exactly 0.5 has probability 2⁻⁵³"),
    "autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁ_mutate__mutmut_22": (
        "rows = np.flatnonzero(keep & (position == groups))",
        "keep is a fair coin: redrawing the scale on heads rather than tails is the same draw"),
    "autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁ_mutate__mutmut_28": (
        "rows = np.flatnonzero(keep & (position == groups + 1))",
        "keep is a fair coin: redrawing the rank on heads rather than tails is the same draw"),
    'autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁinfer_relative_search_space__mutmut_2': (
        'finished = study.get_trials(deepcopy=None, states=(TrialState.COMPLETE,))',
        'a copy of the stored trials or the trials themselves: the sampler only reads them'),
    'autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁinfer_relative_search_space__mutmut_4': (
        'finished = study.get_trials(states=(TrialState.COMPLETE,))',
        'a copy of the stored trials or the trials themselves: the sampler only reads them'),
    'autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁinfer_relative_search_space__mutmut_7': (
        'finished = study.get_trials(deepcopy=True, states=(TrialState.COMPLETE,))',
        'a copy of the stored trials or the trials themselves: the sampler only reads them'),
    'autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁsample_relative__mutmut_3': (
        'complete = study.get_trials(deepcopy=None, states=(TrialState.COMPLETE,))',
        'a copy of the stored trials or the trials themselves: the sampler only reads them'),
    'autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁsample_relative__mutmut_5': (
        'complete = study.get_trials(states=(TrialState.COMPLETE,))',
        'a copy of the stored trials or the trials themselves: the sampler only reads them'),
    'autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁsample_relative__mutmut_8': (
        'complete = study.get_trials(deepcopy=True, states=(TrialState.COMPLETE,))',
        'a copy of the stored trials or the trials themselves: the sampler only reads them'),
    'autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁsample_relative__mutmut_109': (
        'front = _front(list(zip(front_cost, front_mse, strict=None)))',
        'the zipped arrays have equal lengths by construction: strict never fires'),
    'autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁsample_relative__mutmut_112': (
        'front = _front(list(zip(front_cost, front_mse, )))',
        'the zipped arrays have equal lengths by construction: strict never fires'),
    'autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁsample_relative__mutmut_113': (
        'front = _front(list(zip(front_cost, front_mse, strict=False)))',
        'the zipped arrays have equal lengths by construction: strict never fires'),
    'autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁsample_relative__mutmut_140': (
        'for c, y in zip(costs, predicted, strict=None)])',
        'the zipped arrays have equal lengths by construction: strict never fires'),
    'autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁsample_relative__mutmut_143': (
        'for c, y in zip(costs, predicted, )])',
        'the zipped arrays have equal lengths by construction: strict never fires'),
    'autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁsample_relative__mutmut_144': (
        'for c, y in zip(costs, predicted, strict=False)])',
        'the zipped arrays have equal lengths by construction: strict never fires'),
    'autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁsample_relative__mutmut_157': (
        'return self.decode(Configs.from_rows(rows[chosen:chosen + 2]))[0]',
        'decode(...)[0] takes the first row of the slice either way'),
    'autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁsample_independent__mutmut_1': (
        'return self._fallback.sample_independent(None, trial, param_name, param_distribution)',
        "Optuna's RandomSampler draws from the distribution alone: the other arguments go unused"),
    'autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁsample_independent__mutmut_2': (
        'return self._fallback.sample_independent(study, None, param_name, param_distribution)',
        "Optuna's RandomSampler draws from the distribution alone: the other arguments go unused"),
    'autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁsample_independent__mutmut_3': (
        'return self._fallback.sample_independent(study, trial, None, param_distribution)',
        "Optuna's RandomSampler draws from the distribution alone: the other arguments go unused"),
    'autoq.search.samplers.cost_aware.xǁConfigsǁ__init____mutmut_10': (
        'self.rank = np.asarray(rank, )',
        'the indices come as Python ints or int64 arrays: asarray infers int64 either way'),
    'autoq.search.samplers.cost_aware.xǁConfigsǁ__init____mutmut_3': (
        'self.scale = np.asarray(scale, dtype=None)',
        'the indices come as Python ints or int64 arrays: asarray infers int64 either way'),
    'autoq.search.samplers.cost_aware.xǁConfigsǁ__init____mutmut_5': (
        'self.scale = np.asarray(scale, )',
        'the indices come as Python ints or int64 arrays: asarray infers int64 either way'),
    'autoq.search.samplers.cost_aware.xǁConfigsǁ__init____mutmut_8': (
        'self.rank = np.asarray(rank, dtype=None)',
        'the indices come as Python ints or int64 arrays: asarray infers int64 either way'),
    'autoq.search.samplers.cost_aware.xǁCostAwareSamplerǁ_greedy_path__mutmut_10': (
        'return Configs.from_rows(np.zeros((0, 2 + 2 * groups), dtype=None))',
        'an empty array: Configs casts its columns to int64'),
    'autoq.search.samplers.cost_aware.xǁNoisePowerModelǁ__init____mutmut_11': (
        'self.act_noise = np.asarray(act_noise, )',
        'noise powers and coarseness are Python floats: asarray infers float64 either way'),
    'autoq.search.samplers.cost_aware.xǁNoisePowerModelǁ__init____mutmut_17': (
        'self.coarseness = np.asarray(coarseness, dtype=None)',
        'noise powers and coarseness are Python floats: asarray infers float64 either way'),
    'autoq.search.samplers.cost_aware.xǁNoisePowerModelǁ__init____mutmut_19': (
        'self.coarseness = np.asarray(coarseness, )',
        'noise powers and coarseness are Python floats: asarray infers float64 either way'),
    'autoq.search.samplers.cost_aware.xǁNoisePowerModelǁ__init____mutmut_4': (
        'self.weight_noise = np.asarray(weight_noise, dtype=None)',
        'noise powers and coarseness are Python floats: asarray infers float64 either way'),
    'autoq.search.samplers.cost_aware.xǁNoisePowerModelǁ__init____mutmut_59': (
        'self._gamma = slice(shared + 2 + groups, None)',
        'γ is the last block of θ: any end at or past its length slices the same'),
    'autoq.search.samplers.cost_aware.xǁNoisePowerModelǁ__init____mutmut_6': (
        'self.weight_noise = np.asarray(weight_noise, )',
        'noise powers and coarseness are Python floats: asarray infers float64 either way'),
    'autoq.search.samplers.cost_aware.xǁNoisePowerModelǁ__init____mutmut_67': (
        'self._gamma = slice(shared + 2 + groups, shared + 3 + 2 * groups)',
        'γ is the last block of θ: any end at or past its length slices the same'),
    'autoq.search.samplers.cost_aware.xǁNoisePowerModelǁ__init____mutmut_69': (
        'self._gamma = slice(shared + 2 + groups, shared + 2 + 3 * groups)',
        'γ is the last block of θ: any end at or past its length slices the same'),
    'autoq.search.samplers.cost_aware.xǁNoisePowerModelǁ__init____mutmut_9': (
        'self.act_noise = np.asarray(act_noise, dtype=None)',
        'noise powers and coarseness are Python floats: asarray infers float64 either way'),
    'autoq.data.resample.x_cubic_taps__mutmut_33': (
        'for j, (point, w) in enumerate(zip(points, weights, strict=None)):',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.data.resample.x_cubic_taps__mutmut_36': (
        'for j, (point, w) in enumerate(zip(points, weights, )):',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.data.resample.x_cubic_taps__mutmut_37': (
        'for j, (point, w) in enumerate(zip(points, weights, strict=False)):',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.data.resample.x_cubic_taps__mutmut_71': (
        'return index, np.take_along_axis(dense, index, )',
        "numpy's take_along_axis defaults to the last axis, axis 1 of this 2-D array"),
    'autoq.data.resample.x__keys__mutmut_33': (
        'return np.where(t < 1, near, np.where(t < 2, far, 0.0))',
        "Keys' near and far kernels are both 0 at t = 1"),
    'autoq.data.resample.x__keys__mutmut_41': (
        'return np.where(t <= 1, near, np.where(t <= 2, far, 0.0))',
        'the four taps lie at distances below 2 (or exactly 2, where the far kernel is 0)'),
    'autoq.data.resample.x__keys__mutmut_42': (
        'return np.where(t <= 1, near, np.where(t < 3, far, 0.0))',
        'the four taps lie at distances below 2 (or exactly 2, where the far kernel is 0)'),
    'autoq.data.resample.x__extrapolation__mutmut_11': (
        'near = np.arange(count) if point <= 0 else np.arange(n - count, n)',
        'called only for taps outside the grid: integer points < 0 or >= n'),
    'autoq.data.resample.x__extrapolation__mutmut_12': (
        'near = np.arange(count) if point < 1 else np.arange(n - count, n)',
        'called only for taps outside the grid: integer points < 0 or >= n'),
    'autoq.data.resample.x_fourier_matrix__mutmut_9': (
        'frequencies = torch.arange(-(h - 1), h, dtype=None)',
        'int64 frequencies are promoted to float64 by the float64 factors they multiply'),
    'autoq.data.resample.x_fourier_matrix__mutmut_12': (
        'frequencies = torch.arange(-(h - 1), h, )',
        'int64 frequencies are promoted to float64 by the float64 factors they multiply'),
    'autoq.data.resample.x__fourier__mutmut_21': (
        'kept = [fourier_kept(n, m) for n, m in zip(x.shape[2:], size, strict=None)]',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.data.resample.x__fourier__mutmut_24': (
        'kept = [fourier_kept(n, m) for n, m in zip(x.shape[2:], size, )]',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.data.resample.x__fourier__mutmut_26': (
        'kept = [fourier_kept(n, m) for n, m in zip(x.shape[2:], size, strict=False)]',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.data.resample.x__fourier__mutmut_37': (
        'coefficients = torch.fft.rfft(x, ).narrow(-1, 0, kept[-1])',
        'dim=-1 is the default of torch.fft.rfft/irfft'),
    'autoq.data.resample.x__fourier__mutmut_48': (
        'for axis, n, h in zip(axes, signed_in, kept[:-1], strict=None):',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.data.resample.x__fourier__mutmut_52': (
        'for axis, n, h in zip(axes, signed_in, kept[:-1], ):',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.data.resample.x__fourier__mutmut_55': (
        'for axis, n, h in zip(axes, signed_in, kept[:-1], strict=False):',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.data.resample.x__fourier__mutmut_87': (
        'for axis, m, h in zip(axes, signed_out, kept[:-1], strict=None):',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.data.resample.x__fourier__mutmut_91': (
        'for axis, m, h in zip(axes, signed_out, kept[:-1], ):',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.data.resample.x__fourier__mutmut_94': (
        'for axis, m, h in zip(axes, signed_out, kept[:-1], strict=False):',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.data.resample.x__fourier__mutmut_127': (
        'return torch.fft.irfft(coefficients, n=m_last, norm="forward")',
        'dim=-1 is the default of torch.fft.rfft/irfft'),
    'autoq.data.resample.x__fourier_factor__mutmut_3': (
        'factor = torch.ones((), dtype=None)',
        '1 is exact in any dtype and the product with complex128 factors is complex128'),
    'autoq.data.resample.x__fourier_factor__mutmut_5': (
        'factor = torch.ones((), )',
        '1 is exact in any dtype and the product with complex128 factors is complex128'),
    'autoq.data.resample.x__fourier_factor__mutmut_10': (
        'for axis, (n, m, h) in enumerate(zip(shape_in, shape_out, kept, strict=None)):',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.data.resample.x__fourier_factor__mutmut_14': (
        'for axis, (n, m, h) in enumerate(zip(shape_in, shape_out, kept, )):',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.data.resample.x__fourier_factor__mutmut_15': (
        'for axis, (n, m, h) in enumerate(zip(shape_in, shape_out, kept, strict=False)):',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.cost._counts.x_dft_operations__mutmut_35': (
        'operations = Operations(2 * points * n_last * kept[-1], 2 * points * n_last * kept[-1])',
        'the first term added to Operations(0, 0): = and += give the same'),
    'autoq.cost._counts.x_dft_operations__mutmut_59': (
        'for axis, (n, k) in enumerate(zip(signed, kept[:-1], strict=None), start=1):',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.cost._counts.x_dft_operations__mutmut_62': (
        'for axis, (n, k) in enumerate(zip(signed, kept[:-1], ), start=1):',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.cost._counts.x_dft_operations__mutmut_65': (
        'for axis, (n, k) in enumerate(zip(signed, kept[:-1], strict=False), start=1):',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.cost._counts.x_dft_operations__mutmut_93': (
        'for axis, (n, k) in enumerate(zip(signed, kept[:-1], strict=None), start=1):',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.cost._counts.x_dft_operations__mutmut_96': (
        'for axis, (n, k) in enumerate(zip(signed, kept[:-1], ), start=1):',
        'zip over sequences of equal length by construction: strict only checks that'),
    'autoq.cost._counts.x_dft_operations__mutmut_99': (
        'for axis, (n, k) in enumerate(zip(signed, kept[:-1], strict=False), start=1):',
        'zip over sequences of equal length by construction: strict only checks that'),
}

KILLED = {"killed", "timeout", "caught by type check"}


def run_mutmut(*, keep: bool, names: list[str]) -> None:
    """Run ``mutmut run --max-children 2`` in the repository, from scratch unless ``keep``;
    only the mutants ``names`` match (globs such as ``autoq.cost.*``), if given."""
    if not keep:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    result = subprocess.run([str(MUTMUT), "run", "--max-children", "2", *names], cwd=ROOT,
                            check=False)
    if result.returncode != 0:
        sys.exit(f"mutmut run failed with exit code {result.returncode}")


def mutated_lines(name: str, path: str) -> set[str]:
    """The lines ``name`` adds to its function, stripped (its diff's "+" lines)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    diff = get_diff_for_mutant(name, path=path)
    return {line[1:].strip() for line in diff.splitlines()
            if line.startswith("+") and not line.startswith("+++")}


def diff_summary(name: str, path: str) -> str:
    """``- old / + new`` lines of a mutant's diff, on one line each."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    diff = get_diff_for_mutant(name, path=path)
    return "\n".join(f"      {line[0]} {line[1:].strip()}" for line in diff.splitlines()
                     if line[:1] in "+-" and line[:3] not in ("+++", "---"))


def score() -> bool:
    """Print the per-module score of the run in ``mutants/``; whether every module meets GOAL."""
    os.chdir(ROOT)
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code

    all_ok = True
    rows: list[tuple[str, int, int, int, Counter[str]]] = []
    survivors: list[tuple[str, str, str]] = []
    stale: list[str] = []
    equivalent_seen = 0
    for module, paths in MODULES.items():
        counts: Counter[str] = Counter()
        for path in paths:
            data = SourceFileMutationData(path=path)
            if not data.meta_path.exists():
                sys.exit(f"no mutants of {path}: run mutmut first (without --score)")
            data.load()
            for name, exit_code in data.exit_code_by_key.items():
                status = status_by_exit_code[exit_code]
                if name in EQUIVALENT and status not in KILLED:
                    if EQUIVALENT[name][0].strip() in mutated_lines(name, path):
                        counts["equivalent"] += 1
                        equivalent_seen += 1
                        continue
                    stale.append(name)
                counts[status] += 1
                if status not in KILLED:
                    survivors.append((name, status, path))
        killed = sum(counts[s] for s in KILLED)
        total = sum(counts.values()) - counts["equivalent"]
        rows.append((module, killed, total, counts["equivalent"], counts))
        all_ok &= total == 0 or killed / total >= GOAL

    print(f"\n{'module':<22} {'killed / non-equivalent':>24} {'score':>7} "
          f"{'equivalent':>11}  other")
    for module, killed, total, equivalent, counts in rows:
        pct = 100.0 * killed / total if total else 100.0
        other = ", ".join(f"{counts[s]} {s}" for s in sorted(counts)
                          if s not in KILLED and s != "equivalent" and counts[s])
        print(f"{module:<22} {f'{killed} / {total}':>24} {pct:>6.1f}% {equivalent:>11}  {other}")
    if survivors:
        print("\nNot killed (neither killed nor listed as equivalent in benchmarks/mutation.py):")
        for name, status, path in survivors:
            print(f"  {name} [{status}]")
            print(diff_summary(name, path))
    for name in stale:
        print(f"stale EQUIVALENT entry (its mutant changed): {name}")
    unseen = set(EQUIVALENT) - {n for _, paths in MODULES.items() for p in paths
                                for n in _names(p)}
    for name in sorted(unseen):
        print(f"EQUIVALENT entry names no mutant: {name}")
    print(f"\ngoal ≥ {GOAL:.0%} in every module: {'met' if all_ok else 'NOT met'}")
    return all_ok and not stale


def _names(path: str) -> list[str]:
    from mutmut.mutation.data import SourceFileMutationData

    data = SourceFileMutationData(path=path)
    data.load()
    return list(data.exit_code_by_key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--keep", action="store_true", help="reuse mutants/ (changed code only)")
    group.add_argument("--score", action="store_true", help="score the last run, run nothing")
    parser.add_argument("names", nargs="*", help="run only the mutants these globs match")
    args = parser.parse_args()
    started = time.monotonic()
    load = os.getloadavg()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if not args.score:
        run_mutmut(keep=args.keep, names=args.names)
    ok = score()
    if not args.score:
        minutes = (time.monotonic() - started) / 60
        after = os.getloadavg()
        print(f"started {when}, {minutes:.1f} min, load average {load[0]:.1f} before, "
              f"{after[0]:.1f} after, {os.cpu_count()} cores")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
