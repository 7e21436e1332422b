"""``FaultTransport``: deterministic failures for testing retries and error handling.

A schedule says which request gets which fault, in order; requests past its end go through::

    faults = Faults().status(429, retry_after=2, times=2).timeout("read").then_ok()
    client = httpx2.AsyncClient(transport=FaultTransport(inner, faults))

Faults use the client library's own exceptions (``ReadTimeout``, ``ConnectError``,
``RemoteProtocolError``...) and provider-shaped JSON error bodies, so SDKs and retry policies
see exactly what a real failure looks like. Waits (slow first byte) go through an injectable
``sleep`` so tests need not really wait. Serves httpx and httpx2, sync and async clients.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

from harness import _clock
from harness._http import reaches_upstream
from harness.replay.adapters import library_for
from harness.replay.bodies import content_type

__all__ = [
    "CutStreamFault",
    "Fault",
    "FaultTransport",
    "Faults",
    "Injection",
    "ResetFault",
    "SlowFirstByteFault",
    "StatusFault",
    "TimeoutFault",
    "error_body",
]

Provider = Literal["auto", "openai", "anthropic"]

# status -> (OpenAI error type, code, message), as the OpenAI API sends them
_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
# status -> (Anthropic error type, message)
_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out."),
    529: ("overloaded_error", "Overloaded"),
}


def _is_anthropic(request: Any) -> bool:
    return "anthropic-version" in request.headers or request.url.path.endswith("/v1/messages")


def error_body(status: int, provider: Literal["openai", "anthropic"], request_id: str) -> Any:
    """The JSON error body ``provider`` sends with ``status``."""
    if provider == "anthropic":
        kind, message = _ANTHROPIC_ERRORS.get(
            status, ("api_error" if status >= 500 else "invalid_request_error", f"HTTP {status}")
        )
        return {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": request_id,
        }
    kind, code, text = _OPENAI_ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "")
    )
    return {
        "error": {"message": text or f"HTTP {status}", "type": kind, "param": None, "code": code}
    }


class Fault:
    """One injected failure: an optional wait, then a replacement or a change to the response."""

    def delay(self, request: Any) -> float:
        """Seconds to wait before anything else happens to ``request``."""
        return 0.0

    def intercept(self, request: Any, module: ModuleType, number: int) -> Any:
        """A response (or a raise) instead of the inner transport's; None to go on to it."""
        return None

    def wrap(self, request: Any, response: Any, module: ModuleType) -> Any:
        """The inner transport's response to ``request``, changed by this fault."""
        return response


@dataclass(frozen=True)
class StatusFault(Fault):
    """An HTTP error status with a provider-shaped JSON body (and Retry-After when given)."""

    status: int
    retry_after: float | str | None = None
    body: Any = None  # None: the provider's own error body for this status
    headers: Mapping[str, str] = field(default_factory=dict)
    provider: Provider = "auto"  # auto: anthropic for /v1/messages or anthropic-version

    def intercept(self, request: Any, module: ModuleType, number: int) -> Any:
        """The error response; the request never reaches the inner transport."""
        anthropic = self.provider == "anthropic" or (
            self.provider == "auto" and _is_anthropic(request)
        )
        request_id = f"req_fault_{number}"
        body = self.body
        if body is None:
            body = error_body(self.status, "anthropic" if anthropic else "openai", request_id)
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"content-type": "application/json"}
        headers["request-id" if anthropic else "x-request-id"] = request_id
        if self.retry_after is not None:
            headers["retry-after"] = _seconds(self.retry_after)
        headers.update({name.lower(): value for name, value in self.headers.items()})
        return module.Response(self.status, headers=headers, content=content, request=request)


def _seconds(value: float | str) -> str:
    if isinstance(value, str):
        return value  # an HTTP date, say
    return str(int(value)) if float(value).is_integer() else str(value)


_TIMEOUTS = {"connect": "ConnectTimeout", "read": "ReadTimeout", "write": "WriteTimeout",
             "pool": "PoolTimeout"}  # fmt: skip


@dataclass(frozen=True)
class TimeoutFault(Fault):
    """The library's own timeout for ``phase`` (connect, read, write or pool)."""

    phase: Literal["connect", "read", "write", "pool"] = "read"

    def intercept(self, request: Any, module: ModuleType, number: int) -> Any:
        """Raise ``ConnectTimeout``/``ReadTimeout``/... of the request's library."""
        raise getattr(module, _TIMEOUTS[self.phase])(f"{self.phase} timed out", request=request)


@dataclass(frozen=True)
class ResetFault(Fault):
    """A connection reset: while connecting (``ConnectError``) or before the response
    (``RemoteProtocolError``: the server disconnected without sending one)."""

    when: Literal["connect", "response"] = "connect"

    def intercept(self, request: Any, module: ModuleType, number: int) -> Any:
        """Raise the library's ``ConnectError`` or ``RemoteProtocolError``."""
        if self.when == "connect":
            raise module.ConnectError("[Errno 104] Connection reset by peer", request=request)
        raise module.RemoteProtocolError(
            "Server disconnected without sending a response.", request=request
        )


_CUT_ERRORS = {"protocol": "RemoteProtocolError", "read": "ReadError", "timeout": "ReadTimeout"}
_SSE_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_LINE_BOUNDARY = re.compile(rb"\n")


@dataclass(frozen=True)
class CutStreamFault(Fault):
    """The response body stops with an error after ``after`` events (SSE events, NDJSON
    lines, else upstream chunks); a shorter body is passed through whole."""

    after: int
    error: Literal["protocol", "read", "timeout"] = "protocol"

    def wrap(self, request: Any, response: Any, module: ModuleType) -> Any:
        """``response`` with a body that breaks off after ``after`` events."""
        media = content_type(response.headers.multi_items())
        boundary = None
        if media == "text/event-stream":
            boundary = _SSE_BOUNDARY
        elif media in ("application/x-ndjson", "application/jsonl", "application/json-lines"):
            boundary = _LINE_BOUNDARY

        error_class: Callable[..., Exception] = getattr(module, _CUT_ERRORS[self.error])

        def cut() -> Exception:
            message = "peer closed connection without sending complete message body"
            return error_class(message, request=request)

        stream = _cut_stream_class(module)(response.stream, self.after, boundary, cut)
        return module.Response(
            response.status_code,
            headers=response.headers.multi_items(),
            stream=stream,
            request=request,
            extensions=response.extensions,
        )


@dataclass(frozen=True)
class SlowFirstByteFault(Fault):
    """The response starts after ``seconds``; past the request's read timeout, that is a
    ``ReadTimeout`` (raised after waiting the timeout, as a real client would)."""

    seconds: float

    def delay(self, request: Any) -> float:
        """``seconds``, or the read timeout when that is shorter."""
        limit = _read_timeout(request)
        return self.seconds if limit is None else min(self.seconds, limit)

    def intercept(self, request: Any, module: ModuleType, number: int) -> Any:
        """Raise ``ReadTimeout`` when the wait passed the request's read timeout."""
        limit = _read_timeout(request)
        if limit is not None and self.seconds > limit:
            raise module.ReadTimeout("timed out waiting for the first byte", request=request)
        return None


def _read_timeout(request: Any) -> float | None:
    value = (request.extensions.get("timeout") or {}).get("read")
    return float(value) if value is not None else None


Step = tuple[Fault | None, int | None]
"""A fault (None: let the request through) and how many requests get it (None: all)."""


@dataclass(frozen=True)
class Faults:
    """An immutable schedule of faults, built step by step; past its end requests go through."""

    steps: tuple[Step, ...] = ()

    def then(self, fault: Fault | None, times: int | None = 1) -> Faults:
        """Give the next ``times`` requests ``fault`` (None: through; ``times=None``: all)."""
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 (or None for always), got {times}")
        return Faults((*self.steps, (fault, times)))

    def status(
        self,
        status: int,
        *,
        retry_after: float | str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        provider: Provider = "auto",
        times: int | None = 1,
    ) -> Faults:
        """Answer with an HTTP error status (a :class:`StatusFault`)."""
        fault = StatusFault(status, retry_after, body, dict(headers or {}), provider)
        return self.then(fault, times)

    def timeout(
        self, phase: Literal["connect", "read", "write", "pool"] = "read", *, times: int | None = 1
    ) -> Faults:
        """Raise the library's timeout for ``phase``."""
        return self.then(TimeoutFault(phase), times)

    def reset(
        self, when: Literal["connect", "response"] = "connect", *, times: int | None = 1
    ) -> Faults:
        """Reset the connection (``ConnectError``, or ``RemoteProtocolError`` for a response)."""
        return self.then(ResetFault(when), times)

    def cut_stream(
        self,
        after: int,
        *,
        error: Literal["protocol", "read", "timeout"] = "protocol",
        times: int | None = 1,
    ) -> Faults:
        """Break the response body off after ``after`` events."""
        return self.then(CutStreamFault(after, error), times)

    def slow_first_byte(self, seconds: float, *, times: int | None = 1) -> Faults:
        """Wait ``seconds`` before the response starts (a ReadTimeout past the read timeout)."""
        return self.then(SlowFirstByteFault(seconds), times)

    def ok(self, times: int | None = 1) -> Faults:
        """Let the next ``times`` requests through untouched."""
        return self.then(None, times)

    def then_ok(self) -> Faults:
        """Let every later request through (the default past the end; this says so)."""
        return self.then(None, None)

    def always(self, fault: Fault) -> Faults:
        """Give every later request ``fault``."""
        return self.then(fault, None)


@dataclass(frozen=True)
class Injection:
    """What the transport did with one request: its number, method, URL and fault (or None)."""

    number: int
    method: str
    url: str
    fault: Fault | None


class FaultTransport:
    """A transport that fails requests on a schedule and sends the rest to ``inner``.

    ``inner`` defaults to the client library's own network transport. ``when`` selects the
    requests the schedule applies to (the others go through without using a step). ``sleep``
    and ``async_sleep`` do the waiting, for tests that must not really wait.
    """

    def __init__(
        self,
        inner: Any = None,
        faults: Faults | Iterable[Fault | None] = (),
        *,
        when: Callable[[Any], bool] | None = None,
        sleep: Callable[[float], None] = _clock.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = _clock.async_sleep,
    ) -> None:
        self._inner = inner
        schedule = faults if isinstance(faults, Faults) else Faults(tuple((f, 1) for f in faults))
        self.faults = schedule
        self._when = when
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._lock = threading.Lock()
        self._step = 0
        self._used = 0
        self._owned: dict[tuple[str, bool], Any] = {}
        self.history: list[Injection] = []

    def handle_request(self, request: Any) -> Any:
        """Answer a sync client's request (httpx or httpx2)."""
        library = library_for(request)
        fault, number = self._take(request)
        if fault is None:
            return self._inner_for(library, False).handle_request(request)
        wait = fault.delay(request)
        if wait > 0:
            self._sleep(wait)
        replaced = fault.intercept(request, library.module, number)
        if replaced is not None:
            return replaced
        answer = self._inner_for(library, False).handle_request(request)
        return fault.wrap(request, answer, library.module)

    async def handle_async_request(self, request: Any) -> Any:
        """Answer an async client's request (httpx or httpx2)."""
        library = library_for(request)
        fault, number = self._take(request)
        if fault is None:
            return await self._inner_for(library, True).handle_async_request(request)
        wait = fault.delay(request)
        if wait > 0:
            await self._async_sleep(wait)
        replaced = fault.intercept(request, library.module, number)
        if replaced is not None:
            return replaced
        answer = await self._inner_for(library, True).handle_async_request(request)
        return fault.wrap(request, answer, library.module)

    @property
    def reaches_upstream(self) -> bool:
        """Whether requests let through may reach the real upstream: the inner transport's
        answer (see ``harness._http.reaches_upstream``), or True for the default inner, the
        network."""
        if self._inner is None:
            return True
        return reaches_upstream(self._inner)

    @property
    def injected(self) -> list[Injection]:
        """The requests that got a fault."""
        return [entry for entry in self.history if entry.fault is not None]

    def close(self) -> None:
        """Close the inner transport(s)."""
        for transport in self._inners():
            if (close := getattr(transport, "close", None)) is not None:
                close()

    async def aclose(self) -> None:
        """Close the inner transport(s), async ones with ``aclose``."""
        for transport in self._inners():
            if (aclose := getattr(transport, "aclose", None)) is not None:
                await aclose()
            elif (close := getattr(transport, "close", None)) is not None:
                close()

    def __enter__(self) -> FaultTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> FaultTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _take(self, request: Any) -> tuple[Fault | None, int]:
        """The fault for this request, moving the schedule on (thread-safe)."""
        selected = self._when is None or self._when(request)
        with self._lock:
            number = len(self.history) + 1
            fault = None
            steps = self.faults.steps
            if selected and self._step < len(steps):
                fault, times = steps[self._step]
                self._used += 1
                if times is not None and self._used >= times:
                    self._step, self._used = self._step + 1, 0
            self.history.append(Injection(number, request.method, str(request.url), fault))
        return fault, number

    def _inner_for(self, library: Any, is_async: bool) -> Any:
        if self._inner is not None:
            return self._inner
        key = (library.module.__name__, is_async)
        with self._lock:
            if key not in self._owned:
                self._owned[key] = library.default_upstream(is_async)
            return self._owned[key]

    def _inners(self) -> list[Any]:
        return [self._inner] if self._inner is not None else list(self._owned.values())


class _Cutter:
    """Re-chunks a body into events and says when ``after`` of them have passed."""

    def __init__(self, after: int, boundary: re.Pattern[bytes] | None) -> None:
        self.after = after
        self.boundary = boundary
        self.seen = 0
        self.pending = b""

    def feed(self, chunk: bytes) -> tuple[list[bytes], bool]:
        """Complete events in ``chunk`` (up to the cut), and whether the cut is reached."""
        if self.boundary is None:  # no event framing: each chunk is an event
            self.seen += 1
            return [chunk], self.seen >= self.after
        self.pending += chunk
        events = []
        while self.seen < self.after and (found := self.boundary.search(self.pending)):
            events.append(self.pending[: found.end()])
            self.pending = self.pending[found.end() :]
            self.seen += 1
        return events, self.seen >= self.after


class _CutStreamMixin:
    """Yields the upstream body event by event, then raises at the cut."""

    def __init__(
        self,
        upstream: Any,
        after: int,
        boundary: re.Pattern[bytes] | None,
        error: Callable[[], Exception],
    ) -> None:
        self._upstream = upstream
        self._cutter = _Cutter(after, boundary)
        self._error = error

    def __iter__(self) -> Iterator[bytes]:
        if self._cutter.after <= 0:
            self.close()
            raise self._error()
        for chunk in self._upstream:
            events, cut = self._cutter.feed(chunk)
            yield from events
            if cut:
                self.close()
                raise self._error()
        if self._cutter.pending:
            yield self._cutter.pending

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._cutter.after <= 0:
            await self.aclose()
            raise self._error()
        async for chunk in self._upstream:
            events, cut = self._cutter.feed(chunk)
            for event in events:
                yield event
            if cut:
                await self.aclose()
                raise self._error()
        if self._cutter.pending:
            yield self._cutter.pending

    def close(self) -> None:
        """Close the upstream body."""
        if (close := getattr(self._upstream, "close", None)) is not None:
            close()

    async def aclose(self) -> None:
        """Close the upstream body (async)."""
        if (aclose := getattr(self._upstream, "aclose", None)) is not None:
            await aclose()


@functools.cache
def _cut_stream_class(module: ModuleType) -> type:
    """The cut stream as a Sync/AsyncByteStream of ``module``, which its clients check for."""
    return type("CutStream", (_CutStreamMixin, module.SyncByteStream, module.AsyncByteStream), {})
