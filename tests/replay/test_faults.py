"""FaultTransport: scheduled failures for httpx/httpx2, the harness retry policy and the SDKs."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest

import harness
from harness.errors import APIConnectionError, BadRequestError, RateLimitError, ServerError
from harness.replay import (
    Fault,
    Faults,
    FaultTransport,
    ResetFault,
    StatusFault,
    TimeoutFault,
)
from tests.replay.conftest import LLMServer

LIBRARIES = [
    pytest.param(httpx, False, id="httpx-sync"),
    pytest.param(httpx, True, id="httpx-async"),
    pytest.param(httpx2, False, id="httpx2-sync"),
    pytest.param(httpx2, True, id="httpx2-async"),
]
SSE_EVENTS = [f'data: {{"n": {i}}}\n\n'.encode() for i in range(5)]


def _module(request: Any) -> ModuleType:
    return httpx2 if isinstance(request, httpx2.Request) else httpx


def _ok(request: Any) -> Any:
    """An OpenAI/Anthropic-shaped success, streamed as SSE when the body asks for a stream."""
    module = _module(request)
    body = json.loads(request.content or b"{}")
    if request.url.path.endswith("/events"):
        return module.Response(
            200, headers={"content-type": "text/event-stream"}, content=b"".join(SSE_EVENTS)
        )
    if request.url.path.endswith("/v1/messages"):
        return module.Response(200, json={
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1},
        })  # fmt: skip
    if body.get("stream"):
        base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        events = [
            {**base, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]}
            for w in ("hel", "lo", "!")
        ]
        text = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        return module.Response(
            200, headers={"content-type": "text/event-stream"}, content=text.encode()
        )
    return module.Response(200, json={
        "id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "hello"}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    })  # fmt: skip


class Sleeps:
    """A sleep that only records how long it was asked to wait (sync and async)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.calls.append(seconds)


def _faulty(module: ModuleType, faults: Faults | list[Fault | None], **kw: Any) -> FaultTransport:
    return FaultTransport(module.MockTransport(_ok), faults, **kw)


async def _send(
    module: ModuleType, is_async: bool, transport: FaultTransport, url: str, **kwargs: Any
) -> Any:
    """One request through a client of ``module`` (sync or async), body read."""
    if is_async:
        async with module.AsyncClient(transport=transport) as aclient:
            return await aclient.post(url, **kwargs)
    with module.Client(transport=transport) as client:
        return client.post(url, **kwargs)


async def _stream_events(module: ModuleType, is_async: bool, transport: FaultTransport) -> Any:
    """The raw chunks of a streamed GET, and the error that ended it (or None)."""
    got: list[bytes] = []
    try:
        if is_async:
            aclient = module.AsyncClient(transport=transport)
            async with aclient, aclient.stream("GET", "http://llm.test/events") as response:
                async for chunk in response.aiter_bytes():
                    got.append(chunk)
        else:
            client = module.Client(transport=transport)
            with client, client.stream("GET", "http://llm.test/events") as response:
                for chunk in response.iter_bytes():
                    got.append(chunk)
    except Exception as exc:
        return got, exc
    return got, None


# -- the transport on its own ------------------------------------------------------------------


@pytest.mark.parametrize(("module", "is_async"), LIBRARIES)
async def test_status_faults_follow_the_schedule_then_pass_through(
    module: ModuleType, is_async: bool
) -> None:
    transport = _faulty(module, Faults().status(500, times=2).status(503).then_ok())
    url = "http://llm.test/v1/chat/completions"
    statuses = [(await _send(module, is_async, transport, url, json={})).status_code
                for _ in range(5)]  # fmt: skip
    assert statuses == [500, 500, 503, 200, 200]
    assert [entry.number for entry in transport.injected] == [1, 2, 3]


@pytest.mark.parametrize(("module", "is_async"), LIBRARIES)
async def test_429_carries_retry_after_and_an_openai_shaped_body(
    module: ModuleType, is_async: bool
) -> None:
    transport = _faulty(module, Faults().status(429, retry_after=2))
    response = await _send(module, is_async, transport, "http://llm.test/v1/chat/completions")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.headers["x-request-id"] == "req_fault_1"
    error = response.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["message"]


async def test_anthropic_requests_get_anthropic_shaped_errors() -> None:
    transport = _faulty(httpx2, Faults().status(529).status(429, retry_after=0.5))
    first = await _send(httpx2, True, transport, "http://llm.test/v1/messages")
    assert first.status_code == 529
    assert first.json()["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert first.headers["request-id"] == "req_fault_1"
    second = await _send(httpx2, False, transport, "http://llm.test/v1/messages")
    assert second.json()["error"]["type"] == "rate_limit_error"
    assert second.headers["retry-after"] == "0.5"


def test_status_body_and_headers_can_be_given() -> None:
    fault = StatusFault(418, body={"custom": True}, headers={"X-Extra": "1"})
    transport = FaultTransport(httpx2.MockTransport(_ok), [fault])
    with httpx2.Client(transport=transport) as client:
        response = client.get("http://llm.test/")
    assert (response.status_code, response.json(), response.headers["x-extra"]) == (
        418,
        {"custom": True},
        "1",
    )


@pytest.mark.parametrize(("module", "is_async"), LIBRARIES)
@pytest.mark.parametrize(
    ("fault", "error_name"),
    [
        (TimeoutFault("read"), "ReadTimeout"),
        (TimeoutFault("connect"), "ConnectTimeout"),
        (TimeoutFault("write"), "WriteTimeout"),
        (ResetFault("connect"), "ConnectError"),
        (ResetFault("response"), "RemoteProtocolError"),
    ],
)
async def test_timeouts_and_resets_raise_the_librarys_own_exceptions(
    module: ModuleType, is_async: bool, fault: Fault, error_name: str
) -> None:
    transport = _faulty(module, [fault])
    with pytest.raises(getattr(module, error_name)):
        await _send(module, is_async, transport, "http://llm.test/")
    assert (await _send(module, is_async, transport, "http://llm.test/")).status_code == 200


@pytest.mark.parametrize(("module", "is_async"), LIBRARIES)
async def test_stream_is_cut_after_n_events(module: ModuleType, is_async: bool) -> None:
    transport = _faulty(module, Faults().cut_stream(2))
    got, error = await _stream_events(module, is_async, transport)
    assert got == SSE_EVENTS[:2]  # event by event, exactly two
    assert isinstance(error, module.RemoteProtocolError)
    got, error = await _stream_events(module, is_async, transport)  # the schedule has ended
    assert got == [b"".join(SSE_EVENTS)] and error is None


@pytest.mark.parametrize(
    ("after", "error", "expected"),
    [(0, "read", httpx2.ReadError), (3, "timeout", httpx2.ReadTimeout), (9, "protocol", None)],
)
async def test_stream_cut_variants(after: int, error: Any, expected: type | None) -> None:
    transport = _faulty(httpx2, Faults().cut_stream(after, error=error))
    got, raised = await _stream_events(httpx2, True, transport)
    if expected is None:  # a body shorter than the cut arrives whole
        assert b"".join(got) == b"".join(SSE_EVENTS) and raised is None
    else:
        assert got == SSE_EVENTS[:after] and isinstance(raised, expected)


async def test_slow_first_byte_waits_through_the_injected_sleep() -> None:
    sleeps = Sleeps()
    transport = _faulty(
        httpx2, Faults().slow_first_byte(3.5, times=2), sleep=sleeps, async_sleep=sleeps.asleep
    )
    assert (await _send(httpx2, True, transport, "http://llm.test/")).status_code == 200
    assert (await _send(httpx2, False, transport, "http://llm.test/")).status_code == 200
    assert sleeps.calls == [3.5, 3.5]


@pytest.mark.parametrize(("module", "is_async"), LIBRARIES)
async def test_slow_first_byte_past_the_read_timeout_is_a_read_timeout(
    module: ModuleType, is_async: bool
) -> None:
    sleeps = Sleeps()
    transport = _faulty(
        module, Faults().slow_first_byte(120), sleep=sleeps, async_sleep=sleeps.asleep
    )
    with pytest.raises(module.ReadTimeout):
        await _send(module, is_async, transport, "http://llm.test/", timeout=5.0)
    assert sleeps.calls == [5.0]  # waited as long as the client would, then gave up


def test_when_selects_the_requests_the_schedule_applies_to() -> None:
    transport = FaultTransport(
        httpx2.MockTransport(_ok),
        Faults().status(500, times=None),
        when=lambda request: request.url.path.endswith("/chat/completions"),
    )
    with httpx2.Client(transport=transport) as client:
        assert client.post("http://llm.test/v1/models", json={}).status_code == 200
        assert client.post("http://llm.test/v1/chat/completions", json={}).status_code == 500
    assert [entry.fault is None for entry in transport.history] == [True, False]


def test_a_plain_list_is_one_request_per_item_and_none_passes() -> None:
    transport = FaultTransport(
        httpx2.MockTransport(_ok), [StatusFault(500), None, StatusFault(502)]
    )
    with httpx2.Client(transport=transport) as client:
        codes = [client.get("http://llm.test/").status_code for _ in range(4)]
    assert codes == [500, 200, 502, 200]


def test_times_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="times"):
        Faults().status(500, times=0)


def test_the_schedule_is_consumed_exactly_across_threads() -> None:
    transport = _faulty(httpx2, Faults().status(503, times=5).then_ok())
    codes: list[int] = []
    with httpx2.Client(transport=transport) as client:

        def call() -> None:
            codes.append(client.get("http://llm.test/").status_code)

        threads = [threading.Thread(target=call) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=5)
    assert sorted(codes) == [200] * 15 + [503] * 5


def test_default_inner_is_the_network_transport(llm_server: LLMServer) -> None:
    transport = FaultTransport(faults=Faults().status(500))
    url = f"{llm_server.base_url}/v1/chat/completions"
    body = {"messages": [{"role": "user", "content": "hi"}]}
    with httpx2.Client(transport=transport) as client:
        assert client.post(url, json=body).status_code == 500
        assert client.post(url, json=body).json()["choices"][0]["message"]["content"] == (
            "echo: hi"
        )
    assert len(llm_server.requests) == 1  # the faulted request never reached the server


# -- through harness providers: the one retry policy -------------------------------------------


def _llm(
    faults: Faults, sleeps: Sleeps, *, api_type: str = "openai", **config: Any
) -> tuple[Any, FaultTransport]:
    base = "http://127.0.0.1:1" if api_type == "anthropic" else "http://127.0.0.1:1/v1"
    transport = FaultTransport(httpx2.MockTransport(_ok), faults, async_sleep=sleeps.asleep)
    settings: dict[str, Any] = {"stream": False, "max_retries": 2, **config}
    llm = harness.create_llm_instance(
        harness.LLMConfig(api_type=api_type, model="gpt-4o-mini", base_url=base, **settings),
        transport=transport,
        sleep=sleeps.asleep,
    )
    return llm, transport


async def test_harness_retries_429_honouring_retry_after() -> None:
    sleeps = Sleeps()
    llm, transport = _llm(Faults().status(429, retry_after=2, times=2).then_ok(), sleeps)
    assert await llm.aask("hi") == "hello"
    assert sleeps.calls == [2.0, 2.0]
    assert len(transport.history) == 3


async def test_harness_retries_503_with_backoff() -> None:
    sleeps = Sleeps()
    llm, transport = _llm(Faults().status(503, times=2), sleeps, retry_min_wait=0.5)
    assert await llm.aask("hi") == "hello"
    assert sleeps.calls == [0.5, 1.0]  # no Retry-After: exponential backoff
    assert len(transport.history) == 3


@pytest.mark.parametrize(
    "faults",
    [
        Faults().timeout("read"),
        Faults().timeout("connect"),
        Faults().reset("connect"),
        Faults().reset("response"),
    ],
    ids=["read-timeout", "connect-timeout", "reset-connect", "reset-response"],
)
async def test_harness_retries_timeouts_and_resets(faults: Faults) -> None:
    sleeps = Sleeps()
    llm, transport = _llm(faults, sleeps)
    assert await llm.aask("hi") == "hello"
    assert sleeps.calls == [1.0]
    assert len(transport.history) == 2


async def test_harness_gives_up_after_max_retries_with_the_last_error() -> None:
    sleeps = Sleeps()
    llm, transport = _llm(Faults().status(429, retry_after=3, times=None), sleeps)
    with pytest.raises(RateLimitError) as raised:
        await llm.aask("hi")
    assert (raised.value.status_code, raised.value.retry_after) == (429, 3.0)
    assert raised.value.request_id == "req_fault_3"
    assert len(transport.history) == 3 and sleeps.calls == [3.0, 3.0]


async def test_harness_does_not_retry_a_bad_request() -> None:
    sleeps = Sleeps()
    llm, transport = _llm(Faults().status(400), sleeps)
    with pytest.raises(BadRequestError):
        await llm.aask("hi")
    assert len(transport.history) == 1 and sleeps.calls == []


async def test_harness_anthropic_529_is_a_retried_server_error() -> None:
    sleeps = Sleeps()
    llm, transport = _llm(Faults().status(529, times=None), sleeps, api_type="anthropic")
    with pytest.raises(ServerError) as raised:
        await llm.aask("hi")
    assert raised.value.status_code == 529 and raised.value.error_type == "overloaded_error"
    assert len(transport.history) == 3
    llm, _ = _llm(Faults().status(529).then_ok(), Sleeps(), api_type="anthropic")
    assert await llm.aask("hi") == "hello"


async def test_harness_stream_cut_is_a_connection_error_and_is_retried() -> None:
    sleeps = Sleeps()
    llm, transport = _llm(Faults().cut_stream(1), sleeps, stream=True, max_retries=0)
    with pytest.raises(APIConnectionError, match="RemoteProtocolError"):
        await llm.aask("hi")
    llm, transport = _llm(Faults().cut_stream(1), sleeps, stream=True)
    assert await llm.aask("hi") == "hello!"
    assert len(transport.history) == 2


async def test_harness_slow_first_byte_past_the_timeout_is_retried() -> None:
    sleeps = Sleeps()
    llm, _transport = _llm(Faults().slow_first_byte(120), sleeps, timeout=5)
    assert await llm.aask("hi") == "hello"
    assert sleeps.calls == [5.0, 1.0]  # the transport's wait, then the retry backoff


# -- through the plain SDKs --------------------------------------------------------------------


def test_openai_sdk_retries_429_by_itself() -> None:
    transport = _faulty(httpx2, Faults().status(429, retry_after=0.01, times=2).then_ok())
    with httpx2.Client(transport=transport) as http:
        client = openai.OpenAI(
            api_key="test", base_url="http://127.0.0.1:1/v1", max_retries=2, http_client=http
        )
        reply = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}]
        )
    assert reply.choices[0].message.content == "hello"
    assert len(transport.history) == 3


async def test_openai_sdk_sees_timeouts_and_statuses_as_its_own_errors() -> None:
    faults = Faults().timeout("read").status(500).status(429, retry_after=1)
    transport = _faulty(httpx2, faults)
    async with httpx2.AsyncClient(transport=transport) as http:
        client = openai.AsyncOpenAI(
            api_key="test", base_url="http://127.0.0.1:1/v1", max_retries=0, http_client=http
        )
        create: Callable[..., Any] = client.chat.completions.create
        messages = [{"role": "user", "content": "x"}]
        with pytest.raises(openai.APITimeoutError):
            await create(model="m", messages=messages)
        with pytest.raises(openai.InternalServerError):
            await create(model="m", messages=messages)
        with pytest.raises(openai.RateLimitError) as limited:
            await create(model="m", messages=messages)
    assert limited.value.code == "rate_limit_exceeded"
    assert limited.value.response.headers["retry-after"] == "1"


def test_openai_sdk_stream_breaks_off_mid_way() -> None:
    transport = _faulty(httpx2, Faults().cut_stream(2))
    got: list[str] = []
    with httpx2.Client(transport=transport) as http:
        client = openai.OpenAI(
            api_key="test", base_url="http://127.0.0.1:1/v1", max_retries=0, http_client=http
        )
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], stream=True
        )
        with pytest.raises(openai.APIConnectionError):
            for chunk in stream:
                got.append(chunk.choices[0].delta.content or "")
    assert got == ["hel", "lo"]


def test_anthropic_sdk_sees_overloaded() -> None:
    transport = _faulty(httpx2, Faults().status(529))
    with httpx2.Client(transport=transport) as http:
        client = anthropic.Anthropic(
            api_key="test", base_url="http://127.0.0.1:1", max_retries=0, http_client=http
        )
        with pytest.raises(anthropic.OverloadedError) as raised:
            client.messages.create(
                model="claude-x", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
    assert raised.value.request_id == "req_fault_1"


# -- issue #9 item 15: whether requests may reach the upstream --------------------------------


def test_fault_transport_reaches_upstream_follows_its_inner_transport() -> None:
    class Recording:
        reaches_upstream = True

    class Replaying:
        reaches_upstream = False

    assert FaultTransport(Recording()).reaches_upstream is True
    assert FaultTransport(Replaying()).reaches_upstream is False
    assert FaultTransport(httpx2.MockTransport(_ok)).reaches_upstream is False  # absent: False
    assert FaultTransport().reaches_upstream is True  # its default inner is the network
