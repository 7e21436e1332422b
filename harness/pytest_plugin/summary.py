"""What the pytest plugin measures per test, how workers hand it over, and the closing table.

No pytest here: records are plain data (JSON across pytest-xdist workers), usage is read from
recorded OpenAI/Anthropic responses, and the summary is text made with tabulate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from tabulate import tabulate

from harness.costs import Usage
from harness.providers.anthropic import parse_anthropic_usage
from harness.providers.openai_compat import parse_openai_usage
from harness.replay.bodies import split_events
from harness.replay.models import Interaction

__all__ = [
    "TestRecord",
    "cassette_file_name",
    "decode_records",
    "encode_records",
    "summary_lines",
    "unplayed_lines",
    "usage_of",
    "wait_lines",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.=+-]+")
_MAX_NAME = 150


def cassette_file_name(name: str) -> str:
    """A test name (``test_x[gpt-4o/mini]``) as a portable file name (``test_x-gpt-4o_mini``)."""
    base, _, params = name.partition("[")
    params = params[:-1] if params.endswith("]") else params
    safe = _UNSAFE.sub("_", base) + (f"-{_UNSAFE.sub('_', params)}" if params else "")
    safe = safe.strip("._") or "test"
    if len(safe) > _MAX_NAME:  # keep names readable and distinct, under filesystem limits
        import hashlib

        digest = hashlib.sha256(name.encode()).hexdigest()[:10]
        safe = f"{safe[: _MAX_NAME - 11]}-{digest}"
    return safe


@dataclass
class TestRecord:
    """One test's LLM traffic: requests, tokens, cost (None: some request had no price)."""

    __test__ = False  # not a pytest test class, despite the name

    nodeid: str
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: str | None = "0"  # a Decimal as text: exact across processes
    cassette: str | None = None
    mode: str | None = None
    recorded: int = 0
    unplayed: int = 0
    waited: float = 0.0  # seconds of retry, Retry-After, latency and fault waits
    unplayed_report: dict[str, Any] | None = None  # the cassette's --llm-unplayed-report entry

    @property
    def cost_value(self) -> Decimal | None:
        """``cost`` as a Decimal."""
        return None if self.cost is None else Decimal(self.cost)


def encode_records(records: Iterable[TestRecord]) -> str:
    """Records as JSON text (what a pytest-xdist worker sends to the controller)."""
    return json.dumps([asdict(r) for r in records])


def decode_records(text: str) -> list[TestRecord]:
    """The inverse of :func:`encode_records`."""
    return [TestRecord(**item) for item in json.loads(text)]


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _usage_in(data: Mapping[str, Any], found: dict[str, Any]) -> None:
    """Collect the model and usage objects of one JSON body or stream event into ``found``."""
    message = data.get("message")
    if data.get("type") == "message_start" and isinstance(message, Mapping):
        found["model"] = message.get("model") or found.get("model")
        found["anthropic"] = [message.get("usage")]
        return
    if data.get("type") == "message_delta":
        found.setdefault("anthropic", []).append(data.get("usage"))
        return
    if isinstance(data.get("model"), str):
        found["model"] = data["model"]
    usage = data.get("usage")
    if isinstance(usage, Mapping):
        key = "anthropic" if "input_tokens" in usage else "openai"
        found[key] = [usage] if key == "anthropic" else usage


def usage_of(interaction: Interaction) -> tuple[Usage | None, str | None]:
    """The usage and model an OpenAI- or Anthropic-shaped response reports (JSON or SSE)."""
    response = interaction.response
    found: dict[str, Any] = {}
    data = _json(response.body)
    if isinstance(data, Mapping):
        _usage_in(data, found)
    else:
        for event in split_events(response.headers, response.body):
            for line in event.decode("utf-8", "replace").splitlines():
                if line.startswith("data:"):
                    parsed = _json(line[5:].strip().encode())
                    if isinstance(parsed, Mapping):
                        _usage_in(parsed, found)
    request = _json(interaction.request.body)
    model = found.get("model")
    if model is None and isinstance(request, Mapping) and isinstance(request.get("model"), str):
        model = request["model"]
    if "anthropic" in found:
        return parse_anthropic_usage(*found["anthropic"]), model
    if "openai" in found:
        return parse_openai_usage(found["openai"]), model
    return None, model


@dataclass
class Totals:
    """Sums over records."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal | None = Decimal(0)
    unpriced: bool = False
    priced: bool = False

    def add(self, record: TestRecord) -> None:
        """Add one test's numbers."""
        self.requests += record.requests
        self.prompt_tokens += record.prompt_tokens
        self.completion_tokens += record.completion_tokens
        value = record.cost_value
        if value is None:
            self.unpriced = True
        else:
            self.priced = True
            self.cost = (self.cost or Decimal(0)) + value


def total_cost(records: Iterable[TestRecord]) -> Decimal:
    """The priced cost of every record."""
    return sum((r.cost_value or Decimal(0) for r in records), Decimal(0))


def _cost_text(cost: Decimal | None, partial: bool = False) -> str:
    if cost is None:
        return "n/a (no price)"
    return f"${cost:.6f}" + (" (priced only)" if partial else "")


def wait_lines(records: Iterable[TestRecord], *, real_time: bool = False) -> list[str]:
    """The seconds each test waited (retries, latency, slow faults), virtual or real."""
    waited = sorted((r for r in records if r.waited > 0), key=lambda r: r.nodeid)
    if not waited:
        return []
    total = sum(r.waited for r in waited)
    if real_time:
        head = f"real waits: {total:.1f} s (--llm-real-time)"
    else:
        head = f"virtual waits: {total:.1f} s, none of it slept (--llm-real-time waits for real)"
    return [head, *(f"  {r.nodeid}: {r.waited:.1f} s" for r in waited)]


def summary_lines(
    records: list[TestRecord], *, budget: Decimal | None = None, real_time: bool = False
) -> list[str]:
    """The closing report: a table per test and in total, waits, cassettes written, unplayed."""
    totals = Totals()
    rows = []
    for record in sorted(records, key=lambda r: r.nodeid):
        totals.add(record)
        rows.append(
            [
                record.nodeid,
                record.mode or "-",
                record.requests,
                record.prompt_tokens,
                record.completion_tokens,
                _cost_text(record.cost_value),
            ]
        )
    rows.append(
        [
            "total",
            "",
            totals.requests,
            totals.prompt_tokens,
            totals.completion_tokens,
            _cost_text(totals.cost if totals.priced else None, totals.unpriced),
        ]
    )
    headers = ["test", "mode", "requests", "prompt tokens", "completion tokens", "cost (USD)"]
    lines = tabulate(rows, headers=headers, tablefmt="simple").splitlines()
    if budget is not None:
        spent = total_cost(records)
        state = "EXCEEDED" if spent > budget else "ok"
        lines.append(f"budget: ${spent:.6f} of ${budget} spent ({state})")
    lines.extend(wait_lines(records, real_time=real_time))
    written = sorted({r.cassette for r in records if r.recorded and r.cassette})
    if written:
        lines.append(f"cassettes written ({len(written)}):")
        lines.extend(
            f"  {path} (+{sum(r.recorded for r in records if r.cassette == path)})"
            for path in written
        )
    lines.extend(unplayed_lines(records))
    return lines


def unplayed_lines(records: Iterable[TestRecord]) -> list[str]:
    """The interactions no test of the run played, per cassette: the view of
    ``--llm-unplayed-report`` (merged over the tests and workers that used each cassette)."""
    from harness.pytest_plugin.unplayed import merge_unplayed

    used = [r for r in records if r.unplayed_report]
    merged = [e for e in merge_unplayed(r.unplayed_report or {} for r in used) if e["unplayed"]]
    if not merged:
        return []
    count = sum(len(entry["unplayed"]) for entry in merged)
    lines = [f"unplayed interactions ({count}; prune or run with --llm-strict):"]
    for entry in merged:
        users = [r for r in used if (r.unplayed_report or {}).get("cassette") == entry["cassette"]]
        shown = next((r.cassette for r in users if r.cassette), entry["cassette"])
        tests = sorted({r.nodeid for r in users})
        listed = ", ".join(tests[:3]) + (f" and {len(tests) - 3} more" if len(tests) > 3 else "")
        lines.append(f"  {shown}: {len(entry['unplayed'])} ({listed})")
    return lines
