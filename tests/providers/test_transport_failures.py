"""Issue #9 item 1: every transport failure, before or during a stream, is a harness error
and is retried by the one policy, for every provider (OpenAI, Anthropic, Azure).

Faults come from ``FaultTransport`` over a ``MockTransport`` (the library's own exceptions,
raised where a real client raises them), and from a loopback server that really is too slow.
Retry waits go to an injected ``sleep``: no test sleeps to wait one out.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import pytest

from harness import APIConnectionError, APITimeoutError, HarnessError
from harness.replay.faults import Faults, FaultTransport
from tests.providers.answers import (
    MODES,
    PROVIDERS,
    STREAM_MODES,
    Upstream,
    Waits,
    ask,
    make_llm,
    stream_events,
)

CUT_ERRORS = {
    "protocol": (httpx2.RemoteProtocolError, APIConnectionError),
    "read": (httpx2.ReadError, APIConnectionError),
    "timeout": (httpx2.ReadTimeout, APITimeoutError),
}


def _faulted(provider: str, faults: Faults, **config: Any) -> tuple[Any, FaultTransport, Waits]:
    transport = FaultTransport(Upstream(provider, "back online").transport(), faults)
    waits = Waits()
    llm = make_llm(provider, transport, waits=waits, **config)
    return llm, transport, waits


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("error", list(CUT_ERRORS))
@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_stream_cut_after_first_event_is_retried_then_answers(
    provider: str, error: str, mode: str
) -> None:
    # The repro: FaultTransport(anthropic_sse, Faults().cut_stream(1).then_ok()).
    faults = Faults().cut_stream(1, error=error).then_ok()  # type: ignore[arg-type]
    llm, transport, waits = _faulted(provider, faults, max_retries=2)
    if mode == "astream" and provider != "anthropic":
        # OpenAI's first event already carries text, which astream has handed to the
        # caller: no silent restart, the caller gets harness's error instead.
        seen: list[str] = []
        with pytest.raises(CUT_ERRORS[error][1]):
            async for chunk in llm.astream("hello"):
                seen.append(chunk.text)
        assert seen == ["back "]
        assert len(transport.history) == 1
        return
    assert await ask(llm, mode) == "back online"
    assert len(transport.history) == 2
    assert waits.calls == [1.0]


async def test_anthropic_stream_cut_after_first_event_is_retried_then_api_connection_error() -> (
    None
):
    # The repro, verbatim: retried by the policy, then harness's error.
    faults = Faults().cut_stream(1).then_ok()
    llm, transport, waits = _faulted("anthropic", faults, max_retries=3)
    assert await llm.aask("hello", stream=True) == "back online"
    assert waits.calls == [1.0]

    llm, transport, waits = _faulted("anthropic", Faults().cut_stream(1, times=None))
    with pytest.raises(APIConnectionError) as info:
        await llm.aask("hello", stream=True)
    assert isinstance(info.value.__cause__, httpx2.RemoteProtocolError)
    assert len(transport.history) == 1  # max_retries=0: one attempt


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("error", list(CUT_ERRORS))
async def test_stream_cut_on_every_attempt_ends_as_a_harness_error_after_the_retries(
    provider: str, error: str
) -> None:
    # Every attempt cut: the last failure is harness's, never a raw httpx2 exception.
    raw, expected = CUT_ERRORS[error]
    faults = Faults().cut_stream(1, error=error, times=None)  # type: ignore[arg-type]
    llm, transport, waits = _faulted(provider, faults, max_retries=2)
    with pytest.raises(expected) as info:
        await llm.aask("hello", stream=True)
    assert isinstance(info.value, APIConnectionError)
    assert type(info.value.__cause__) is raw
    assert info.value.provider == llm.provider_name
    assert len(transport.history) == 3
    assert waits.calls == [1.0, 2.0]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        (Faults().timeout("read"), APITimeoutError),
        (Faults().timeout("connect"), APITimeoutError),
        (Faults().reset("connect"), APIConnectionError),
        (Faults().reset("response"), APIConnectionError),
        (Faults().cut_stream(0), APIConnectionError),
        (Faults().cut_stream(0, error="timeout"), APITimeoutError),
    ],
    ids=["read-timeout", "connect-timeout", "reset", "no-response", "cut-at-0", "timeout-at-0"],
)
async def test_transport_failure_before_the_answer_is_retried_then_mapped(
    provider: str, mode: str, faults: Faults, expected: type[Exception]
) -> None:
    fault = faults.steps[0][0]
    once, _, _ = _faulted(provider, Faults().then(fault).then_ok(), max_retries=1)
    assert await ask(once, mode) == "back online"

    always, transport, waits = _faulted(provider, Faults().then(fault, None), max_retries=1)
    with pytest.raises(expected) as info:
        await ask(always, mode)
    assert not isinstance(info.value.__cause__, HarnessError)
    if expected is APIConnectionError:
        assert not isinstance(info.value, APITimeoutError)
    assert len(transport.history) == 2
    assert waits.calls == [1.0]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_cut_after_content_reaches_the_astream_caller_as_api_connection_error(
    provider: str,
) -> None:
    # The caller has seen part of the answer: no silent restart, but a harness error.
    events = len(stream_events(provider, "back online"))
    faults = Faults().cut_stream(events - 1).then_ok()
    llm, transport, _ = _faulted(provider, faults, max_retries=2)
    seen: list[str] = []
    with pytest.raises(APIConnectionError) as info:
        async for chunk in llm.astream("hello"):
            seen.append(chunk.text)
    # Gemini's last event carries the last words with the finishReason: the cut drops it.
    assert "".join(seen) == ("back " if provider == "gemini" else "back online")
    assert isinstance(info.value.__cause__, httpx2.RemoteProtocolError)
    assert len(transport.history) == 1


# -- a real loopback server, too slow between events ---------------------------------------------


class _SlowStream(BaseHTTPRequestHandler):
    """Answers any POST with the provider's stream, ``gap`` seconds between events."""

    protocol_version = "HTTP/1.0"
    provider = "openai"
    gap = 0.5
    hits: list[str]
    stopped: threading.Event

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            for event in stream_events(self.provider, "slow answer")[:3]:
                self.wfile.write(event.encode())
                self.wfile.flush()
                if self.stopped.wait(self.gap):
                    return
        except (BrokenPipeError, ConnectionResetError):
            pass


@contextmanager
def slow_server(provider: str, gap: float) -> Iterator[tuple[str, list[str]]]:
    """A server on 127.0.0.1 (random port) whose streams pause ``gap`` s between events."""
    hits: list[str] = []
    stopped = threading.Event()
    attrs = {"provider": provider, "gap": gap, "hits": hits, "stopped": stopped}
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_SlowStream,), attrs))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        stopped.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_stream_slower_than_the_read_timeout_is_retried_then_api_timeout_error(
    provider: str, mode: str
) -> None:
    with slow_server(provider, gap=0.5) as (url, hits):
        waits = Waits()
        base_url = url if provider in ("anthropic", "gemini") else f"{url}/v1"
        llm = make_llm(provider, None, waits=waits, base_url=base_url, timeout=0.3, max_retries=1)
        started = time.monotonic()
        with pytest.raises(APITimeoutError) as info:
            await ask(llm, mode)
        elapsed = time.monotonic() - started
        await llm.aclose()
    assert isinstance(info.value.__cause__, httpx2.ReadTimeout)
    if mode == "astream" and provider != "anthropic":
        # The first event (with text) reached the caller before the timeout: not retried.
        assert (len(hits), waits.calls) == (1, [])
    else:
        assert len(hits) == 2  # the first attempt and one retry
        assert waits.calls == [1.0]  # the retry wait was injected, not slept
    assert elapsed < 3.0


def test_the_slow_server_really_sends_its_first_event_at_once() -> None:
    # Guards the test above: the timeout is between events, not before the first byte.
    with slow_server("openai", gap=0.5) as (url, _):
        timeout = httpx2.Timeout(2.0)
        with (
            httpx2.Client(timeout=timeout) as client,
            client.stream("POST", f"{url}/v1/chat/completions", content=b"{}") as response,
        ):
            first = next(response.iter_lines())
    assert json.loads(first.removeprefix("data: "))["choices"][0]["delta"]["content"] == "slow "


class _BreaksAfterFirstEvent(httpx2.AsyncByteStream):
    """A body whose socket fails after the first event, as a custom transport may report it."""

    def __init__(self, first: str, error: OSError) -> None:
        self.first = first
        self.error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.first.encode()
        raise self.error


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("error", "expected"),
    [(ConnectionResetError(104, "reset"), APIConnectionError), (TimeoutError(), APITimeoutError)],
    ids=["reset", "timeout"],
)
async def test_a_socket_error_from_a_custom_transport_mid_stream_is_retried_then_mapped(
    provider: str, error: OSError, expected: type[Exception]
) -> None:
    first = stream_events(provider, "never finished")[0]

    def answer(request: httpx2.Request) -> httpx2.Response:
        stream = _BreaksAfterFirstEvent(first, error)
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)

    upstream = Upstream(provider, answer=answer)
    waits = Waits()
    llm = make_llm(provider, upstream.transport(), waits=waits, max_retries=1)
    with pytest.raises(expected) as info:
        await llm.aask("hello", stream=True)
    assert info.value.__cause__ is error
    assert len(upstream.requests) == 2 and waits.calls == [1.0]
