"""The Markdown summary, written to be posted as a pull-request comment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from harness.evals.report.data import (
    check_results,
    compute_totals,
    failure_reason,
    format_cost,
    format_latency,
    format_rate,
    group_items,
    item_name,
)
from harness.evals.report.terminal import closing_line

__all__ = ["escape_markdown", "render_markdown"]

_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_MAX_REASON = 300
_MAX_LISTED = 50  # a comment stays readable (GitHub caps comments at 65536 characters)


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


def _listed(items: list[Mapping[str, Any]], with_reason: bool) -> list[str]:
    lines = []
    for item in items[:_MAX_LISTED]:
        name = f"**{escape_markdown(item_name(item))}**"
        new = " (new)" if item.get("new") else ""
        reason = f": {escape_markdown(failure_reason(item), _MAX_REASON)}" if with_reason else ""
        lines.append(f"- {name}{new}{reason}{_baseline(item)}")
    if len(items) > _MAX_LISTED:
        lines.append(f"- … and {len(items) - _MAX_LISTED} more (see report.html)")
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
    totals = compute_totals(items)
    verdict = "❌" if totals["regressions"] else "✅"
    lines = [
        f"## {verdict} harness evals: {format_rate(totals['passed'], totals['items'])} passed",
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
    if by_status["regression"]:
        lines += [f"### Regressions ({len(by_status['regression'])})", ""]
        lines += [*_listed(by_status["regression"], with_reason=True), ""]
    if by_status["fail"]:  # failures with no baseline to judge them by
        lines += [f"### Failures ({len(by_status['fail'])})", ""]
        lines += [*_listed(by_status["fail"], with_reason=True), ""]
    if by_status["improvement"]:
        lines += [f"### Improvements ({len(by_status['improvement'])})", ""]
        lines += [*_listed(by_status["improvement"], with_reason=False), ""]
    flaky = [item for item in items if item.get("status") == "flaky" or item.get("flaky")]
    for title, chosen in (("Known failures", by_status["known_failure"]), ("Flaky", flaky)):
        if not chosen:
            continue
        new = sum(1 for item in chosen if item.get("new"))
        count = f"{len(chosen)}, {new} new" if new else str(len(chosen))
        lines += [f"<details><summary>{title} ({count})</summary>", ""]
        lines += [*_listed(chosen, with_reason=True), "", "</details>", ""]
    lines.append(_totals_line(totals))
    return "\n".join(lines) + "\n"
