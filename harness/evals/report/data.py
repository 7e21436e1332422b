"""The "harness.evals/1" results document as the reports read it: checks, totals, grouping.

Everything here works on the plain JSON dict (one run's ``SuiteResult.to_json()`` or shards
merged by :func:`harness.evals.compare.merge`), never on the library's classes, so a report can
be rendered from any results file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from harness.errors import ConfigError

__all__ = [
    "SCHEMA",
    "STATUSES",
    "STATUS_LABELS",
    "attempts_text",
    "check_results",
    "compute_totals",
    "explained_attempt",
    "failure_reason",
    "format_cost",
    "format_latency",
    "format_rate",
    "format_tool_call",
    "group_items",
    "item_key",
    "item_name",
    "percentile",
    "to_decimal",
    "tool_calls_of",
]

SCHEMA = "harness.evals/1"

# Display order: what needs attention first.
STATUSES = ("regression", "fail", "flaky", "known_failure", "improvement", "pass")

STATUS_LABELS: Mapping[str, str] = {
    "pass": "pass",
    "fail": "fail",
    "regression": "regression",
    "known_failure": "known failure",
    "improvement": "improvement",
    "flaky": "flaky",
}

_REQUIRED = ("suite", "case", "model", "status", "passed")


def check_results(data: Any, source: str | None = None) -> Mapping[str, Any]:
    """``data`` if it is a "harness.evals/1" results document; else a ConfigError naming ``source``.

    Only what the reports rely on is checked: the schema, the items and their key fields.
    """
    where = source or "results"
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a JSON object, got {type(data).__name__}", source=where)
    schema = data.get("schema")
    if schema != SCHEMA:
        raise ConfigError(
            f"schema is {schema!r}, expected {SCHEMA!r} (a results.json written by harness evals)",
            source=where,
            key="schema",
        )
    items = data.get("items")
    if not isinstance(items, list):
        raise ConfigError("expected a list of results", source=where, key="items")
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ConfigError("expected an object", source=where, key=f"items[{index}]")
        for field in _REQUIRED:
            if field not in item:
                raise ConfigError("missing", source=where, key=f"items[{index}].{field}")
        status = item["status"]
        if status not in STATUS_LABELS:
            raise ConfigError(
                f"unknown status {status!r}; expected one of {', '.join(STATUS_LABELS)}",
                source=where,
                key=f"items[{index}].status",
            )
    return data


def item_key(item: Mapping[str, Any]) -> tuple[str, str, str]:
    """(suite, case, model): what identifies one result across runs and shards."""
    return (str(item["suite"]), str(item["case"]), str(item["model"]))


def item_name(item: Mapping[str, Any]) -> str:
    """``suite::case[model]``, the way the baseline file names a result."""
    suite, case, model = item_key(item)
    return f"{suite}::{case}[{model}]"


def to_decimal(value: Any) -> Decimal | None:
    """A cost from the document (a decimal string, a number or null) as a Decimal."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` (0..100) percentile of ``values``, linearly interpolated; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _answered(result: Mapping[str, Any]) -> bool:
    """False for an item or attempt whose model call failed with no usage (nothing came back)."""
    return not result.get("error") or isinstance(result.get("usage"), Mapping)


def _latencies(item: Mapping[str, Any]) -> list[float]:
    """Each answered model call's latency: one per attempt when listed, else the item's."""
    attempts = [a for a in item.get("attempts") or [] if isinstance(a, Mapping)]
    if attempts:
        return [
            float(a["latency"])
            for a in attempts
            if isinstance(a.get("latency"), int | float) and _answered(a)
        ]
    latency = item.get("latency")
    return [float(latency)] if isinstance(latency, int | float) and _answered(item) else []


def _tokens(usage: Any, field: str) -> int:
    if isinstance(usage, Mapping) and isinstance(usage.get(field), int):
        return int(usage[field])
    return 0


def _is_flaky(item: Mapping[str, Any]) -> bool:
    return item.get("status") == "flaky" or bool(item.get("flaky"))


def compute_totals(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The "totals" object of a results document, computed from its items.

    ``cost`` sums the priced items (a decimal string), or is None when items were answered and
    none is priced; ``unpriced`` counts the answered items without a price, so a partial sum is
    never mistaken for the whole. An item whose model call failed with nothing back (no usage)
    is neither: it cost nothing. Latency percentiles are over answered model calls (every
    attempt of a repeated case).
    """
    items = list(items)
    status_count = {status: 0 for status in STATUS_LABELS}
    prompt_tokens = completion_tokens = judge_prompt = judge_completion = 0
    cost = judge_cost = Decimal(0)
    unpriced = judged = judge_unpriced = 0
    latencies: list[float] = []
    scores: list[float] = []
    for item in items:
        status_count[str(item.get("status"))] = status_count.get(str(item.get("status")), 0) + 1
        usage = item.get("usage")
        prompt_tokens += _tokens(usage, "prompt_tokens")
        completion_tokens += _tokens(usage, "completion_tokens")
        value = to_decimal(item.get("cost"))
        if value is not None:
            cost += value
        elif _answered(item):  # a call that failed before any answer costs nothing
            unpriced += 1
        judge = item.get("judge")
        if isinstance(judge, Mapping):
            judged += 1
            judge_prompt += _tokens(judge.get("usage"), "prompt_tokens")
            judge_completion += _tokens(judge.get("usage"), "completion_tokens")
            judge_value = to_decimal(judge.get("cost"))
            if judge_value is None:
                judge_unpriced += 1
            else:
                judge_cost += judge_value
        latencies.extend(_latencies(item))
        if isinstance(item.get("score"), int | float):
            scores.append(float(item["score"]))
    passed = sum(1 for item in items if item.get("passed"))
    p50 = percentile(latencies, 50)
    p95 = percentile(latencies, 95)
    billed = sum(1 for item in items if _answered(item) or item.get("cost") is not None)
    return {
        "items": len(items),
        "passed": passed,
        "failed": len(items) - passed,
        "regressions": status_count["regression"],
        "improvements": status_count["improvement"],
        "known_failures": status_count["known_failure"],
        "flaky": sum(1 for item in items if _is_flaky(item)),
        "new": sum(1 for item in items if item.get("new")),
        "errors": sum(1 for item in items if item.get("error")),
        "pass_rate": passed / len(items) if items else None,
        "score_mean": sum(scores) / len(scores) if scores else None,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cost": None if billed and unpriced == billed else format(cost, "f"),
        "unpriced": unpriced,
        "judged": judged,
        "judge_prompt_tokens": judge_prompt,
        "judge_completion_tokens": judge_completion,
        "judge_cost": None if judged and judge_unpriced == judged else format(judge_cost, "f"),
        "judge_unpriced": judge_unpriced,
        "latency_p50": None if p50 is None else round(p50, 6),
        "latency_p95": None if p95 is None else round(p95, 6),
    }


def group_items(
    items: Iterable[Mapping[str, Any]],
) -> dict[str, dict[str, list[Mapping[str, Any]]]]:
    """Items by suite, then by model, both in order of first appearance."""
    groups: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for item in items:
        suite, _, model = item_key(item)
        groups.setdefault(suite, {}).setdefault(model, []).append(item)
    return groups


def _failing_grades(grades: Any) -> list[str]:
    return [
        f"{grade.get('name') or 'grade'}: {grade.get('reason') or 'failed'}"
        for grade in grades or []
        if isinstance(grade, Mapping) and not grade.get("passed")
    ]


def failure_reason(item: Mapping[str, Any]) -> str:
    """Why an item failed: its error, else its failing grades' reasons (and attempts passed)."""
    if item.get("error"):
        return str(item["error"])
    reasons = _failing_grades(item.get("grades"))
    attempts = [a for a in item.get("attempts") or [] if isinstance(a, Mapping)]
    for attempt in attempts:  # the last attempt may have passed: say why another failed
        if reasons:
            break
        if attempt.get("error"):
            reasons = [str(attempt["error"])]
        else:
            reasons = _failing_grades(attempt.get("grades"))
    parts = [text for text in (attempts_text(item), "; ".join(reasons)) if text]
    if parts:
        return "; ".join(parts)
    return "failed" if not item.get("passed") else ""


def attempts_text(item: Mapping[str, Any]) -> str:
    """``passed 2 of 3 attempts`` for a repeated case, empty for a single attempt."""
    attempts = [a for a in item.get("attempts") or [] if isinstance(a, Mapping)]
    repeats = item.get("repeats")
    total = len(attempts) or (repeats if isinstance(repeats, int) else 1)
    if total <= 1:
        return ""
    if attempts:
        passed = sum(1 for a in attempts if a.get("passed"))
    else:
        rate = item.get("pass_rate")
        passed = round(rate * total) if isinstance(rate, int | float) else 0
    return f"passed {passed} of {total} attempts"


def format_cost(cost: Any, unpriced: int = 0) -> str:
    """A USD cost for people: ``$0.001234``, ``n/a`` when unpriced, marked when partial."""
    value = to_decimal(cost)
    if value is None:
        return "n/a"
    if 0 < value < Decimal("0.0000005"):  # would round to $0.000000: not free, just small
        text = "<$0.000001"
    else:
        text = f"${value:.6f}" if value < 1 else f"${value:,.2f}"
    return f"{text} (+{unpriced} unpriced)" if unpriced else text


def format_latency(seconds: Any) -> str:
    """Seconds for people: ``230 ms`` or ``1.42 s``; ``-`` when unknown."""
    if not isinstance(seconds, int | float):
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def format_rate(passed: int, total: int) -> str:
    """``7/10 (70%)``."""
    if not total:
        return "-"
    return f"{passed}/{total} ({passed / total:.0%})"


def explained_attempt(item: Mapping[str, Any]) -> tuple[int, Mapping[str, Any]] | None:
    """The attempt :func:`failure_reason` explains, with its number (1-based): the last one if
    it failed, else the first failed one; None when no attempt is listed or none failed."""
    attempts = [a for a in item.get("attempts") or [] if isinstance(a, Mapping)]
    if attempts and not attempts[-1].get("passed"):
        return len(attempts), attempts[-1]
    for number, attempt in enumerate(attempts, 1):
        if not attempt.get("passed"):
            return number, attempt
    return None


def tool_calls_of(result: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """The tool calls of an item or an attempt, in order; None in a file written before they
    were recorded."""
    calls = result.get("tool_calls")
    if not isinstance(calls, list):
        return None
    return [call for call in calls if isinstance(call, Mapping)]


def format_tool_call(call: Mapping[str, Any]) -> str:
    """One call on one line: ``get_weather({"city": "Paris"})`` (raw arguments as sent)."""
    arguments = call.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return f"{call.get('name')}({arguments})"
