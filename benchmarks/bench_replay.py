"""Replay speed per request: the openai SDK on harness's ReplayTransport, MockTransport, vcrpy.

For each N (100, 1k, 2k, 10k distinct chat completions), in one run:

- harness / MockTransport: ``httpx2.Client(transport=ReplayTransport(cassette))`` against
  ``httpx2.MockTransport`` answering from an in-memory dict (the floor: the SDK's own cost),
  in alternating blocks of requests (each request replayed once per round, in shuffled
  order); each block gives one ratio, reported as the median with its spread. Loading the
  cassette happens between blocks, untimed (``bench_load.py`` times it).
- vcrpy / harness: ``vcr.use_cassette(..., match_on=[method, scheme, host, port, path, query,
  body])`` on the same interactions in vcrpy format (written by ``harness cassettes convert``),
  with the same ``openai.OpenAI()`` on httpx2 (vcrpy 9.4 patches httpx2's transports). vcrpy
  scans the cassette for each request, so each block times a small sample of requests spread
  over the cassette, next to a harness block of the same requests.

Every client is ``openai.OpenAI(max_retries=0)``, sync. Targets: harness <= 1.3x the mock per
request; harness >= 50x faster than vcrpy per request.

Run: python benchmarks/bench_replay.py [--sizes 100,1000,2000,10000] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from pathlib import Path

import httpx2
import openai
import vcr
from _common import (
    RESPONSE_HEADERS,
    Ratio,
    alternate,
    ask,
    completion,
    prompt,
    ratio,
    workdir,
    write_cassettes,
)

from harness.replay import ReplayTransport

VCR_MATCH_ON = ["method", "scheme", "host", "port", "path", "query", "body"]


def timed(order: list[int], client: openai.OpenAI) -> float:
    """Seconds per request for ``order`` (garbage collection off while timing, both sides)."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for i in order:
            ask(client, i)
        return (time.perf_counter() - start) / len(order)
    finally:
        gc.enable()


def mock_client(n: int) -> openai.OpenAI:
    """The SDK on MockTransport answering from a dict of the ``n`` completions."""
    answers = {prompt(i): json.dumps(completion(i)).encode() for i in range(n)}

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        content = answers[body["messages"][-1]["content"]]
        return httpx2.Response(200, headers=RESPONSE_HEADERS, content=content)

    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    return openai.OpenAI(api_key="test", max_retries=0, http_client=http)


def harness_client(path: Path) -> tuple[openai.OpenAI, ReplayTransport]:
    """The SDK on a freshly loaded ReplayTransport."""
    transport = ReplayTransport(path, mode="replay")
    http = httpx2.Client(transport=transport)
    return openai.OpenAI(api_key="test", max_retries=0, http_client=http), transport


def versus_mock(path: Path, n: int, rounds: int, blocks: int) -> tuple[Ratio, float, float]:
    """harness/mock per-block ratios; median seconds per request of each side."""
    mock = mock_client(n)
    harness_times: list[float] = []
    mock_times: list[float] = []
    for round_ in range(rounds):
        order = list(range(n))
        random.Random(round_).shuffle(order)  # not the recorded order
        client, transport = harness_client(path)  # every request replayed once per round
        size = max(1, n // blocks)
        slices = [order[k * size : (k + 1) * size] for k in range(blocks)]

        def run_harness(k: int, c: openai.OpenAI = client, s: list[list[int]] = slices) -> float:
            return timed(s[k], c)

        def run_mock(k: int, s: list[list[int]] = slices) -> float:
            return timed(s[k], mock)

        a, b = alternate(blocks, run_harness, run_mock)
        harness_times += a
        mock_times += b
        assert len(transport.unplayed()) == n - size * blocks
    return ratio(harness_times, mock_times), _median(harness_times), _median(mock_times)


def versus_vcrpy(
    mine: Path, theirs: Path, n: int, blocks: int, sample: int
) -> tuple[Ratio, float, float]:
    """vcrpy/harness per-block ratios over samples spread over the cassette; medians."""
    step = max(1, n // sample)
    picks = [list(range(block % step, n, step))[:sample] for block in range(blocks)]

    def run_vcrpy(block: int) -> float:
        cassette = vcr.use_cassette(str(theirs), record_mode="none", match_on=VCR_MATCH_ON)
        with cassette as loaded, httpx2.Client() as http:  # vcrpy patches httpx2's transport
            sdk = openai.OpenAI(api_key="test", max_retries=0, http_client=http)
            seconds = timed(picks[block], sdk)
            assert loaded.play_count == len(picks[block])
        return seconds

    def run_harness(block: int) -> float:
        client, _ = harness_client(mine)  # loaded untimed, like vcrpy's cassette above
        return timed(picks[block], client)

    vcr_times, harness_times = alternate(blocks, run_vcrpy, run_harness)
    return ratio(vcr_times, harness_times), _median(vcr_times), _median(harness_times)


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def plan(n: int, quick: bool) -> tuple[int, int, int, int]:
    """(rounds, blocks, vcrpy blocks, vcrpy sample) for ``n`` interactions."""
    if quick:
        return 1, 2, 2, 3
    if n <= 100:
        return 15, 2, 10, 20  # blocks of 50 requests
    if n <= 2000:
        return max(1, 3000 // n), 10, 10, 20
    return 1, 10, 3, 10  # 10k: vcrpy loads 10k interactions per block and scans them per request


def warm_up() -> None:
    """Import and initialise the SDK's lazy parts outside the timings."""
    with workdir("bench-replay-warm-") as directory:
        mine, theirs = write_cassettes(directory, 3)
        versus_mock(mine, 3, 1, 1)
        versus_vcrpy(mine, theirs, 3, 1, 3)


def main() -> None:
    """Generate the cassettes per N, time the sides in alternating blocks, print a table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,2000,10000", help="Ns, comma-separated")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny N, few blocks")
    args = parser.parse_args()
    sizes = [5, 20] if args.quick else [int(s) for s in args.sizes.split(",")]
    warm_up()
    rows = []
    for n in sizes:
        rounds, blocks, vcr_blocks, sample = plan(n, args.quick)
        with workdir("bench-replay-") as directory:
            mine, theirs = write_cassettes(directory, n)
            mock_ratio, harness_s, mock_s = versus_mock(mine, n, rounds, blocks)
            vcr_ratio, vcr_s, _ = versus_vcrpy(mine, theirs, n, vcr_blocks, sample)
        rows.append((n, harness_s, mock_s, vcr_s, mock_ratio, vcr_ratio))
        print(
            f"N={n}: harness {harness_s * 1e6:.0f} us/req, mock {mock_s * 1e6:.0f} us/req, "
            f"vcrpy {vcr_s * 1e6:.0f} us/req",
            flush=True,
        )
    print("\nopenai SDK, sync, max_retries=0; per request, median of per-block ratios")
    print(f"{'N':>6}  {'harness / MockTransport':<52}  vcrpy / harness (x faster)")
    for n, *_, mock_ratio, vcr_ratio in rows:
        print(f"{n:>6}  {mock_ratio!s:<52}  {vcr_ratio}")
    worst = max(r[4].median for r in rows)
    slowest = min(r[5].median for r in rows)
    print(f"\nharness / mock, worst median: {worst:.2f}x (target <= 1.3x)")
    print(f"vcrpy / harness, lowest median: {slowest:.0f}x (target >= 50x)")


if __name__ == "__main__":
    main()
