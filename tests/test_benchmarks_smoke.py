"""The benchmarks still run: each script once with ``--quick`` (tiny sizes, no timing checks).

A benchmark with a ``--quick`` smoke run belongs in EXPECTED, with text its report must show.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
EXPECTED = {
    "bench_replay.py": ["harness / MockTransport", "vcrpy / harness", "N=20"],
    "bench_load.py": ["harness / vcrpy", "peak RSS", "N=50"],
    "bench_record.py": [
        "record / SDK alone per block",
        "last / first block",
        "record-mode open / replay-mode open",
    ],
    "bench_compression.py": ["call / tokenize once", "pre_cut_by_token"],
    "bench_plugin_startup.py": ["added by the plugin: median", "heavy modules"],
    "bench_eval_concurrency.py": ["concurrency 4:", "concurrency 1:", "ratio:"],
    "bench_suites_replay.py": ["-n 0:", "items/s", "passed"],
}


def test_the_listed_benchmarks_exist() -> None:
    assert set(EXPECTED) <= {p.name for p in BENCHMARKS.glob("bench_*.py")}


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_benchmark_runs_quick(script: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,  # nothing written next to the sources
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for text in EXPECTED[script]:
        assert text in result.stdout, result.stdout
    assert "Traceback" not in result.stderr
    assert "ReplayWarning" not in result.stderr  # every transport it made was closed
