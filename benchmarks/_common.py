"""Shared by the benchmarks: interleaved blocks and their ratio, and an OpenAI-shaped workload.

Two ways of doing the same work are timed in alternating blocks within one run (A B, then
B A, ...), so a noisy moment on a shared machine hits both alike; each block gives one ratio
A/B, and the report is the median ratio with its spread (interquartile range and min-max).
Best-of-N over separate runs per side compares each side's luckiest moment instead.
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx2

from harness.cli import main as harness_cli
from harness.replay import Interaction, RecordedRequest, RecordedResponse, dump_interactions

URL = "https://api.openai.com/v1/chat/completions"
MODEL = "gpt-4o-mini"
TOPICS = ["invoices", "weather", "rust lifetimes", "tax law", "sourdough", "orbital mechanics"]
RESPONSE_HEADERS = [("content-type", "application/json"), ("openai-processing-ms", "321")]


@dataclass
class Ratio:
    """Per-block ratios of side A's time to side B's, summarised."""

    ratios: list[float]

    @property
    def median(self) -> float:
        """The median ratio."""
        return statistics.median(self.ratios)

    @property
    def iqr(self) -> tuple[float, float]:
        """First and third quartiles (the ratios themselves when there are fewer than 4)."""
        if len(self.ratios) < 4:
            return min(self.ratios), max(self.ratios)
        q1, _, q3 = statistics.quantiles(self.ratios, n=4)
        return q1, q3

    def __str__(self) -> str:
        q1, q3 = self.iqr
        return (
            f"{self.median:.2f} (IQR {q1:.2f}-{q3:.2f}, "
            f"min-max {min(self.ratios):.2f}-{max(self.ratios):.2f}, {len(self.ratios)} blocks)"
        )


def alternate(
    blocks: int, first: Callable[[int], float], second: Callable[[int], float]
) -> tuple[list[float], list[float]]:
    """Run ``first(block)`` and ``second(block)`` once per block, swapping who goes first."""
    a: list[float] = []
    b: list[float] = []
    for block in range(blocks):
        if block % 2 == 0:
            a.append(first(block))
            b.append(second(block))
        else:
            b.append(second(block))
            a.append(first(block))
    return a, b


def ratio(a: list[float], b: list[float]) -> Ratio:
    """The block-by-block ratios a/b."""
    return Ratio([x / y for x, y in zip(a, b, strict=True)])


def clock(call: Callable[[], object]) -> float:
    """Seconds ``call`` took."""
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A temporary directory for generated cassettes."""
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        yield Path(name)


# -- an OpenAI chat-completions workload -----------------------------------------------------


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


def interactions(n: int) -> list[Interaction]:
    """``n`` recorded chat completions, one per distinct prompt."""
    at = datetime(2025, 6, 1, tzinfo=timezone.utc)
    return [
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


def write_cassettes(directory: Path, n: int) -> tuple[Path, Path]:
    """A harness cassette with ``n`` interactions, and the same converted to vcrpy format."""
    mine, theirs = directory / "harness.yaml", directory / "vcrpy.yaml"
    mine.write_text(dump_interactions(interactions(n))[1], encoding="utf-8")
    with contextlib.redirect_stdout(io.StringIO()):
        status = harness_cli(["cassettes", "convert", str(mine), str(theirs), "--to", "vcrpy"])
    assert status == 0, "convert failed"
    return mine, theirs


def answer(request: httpx2.Request) -> httpx2.Response:
    """A MockTransport handler answering any prompt of the workload (the upstream)."""
    body = json.loads(request.content)
    i = int(body["messages"][-1]["content"].split(":", 1)[0].removeprefix("Question "))
    return httpx2.Response(200, headers=RESPONSE_HEADERS, content=json.dumps(completion(i)))


def ask(client: Any, i: int) -> None:
    """One SDK call for prompt ``i``, checked against the recorded answer."""
    reply = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": prompt(i)}]
    )
    assert reply.id == f"chatcmpl-bench{i:06d}", reply.id
