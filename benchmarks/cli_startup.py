"""Start-up cost of the ``autoq`` command: wall time, peak memory and the heavy modules it imports.

Usage: python benchmarks/cli_startup.py [--runs 5] [--autoq .venv/bin/autoq]

Times ``autoq --help``, ``autoq --version`` and ``autoq studies`` on an empty SQLite storage, each
as a separate process, ``--runs`` times after one untimed warm-up run (which fills the page cache,
creates the empty storage's tables, and records which of torch, aimet_torch, deepspeed and ray
the command imported). Prints a markdown table: median and max wall seconds, the largest peak
RSS of the runs (the child's ``ru_maxrss`` from ``wait4``, as ``/usr/bin/time -f %M`` reports
it), and the heavy modules. A command that fails in the warm-up (``--version`` before it exists)
is skipped with its last line of error output.

Only the standard library here: it measures the installed command, whatever extras it has.
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


def run_timed(argv: list[str]) -> tuple[float, int, int]:
    """Run ``argv`` once, output discarded: (wall seconds, peak RSS in KB, exit code)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # wait4 rather than RUSAGE_CHILDREN: the peak of this child alone, not of every child so far.
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss, proc.returncode


def probe(python: str, script: Path, args: list[str], out: Path) -> tuple[int, list[str], str]:
    """Run the command once through :data:`_PROBE`: (exit code, heavy modules, stderr tail)."""
    result = subprocess.run([python, "-c", _PROBE, str(out), str(script), *args],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            check=False)
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
        seconds, rss, code = run_timed(argv)
        if code != 0:
            result.skipped = f"exit {code} in a timed run"
            return result
        result.seconds.append(seconds)
        result.max_rss_kb.append(rss)
    return result


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
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not args.autoq.is_file():
        parser.error(f"{args.autoq} does not exist: install autoq (make test) or pass --autoq")
    autoq = str(args.autoq)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{tmp}/empty.db"
        commands = [("autoq --help", [autoq, "--help"]),
                    ("autoq --version", [autoq, "--version"]),
                    ("autoq studies --storage sqlite:///<tmp>/empty.db",
                     [autoq, "studies", "--storage", storage])]
        results = []
        for label, argv in commands:
            results.append(measure(label, argv, sys.executable, args.runs, Path(tmp)))
            print(f"{label}: done", file=sys.stderr, flush=True)
    print(f"{os.cpu_count()} CPUs, 1-minute load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; {args.runs} timed runs per command after one "
          "warm-up\n")
    print(table(results, args.runs))


if __name__ == "__main__":
    main()
