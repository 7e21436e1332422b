"""Sending raw-HTTP requests and reading their answers: error bodies, JSON bodies, and
streams (server-sent events, NDJSON) through one :class:`StreamReader`.

The SDKs build the requests and raise the HTTP status errors; harness reads the successful
answers itself, so that whatever comes back is either what the wire format says or a harness
error: a body that is not (HTML from a gateway, invalid JSON, JSON where a stream was asked
for) is a ResponseFormatError naming the provider, status, content-type and the body's first
200 characters; a transport failure at any point of a stream is an APIConnectionError or
APITimeoutError (retried by the one policy); a stream cut inside an event is a StreamError.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx2

from harness.errors import HarnessError, ResponseFormatError, StreamError
from harness.providers._sdk import transport_error

__all__ = [
    "EXCERPT_CHARS",
    "NDJSONStream",
    "SSEEvent",
    "SSEParser",
    "SSEStream",
    "StreamReader",
    "error_body",
    "format_error",
    "json_answer",
    "post",
]

EXCERPT_CHARS = 200  # of a body, quoted in a ResponseFormatError
_KEEP_BYTES = 4 * EXCERPT_CHARS  # enough bytes for 200 characters of UTF-8
_LINE_END = re.compile(r"(\r\n|\r|\n)")


async def post(
    client: httpx2.AsyncClient,
    url: str,
    *,
    headers: Any,
    timeout: float,
    stream: bool,
    provider: str,
    model: str | None,
    json: Any = None,
    content: bytes | None = None,
) -> httpx2.Response:
    """POST one request of a raw-HTTP provider (``json`` or ``content``; connecting may take at
    most 10 s of ``timeout``): a harness error (a replay miss) passes through, any other
    transport failure becomes harness's connection or timeout error."""
    request = client.build_request(
        "POST",
        url,
        json=json,
        content=content,
        headers=headers,
        timeout=httpx2.Timeout(timeout, connect=min(timeout, 10.0)),
    )
    try:
        return await client.send(request, stream=stream)
    except HarnessError:
        raise
    except Exception as exc:
        mapped = transport_error(exc, provider=provider, model=model)
        if mapped is None:
            raise
        raise mapped from exc


async def error_body(
    response: Any,
    *,
    read_errors: Literal["ignore", "raise"] = "ignore",
    provider: str = "",
    model: str | None = None,
) -> Any:
    """The body of an error answer, closed after reading: its JSON when it is JSON (whatever
    its content-type says), else its text.

    A body that cannot be read is "" with ``read_errors="ignore"`` (the status says enough);
    with ``"raise"`` the failure is raised as harness's connection or timeout error of
    ``provider``.
    """
    try:
        content = await response.aread()
    except Exception as exc:
        if read_errors == "ignore":
            content = b""
        elif isinstance(exc, HarnessError):
            raise
        else:
            mapped = transport_error(exc, provider=provider, model=model)
            if mapped is None:
                raise
            raise mapped from exc
    finally:
        await response.aclose()
    try:
        return json.loads(content)
    except ValueError:
        return content.decode("utf-8", errors="replace")


def _media_type(response: Any) -> str:
    return str(response.headers.get("content-type") or "").split(";", 1)[0].strip().lower()


def _excerpt(data: bytes) -> str:
    return data[:_KEEP_BYTES].decode("utf-8", errors="replace")[:EXCERPT_CHARS]


def format_error(
    problem: str, response: Any, head: bytes, *, provider: str, model: str | None
) -> ResponseFormatError:
    """A ResponseFormatError for ``response`` (whose body starts with ``head``)."""
    return ResponseFormatError(
        problem,
        provider=provider,
        model=model,
        status_code=response.status_code,
        content_type=response.headers.get("content-type"),
        body_excerpt=_excerpt(head),
    )


async def json_answer(response: Any, *, provider: str, model: str | None) -> dict[str, Any]:
    """The JSON object of a non-streaming 2xx answer, or a ResponseFormatError."""
    try:
        content: bytes = await response.aread()
    except HarnessError:
        raise
    except Exception as exc:
        mapped = transport_error(exc, provider=provider, model=model)
        if mapped is None:
            raise
        if isinstance(mapped, ResponseFormatError):  # a body its Content-Encoding does not fit
            problem = mapped.message
            raise format_error(problem, response, b"", provider=provider, model=model) from exc
        raise mapped from exc
    media = _media_type(response)
    if media == "text/event-stream":
        problem = "a request without stream=True got an SSE stream, not a JSON answer"
        raise format_error(problem, response, content, provider=provider, model=model)
    try:
        data = json.loads(content)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        problem = f"the answer is not valid JSON ({exc})"
        raise format_error(problem, response, content, provider=provider, model=model) from exc
    if not isinstance(data, dict):
        problem = f"the answer is JSON but not an object (a {type(data).__name__})"
        raise format_error(problem, response, content, provider=provider, model=model)
    return data


@dataclass(frozen=True)
class SSEEvent:
    """One server-sent event; ``terminated`` is False for an event the body ended inside."""

    event: str | None
    data: str
    terminated: bool = True


class SSEParser:
    """The event-stream format (WHATWG HTML, "server-sent events"), fed text incrementally.

    Lines end with CRLF, LF or CR; ``data`` lines of one event are joined with newlines; a
    blank line dispatches the event; comments (``:``) and ``id``/``retry`` fields are ignored.
    """

    def __init__(self) -> None:
        self._pending = ""
        self._event: str | None = None
        self._data: list[str] | None = None

    def feed(self, text: str) -> list[SSEEvent]:
        """The events completed by ``text``."""
        parts = _LINE_END.split(self._pending + text)
        self._pending = parts.pop()  # the unterminated rest
        if self._pending == "" and parts and parts[-1] == "\r":
            # A CR at the very end may be the first half of a CRLF: wait for the next text.
            parts.pop()
            self._pending = parts.pop() + "\r"
        events = []
        for line in parts[0::2]:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def end(self) -> list[SSEEvent]:
        """The events left when the body ends: a last line and event without their blank line
        are still read, marked ``terminated=False``."""
        events = self.feed("")
        pending, self._pending = self._pending, ""
        if pending:  # a last line, complete when a CR ends it (no LF can follow now)
            event = self._line(pending.removesuffix("\r"))
            if event is not None:
                events.append(event)
        if self._data is not None:
            events.append(SSEEvent(self._event, "\n".join(self._data), terminated=False))
        self._event, self._data = None, None
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            event = None
            if self._data is not None:
                event = SSEEvent(self._event, "\n".join(self._data))
            self._event, self._data = None, None
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data = [*(self._data or []), value]
        elif name == "event":
            self._event = value
        return None


class StreamReader:
    """A streamed 2xx answer, read as it arrives; every failure is a harness error.

    The one reader under every stream format (server-sent events, NDJSON lines, Gemini's
    JSON array, AWS event-stream frames): it checks the media type, maps transport failures,
    keeps the body's first bytes for error messages, decodes UTF-8 strictly (for the text
    formats), and counts the items its subclass reads (``count``). A subclass names its
    format and item in the class attributes.
    """

    format_name = "SSE"  # in "an answer with no SSE event"
    expected = "an SSE stream"  # in "got a text/html answer, not an SSE stream"
    item = "event"  # what ``count`` counts
    item_article = "an"
    media_types: frozenset[str] | None = None  # accepted ones; None: any
    untyped_ok = True  # an answer without a content-type is read as this format

    def __init__(self, response: Any, *, provider: str, model: str | None) -> None:
        self.response = response
        self.provider = provider
        self.model = model
        self.count = 0  # items read so far
        self._head = b""

    def format_error(self, problem: str, head: bytes | None = None) -> ResponseFormatError:
        """A ResponseFormatError for this answer, quoting ``head`` (the bytes at fault) when
        given, else the start of its body."""
        quoted = self._head if head is None else head
        return format_error(
            problem, self.response, quoted, provider=self.provider, model=self.model
        )

    def cut(self, problem: str) -> StreamError:
        """A StreamError for a stream that ended before its end marker."""
        return StreamError(
            f"{problem}; the answer may be cut short (after {self.count} {self.item}s)",
            provider=self.provider,
            model=self.model,
            code="incomplete_stream",
        )

    def no_items(self) -> ResponseFormatError:
        """The error for an answer that ended without a single item."""
        return self.format_error(
            f"a stream=True request got an answer with no {self.format_name} {self.item}"
        )

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive.

        An answer of another media type is a ResponseFormatError quoting its body; a
        transport failure is an APIConnectionError/APITimeoutError.
        """
        media = _media_type(self.response)
        if media:
            accepted = self.media_types is None or media in self.media_types
        else:
            accepted = self.untyped_ok
        if not accepted:
            await self._read_head()
            raise self.format_error(
                f"a stream=True request got a {media or 'untyped'} answer, not {self.expected}"
            )
        chunks = aiter(self.response.aiter_bytes())
        while True:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            except HarnessError:
                raise
            except Exception as exc:
                raise self._mapped(exc) from exc
            if len(self._head) < _KEEP_BYTES:
                self._head += chunk[: _KEEP_BYTES - len(self._head)]
            yield chunk

    async def texts(self) -> AsyncIterator[str]:
        """The body's text, decoded piece by piece as its bytes arrive (the last piece may be
        empty).

        As :meth:`chunks`; besides, bytes that are not UTF-8 are a ResponseFormatError, and a
        body that ends inside a character a StreamError.
        """
        decoder = codecs.getincrementaldecoder("utf-8")()  # strict: bad bytes are an error
        async for chunk in self.chunks():
            yield self._decode(decoder, chunk)
        try:
            rest = decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:  # the body ended inside a character
            raise self.cut("the stream ended inside a UTF-8 character") from exc
        yield rest

    def json_object(self, text: str, *, terminated: bool = True) -> dict[str, Any]:
        """``text`` (item ``count``) as a JSON object; a StreamError for an item the body
        ended inside (``terminated=False``), else a ResponseFormatError."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            if not terminated:
                raise self.cut(f"the stream ended inside {self.item_article} {self.item}") from exc
            raise self.format_error(
                f"{self.item} {self.count} of the stream is not valid JSON ({exc}): "
                f"{text[:EXCERPT_CHARS]!r}"
            ) from exc
        if not isinstance(data, dict):
            raise self.format_error(
                f"{self.item} {self.count} of the stream is not a JSON object: "
                f"{text[:EXCERPT_CHARS]!r}"
            )
        return data

    async def aclose(self) -> None:
        """Close the answer (and its connection)."""
        await self.response.aclose()

    def _decode(self, decoder: codecs.IncrementalDecoder, chunk: bytes) -> str:
        try:
            return decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise self.format_error(
                f"the stream is not valid UTF-8 after {self.item} {self.count} ({exc.reason}, "
                f"byte {exc.object[exc.start]:#04x})"
            ) from exc

    async def _read_head(self) -> None:
        try:
            self._head = (await self.response.aread())[:_KEEP_BYTES]
        except HarnessError:
            raise
        except Exception as exc:
            raise self._mapped(exc) from exc

    def _mapped(self, exc: Exception) -> Exception:
        mapped = transport_error(exc, provider=self.provider, model=self.model)
        if mapped is None:
            raise exc
        return mapped


class SSEStream(StreamReader):
    """A streamed 2xx answer read as server-sent events."""

    media_types = frozenset({"text/event-stream"})

    async def events(self) -> AsyncIterator[SSEEvent]:
        """The events of the answer, as they arrive.

        An answer that is not an event stream (JSON, HTML...) or has no event at all is a
        ResponseFormatError; a transport failure is an APIConnectionError/APITimeoutError.
        """
        parser = SSEParser()
        async for text in self.texts():
            for event in parser.feed(text):
                self.count += 1
                yield event
        for event in parser.end():
            self.count += 1
            yield event
        if self.count == 0:
            raise self.no_items()

    def json(self, event: SSEEvent) -> dict[str, Any]:
        """An event's data as a JSON object; a StreamError for an event the body ended
        inside, else a ResponseFormatError."""
        return self.json_object(event.data, terminated=event.terminated)


class NDJSONStream(StreamReader):
    """A streamed 2xx answer read as newline-delimited JSON objects (Ollama's streams)."""

    format_name = "NDJSON"
    expected = "NDJSON"
    item = "line"
    item_article = "a"
    media_types = frozenset({"application/x-ndjson", "application/json", "application/jsonl"})

    async def objects(self) -> AsyncIterator[dict[str, Any]]:
        """The JSON objects of the answer, as their lines arrive; blank lines are skipped, a
        last line without its newline is still read."""
        pending = ""
        async for text in self.texts():
            *lines, pending = (pending + text).split("\n")
            for line in lines:
                if line.strip():
                    self.count += 1
                    yield self.json_object(line)
        if pending.strip():
            self.count += 1
            yield self.json_object(pending, terminated=False)
        if self.count == 0:
            raise self.no_items()
