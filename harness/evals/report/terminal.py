"""The terminal summary: a table per suite x model, the regressions, one closing line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tabulate import tabulate

from harness.evals.report.data import (
    attempts_text,
    check_results,
    compute_totals,
    failure_reason,
    format_cost,
    format_latency,
    format_rate,
    group_items,
    item_name,
)

__all__ = ["closing_line", "render_terminal"]

_HEADERS = [
    "suite",
    "model",
    "pass rate",
    "mean score",
    "regressions",
    "improvements",
    "known failures",
    "flaky",
    "tokens in",
    "tokens out",
    "cost (USD)",
    "judge cost",
    "p50",
    "p95",
]
_MAX_REASON = 160


def _score(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


def _row(suite: str, model: str, totals: Mapping[str, Any]) -> list[Any]:
    return [
        suite,
        model,
        format_rate(totals["passed"], totals["items"]),
        _score(totals["score_mean"]),
        totals["regressions"],
        totals["improvements"],
        totals["known_failures"],
        totals["flaky"],
        totals["prompt_tokens"],
        totals["completion_tokens"],
        format_cost(totals["cost"], totals["unpriced"]),
        format_cost(totals["judge_cost"], totals["judge_unpriced"]) if totals["judged"] else "-",
        format_latency(totals["latency_p50"]),
        format_latency(totals["latency_p95"]),
    ]


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def closing_line(totals: Mapping[str, Any]) -> str:
    """``N regressions, M improvements, K known failures vs baseline``."""
    return (
        f"{totals['regressions']} regressions, {totals['improvements']} improvements, "
        f"{totals['known_failures']} known failures vs baseline"
    )


def render_terminal(data: Mapping[str, Any]) -> str:
    """The run's summary for a terminal, from a "harness.evals/1" results document."""
    check_results(data)
    items = list(data.get("items") or [])
    totals = compute_totals(items)
    rows = [
        _row(suite, model, compute_totals(group))
        for suite, models in group_items(items).items()
        for model, group in models.items()
    ]
    if len(rows) > 1:
        rows.append(_row("total", "", totals))
    lines = tabulate(rows, headers=_HEADERS, tablefmt="simple", disable_numparse=True).splitlines()
    for title, status in (
        ("regressions", "regression"),
        ("failures", "fail"),
        ("improvements", "improvement"),
    ):
        chosen = [item for item in items if item.get("status") == status]
        if chosen:
            lines.append(f"{title} ({len(chosen)}):")
            for item in chosen:
                reason = f": {_short(failure_reason(item))}" if status != "improvement" else ""
                lines.append(f"  {item_name(item)}{reason}")
    flaky = [item for item in items if item.get("status") == "flaky" or item.get("flaky")]
    if flaky:
        lines.append(f"flaky ({len(flaky)}):")
        lines.extend(f"  {item_name(item)}: {attempts_text(item)}" for item in flaky)
    lines.append(closing_line(totals))
    return "\n".join(lines)
