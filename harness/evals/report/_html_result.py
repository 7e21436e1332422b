"""One result of the HTML report, as the body of its <details> and of the cell's dialog.

Every value from the results document is escaped here: a reply is text, never markup.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from typing import Any

from harness.evals.report.data import (
    STATUS_LABELS,
    attempts_text,
    format_cost,
    format_latency,
    item_key,
    tool_calls_of,
)

__all__ = ["badge", "e", "result_body", "score_text"]

_MAX_TEXT = 20_000  # a runaway reply stays readable and the file stays small


def e(value: Any) -> str:
    """``value`` as HTML text (attribute-safe)."""
    return escape(str(value), quote=True)


def score_text(value: Any) -> str:
    """A score with two decimals, ``-`` when missing."""
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    if len(text) > _MAX_TEXT:
        text = text[:_MAX_TEXT] + f"\n… ({len(text) - _MAX_TEXT} more characters)"
    return text


def _pre(value: Any, css: str = "") -> str:
    return f'<pre class="{css}">{e(_text(value))}</pre>' if css else f"<pre>{e(_text(value))}</pre>"


def _image(part: Mapping[str, Any]) -> str:
    source = part.get("image_url") or part.get("source") or {}
    mapping = isinstance(source, Mapping)
    url = str(source.get("url", "")) if mapping else str(source)
    if not url or url.startswith("data:") or (mapping and source.get("type") == "base64"):
        return "[image: data omitted]"
    return f"[image: {url}]"


def _content(content: Any) -> Any:
    """A message's content for display: its text, with image data left out."""
    if content is None:
        return ""
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            elif isinstance(part, Mapping) and part.get("type") in ("image_url", "image"):
                parts.append(_image(part))
            else:
                parts.append(json.dumps(part, ensure_ascii=False))
        return "\n".join(parts)
    return content


def _prompt(item: Mapping[str, Any]) -> str:
    """What was sent: the system prompt, then the prompt, the turns or the messages.

    For a multi-turn case, each earlier turn's reply is shown after its prompt; the last
    reply is the one graded, shown under Reply.
    """
    prompt = item.get("prompt")
    turns = item.get("turns")
    replies: list[Any] = turns if isinstance(turns, list) else []
    shown: list[tuple[str, Any]] = []
    messages = isinstance(prompt, list) and any(isinstance(t, Mapping) for t in prompt)
    has_system = messages and any(
        isinstance(t, Mapping) and t.get("role") == "system" for t in prompt or []
    )
    if item.get("system") and not has_system:
        shown.append(("system", item["system"]))
    if isinstance(prompt, list):
        several = len(prompt) > 1
        for index, turn in enumerate(prompt, 1):
            if isinstance(turn, Mapping) and "role" in turn:
                shown.append((str(turn["role"]), _content(turn.get("content"))))
                continue
            shown.append((f"turn {index} · user" if several else "user", turn))
            if several and index < len(prompt) and len(replies) == len(prompt):
                shown.append((f"turn {index} · reply", replies[index - 1]))
    elif prompt is not None:
        shown.append(("user", prompt))
    if not shown:
        return '<p class="muted">not recorded</p>'
    return "".join(
        f'<div class="turn"><div class="role">{e(role)}</div>{_pre(text)}</div>'
        for role, text in shown
    )


def _grades(grades: Any) -> str:
    rows = []
    for grade in grades or []:
        if not isinstance(grade, Mapping):
            continue
        ok = bool(grade.get("passed"))
        rows.append(
            f'<tr><td class="{"ok" if ok else "bad"}">{"✓" if ok else "✗"}</td>'
            f'<td class="mono">{e(grade.get("name") or "grade")}</td>'
            f'<td class="num">{score_text(grade.get("score"))}</td>'
            f"<td>{e(grade.get('reason') or '')}</td></tr>"
        )
    if not rows:
        return '<p class="muted">no grades</p>'
    return f'<table class="grades"><tbody>{"".join(rows)}</tbody></table>'


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _tool_calls(calls: list[Mapping[str, Any]] | None) -> str:
    """Each call's name, id and arguments (pretty JSON, or the raw text the model sent)."""
    rows = []
    for call in calls or []:
        arguments = call.get("arguments")
        call_id = call.get("id")
        head = f"<code>{e(call.get('name'))}</code>"
        if call_id is not None:
            head += f' <span class="muted">id {e(call_id)}</span>'
        if isinstance(arguments, str) and not _is_json(arguments):
            head += ' <span class="note">arguments are not valid JSON</span>'
        shown = "" if arguments is None else arguments
        rows.append(f"<li><div>{head}</div>{_pre(shown)}</li>")
    return f'<ol class="tool-calls">{"".join(rows)}</ol>' if rows else ""


def _usage(usage: Any) -> str:
    if not isinstance(usage, Mapping):
        return "-"
    tokens = [usage.get(key) for key in ("prompt_tokens", "completion_tokens")]
    prompt, completion = (f"{n:,}" if isinstance(n, int) else "?" for n in tokens)
    return f"{prompt} in / {completion} out"


def _facts(item: Mapping[str, Any]) -> str:
    facts: list[tuple[str, str]] = [("score", score_text(item.get("score")))]
    repeats = item.get("repeats")
    if isinstance(repeats, int) and repeats > 1:
        threshold = item.get("pass_threshold")
        needs = f" (passes at {threshold:.0%})" if isinstance(threshold, int | float) else ""
        facts.append(("attempts", attempts_text(item) + needs))
        for label, key in (("pass@k", "pass_at_k"), ("pass^k", "pass_hat_k")):
            facts.append((label, score_text(item.get(key))))
        mean, stdev = score_text(item.get("score_mean")), score_text(item.get("score_stdev"))
        facts.append(("score mean ± stdev", f"{mean} ± {stdev}"))
    baseline = item.get("baseline")
    if isinstance(baseline, Mapping):
        before = "passed" if baseline.get("passed") else "failed"
        facts.append(("baseline", f"{before}, score {score_text(baseline.get('score'))}"))
    elif item.get("status") == "known_failure" and item.get("new"):
        facts.append(("baseline", "no entry (new)"))
    facts += [
        ("tokens", _usage(item.get("usage"))),
        ("cost", format_cost(item.get("cost"))),
        ("latency", format_latency(item.get("latency"))),
    ]
    judge = item.get("judge")
    if isinstance(judge, Mapping):
        facts.append(("judge", f"{_usage(judge.get('usage'))}, {format_cost(judge.get('cost'))}"))
    tags = item.get("tags")
    if isinstance(tags, list) and tags:
        facts.append(("tags", ", ".join(str(tag) for tag in tags)))
    html = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts)
    if item.get("cassette"):
        html += f'<dt>cassette</dt><dd class="mono">{e(item["cassette"])}</dd>'
    return html


def _attempts(item: Mapping[str, Any]) -> str:
    attempts = [a for a in item.get("attempts") or [] if isinstance(a, Mapping)]
    if len(attempts) <= 1:
        return ""
    rows = []
    for attempt in attempts:
        ok = bool(attempt.get("passed"))
        head = (
            badge("pass" if ok else "fail") + f" score {score_text(attempt.get('score'))}"
            f" · {format_latency(attempt.get('latency'))}"
            f" · {e(format_cost(attempt.get('cost')))}"
        )
        error = _pre(attempt["error"], "error") if attempt.get("error") else ""
        rows.append(
            f"<li><div>{head}</div>{_pre(attempt.get('reply') or '')}"
            f"{_tool_calls(tool_calls_of(attempt))}{error}{_grades(attempt.get('grades'))}</li>"
        )
    return f'<h4>Attempts ({len(attempts)})</h4><ol class="attempts">{"".join(rows)}</ol>'


def badge(status: str) -> str:
    """A status as a coloured pill."""
    return f'<span class="badge st-{status}">{e(STATUS_LABELS[status])}</span>'


def result_body(item: Mapping[str, Any]) -> str:
    """What a cell opens: facts, prompt, reply, tool calls, error, grades and every attempt."""
    suite, case, model = item_key(item)
    status = str(item["status"])
    marks = badge(status)
    if item.get("new"):
        marks += ' <span class="tag">new</span>'
    if item.get("flaky") and status != "flaky":
        marks += f" {badge('flaky')}"
    error = f"<h4>Error</h4>{_pre(item['error'], 'error')}" if item.get("error") else ""
    calls = tool_calls_of(item)
    tools = f"<h4>Tool calls ({len(calls)})</h4>{_tool_calls(calls)}" if calls else ""
    expected = (
        f"<h4>Expected</h4>{_pre(item['expected'])}" if item.get("expected") is not None else ""
    )
    return (
        '<div class="result-body">'
        f'<div class="result-head">{marks}<strong>{e(case)}</strong>'
        f'<span class="muted">{e(model)} · {e(suite)}</span></div>'
        f'<dl class="facts">{_facts(item)}</dl>'
        f"<h4>Prompt</h4>{_prompt(item)}{expected}"
        f"<h4>Reply</h4>{_pre(item.get('reply') or '')}{tools}{error}"
        f"<h4>Grades</h4>{_grades(item.get('grades'))}{_attempts(item)}</div>"
    )
