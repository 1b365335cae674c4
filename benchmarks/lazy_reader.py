"""Peak memory of reading part of a large data file: the lazy reader against the file's size.

Usage: python benchmarks/lazy_reader.py [--samples 10000] [--folder DIR] [--keep]

Writes a file in PDEBench's 1D Burgers layout (``tensor`` float32 ``(samples, 201, 1024)``,
``x-coordinate``, ``t-coordinate``, attribute ``Nu``) filled with random numbers, ``--samples``
of them (10 000, the public file's count, makes 8.2 GB), 64 samples at a time. Then reads it with
``autoq.data.read_data`` (layout ``pdebench-burgers``) in a fresh interpreter per case and takes
the child's peak resident memory (``ru_maxrss`` from ``wait4``): nothing read (the interpreter
with numpy, h5py and autoq.data: the baseline), ``max_samples: 64``, the same with the paper's
coarsening (every 5th frame, every 4th cell), larger selections and, when the machine has the
memory to spare, the whole file. Prints a markdown table and deletes the file (``--keep`` keeps
it). The file's bytes sit in the page cache after writing, so the reads measure memory, not disk
speed; the page cache does not count towards a process's resident memory.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

FRAMES, CELLS, BATCH = 201, 1024, 64

# Runs in a fresh interpreter: reads the file with the selection in argv (JSON, or "none" to
# read nothing) and prints the array's size and the read's wall time.
_CHILD = """\
import json, sys, time
from autoq.data import Selection, read_data
path, selection = sys.argv[1], sys.argv[2]
if selection == "none":
    print(json.dumps({"bytes": 0, "seconds": 0.0, "shape": []}))
else:
    start = time.perf_counter()
    data = read_data(path, "pdebench-burgers", selection=Selection(**json.loads(selection)))
    seconds = time.perf_counter() - start
    print(json.dumps({"bytes": data.trajectories.nbytes, "seconds": seconds,
                      "shape": list(data.trajectories.shape)}))
"""


@dataclass(frozen=True)
class Case:
    """One read: its label and the selection (``None``: read nothing)."""

    label: str
    selection: dict[str, int] | None


def write_file(path: Path, samples: int, seed: int = 0) -> float:
    """Write the Burgers-layout file with random data; returns the seconds it took."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as handle:
        tensor = handle.create_dataset("tensor", shape=(samples, FRAMES, CELLS), dtype="f4")
        handle.create_dataset("x-coordinate", data=(np.arange(CELLS) + 0.5) / CELLS,
                              dtype="f4")
        handle.create_dataset("t-coordinate", data=np.arange(FRAMES + 1) * 0.01, dtype="f4")
        handle.attrs["Nu"] = 0.01
        for first in range(0, samples, BATCH):
            count = min(BATCH, samples - first)
            tensor[first:first + count] = rng.standard_normal((count, FRAMES, CELLS),
                                                              dtype=np.float32)
    return time.perf_counter() - start


def measure(path: Path, case: Case) -> dict[str, float]:
    """Run one case in a fresh interpreter: its peak RSS (bytes), the array's bytes, seconds."""
    argument = "none" if case.selection is None else json.dumps(case.selection)
    process = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), argument],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    assert process.stdout is not None and process.stderr is not None
    out, err = process.stdout.read(), process.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"case {case.label!r} failed: {err.strip()}")
    result = json.loads(out)
    return {"rss": usage.ru_maxrss * 1024, "bytes": result["bytes"],
            "seconds": result["seconds"], "samples": (result["shape"] or [0])[0]}


def available_memory() -> int:
    """MemAvailable of /proc/meminfo, in bytes."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--folder", type=Path, default=None,
                        help="where to write the file (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the file")
    args = parser.parse_args()

    folder = args.folder or Path(tempfile.mkdtemp(prefix="autoq-lazy-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "1D_Burgers_Sols_Nu0.01.hdf5"
    load_before = os.getloadavg()
    try:
        seconds = write_file(path, args.samples)
        size = path.stat().st_size
        print(f"wrote {path} ({args.samples} samples, {size / 1e9:.2f} GB) in {seconds:.0f} s")
        cases = [
            Case("nothing read (interpreter + autoq.data)", None),
            Case("max_samples: 64", {"max_samples": 64}),
            Case("max_samples: 64, time_stride: 5, space_stride: 4",
                 {"max_samples": 64, "time_stride": 5, "space_stride": 4}),
            Case("max_samples: 64, sample_stride: 100", {"max_samples": 64,
                                                         "sample_stride": 100}),
            Case("max_samples: 1024", {"max_samples": 1024}),
            Case("max_samples: 4096", {"max_samples": 4096}),
            Case("everything", {}),
        ]
        rows = []
        for case in cases:
            wanted = size * min(1.0, (case.selection or {"max_samples": 0}).get(
                "max_samples", args.samples) / args.samples)
            if wanted + 2e9 > available_memory():
                print(f"skipped {case.label!r}: {wanted / 1e9:.1f} GB would not fit in the "
                      f"{available_memory() / 1e9:.1f} GB available")
                continue
            rows.append((case, measure(path, case)))
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
            if args.folder is None:
                folder.rmdir()
    load_after = os.getloadavg()

    baseline = rows[0][1]["rss"]
    print(f"\n{datetime.date.today()}, {platform.node()}, {os.cpu_count()} cores, load average "
          f"{load_before[0]:.1f} before / {load_after[0]:.1f} after; file "
          f"{size / 1e9:.2f} GB ({args.samples} × {FRAMES} × {CELLS} float32)\n")
    print("| read | samples | array (MB) | peak RSS (MB) | above baseline (MB) | "
          "peak / file | seconds |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for case, result in rows:
        print(f"| {case.label} | {result['samples']:.0f} | {result['bytes'] / 1e6:,.1f} | "
              f"{result['rss'] / 1e6:,.0f} | {(result['rss'] - baseline) / 1e6:,.0f} | "
              f"{result['rss'] / size:.3f} | {result['seconds']:.2f} |")


if __name__ == "__main__":
    main()
