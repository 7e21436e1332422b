"""The Markdown summary, written to be posted as a pull-request comment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from harness.evals.report.data import (
    check_results,
    compute_totals,
    explained_attempt,
    failure_reason,
    format_cost,
    format_latency,
    format_rate,
    format_tool_call,
    group_items,
    item_name,
    tool_calls_of,
)
from harness.evals.report.terminal import closing_line

__all__ = ["escape_markdown", "render_markdown"]

_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_MAX_REASON = 300
_MAX_CALLS = 300
# GitHub refuses comments over 65536 characters: list fewer results per section until it fits.
_MAX_CHARS = 60_000
_LISTED_STEPS = (50, 20, 5, 0)


def escape_markdown(text: str, limit: int | None = None) -> str:
    """``text`` as literal inline Markdown: one line, no HTML, no emphasis, no table breaks."""
    text = " ".join(str(text).split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def _score(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


def _table(items: list[Mapping[str, Any]]) -> list[str]:
    lines = [
        "| suite | model | pass rate | mean score | regressions | improvements "
        "| known failures | flaky | cost (USD) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for suite, models in group_items(items).items():
        for model, group in models.items():
            t = compute_totals(group)
            regressions = f"**{t['regressions']}**" if t["regressions"] else "0"
            lines.append(
                f"| {escape_markdown(suite)} | {escape_markdown(model)} "
                f"| {format_rate(t['passed'], t['items'])} | {_score(t['score_mean'])} "
                f"| {regressions} | {t['improvements']} | {t['known_failures']} "
                f"| {t['flaky']} | {escape_markdown(format_cost(t['cost'], t['unpriced']))} |"
            )
    return lines


def _baseline(item: Mapping[str, Any]) -> str:
    baseline = item.get("baseline")
    if not isinstance(baseline, Mapping):
        return ""
    before = "passed" if baseline.get("passed") else "failed"
    scores = f"{_score(baseline.get('score'))} → {_score(item.get('score'))}"
    return f" (baseline: {before}, score {scores})"


def _tool_calls(item: Mapping[str, Any]) -> list[str]:
    """A sub-item with the tool calls of the attempt the reason explains (when it made any)."""
    explained = explained_attempt(item)
    number, calls = (
        (explained[0], tool_calls_of(explained[1])) if explained else (0, tool_calls_of(item))
    )
    if not calls:
        return []
    attempts = item.get("attempts")
    total = len(attempts) if isinstance(attempts, list) else 1
    where = f" (attempt {number} of {total})" if number and total > 1 else ""
    shown = escape_markdown(", ".join(format_tool_call(call) for call in calls), _MAX_CALLS)
    return [f"  - tool calls{where}: {shown}"]


def _listed(items: list[Mapping[str, Any]], with_reason: bool, limit: int) -> list[str]:
    lines = []
    for item in items[:limit]:
        name = f"**{escape_markdown(item_name(item))}**"
        new = " (new)" if item.get("new") else ""
        reason = f": {escape_markdown(failure_reason(item), _MAX_REASON)}" if with_reason else ""
        lines.append(f"- {name}{new}{reason}{_baseline(item)}")
        if with_reason:
            lines += _tool_calls(item)
    if len(items) > limit:
        lines.append(f"- … and {len(items) - limit} more (see report.html)")
    return lines


def _totals_line(totals: Mapping[str, Any]) -> str:
    judge = (
        f" · judge cost {format_cost(totals['judge_cost'], totals['judge_unpriced'])}"
        if totals["judged"]
        else ""
    )
    return (
        f"**Totals:** {totals['items']} results · tokens {totals['prompt_tokens']:,} in / "
        f"{totals['completion_tokens']:,} out · cost "
        f"{format_cost(totals['cost'], totals['unpriced'])}{judge} · latency p50 "
        f"{format_latency(totals['latency_p50'])}, p95 {format_latency(totals['latency_p95'])}"
    )


def render_markdown(data: Mapping[str, Any]) -> str:
    """A pull-request comment: pass rates per suite x model, regressions first, then the rest."""
    check_results(data)
    items = list(data.get("items") or [])
    for limit in _LISTED_STEPS:
        text = _comment(data, items, limit)
        if len(text) <= _MAX_CHARS:
            break
    return text


def _comment(data: Mapping[str, Any], items: list[Mapping[str, Any]], limit: int) -> str:
    totals = compute_totals(items)
    verdict = "❌" if totals["regressions"] else "✅"
    passed = format_rate(totals["passed"], totals["items"]) + " passed" if items else "no results"
    lines = [
        f"## {verdict} harness evals: {passed}",
        "",
        f"**{closing_line(totals)}**"
        + (f" · {totals['flaky']} flaky" if totals["flaky"] else "")
        + (f" · mode `{escape_markdown(str(data['mode']))}`" if data.get("mode") else ""),
        "",
        *_table(items),
        "",
    ]
    by_status = {
        status: [item for item in items if item.get("status") == status]
        for status in ("regression", "fail", "improvement", "known_failure")
    }
    sections = (
        ("Regressions", by_status["regression"], True),
        ("Failures", by_status["fail"], True),  # failures with no baseline to judge them by
        ("Improvements", by_status["improvement"], False),
    )
    for title, chosen, with_reason in sections:
        if chosen:
            lines += [f"### {title} ({len(chosen)})", ""]
            lines += [*_listed(chosen, with_reason, limit), ""]
    flaky = [item for item in items if item.get("status") == "flaky" or item.get("flaky")]
    for title, chosen in (("Known failures", by_status["known_failure"]), ("Flaky", flaky)):
        if not chosen:
            continue
        new = sum(1 for item in chosen if item.get("new"))
        count = f"{len(chosen)}, {new} new" if new else str(len(chosen))
        lines += [f"<details><summary>{title} ({count})</summary>", ""]
        lines += [*_listed(chosen, True, limit), "", "</details>", ""]
    lines.append(_totals_line(totals))
    return "\n".join(lines) + "\n"
