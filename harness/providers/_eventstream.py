"""The AWS event-stream framing (``application/vnd.amazon.eventstream``), decoded incrementally.

Each message is one binary frame::

    total length (uint32) | headers length (uint32) | prelude CRC32 (of the 8 bytes before)
    headers (name length uint8, name, type uint8, value) | payload | message CRC32

Bedrock's ConverseStream and InvokeModelWithResponseStream answer with such frames; the
``:message-type`` header says ``event`` or ``exception``, ``:event-type`` /
``:exception-type`` name it, and the payload is JSON.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EventStreamDecoder", "EventStreamError", "EventStreamMessage", "encode_message"]

_PRELUDE = 12  # total length, headers length, prelude CRC
_CRC = 4
_MAX_MESSAGE = 16 * 1024 * 1024  # the format's limit on one message


class EventStreamError(ValueError):
    """Bytes that are not a well-formed event-stream message (bad length, CRC or header)."""


@dataclass(frozen=True)
class EventStreamMessage:
    """One decoded frame: its headers and its raw payload."""

    headers: dict[str, Any] = field(default_factory=dict)
    payload: bytes = b""

    @property
    def message_type(self) -> str:
        """``event``, ``exception`` or ``error`` (``event`` when the header is missing)."""
        return str(self.headers.get(":message-type") or "event")

    @property
    def event_type(self) -> str | None:
        """The ``:event-type`` (or ``:exception-type``) header."""
        name = self.headers.get(":event-type") or self.headers.get(":exception-type")
        return str(name) if name is not None else None


def _header_value(kind: int, data: bytes, at: int) -> tuple[Any, int]:
    if kind == 0:
        return True, at
    if kind == 1:
        return False, at
    fixed = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}
    if kind in fixed:
        fmt = fixed[kind]
        size = struct.calcsize(fmt)
        (value,) = struct.unpack_from(fmt, data, at)
        return value, at + size  # a timestamp (8) is milliseconds since the epoch
    if kind in (6, 7):
        (length,) = struct.unpack_from(">H", data, at)
        raw = data[at + 2 : at + 2 + length]
        if len(raw) != length:
            raise EventStreamError("a header value runs past the headers")
        return (raw.decode("utf-8") if kind == 7 else raw), at + 2 + length
    if kind == 9:
        raw = data[at : at + 16]
        if len(raw) != 16:
            raise EventStreamError("a uuid header value runs past the headers")
        return uuid.UUID(bytes=raw), at + 16
    raise EventStreamError(f"unknown header value type {kind}")


def _decode_headers(data: bytes) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    at = 0
    try:
        while at < len(data):
            length = data[at]
            name = data[at + 1 : at + 1 + length].decode("utf-8")
            at += 1 + length
            kind = data[at]
            value, at = _header_value(kind, data, at + 1)
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError(f"malformed headers ({exc})") from exc
    return headers


class EventStreamDecoder:
    """Feed bytes as they arrive; get back the messages they complete."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received that do not make a whole message yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[EventStreamMessage]:
        """The messages completed by ``data``; EventStreamError for a corrupt frame."""
        self._buffer.extend(data)
        messages = []
        while len(self._buffer) >= _PRELUDE:
            total, headers_length, prelude_crc = struct.unpack_from(">III", self._buffer, 0)
            if zlib.crc32(self._buffer[:8]) != prelude_crc:
                raise EventStreamError("prelude CRC mismatch: not an event-stream frame")
            if total < _PRELUDE + _CRC + headers_length or total > _MAX_MESSAGE:
                raise EventStreamError(
                    f"frame length {total} does not fit its headers ({headers_length})"
                )
            if len(self._buffer) < total:
                break
            frame = bytes(self._buffer[:total])
            del self._buffer[:total]
            (message_crc,) = struct.unpack_from(">I", frame, total - _CRC)
            if zlib.crc32(frame[: total - _CRC]) != message_crc:
                raise EventStreamError("message CRC mismatch: the frame is corrupt")
            headers = _decode_headers(frame[_PRELUDE : _PRELUDE + headers_length])
            payload = frame[_PRELUDE + headers_length : total - _CRC]
            messages.append(EventStreamMessage(headers, payload))
        return messages


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One frame with string headers (for tests and fakes that serve Bedrock streams)."""
    encoded = b""
    for name, value in headers.items():
        name_bytes, value_bytes = name.encode(), value.encode()
        encoded += bytes([len(name_bytes)]) + name_bytes + b"\x07"
        encoded += struct.pack(">H", len(value_bytes)) + value_bytes
    total = _PRELUDE + len(encoded) + len(payload) + _CRC
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + encoded + payload
    return body + struct.pack(">I", zlib.crc32(body))
