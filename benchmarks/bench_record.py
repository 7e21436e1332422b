"""Recording cost: the openai SDK recording through ReplayTransport against the SDK alone.

The upstream is ``httpx2.MockTransport`` answering each prompt at once, so what is timed is
harness's work on top of the SDK's (redaction, the secret scan, YAML, the file writes).

- overhead: N (1k default) new requests recorded into a fresh cassette, next to the same N
  requests on the bare MockTransport, in alternating blocks; each block gives one ratio
  record/SDK-alone (target: median <= 1.5x). The write at ``close`` is timed too and reported
  with the record side's total.
- growth: 3,000 requests recorded into one cassette in 10 blocks of 300, each next to an
  SDK-alone block; last block / first block of the recording (close included in the last
  block), raw and relative to the SDK-alone blocks beside them (target <= 1.2).
- open: a cassette of N (10k default) stored interactions opened in record mode next to the
  same opened in replay mode, in alternating blocks (record mode checks the file for key-like
  strings; neither builds its match index before the first request); then the first request
  recorded into it and the write at close (which redacts the stored interactions then).

Run: python benchmarks/bench_record.py [--n 1000] [--growth 3000] [--open 10000] [--quick]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import httpx2
import openai
from _common import alternate, answer, ask, clock, ratio, workdir, write_cassettes

from harness.replay import Redactor, ReplayTransport


def sdk(transport: object) -> openai.OpenAI:
    """The sync SDK on ``transport``."""
    http = httpx2.Client(transport=transport)  # type: ignore[arg-type]
    return openai.OpenAI(api_key="sk-bench", max_retries=0, http_client=http)


def recorder(path: Path) -> ReplayTransport:
    """A record-mode transport on a new cassette, answered by the mock upstream."""
    return ReplayTransport(
        path, "record", upstream=httpx2.MockTransport(answer), redactor=Redactor()
    )


def run(client: openai.OpenAI, prompts: range) -> float:
    """Seconds to ask each prompt once."""
    start = time.perf_counter()
    for i in prompts:
        ask(client, i)
    return time.perf_counter() - start


def overhead(directory: Path, n: int, blocks: int) -> None:
    """Record n requests next to the SDK alone, in alternating blocks; print the ratio."""
    transport = recorder(directory / "overhead.yaml")
    recording = sdk(transport)
    alone = sdk(httpx2.MockTransport(answer))
    size = n // blocks
    record_s, alone_s = alternate(
        blocks,
        lambda k: run(recording, range(k * size, (k + 1) * size)),
        lambda k: run(alone, range(k * size, (k + 1) * size)),
    )
    close_s = clock(transport.close)
    ratios = ratio(record_s, alone_s)
    total = (sum(record_s) + close_s) / sum(alone_s)
    print(f"\noverhead, {size * blocks} requests recorded, blocks of {size}")
    print(f"  SDK alone     : {sum(alone_s) / (size * blocks) * 1e6:8.0f} us/request")
    print(f"  recording     : {sum(record_s) / (size * blocks) * 1e6:8.0f} us/request")
    print(f"  write at close: {close_s * 1e3:8.1f} ms")
    print(f"  record / SDK alone per block: {ratios}   (target median <= 1.5)")
    print(f"  record (with the close) / SDK alone, whole run: {total:.2f}")


def growth(directory: Path, n: int, blocks: int) -> None:
    """Record n requests into one cassette in blocks; print last block / first block."""
    transport = recorder(directory / "growth.yaml")
    recording = sdk(transport)
    alone = sdk(httpx2.MockTransport(answer))
    size = n // blocks

    closing: list[float] = []

    def record_block(k: int) -> float:
        seconds = run(recording, range(k * size, (k + 1) * size))
        if k == blocks - 1:
            closing.append(clock(transport.close))  # the one write of the whole file, apart
        return seconds

    offset = 10 * n  # other prompts than the recorded ones (a fresh answer each)
    record_s, alone_s = alternate(
        blocks,
        record_block,
        lambda k: run(alone, range(offset + k * size, offset + (k + 1) * size)),
    )
    relative = [r / a for r, a in zip(record_s, alone_s, strict=True)]
    print(f"\ngrowth, {size * blocks} requests into one cassette, {blocks} blocks of {size}")
    print("  block ms : " + " ".join(f"{s * 1e3:.0f}" for s in record_s))
    print("  / alone  : " + " ".join(f"{r:.2f}" for r in relative))
    print(f"  last / first block, raw: {record_s[-1] / record_s[0]:.2f}   (target <= 1.2)")
    last_with_close = (record_s[-1] + closing[0]) / record_s[0]
    print(
        f"  the write at close ({size * blocks} interactions): {closing[0] * 1e3:.0f} ms; "
        f"last block with it / first block: {last_with_close:.2f}"
    )
    beside = relative[-1] / relative[0]
    print(f"  last / first block, relative to the SDK alone beside it: {beside:.2f}")
    third = max(1, blocks // 3)
    early, late = sorted(relative[:third]), sorted(relative[-third:])
    steady = late[len(late) // 2] / early[len(early) // 2]
    print(f"  last third / first third of the blocks (medians, relative): {steady:.2f}")


def opening(directory: Path, n: int, blocks: int) -> None:
    """Open an n-interaction cassette in record and in replay mode; then record into it."""
    path, _ = write_cassettes(directory, n)

    def open_in(mode: str) -> float:
        start = time.perf_counter()
        transport = ReplayTransport(path, mode, upstream=httpx2.MockTransport(answer))
        seconds = time.perf_counter() - start
        transport.close()  # nothing recorded: nothing written
        return seconds

    record_s, replay_s = alternate(blocks, lambda k: open_in("record"), lambda k: open_in("replay"))
    transport = recorder(path)
    first_s = clock(lambda: ask(sdk(transport), n))  # a new prompt: recorded (index built)
    close_s = clock(transport.close)
    record_ms = sorted(record_s)[len(record_s) // 2] * 1e3
    replay_ms = sorted(replay_s)[len(replay_s) // 2] * 1e3
    print(f"\nopen, a cassette of {n} interactions, {blocks} blocks")
    print(f"  open in record mode: median {record_ms:.0f} ms")
    print(f"  open in replay mode: median {replay_ms:.0f} ms")
    print(f"  record-mode open / replay-mode open: {ratio(record_s, replay_s)}")
    print(f"  then the first new request (builds the index): {first_s * 1e3:.0f} ms")
    print(f"  and the write at close (redacts the {n} stored interactions): {close_s * 1e3:.0f} ms")


def main() -> None:
    """Run the overhead and growth measurements."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="requests for the overhead (1000)")
    parser.add_argument("--growth", type=int, default=3000, help="requests for growth (3000)")
    parser.add_argument("--open", type=int, default=10_000, help="stored interactions (10k)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny N")
    args = parser.parse_args()
    n, grow, blocks = (20, 20, 2) if args.quick else (args.n, args.growth, 15)
    stored, open_blocks = (50, 2) if args.quick else (args.open, 5)
    with workdir("bench-record-") as directory:
        warm = recorder(directory / "warm.yaml")
        ask(sdk(warm), 0)  # imports and lazy SDK parts outside the timings
        warm.close()
        ask(sdk(httpx2.MockTransport(answer)), 0)
        overhead(directory, n, blocks)
        growth(directory, grow, blocks)
        opening(directory, stored, open_blocks)


if __name__ == "__main__":
    main()
