"""Cassette load time and memory: harness's ReplayTransport against vcrpy, same interactions.

For each N (100, 1k, 2k, 10k OpenAI chat completions), in one run, alternating blocks:

- harness: ``ReplayTransport(cassette)`` and its match index (read, parse, index: ready to
  replay; the transport builds the index at the first request, here it is asked for at once);
- vcrpy: entering ``vcr.use_cassette(...)`` on the same interactions in vcrpy format (it reads
  and parses the file there).

The garbage collector is left as each library leaves it (on). Each block gives one ratio
harness/vcrpy; the report is the median with its spread, plus how harness's median time grows
from N to the next N (targets: 100 -> 1k -> 10k each 10x +/- 20%; harness/vcrpy <= 1) and the
peak memory of a harness load in a fresh process over the file size (target < 5x): the rise of
the peak resident set (VmHWM) over the resident set before the load, and tracemalloc's peak.

Run: python benchmarks/bench_load.py [--sizes 100,1000,2000,10000] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import vcr
from _common import Ratio, alternate, clock, ratio, workdir, write_cassettes

from harness.replay import ReplayTransport


def load_harness(path: Path) -> None:
    """A replay transport on ``path``, ready to answer (its match index built)."""
    ReplayTransport(path, mode="replay").unplayed()


def load_vcrpy(path: Path) -> None:
    """vcrpy's cassette on ``path``, loaded as ``use_cassette`` loads it."""
    with vcr.use_cassette(str(path), record_mode="none") as cassette:
        assert len(cassette.data) > 0


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_child(path: Path) -> None:
    """In a fresh process: load once, print the memory rise as JSON (bytes)."""
    ReplayTransport(path.with_name("absent.yaml"), mode="replay")  # imports done, no data
    before = _status_kb("VmRSS")
    tracemalloc.start()
    transport = ReplayTransport(path, mode="replay")
    count = len(transport.unplayed())  # builds the match index
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    after = _status_kb("VmHWM")
    rss = None if before is None or after is None else (after - before) * 1024
    print(json.dumps({"rss": rss, "traced": traced, "interactions": count}))


def peak(path: Path) -> tuple[float | None, float]:
    """(peak RSS rise, tracemalloc peak) of one harness load, each over the file size."""
    script = Path(__file__).resolve()
    output = subprocess.run(
        [sys.executable, str(script), "--peak-child", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
        cwd=script.parent,
    ).stdout
    numbers = json.loads(output.strip().splitlines()[-1])
    size = path.stat().st_size
    rss = None if numbers["rss"] is None else numbers["rss"] / size
    return rss, numbers["traced"] / size


def blocks_for(n: int, quick: bool) -> int:
    """Alternating blocks at ``n`` (each block loads the cassette once per side)."""
    if quick:
        return 2
    return {100: 15, 1000: 9, 2000: 7}.get(n, 3)  # 10k: vcrpy takes seconds per load


def main() -> None:
    """Time the loads per N in alternating blocks, measure peak memory, print a table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,2000,10000", help="Ns, comma-separated")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny N, few blocks")
    parser.add_argument("--peak-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_child is not None:
        peak_child(args.peak_child)
        return
    sizes = [5, 50] if args.quick else [int(s) for s in args.sizes.split(",")]
    rows: list[tuple[int, float, float, float, Ratio, float | None, float]] = []
    steps: list[tuple[int, int, Ratio]] = []
    with workdir("bench-load-") as directory:
        (directory / "warm").mkdir()
        warm = write_cassettes(directory / "warm", 1)
        load_harness(warm[0])  # imports outside the timings
        load_vcrpy(warm[1])
        for n in sizes:
            (directory / str(n)).mkdir()
            mine, theirs = write_cassettes(directory / str(n), n)
            mb = mine.stat().st_size / 1e6
            times = alternate(
                blocks_for(n, args.quick),
                lambda _, mine=mine: clock(lambda: load_harness(mine)),  # type: ignore[misc]
                lambda _, theirs=theirs: clock(lambda: load_vcrpy(theirs)),  # type: ignore[misc]
            )
            harness_s, vcr_s = (sorted(t)[len(t) // 2] for t in times)
            rss, traced = peak(mine)
            rows.append((n, mb, harness_s, vcr_s, ratio(*times), rss, traced))
            print(f"N={n}: {mb:.2f} MB, harness {harness_s:.3f} s, vcrpy {vcr_s:.3f} s", flush=True)
        # growth, interleaved too: harness loads of N and of the next N in alternating blocks
        for small, large in itertools.pairwise(sizes):
            paths = [directory / str(size) / "harness.yaml" for size in (large, small)]
            times = alternate(
                blocks_for(large, args.quick),
                lambda _, path=paths[0]: clock(lambda: load_harness(path)),  # type: ignore[misc]
                lambda _, path=paths[1]: clock(lambda: load_harness(path)),  # type: ignore[misc]
            )
            steps.append((small, large, ratio(*times)))
    print("\nload (read + parse + index), median seconds; ratio = median of per-block ratios")
    header = f"{'N':>6} {'MB':>6} {'harness s':>9} {'vcrpy s':>8} {'growth':>7} {'peak RSS':>9}"
    print(f"{header} {'traced':>7}  harness / vcrpy")
    previous = None
    for n, mb, harness_s, vcr_s, ratios, rss, traced in rows:
        growth = "" if previous is None else f"{harness_s / previous:.1f}x"
        shown = "n/a" if rss is None else f"{rss:.1f}x"
        print(
            f"{n:>6} {mb:>6.2f} {harness_s:>9.3f} {vcr_s:>8.3f} {growth:>7} {shown:>9} "
            f"{traced:>6.1f}x  {ratios}"
        )
        previous = harness_s
    print("\ngrowth: harness median over the previous N's; peak: memory rise over the file size")
    print("\ngrowth of a harness load, interleaved (target for 10x the interactions: 8-12x)")
    for small, large, ratios in steps:
        print(f"  {small:>6} -> {large:<6} ({large / small:.0f}x the interactions): {ratios}")


if __name__ == "__main__":
    main()
