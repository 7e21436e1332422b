"""What harness's pytest plugin adds to the start-up of every pytest process.

``pytest`` on an empty project, with the plugin (``pytest11: llm``) and without it
(``-p no:llm``), timed in alternating blocks within one run (see ``_common.py``): each block
runs both sides once, in swapped order every other block; the report is the median
difference (with, ms) - (without, ms) with its spread, the median ratio, and the modules the
plugin's import brings in. Target (issue #14): a difference of at most 100 ms.

Run: python benchmarks/bench_plugin_startup.py [--blocks 15] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

from _common import alternate, clock, ratio, workdir

HEAVY = ("harness.providers", "harness.replay", "harness.config", "openai", "anthropic", "pydantic")


def run_pytest(directory: Path, *extra: str) -> None:
    """One pytest process on the empty project ``directory`` (exit 5: no tests collected)."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    done = subprocess.run(command, cwd=directory, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 5):
        raise SystemExit(f"pytest failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def heavy_imports() -> list[str]:
    """Which of HEAVY importing ``harness.pytest_plugin`` loads (in a fresh interpreter)."""
    probe = (
        "import sys, harness.pytest_plugin;"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.split()


def main() -> None:
    """Time both sides in alternating blocks and print the summary."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--blocks", type=int, default=15, help="alternating blocks (15)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 block, no warm-up")
    args = parser.parse_args()
    blocks = 1 if args.quick else args.blocks
    with workdir("bench-startup-") as directory:
        (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        if not args.quick:  # warm the file cache and the bytecode
            run_pytest(directory)
            run_pytest(directory, "-p", "no:llm")
        with_plugin, without = alternate(
            blocks,
            lambda _: clock(lambda: run_pytest(directory)),
            lambda _: clock(lambda: run_pytest(directory, "-p", "no:llm")),
        )
    added = [(a - b) * 1000 for a, b in zip(with_plugin, without, strict=True)]
    q1, q3 = (min(added), max(added)) if len(added) < 4 else statistics.quantiles(added, n=4)[::2]
    print(f"pytest start-up on an empty project, {blocks} alternating blocks")
    print(f"  with the plugin   : median {statistics.median(with_plugin) * 1000:.0f} ms")
    print(f"  with -p no:llm    : median {statistics.median(without) * 1000:.0f} ms")
    print(
        f"  added by the plugin: median {statistics.median(added):.0f} ms "
        f"(IQR {q1:.0f}-{q3:.0f}, min-max {min(added):.0f}-{max(added):.0f})   (target <= 100)"
    )
    print(f"  with / without    : {ratio(with_plugin, without)}")
    print(f"  heavy modules the plugin's import loads: {' '.join(heavy_imports()) or 'none'}")


if __name__ == "__main__":
    main()
