"""Replay throughput of ``pytest suites/``: items per second with ``-n 0`` and ``-n 2``.

Runs the shipped suites from their cassettes (replay mode, offline) in a fresh pytest process
per run, alternating ``-n 0`` and ``-n 2`` over ``--blocks`` blocks after one warm-up run, and
reports the wall time (process and worker start included: what a CI job pays), the items run
and the items per second. Bytecode caching is on in the children whatever
``PYTHONDONTWRITEBYTECODE`` says here (pytest would otherwise compile its assertion-rewritten
modules again in every process, which no CI job pays twice).

``--quick`` is a smoke run: one suite file (``--path`` if given), the few items ``-k half``
selects, one block, no warm-up, ``-n 0`` only (the ``-n 2`` run differs by its flag alone).

Run: python benchmarks/bench_suites_replay.py [--blocks 2] [--path suites/] [--quick]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUICK_SELECTION = "half"  # a few arithmetic items: collection is most of such a run
QUICK_PATH = "suites/arithmetic.suite.jsonl"  # one file to collect, not every suite
_COUNTS = re.compile(r"(\d+) (passed|failed|xfailed|xpassed|skipped|error|errors)\b")


def run_once(path: str, workers: int, select: str | None = None) -> tuple[float, int, str]:
    """Wall seconds, items run and the last line of one ``pytest PATH -n WORKERS`` run."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [sys.executable, "-m", "pytest", path, "-q", "-p", "no:cacheprovider"]
    command += ["-n", str(workers)]
    if select is not None:
        command += ["-k", select]
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    elapsed = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    last = lines[-1] if lines else done.stderr.strip()[-200:]
    items = sum(int(n) for n, _ in _COUNTS.findall(last))
    return elapsed, items, last


def main() -> None:
    """Alternate -n 0 and -n 2 and print the throughput of each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--path", default=None, help="default: suites/ (quick: one suite file)")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: a few items, 1 block, no warm-up"
    )
    args = parser.parse_args()
    select = QUICK_SELECTION if args.quick else None
    if args.quick:
        args.blocks = 1
    if args.path is None:
        args.path = QUICK_PATH if args.quick else "suites/"
    runs: dict[int, list[tuple[float, int, str]]] = {0: [], 2: []}
    if not args.quick:
        run_once(args.path, 0)  # warm-up: bytecode caches
    sides = (0,) if args.quick else (0, 2)
    for _ in range(args.blocks):
        for workers in sides:
            result = run_once(args.path, workers, select)
            if result[1] == 0:
                raise SystemExit(f"-n {workers}: no items ran [{result[2]}]")
            runs[workers].append(result)
    for workers, results in runs.items():
        if not results:
            continue
        seconds = statistics.median(r[0] for r in results)
        items = results[-1][1]
        print(
            f"-n {workers}: {items} items in {seconds:.2f} s (median of {len(results)}): "
            f"{items / seconds:.1f} items/s  [{results[-1][2]}]"
        )


if __name__ == "__main__":
    main()
