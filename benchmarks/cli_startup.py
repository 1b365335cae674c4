"""Start-up cost of the ``autoq`` command: wall time, peak memory and the heavy modules it imports.

Usage: python benchmarks/cli_startup.py [--runs 5] [--autoq .venv/bin/autoq] [--no-study]

Times ``autoq --help``, ``autoq --version``, ``autoq studies`` on an empty SQLite storage, and
``autoq pareto`` and ``autoq pick`` on a small study, each as a separate process, ``--runs``
times after one untimed warm-up run (which fills the page cache, creates the empty storage's
tables, and records which of torch, aimet_torch, deepspeed and ray the command imported). The
small study is made after the first three commands' runs, by a real ``autoq search`` of a tiny
Burgers-FNO space with 2 trials (data, float cache, artifacts and storage in a temporary folder;
some seconds to a minute, untimed); ``--no-study`` leaves it and the two commands out. Prints a
markdown table: median and max wall seconds, the largest peak RSS of the runs (the child's
``ru_maxrss`` from ``wait4``, as ``/usr/bin/time -f %M`` reports it), and the heavy modules. A
command that fails in the warm-up (``--version`` before it exists) is skipped with its last line
of error output.

Only the standard library here: it measures the installed command, whatever extras it has.
Every command runs in the temporary folder, so none writes into the working directory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HEAVY_MODULES = ("torch", "aimet_torch", "deepspeed", "ray")

# A search small enough to make a real study in seconds (the test suite's tiny spec): Burgers,
# 24 samples × 64 cells × 11 frames, FNO of width 12, 2 float epochs, 1 QAT epoch.
STUDY = "tiny-burgers-fno"
TINY_SPEC = f"""\
name: {STUDY}
data:
  pde: burgers
  path: burgers_tiny.h5
  input_steps: 4
  target_steps: 1
  generate: {{samples: 24, resolution: 64, frames: 11}}
model: {{arch: fno, width: 12, modes: 6, layers: 2, projection_width: 24}}
train: {{epochs: 2, lr: 3.0e-3, batch_size: 16}}
qat: {{epochs: 1, lr: 1.0e-4, batch_size: 16}}
space: {{scales: [1.0, 0.5], weight_bits: [4, 8], act_bits: [8, 16], granularity: per_block}}
search: {{sampler: tpe, trials: 2, seed: 0}}
"""

# Runs the console script in this interpreter as `autoq` would, and at exit writes which heavy
# modules are loaded. argv: output file, script, the command's arguments.
_PROBE = f"""\
import atexit, json, runpy, sys
out, script, *args = sys.argv[1:]
def _report():
    with open(out, "w") as f:
        json.dump(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules), f)
atexit.register(_report)
sys.argv = [script, *args]
runpy.run_path(script, run_name="__main__")
"""


@dataclass
class Result:
    """One command's runs."""

    label: str
    seconds: list[float] = field(default_factory=list)
    max_rss_kb: list[int] = field(default_factory=list)
    heavy: list[str] = field(default_factory=list)
    skipped: str | None = None


def run_timed(argv: list[str], cwd: Path) -> tuple[float, int, int]:
    """Run ``argv`` once, output discarded: (wall seconds, peak RSS in KB, exit code)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=cwd)
    # wait4 rather than RUSAGE_CHILDREN: the peak of this child alone, not of every child so far.
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss, proc.returncode


def probe(python: str, script: Path, args: list[str], out: Path) -> tuple[int, list[str], str]:
    """Run the command once through :data:`_PROBE` (in ``out``'s folder): (exit code, heavy
    modules, stderr tail)."""
    out.unlink(missing_ok=True)
    result = subprocess.run([python, "-c", _PROBE, str(out), str(script), *args],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            check=False, cwd=out.parent)
    heavy = json.loads(out.read_text()) if out.exists() else []
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return result.returncode, heavy, lines[-1] if lines else ""


def measure(label: str, argv: list[str], python: str, runs: int, tmp: Path) -> Result:
    """Warm-up probe, then ``runs`` timed runs of ``argv`` (``argv[0]`` is the autoq script)."""
    result = Result(label)
    code, result.heavy, error = probe(python, Path(argv[0]), argv[1:], tmp / "heavy.json")
    if code != 0:
        result.skipped = f"exit {code}: {error}" if error else f"exit {code}"
        return result
    for _ in range(runs):
        seconds, rss, code = run_timed(argv, tmp)
        if code != 0:
            result.skipped = f"exit {code} in a timed run"
            return result
        result.seconds.append(seconds)
        result.max_rss_kb.append(rss)
    return result


def make_study(autoq: str, tmp: Path) -> tuple[str | None, str]:
    """A real 2-trial search of :data:`TINY_SPEC` in ``tmp``: (its storage URL, or ``None`` and
    why it failed; seconds it took)."""
    (tmp / "tiny.yaml").write_text(TINY_SPEC)
    storage = f"sqlite:///{tmp}/study.db"
    env = {**os.environ, "AUTOQ_CACHE_DIR": str(tmp / "float"),
           "AUTOQ_ARTIFACT_DIR": str(tmp / "trials")}
    started = time.perf_counter()
    result = subprocess.run([autoq, "search", str(tmp / "tiny.yaml"), "--trials", "2",
                             "--storage", storage], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, check=False, cwd=tmp, env=env)
    seconds = f"{time.perf_counter() - started:.0f} s"
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        return None, f"exit {result.returncode}: {lines[-1] if lines else ''} ({seconds})"
    return storage, seconds


def table(results: list[Result], runs: int) -> str:
    """The markdown table of the results."""
    lines = ["| command | runs | median s | max s | peak RSS GB | heavy modules imported |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for r in results:
        if r.skipped is not None:
            lines.append(f"| `{r.label}` | 0 | – | – | – | skipped ({r.skipped}) |")
            continue
        heavy = ", ".join(r.heavy) or "none"
        lines.append(f"| `{r.label}` | {runs} | {statistics.median(r.seconds):.2f} | "
                     f"{max(r.seconds):.2f} | {max(r.max_rss_kb) / 1e6:.2f} | {heavy} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command")
    parser.add_argument("--autoq", type=Path, default=Path(sys.executable).parent / "autoq",
                        help="the console script (default: the one beside this Python)")
    parser.add_argument("--no-study", dest="study", action="store_false",
                        help="leave out autoq pareto and autoq pick (and the small search "
                             "they read)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not args.autoq.is_file():
        parser.error(f"{args.autoq} does not exist: install autoq (make test) or pass --autoq")
    autoq = str(args.autoq.absolute())
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        storage = f"sqlite:///{tmp}/empty.db"
        commands = [("autoq --help", [autoq, "--help"]),
                    ("autoq --version", [autoq, "--version"]),
                    ("autoq studies --storage sqlite:///<tmp>/empty.db",
                     [autoq, "studies", "--storage", storage])]
        results = []
        for label, argv in commands:
            results.append(measure(label, argv, sys.executable, args.runs, tmp))
            print(f"{label}: done", file=sys.stderr, flush=True)
        # The small study last, so that its search does not load the machine for the others.
        study_note = ""
        if args.study:
            print(f"making the small study ({STUDY}, 2 trials)…", file=sys.stderr, flush=True)
            study_storage, took = make_study(autoq, tmp)
            if study_storage is None:
                study_note = f"; the small study failed: {took}"
            else:
                study_note = f"; small study {STUDY!r} (2 trials) made in {took}, untimed"
                for label, argv in [
                        (f"autoq pareto {STUDY} --storage sqlite:///<tmp>/study.db",
                         [autoq, "pareto", STUDY, "--storage", study_storage]),
                        (f"autoq pick {STUDY} --max-mse 1 --storage sqlite:///<tmp>/study.db",
                         [autoq, "pick", STUDY, "--max-mse", "1", "--storage", study_storage])]:
                    results.append(measure(label, argv, sys.executable, args.runs, tmp))
                    print(f"{label}: done", file=sys.stderr, flush=True)
    print(f"{os.cpu_count()} CPUs, 1-minute load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; {args.runs} timed runs per command after one "
          f"warm-up{study_note}\n")
    print(table(results, args.runs))


if __name__ == "__main__":
    main()
