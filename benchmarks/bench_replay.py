"""Replay speed: 2,000 distinct chat completions through the openai SDK, three ways, one run.

- harness: ``httpx2.Client(transport=ReplayTransport(cassette))`` (an index lookup per request);
- vcrpy: ``vcr.use_cassette(..., match_on=[method, scheme, host, port, path, query, body])``
  with the same interactions in vcrpy format (written by ``harness cassettes convert``). vcrpy
  cannot patch httpx2, which openai 3 uses, so the client is given a legacy ``httpx.Client``
  (openai 3 accepts one); vcrpy scans the cassette for each request, so only a sample of
  requests, spread evenly over the full cassette, is timed and the total is extrapolated;
- mock: ``httpx2.MockTransport`` answering from an in-memory dict (the floor: SDK cost only).

Every client is ``openai.OpenAI(max_retries=0)``, sync. Targets: harness >= 50x faster than
vcrpy per request; harness <= 1.3x the mock per request. Cassette loading is timed apart.

Run: python benchmarks/bench_replay.py [--n 2000] [--vcr-sample 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import vcr

from harness.cli import main as harness_cli
from harness.replay import (
    Interaction,
    RecordedRequest,
    RecordedResponse,
    ReplayTransport,
    dump_interactions,
)

URL = "https://api.openai.com/v1/chat/completions"
MODEL = "gpt-4o-mini"
TOPICS = ["invoices", "weather", "rust lifetimes", "tax law", "sourdough", "orbital mechanics"]
VCR_MATCH_ON = ["method", "scheme", "host", "port", "path", "query", "body"]


def prompt(i: int) -> str:
    """The i-th distinct prompt."""
    return f"Question {i}: explain {TOPICS[i % len(TOPICS)]} in {i % 7 + 2} sentences."


def completion(i: int) -> dict[str, Any]:
    """A well-formed chat.completion body answering prompt ``i``."""
    text = f"Answer {i}: " + " ".join(["It depends on the details."] * (i % 5 + 3))
    return {
        "id": f"chatcmpl-bench{i:06d}",
        "object": "chat.completion",
        "created": 1_750_000_000 + i,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 20 + i % 9, "completion_tokens": 40, "total_tokens": 60 + i % 9},
    }


def request_body(i: int) -> dict[str, Any]:
    """What ``client.chat.completions.create(model=MODEL, messages=...)`` sends for prompt i."""
    return {"messages": [{"role": "user", "content": prompt(i)}], "model": MODEL}


RESPONSE_HEADERS = [("content-type", "application/json"), ("openai-processing-ms", "321")]


def write_cassettes(directory: Path, n: int) -> tuple[Path, Path]:
    """A harness cassette with ``n`` interactions, and the same converted to vcrpy format."""
    at = datetime(2025, 6, 1, tzinfo=timezone.utc)
    interactions = [
        Interaction(
            request=RecordedRequest(
                method="POST",
                uri=URL,
                headers=[("content-type", "application/json")],
                body=json.dumps(request_body(i)).encode(),
            ),
            response=RecordedResponse(
                status=200, headers=RESPONSE_HEADERS, body=json.dumps(completion(i)).encode()
            ),
            recorded_at=at,
            duration=0.5,
        )
        for i in range(n)
    ]
    mine, theirs = directory / "harness.yaml", directory / "vcrpy.yaml"
    mine.write_text(dump_interactions(interactions)[1], encoding="utf-8")
    with contextlib.redirect_stdout(io.StringIO()):
        status = harness_cli(["cassettes", "convert", str(mine), str(theirs), "--to", "vcrpy"])
    assert status == 0, "convert failed"
    return mine, theirs


def ask(client: openai.OpenAI, i: int) -> None:
    """One SDK call for prompt ``i``, checked against the recorded answer."""
    reply = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": prompt(i)}]
    )
    assert reply.id == f"chatcmpl-bench{i:06d}", reply.id


@dataclass
class Result:
    """Timings of one way of answering the SDK."""

    name: str
    measured: int
    load_s: float
    per_request_s: float

    def total_s(self, n: int) -> float:
        """Load plus ``n`` requests."""
        return self.load_s + n * self.per_request_s


def timed(order: list[int], client: openai.OpenAI) -> float:
    """Seconds per request for ``order``, garbage collection off while timing."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for i in order:
            ask(client, i)
        return (time.perf_counter() - start) / len(order)
    finally:
        gc.enable()


def run_harness(path: Path, order: list[int]) -> tuple[float, float]:
    """(load seconds, seconds per request) replaying ``order`` through ReplayTransport."""
    start = time.perf_counter()
    transport = ReplayTransport(path, mode="replay")
    load = time.perf_counter() - start
    with httpx2.Client(transport=transport) as http:
        client = openai.OpenAI(api_key="test", max_retries=0, http_client=http)
        per_request = timed(order, client)
    assert not transport.unplayed()
    return load, per_request


def run_mock(n: int, order: list[int]) -> tuple[float, float]:
    """(build seconds, seconds per request) with MockTransport answering from a dict."""
    start = time.perf_counter()
    answers = {prompt(i): json.dumps(completion(i)).encode() for i in range(n)}

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        return httpx2.Response(
            200, headers=RESPONSE_HEADERS, content=answers[body["messages"][-1]["content"]]
        )

    load = time.perf_counter() - start
    with httpx2.Client(transport=httpx2.MockTransport(handler)) as http:
        client = openai.OpenAI(api_key="test", max_retries=0, http_client=http)
        return load, timed(order, client)


def run_vcrpy(path: Path, sample: list[int]) -> tuple[float, float]:
    """(load seconds, seconds per request) replaying ``sample`` with vcrpy."""
    start = time.perf_counter()
    cassette = vcr.use_cassette(str(path), record_mode="none", match_on=VCR_MATCH_ON)
    with cassette as loaded:
        load = time.perf_counter() - start
        with httpx.Client() as http:  # vcrpy patches httpx, not httpx2
            client = openai.OpenAI(api_key="test", max_retries=0, http_client=http)
            per_request = timed(sample, client)
        assert loaded.play_count == len(sample)
    return load, per_request


def best(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """The best load and the best per-request time of several runs (the least disturbed)."""
    return min(r[0] for r in runs), min(r[1] for r in runs)


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """A temporary directory for the generated cassettes."""
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as name:
        yield Path(name)


def warm_up() -> None:
    """Import and initialise the SDK's lazy parts outside the timings."""
    run_mock(3, [0, 1, 2])
    with workdir() as directory:
        mine, theirs = write_cassettes(directory, 3)
        run_harness(mine, [0, 1, 2])
        run_vcrpy(theirs, [0, 1, 2])


def main() -> None:
    """Generate the cassettes, time the three ways, print a table and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="distinct interactions (2000)")
    parser.add_argument("--vcr-sample", type=int, default=100, help="vcrpy requests timed")
    parser.add_argument("--repeat", type=int, default=3, help="best of N for harness and mock")
    args = parser.parse_args()
    n = args.n
    order = list(range(n))
    random.Random(0).shuffle(order)  # not the recorded order: a lookup must not rely on it
    step = max(1, n // max(1, min(args.vcr_sample, n)))
    sample = order[::step][: args.vcr_sample]  # spread over the whole cassette

    warm_up()
    with workdir() as directory:
        start = time.perf_counter()
        mine, theirs = write_cassettes(directory, n)
        mb = [p.stat().st_size / 1e6 for p in (mine, theirs)]
        sizes = f"harness {mb[0]:.1f} MB, vcrpy {mb[1]:.1f} MB"
        print(f"generated {n} interactions in {time.perf_counter() - start:.2f} s ({sizes})")
        # alternate the two fast ways, so a noisy moment on the machine hits both alike
        runs = [(run_harness(mine, order), run_mock(n, order)) for _ in range(args.repeat)]
        results = [
            Result("harness ReplayTransport", n, *best([r[0] for r in runs])),
            Result("httpx2.MockTransport (dict)", n, *best([r[1] for r in runs])),
            Result("vcrpy use_cassette", len(sample), *run_vcrpy(theirs, sample)),
        ]
        sample_mean = statistics.mean(sample)

    print(f"\nopenai SDK, sync client, {n} distinct chat completions, max_retries=0")
    print(f"{'way':<28} {'timed reqs':>10} {'load (s)':>9} {'per req (us)':>13} {'total (s)':>10}")
    for result in results:
        print(
            f"{result.name:<28} {result.measured:>10} {result.load_s:>9.3f} "
            f"{result.per_request_s * 1e6:>13.1f} {result.total_s(n):>10.2f}"
        )
    harness, mock, vcrpy = results
    faster = vcrpy.per_request_s / harness.per_request_s
    overhead = harness.per_request_s / mock.per_request_s
    total_faster = vcrpy.total_s(n) / harness.total_s(n)
    print(
        f"\nvcrpy: {len(sample)} requests timed, mean recorded position {sample_mean:.0f} of {n};"
        " its total is extrapolated from the per-request time"
    )
    print(
        f"harness vs vcrpy, per request : {faster:8.1f}x faster  (target >= 50x: "
        f"{'met' if faster >= 50 else 'MISSED'})"
    )
    print(f"harness vs vcrpy, load + {n} : {total_faster:8.1f}x faster")
    print(
        f"harness / MockTransport      : {overhead:8.2f}x        (target <= 1.3x: "
        f"{'met' if overhead <= 1.3 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
