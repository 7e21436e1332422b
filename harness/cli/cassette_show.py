"""Readable text for recorded interactions (``harness cassettes show``), secrets masked.

Streams are reassembled where the wire format is known: OpenAI chat-completion chunks and
Responses events (text, reasoning, tool calls, usage), Anthropic Messages events (text,
thinking, tool input, usage); other SSE, NDJSON and AWS event-stream bodies are listed event
by event.
"""

from __future__ import annotations

import base64
import http
import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from harness.replay import Interaction, Redactor
from harness.replay.bodies import content_type, split_events
from harness.replay.redaction import SECRET_PATTERNS

__all__ = ["mask_secrets", "render_interaction"]

# Headers worth a line by default; secret ones are always listed, masked.
_KEY_REQUEST_HEADERS = ("content-type", "anthropic-version", "anthropic-beta", "openai-beta")
_KEY_RESPONSE_HEADERS = (
    "content-type",
    "request-id",
    "x-request-id",
    "openai-model",
    "openai-processing-ms",
    "retry-after",
)
_MASK = "<redacted>"


def mask_secrets(text: str, redactor: Redactor) -> str:
    """``text`` with configured secret values and key-like strings replaced."""
    text = redactor.redact_text(text)
    for pattern in SECRET_PATTERNS.values():
        text = pattern.sub(lambda m: f"{m.group()[:6]}...{_MASK}", text)
    return text


def _masked_url(url: str, redactor: Redactor) -> str:
    parts = urlsplit(url)
    if "@" in parts.netloc:
        parts = parts._replace(netloc=f"{_MASK}@{parts.netloc.rpartition('@')[2]}")
    if not parts.query:
        return urlunsplit(parts)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    shown = [(k, _MASK if redactor.is_secret_param(k) else v) for k, v in pairs]
    return urlunsplit(parts._replace(query=urlencode(shown, safe="<>")))


def _header_lines(
    headers: list[tuple[str, str]], wanted: Iterable[str], redactor: Redactor, everything: bool
) -> list[str]:
    keep = set(wanted)
    lines = []
    for name, value in headers:
        lowered = name.lower()
        if redactor.is_secret_header(lowered):
            lines.append(f"{lowered}: {_MASK}")
        elif everything or lowered in keep:
            lines.append(f"{lowered}: {value}")
    return lines


def _block(label: str, text: str) -> list[str]:
    """``label: text`` on one line, or ``label:`` followed by the text indented."""
    if "\n" not in text and len(text) <= 100:
        return [f"{label}: {json.dumps(text, ensure_ascii=False)}"]
    return [f"{label}:", *(f"  | {line}".rstrip() for line in text.splitlines())]


def _json_lines(value: Any) -> list[str]:
    return json.dumps(value, indent=2, ensure_ascii=False).splitlines()


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- SSE ---------------------------------------------------------------------------------------


def _sse_events(headers: list[tuple[str, str]], body: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) per SSE event; comments, ids and retries are left out."""
    events = []
    for chunk in split_events(headers, body):
        name: str | None = None
        data: list[str] = []
        for line in chunk.decode("utf-8", errors="replace").splitlines():
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if name is not None or data:
            events.append((name, "\n".join(data)))
    return events


def _parsed(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _openai_chat(payloads: list[Any]) -> list[str] | None:
    chunks = [
        p for p in payloads if isinstance(p, dict) and p.get("object") == "chat.completion.chunk"
    ]
    if not chunks:
        return None
    choices: dict[int, dict[str, Any]] = {}
    usage: Any = None
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            state = choices.setdefault(
                choice.get("index", 0),
                {"text": "", "reasoning": "", "refusal": "", "tools": {}, "finish": None},
            )
            delta = choice.get("delta") or {}
            state["text"] += delta.get("content") or ""
            state["reasoning"] += delta.get("reasoning_content") or delta.get("reasoning") or ""
            state["refusal"] += delta.get("refusal") or ""
            for call in delta.get("tool_calls") or []:
                tool = state["tools"].setdefault(call.get("index", 0), {"name": "", "args": ""})
                function = call.get("function") or {}
                tool["name"] += function.get("name") or ""
                tool["args"] += function.get("arguments") or ""
            state["finish"] = choice.get("finish_reason") or state["finish"]
    lines = [f"reassembled: OpenAI chat completion, {len(chunks)} chunks"]
    if model := chunks[0].get("model"):
        lines.append(f"model: {model}")
    for index, state in sorted(choices.items()):
        prefix = f"choices[{index}]." if len(choices) > 1 else ""
        for label in ("reasoning", "refusal", "text"):
            if state[label]:
                lines.extend(_block(prefix + label, state[label]))
        for tool in state["tools"].values():
            lines.append(f"{prefix}tool_call: {tool['name']}({tool['args']})")
        if state["finish"]:
            lines.append(f"{prefix}finish_reason: {state['finish']}")
    if usage is not None:
        lines.append(f"usage: {_compact(usage)}")
    return lines


def _openai_responses(payloads: list[Any]) -> list[str] | None:
    typed = [
        p
        for p in payloads
        if isinstance(p, dict) and str(p.get("type", "")).startswith("response.")
    ]
    if not typed:
        return None
    text = reasoning = ""
    usage: Any = None
    status = None
    for event in typed:
        kind = event["type"]
        if kind == "response.output_text.delta":
            text += event.get("delta") or ""
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            reasoning += event.get("delta") or ""
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            response = event.get("response") or {}
            usage, status = response.get("usage"), response.get("status")
    lines = [f"reassembled: OpenAI Responses stream, {len(typed)} events"]
    if reasoning:
        lines.extend(_block("reasoning", reasoning))
    lines.extend(_block("text", text))
    if status:
        lines.append(f"status: {status}")
    if usage is not None:
        lines.append(f"usage: {_compact(usage)}")
    return lines


def _anthropic(payloads: list[Any]) -> list[str] | None:
    typed = [p for p in payloads if isinstance(p, dict) and "type" in p]
    if not any(p["type"] == "message_start" for p in typed):
        return None
    model = stop = None
    usage: dict[str, Any] = {}
    blocks: dict[int, dict[str, Any]] = {}
    errors = []
    for event in typed:
        kind = event["type"]
        if kind == "message_start":
            message = event.get("message") or {}
            model = message.get("model")
            usage.update(message.get("usage") or {})
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            blocks[event.get("index", 0)] = {
                "type": block.get("type"),
                "name": block.get("name"),
                "text": block.get("text") or block.get("thinking") or "",
            }
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            block = blocks.setdefault(event.get("index", 0), {"type": "text", "text": ""})
            block["text"] += (
                delta.get("text") or delta.get("thinking") or delta.get("partial_json") or ""
            )
        elif kind == "message_delta":
            stop = (event.get("delta") or {}).get("stop_reason") or stop
            usage.update(event.get("usage") or {})
        elif kind == "error":
            errors.append(_compact(event.get("error")))
    lines = [f"reassembled: Anthropic message, {len(typed)} events"]
    if model:
        lines.append(f"model: {model}")
    for index, block in sorted(blocks.items()):
        if block["type"] == "tool_use":
            lines.append(f"content[{index}] tool_use: {block['name']}({block['text']})")
        else:
            lines.extend(_block(f"content[{index}] {block['type']}", block["text"]))
    if stop:
        lines.append(f"stop_reason: {stop}")
    lines.extend(f"error: {error}" for error in errors)
    if usage:
        lines.append(f"usage: {_compact(usage)}")
    return lines


_REASSEMBLERS: tuple[Callable[[list[Any]], list[str] | None], ...] = (
    _openai_chat,
    _openai_responses,
    _anthropic,
)


def _sse_lines(headers: list[tuple[str, str]], body: bytes, raw: bool) -> list[str]:
    events = _sse_events(headers, body)
    if not raw:
        payloads = [_parsed(data) for _, data in events]
        for reassemble in _REASSEMBLERS:
            lines = reassemble(payloads)
            if lines is not None:
                return lines
    lines = [f"stream: {len(events)} SSE events"]
    for i, (name, data) in enumerate(events):
        parsed = _parsed(data)
        shown = data if parsed is None else _compact(parsed)
        lines.append(f"[{i}]" + (f" event={name}" if name else "") + f" {shown}")
    return lines


# -- other bodies ------------------------------------------------------------------------------


def _aws_frame(frame: bytes) -> str:
    """One AWS event-stream frame as ``:event-type`` and its payload (best effort)."""
    if len(frame) < 16:
        return f"{len(frame)} bytes (truncated frame)"
    headers_length = int.from_bytes(frame[4:8], "big")
    headers, at = {}, 12
    while at < 12 + headers_length:
        name_length = frame[at]
        name = frame[at + 1 : at + 1 + name_length].decode("utf-8", errors="replace")
        at += 1 + name_length
        if frame[at] != 7:  # only string headers are of interest here
            break
        value_length = int.from_bytes(frame[at + 1 : at + 3], "big")
        headers[name] = frame[at + 3 : at + 3 + value_length].decode("utf-8", errors="replace")
        at += 3 + value_length
    payload = frame[12 + headers_length : -4]
    try:
        shown = _compact(json.loads(payload))
    except ValueError:
        shown = f"{len(payload)} bytes"
    kind = headers.get(":event-type") or headers.get(":exception-type") or "?"
    return f"event={kind} {shown}"


def _body_lines(headers: list[tuple[str, str]], body: bytes, raw: bool) -> list[str]:
    if not body:
        return ["(empty body)"]
    media_type = content_type(headers)
    if media_type == "text/event-stream":
        return _sse_lines(headers, body, raw)
    if media_type in ("application/x-ndjson", "application/jsonl", "application/json-lines"):
        events = split_events(headers, body)
        return [f"stream: {len(events)} NDJSON lines"] + [
            f"[{i}] {line.decode('utf-8', errors='replace').strip()}"
            for i, line in enumerate(events)
        ]
    if media_type == "application/vnd.amazon.eventstream":
        frames = split_events(headers, body)
        return [f"stream: {len(frames)} AWS event-stream frames"] + [
            f"[{i}] {_aws_frame(frame)}" for i, frame in enumerate(frames)
        ]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        preview = base64.b64encode(body[:48]).decode("ascii")
        return [f"({len(body)} bytes of binary {media_type or 'data'}; base64 {preview}...)"]
    parsed = _parsed(text) if "json" in media_type or text[:1] in "{[" else None
    return _json_lines(parsed) if parsed is not None else text.splitlines()


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def render_interaction(
    index: int,
    interaction: Interaction,
    redactor: Redactor,
    *,
    all_headers: bool = False,
    raw: bool = False,
) -> str:
    """``interaction`` as readable text, with every secret masked."""
    req, resp = interaction.request, interaction.response
    title = f"=== interactions[{index}]"
    if interaction.recorded_at is not None:
        title += f" recorded {interaction.recorded_at.isoformat()}"
    if interaction.duration is not None:
        title += f" ({interaction.duration:.3f} s)"
    lines = [title, f"{req.method} {_masked_url(req.uri, redactor)}"]
    indent = "    "
    request_lines = _header_lines(req.headers, _KEY_REQUEST_HEADERS, redactor, all_headers)
    if req.body:  # secret-named fields (password, client_secret...) shown as REDACTED
        request_lines.extend(
            _body_lines(req.headers, redactor.redact_body(req.headers, req.body), raw=True)
        )
    lines.extend(indent + line for line in request_lines)
    lines.append(f"-> {resp.status} {_reason(resp.status)}".rstrip())
    response_lines = _header_lines(resp.headers, _KEY_RESPONSE_HEADERS, redactor, all_headers)
    response_lines.extend(
        _body_lines(resp.headers, redactor.redact_body(resp.headers, resp.body), raw)
    )
    lines.extend(indent + line for line in response_lines)
    return mask_secrets("\n".join(lines), redactor)
