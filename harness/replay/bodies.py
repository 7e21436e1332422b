"""HTTP bodies on disk and on the wire: content decoding, YAML forms, event boundaries."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable
from typing import Any

import brotli

__all__ = [
    "NDJSON_TYPES",
    "body_from_yaml",
    "body_to_yaml",
    "content_type",
    "decode_content",
    "header_value",
    "split_events",
    "split_text_events",
]

NDJSON_TYPES: frozenset[str] = frozenset(
    {"application/x-ndjson", "application/jsonl", "application/json-lines"}
)
"""Media types whose bodies are one JSON document per line."""

_SSE_SEPARATORS = ("\r\n\r\n", "\n\n", "\r\r")
_AWS_PRELUDE = 12  # total length (4), headers length (4), prelude CRC (4)


def header_value(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The first value of header ``name`` (case-insensitive), or None."""
    lowered = name.lower()
    for key, value in headers:
        if key.lower() == lowered:
            return value
    return None


def content_type(headers: Iterable[tuple[str, str]]) -> str:
    """The media type of a message, lower-cased, without parameters ("" when absent)."""
    value = header_value(headers, "content-type") or ""
    return value.split(";", 1)[0].strip().lower()


def _decode_one(encoding: str, body: bytes) -> bytes | None:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompress(body, wbits=47)  # 32 + 15: gzip or zlib header
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, wbits=-15)  # raw deflate, as some servers send
    if encoding == "br":
        return bytes(brotli.decompress(body))
    if encoding == "identity":
        return body
    return None


def _textual(media_type: str) -> bool:
    return media_type.startswith("text/") or "json" in media_type or media_type == ""


def decode_content(
    headers: list[tuple[str, str]], body: bytes
) -> tuple[list[tuple[str, str]], bytes]:
    """Undo ``content-encoding`` (gzip, deflate, br) and drop the header.

    A body whose encoding cannot be undone is returned unchanged with its header kept, so a
    replay still hands the client exactly what the server sent. A gzip body whose header was
    lost (the ``1f 8b`` magic on a textual media type) is decoded too.
    """
    encodings = [
        part.strip().lower()
        for key, value in headers
        if key.lower() == "content-encoding"
        for part in value.split(",")
        if part.strip()
    ]
    if not encodings:
        if body[:2] == b"\x1f\x8b" and _textual(content_type(headers)):
            try:
                return headers, zlib.decompress(body, wbits=47)
            except zlib.error:
                return headers, body
        return headers, body
    decoded: bytes | None = body
    for encoding in reversed(encodings):
        try:
            decoded = _decode_one(encoding, decoded) if decoded is not None else None
        except (zlib.error, OSError, ValueError):
            decoded = None
    if decoded is None:
        return headers, body
    kept = [(k, v) for k, v in headers if k.lower() not in ("content-encoding", "content-length")]
    return kept, decoded


def _sse_separator(text: str) -> str:
    for separator in _SSE_SEPARATORS:
        if separator in text:
            return separator
    return "\n\n"


def _split_text(text: str, separator: str) -> tuple[list[str], bool]:
    pieces = text.split(separator)
    terminated = pieces[-1] == ""
    if terminated:
        pieces.pop()
    return pieces, terminated


def split_text_events(media_type: str, text: str) -> tuple[list[str], str] | None:
    """The SSE events or NDJSON lines of ``text`` and their separator, as the YAML form cuts
    them (``separator.join(pieces) == text``); None for other media types."""
    if media_type == "text/event-stream":
        separator = _sse_separator(text)
    elif media_type in NDJSON_TYPES:
        separator = "\n"
    else:
        return None
    return text.split(separator), separator


def body_to_yaml(headers: list[tuple[str, str]], body: bytes) -> dict[str, Any] | None:
    """The YAML form of a (decoded) body: json, sse, ndjson, text or base64."""
    if not body:
        return None
    media_type = content_type(headers)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(body).decode("ascii")}
    if "\x00" in text or media_type == "application/vnd.amazon.eventstream":
        return {"base64": base64.b64encode(body).decode("ascii")}
    if media_type == "text/event-stream":
        separator = _sse_separator(text)
        events, terminated = _split_text(text, separator)
        node: dict[str, Any] = {"sse": events}
        if separator != "\n\n":
            node["separator"] = separator
        if not terminated:
            node["terminated"] = False
        return node
    if media_type in NDJSON_TYPES:
        lines, terminated = _split_text(text, "\n")
        node = {"ndjson": lines}
        if not terminated:
            node["terminated"] = False
        return node
    if "json" in media_type:
        try:
            parsed = json.loads(text)
        except ValueError:
            return {"text": text}
        return {"json": parsed}
    return {"text": text}


_BODY_KINDS = ("json", "sse", "ndjson", "text", "base64")


def body_from_yaml(node: Any, where: str) -> bytes:
    """Bytes of a harness-format body node; raises ValueError naming the bad key."""
    if node is None:
        return b""
    if not isinstance(node, dict):
        raise ValueError(f"{where}: expected a mapping with one of {', '.join(_BODY_KINDS)}")
    kinds = [kind for kind in _BODY_KINDS if kind in node]
    extra = set(node) - {*_BODY_KINDS, "separator", "terminated"}
    if len(kinds) != 1 or extra:
        raise ValueError(f"{where}: expected exactly one of {', '.join(_BODY_KINDS)}")
    kind = kinds[0]
    value = node[kind]
    if kind == "json":
        return json.dumps(value, ensure_ascii=False).encode("utf-8")
    if kind == "base64":
        if not isinstance(value, str):
            raise ValueError(f"{where}.base64: expected a string")
        try:
            return base64.b64decode(value, validate=False)
        except ValueError as exc:
            raise ValueError(f"{where}.base64: {exc}") from exc
    if kind == "text":
        if not isinstance(value, str):
            raise ValueError(f"{where}.text: expected a string")
        return value.encode("utf-8")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{where}.{kind}: expected a list of strings")
    separator = node.get("separator", "\n\n" if kind == "sse" else "\n")
    if not isinstance(separator, str) or not separator:
        raise ValueError(f"{where}.separator: expected a non-empty string")
    text = separator.join(value)
    if node.get("terminated", True) and value:
        text += separator
    return text.encode("utf-8")


def _split_aws_frames(body: bytes) -> list[bytes]:
    frames = []
    start = 0
    while start + _AWS_PRELUDE <= len(body):
        total = int.from_bytes(body[start : start + 4], "big")
        if total < _AWS_PRELUDE + 4 or start + total > len(body):
            break  # not a well-formed frame: hand over the rest as it is
        frames.append(body[start : start + total])
        start += total
    if start < len(body):
        frames.append(body[start:])
    return frames


def _split_after(body: bytes, separator: bytes) -> list[bytes]:
    pieces = []
    start = 0
    while start < len(body):
        cut = body.find(separator, start)
        end = len(body) if cut == -1 else cut + len(separator)
        pieces.append(body[start:end])
        start = end
    return pieces


def split_events(headers: Iterable[tuple[str, str]], body: bytes) -> list[bytes]:
    """A body cut at its event boundaries (SSE events, NDJSON lines, AWS frames), for replay."""
    if not body:
        return []
    media_type = content_type(headers)
    if media_type == "application/vnd.amazon.eventstream":
        return _split_aws_frames(body)
    if media_type == "text/event-stream":
        separator = _sse_separator(body.decode("utf-8", errors="replace")).encode()
        return _split_after(body, separator)
    if media_type in NDJSON_TYPES:
        return _split_after(body, b"\n")
    return [body]
