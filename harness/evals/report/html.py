"""The one-file HTML report: the case x model matrix per suite, each cell opening its result.

Self-contained: inline style and script, system fonts, no network asset of any kind, and a
Content-Security-Policy that lets only the report's own script run (by its hash), so text from
a model can never become markup or code: every value is escaped as well.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from harness.evals.report._assets import SCRIPT, STYLE
from harness.evals.report._html_result import e, result_body, score_text
from harness.evals.report.data import (
    STATUS_LABELS,
    STATUSES,
    check_results,
    compute_totals,
    failure_reason,
    format_cost,
    format_latency,
    format_rate,
    group_items,
    item_key,
)

__all__ = ["STATUS_ICONS", "render_html"]

STATUS_ICONS: Mapping[str, str] = {
    "pass": "✓",
    "fail": "✗",
    "regression": "▼",
    "known_failure": "●",
    "improvement": "▲",
    "flaky": "≈",
}


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    return (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
        "img-src data:; base-uri 'none'"
    )


def _cell_label(item: Mapping[str, Any]) -> str:
    status = str(item["status"])
    repeats = item.get("repeats")
    attempts = [a for a in item.get("attempts") or [] if isinstance(a, Mapping)]
    if isinstance(repeats, int) and repeats > 1 and attempts:
        value = f"{sum(1 for a in attempts if a.get('passed'))}/{len(attempts)}"
    else:
        value = score_text(item.get("score"))
    tags = ' <span class="tag">new</span>' if item.get("new") else ""
    if item.get("flaky") and status != "flaky":  # e.g. a regression that sometimes passes
        tags += ' <span class="tag">flaky</span>'
    return f"<span>{STATUS_ICONS[status]}</span><span>{e(value)}</span>{tags}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _cell(item: Mapping[str, Any] | None, anchor: str) -> str:
    if item is None:
        empty = '<span class="empty" title="not run">—</span>'
        return f'<td class="cell" data-status="missing">{empty}</td>'
    status = str(item["status"])
    _, case, model = item_key(item)
    tip = f"{case} · {model}: {STATUS_LABELS[status]}"
    if not item.get("passed"):
        tip += f" — {failure_reason(item)}"
    return (
        f'<td class="cell" data-status="{status}" data-case="{e(case)}" data-model="{e(model)}">'
        f'<a class="st-{status}" href="#{anchor}" data-result="{anchor}" title="{e(tip)}">'
        f"{_cell_label(item)}</a></td>"
    )


def _bar(items: Iterable[Mapping[str, Any]]) -> str:
    """A thin bar split by status, in the matrix's colours."""
    items = list(items)
    counts = {s: sum(1 for i in items if i.get("status") == s) for s in STATUSES}
    spans = "".join(
        f'<span class="st-{s}" style="width:{100 * n / len(items):.2f}%" '
        f'title="{e(STATUS_LABELS[s])}: {n}"></span>'
        for s, n in counts.items()
        if n
    )
    return f'<div class="bar">{spans}</div>' if items else ""


def _latencies(totals: Mapping[str, Any]) -> str:
    return f"{format_latency(totals['latency_p50'])} / {format_latency(totals['latency_p95'])}"


def _matrix(by_model: Mapping[str, list[Mapping[str, Any]]], ids: Mapping[int, str]) -> str:
    """Cases down, models across; the footer holds each model's numbers for the suite."""
    models = list(by_model)
    cases: dict[str, dict[str, Mapping[str, Any]]] = {}
    for model, group in by_model.items():
        for item in group:
            cases.setdefault(str(item["case"]), {})[model] = item
    rows = []
    for case, cells in cases.items():
        all_pass = all(cells.get(m, {}).get("status") == "pass" for m in models)
        tags = ", ".join(_tags_of(next(iter(cells.values()))))
        title = f' title="tags: {e(tags)}"' if tags else ""
        rows.append(
            f'<tr class="{"all-pass" if all_pass else "has-problem"}">'
            f'<th scope="row"{title}>{e(case)}</th>'
            + "".join(_cell(cells.get(m), ids[id(cells[m])] if m in cells else "") for m in models)
            + "</tr>"
        )
    totals = {m: compute_totals(g) for m, g in by_model.items()}
    foot = {
        "passed": [
            format_rate(t["passed"], t["items"]) + _bar(by_model[m]) for m, t in totals.items()
        ],
        "mean score": [score_text(t["score_mean"]) for t in totals.values()],
        "cost": [_cost(t["cost"], t["unpriced"]) for t in totals.values()],
        "latency p50 / p95": [_latencies(t) for t in totals.values()],
    }
    head = "".join(f'<th scope="col">{e(m)}</th>' for m in models)
    foot_rows = "".join(
        f'<tr><th scope="row">{e(label)}</th>{"".join(f"<td>{v}</td>" for v in values)}</tr>'
        for label, values in foot.items()
    )
    return (
        f'<div class="scroll"><table class="matrix"><thead><tr><th scope="col">case</th>{head}'
        f"</tr></thead><tbody>{''.join(rows)}</tbody><tfoot>{foot_rows}</tfoot></table></div>"
    )


def _tags_of(item: Mapping[str, Any]) -> list[str]:
    tags = item.get("tags")
    return [str(tag) for tag in tags] if isinstance(tags, list) else []


def _by_tag(items: list[Mapping[str, Any]]) -> str:
    """Pass counts per tag (every model together), so tagged groups of cases read at a glance."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        for tag in _tags_of(item):
            groups.setdefault(tag, []).append(item)
    if not groups:
        return ""
    chips = "".join(
        f'<span class="tag-stat"><span>{e(tag)}</span>'
        f"<b>{sum(1 for i in group if i.get('passed'))}/{len(group)}</b>{_bar(group)}</span>"
        for tag, group in sorted(groups.items())
    )
    return f'<div class="by-tag"><span class="label">by tag</span>{chips}</div>'


def _suite(
    number: int,
    name: str,
    by_model: Mapping[str, list[Mapping[str, Any]]],
    ids: Mapping[int, str],
) -> str:
    items = [i for group in by_model.values() for i in group]
    totals = compute_totals(items)
    cases = len({str(i["case"]) for i in items})
    results = "".join(
        f'<details class="result" id="{ids[id(i)]}"><summary>'
        f'<span class="swatch st-{i["status"]}">{STATUS_ICONS[str(i["status"])]}</span> '
        f"{e(i['case'])} · {e(i['model'])} — {e(STATUS_LABELS[str(i['status'])])}</summary>"
        f"{result_body(i)}</details>"
        for i in items
    )
    summary = (
        f"{_plural(cases, 'case')} × {_plural(len(by_model), 'model')} · "
        f"{format_rate(totals['passed'], totals['items'])} passed"
    )
    return (
        f'<section class="suite" id="s-{number}" data-suite="{e(name)}">'
        f"<h2>{e(name)} <small>{summary}</small></h2>{_matrix(by_model, ids)}{_by_tag(items)}"
        f'<details class="all-results"><summary>All {len(items)} results of {e(name)}, '
        f"with prompts, replies and grades</summary>{results}</details></section>"
    )


def _card(label: str, value: str, sub: str = "", css: str = "") -> str:
    sub_html = f'<div class="sub">{sub}</div>' if sub else ""
    return (
        f'<div class="card {css}"><div class="label">{e(label)}</div>'
        f'<div class="value">{value}</div>{sub_html}</div>'
    )


def _cost(cost: Any, unpriced: int = 0) -> str:
    """A cost as HTML, the count of unpriced results set apart so the column stays narrow."""
    text = e(format_cost(cost))
    if cost is None or not unpriced:
        return text
    return f'{text} <span class="note">+{unpriced} unpriced</span>'


def _short(count: int) -> str:
    """A token count that fits a card: ``9,866``, ``18.8k``, ``2.41M``."""
    if count < 10_000:
        return f"{count:,}"
    if count < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.2f}M"


def _cards(totals: Mapping[str, Any], items: list[Mapping[str, Any]]) -> str:
    rate = f"{totals['pass_rate']:.0%}" if totals["pass_rate"] is not None else "-"
    new = f"{totals['new']} new" if totals["new"] else ""
    judge = (
        f"judge {_cost(totals['judge_cost'], totals['judge_unpriced'])}"
        if totals["judged"]
        else "no judge calls"
    )
    unpriced = f"<br>{_plural(totals['unpriced'], 'result')} unpriced" if totals["unpriced"] else ""
    judge_tokens = totals["judge_prompt_tokens"] + totals["judge_completion_tokens"]
    tokens = f"{_short(totals['prompt_tokens'])} in / {_short(totals['completion_tokens'])} out"
    if totals["judged"]:
        tokens += f"<br>judge {_short(judge_tokens)}"
    cards = [
        _card("passed", f"{totals['passed']}/{totals['items']}", rate + _bar(items)),
        _card("regressions", str(totals["regressions"]), "passed in the baseline", "regression"),
        _card("improvements", str(totals["improvements"]), "failed in the baseline", "improvement"),
        _card("known failures", str(totals["known_failures"]), new, "known_failure"),
        _card("flaky", str(totals["flaky"]), "pass and fail in repeats", "flaky"),
        _card("tokens", f"{totals['prompt_tokens'] + totals['completion_tokens']:,}", tokens),
        _card("cost (USD)", e(format_cost(totals["cost"])), judge + unpriced),
        _card(
            "latency p50",
            format_latency(totals["latency_p50"]),
            f"p95 {format_latency(totals['latency_p95'])}",
        ),
    ]
    return f'<div class="cards">{"".join(cards)}</div>'


def _overview(groups: Mapping[str, Mapping[str, list[Mapping[str, Any]]]]) -> str:
    """The numbers per suite x model, as in the terminal summary."""
    headers = [
        "model", "passed", "score", "regressions", "improvements", "known failures", "flaky",
        "tokens in / out", "cost", "judge cost", "p50 / p95",
    ]  # fmt: skip
    rows = []
    for suite, models in groups.items():
        rows.append(f'<tr class="suite-row"><th colspan="{len(headers)}">{e(suite)}</th></tr>')
        for model, group in models.items():
            t = compute_totals(group)
            judge = _cost(t["judge_cost"], t["judge_unpriced"]) if t["judged"] else "-"
            cells = [
                e(model),
                format_rate(t["passed"], t["items"]),
                score_text(t["score_mean"]),
                str(t["regressions"]),
                str(t["improvements"]),
                str(t["known_failures"]),
                str(t["flaky"]),
                f"{t['prompt_tokens']:,} / {t['completion_tokens']:,}",
                _cost(t["cost"], t["unpriced"]),
                judge,
                _latencies(t),
            ]
            css = ' class="regressed"' if t["regressions"] else ""
            rows.append(f"<tr{css}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f'<th scope="col">{h}</th>' for h in headers)
    return (
        '<section class="overview"><h2>Suites × models</h2><div class="scroll">'
        f'<table class="stats"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
        "</table></div></section>"
    )


def _contents(groups: Mapping[str, Mapping[str, list[Mapping[str, Any]]]]) -> str:
    """A link per suite with its pass rate and a status bar."""
    links = []
    for number, (name, by_model) in enumerate(groups.items(), 1):
        items = [i for group in by_model.values() for i in group]
        totals = compute_totals(items)
        links.append(
            f'<a href="#s-{number}"><span class="name">{e(name)}</span>'
            f'<span class="rate">{totals["passed"]}/{totals["items"]}</span>{_bar(items)}</a>'
        )
    return f'<nav class="contents" aria-label="suites">{"".join(links)}</nav>'


def _legend() -> str:
    entries = "".join(
        f'<span class="item" data-status="{s}"><span class="swatch st-{s}">{STATUS_ICONS[s]}'
        f"</span>{e(STATUS_LABELS[s])}</span>"
        for s in STATUS_LABELS
    )
    return (
        f'<div class="legend" role="note">{entries}<label><input type="checkbox" '
        'id="only-problems"> hide cases that pass on every model</label></div>'
    )


def _when(created: Any) -> str:
    """``2026-12-01T22:40:00Z`` as ``2026-12-01 22:40:00 UTC``."""
    text = str(created or "")
    if len(text) >= 19 and text[10] == "T":
        zone = " UTC" if text.endswith(("Z", "+00:00")) else ""
        return text[:10] + " " + text[11:19] + zone
    return text


def render_html(data: Mapping[str, Any]) -> str:
    """One self-contained HTML page for a "harness.evals/1" results document."""
    check_results(data)
    items = list(data.get("items") or [])
    totals = compute_totals(items)
    ids = {id(item): f"r-{index}" for index, item in enumerate(items)}
    groups = group_items(items)
    parts = [
        f"mode {data['mode']}" if data.get("mode") else "",
        _when(data.get("created")),
        f"{_plural(len(groups), 'suite')} · {_plural(totals['items'], 'result')}",
    ]
    meta = " · ".join(e(part) for part in parts if part)
    regressions = totals["regressions"]
    verdict = (
        f'<span class="verdict bad">{_plural(regressions, "regression")}</span>'
        if regressions
        else '<span class="verdict good">no regressions</span>'
    )
    title = f"harness evals · {totals['passed']}/{totals['items']} passed"
    suites = "".join(
        _suite(number, name, by_model, ids)
        for number, (name, by_model) in enumerate(groups.items(), 1)
    )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{_csp()}">'
        f"<title>{e(title)}</title><style>{STYLE}</style></head>\n"
        "<body><main>"
        f'<header class="top"><h1>harness evals</h1><span class="meta">{meta}</span>{verdict}'
        f"</header>{_cards(totals, items)}{_contents(groups)}{_legend()}"
        f'<div class="suites">{suites}</div>'
        f"{_overview(groups)}"
        f"<footer>schema {e(data.get('schema', ''))} · written by harness</footer></main>"
        '<dialog id="viewer" aria-label="result"><div class="viewer-bar"><form method="dialog">'
        '<button type="submit" aria-label="close">close ✕</button></form></div>'
        f'<div class="viewer-body"></div></dialog><script>{SCRIPT}</script></body></html>\n'
    )
