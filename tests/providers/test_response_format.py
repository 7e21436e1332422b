"""Issue #9 item 2: a 2xx answer that is not what the wire format says raises
ResponseFormatError naming the provider, status, content-type and the body's first 200
characters, for every provider, streaming or not; it is not retried."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2
import pytest

from harness import ResponseFormatError
from tests.providers.answers import (
    PROVIDERS,
    STREAM_MODES,
    Upstream,
    Waits,
    anthropic_json,
    ask,
    gemini_json,
    make_llm,
    openai_json,
    stream_events,
)

GATEWAY_HTML = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
    + "<p>The upstream is having a moment. " * 20
    + "</p></body></html>"
)


def answering(
    status: int, content_type: str, body: str
) -> Callable[[httpx2.Request], httpx2.Response]:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            status, headers={"content-type": content_type}, content=body.encode()
        )

    return answer


async def refused(
    provider: str, mode: str, answer: Callable[..., httpx2.Response]
) -> ResponseFormatError:
    upstream = Upstream(provider, answer=answer)
    waits = Waits()
    llm = make_llm(provider, upstream.transport(), waits=waits, max_retries=3)
    with pytest.raises(ResponseFormatError) as info:
        await ask(llm, mode)
    assert len(upstream.requests) == 1  # the same bytes would come back: not retried
    assert waits.calls == []
    return info.value


def assert_names_the_answer(
    error: ResponseFormatError, provider: str, status: int, content_type: str, body: str
) -> None:
    assert error.provider == provider
    assert error.status_code == status
    assert error.content_type == content_type
    assert error.body_excerpt == body[:200]
    text = str(error)
    assert text.startswith(f"{provider} (m-test): ")
    assert f"HTTP {status}" in text and content_type in text
    assert repr(body[:200]) in text


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", ["aask", *STREAM_MODES])
async def test_html_from_a_gateway_with_status_200_is_a_response_format_error(
    provider: str, mode: str
) -> None:
    content_type = "text/html; charset=utf-8"
    error = await refused(provider, mode, answering(200, content_type, GATEWAY_HTML))
    assert_names_the_answer(error, provider, 200, content_type, GATEWAY_HTML)
    assert len(GATEWAY_HTML) > 200  # so the excerpt is a cut


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_invalid_json_in_a_2xx_answer_is_a_response_format_error(provider: str) -> None:
    body = '{"id": "chatcmpl-1", "choices": [{"index": 0, "message": {"content": "cut'
    error = await refused(provider, "aask", answering(200, "application/json", body))
    assert_names_the_answer(error, provider, 200, "application/json", body)
    assert "not valid JSON" in str(error)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_a_json_body_to_a_stream_request_is_a_response_format_error(
    provider: str, mode: str
) -> None:
    # A gateway that ignores stream=True; the SDKs' readers made this a silent ''.
    payload = anthropic_json("hi") if provider == "anthropic" else openai_json("hi")
    if provider == "gemini":  # Gemini may stream a JSON array, never a single object
        payload = gemini_json("hi")
    body = json.dumps(payload)
    error = await refused(provider, mode, answering(200, "application/json", body))
    assert_names_the_answer(error, provider, 200, "application/json", body)
    assert "not an SSE stream" in str(error)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_json_labelled_as_an_event_stream_is_a_response_format_error(
    provider: str, mode: str
) -> None:
    payload = anthropic_json("hi") if provider == "anthropic" else openai_json("hi")
    body = json.dumps(payload, indent=2)
    error = await refused(provider, mode, answering(200, "text/event-stream", body))
    assert_names_the_answer(error, provider, 200, "text/event-stream", body)
    assert "no SSE event" in str(error)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_sse_body_to_a_non_stream_request_is_a_response_format_error(
    provider: str,
) -> None:
    body = "".join(stream_events(provider, "hi there"))
    error = await refused(provider, "aask", answering(200, "text/event-stream", body))
    assert_names_the_answer(error, provider, 200, "text/event-stream", body)
    assert "SSE stream" in str(error)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_a_stream_event_that_is_not_json_is_a_response_format_error(
    provider: str, mode: str
) -> None:
    events = stream_events(provider, "hi there")
    events.insert(1, "data: {not json at all\n\n")
    body = "".join(events)
    error = await refused(provider, mode, answering(200, "text/event-stream", body))
    assert_names_the_answer(error, provider, 200, "text/event-stream", body)
    assert "event 2 of the stream is not valid JSON" in str(error)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_json_answer_without_the_wire_formats_shape_is_a_response_format_error(
    provider: str,
) -> None:
    body = json.dumps({"status": "ok", "result": "hi"})
    error = await refused(provider, "aask", answering(200, "application/json", body))
    assert_names_the_answer(error, provider, 200, "application/json", body)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_2xx_answer_of_another_status_is_named_too(provider: str) -> None:
    error = await refused(provider, "aask", answering(203, "text/plain", "cached by a proxy"))
    assert_names_the_answer(error, provider, 203, "text/plain", "cached by a proxy")


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_invalid_utf8_in_a_stream_is_a_response_format_error(
    provider: str, mode: str
) -> None:
    body = "".join(stream_events(provider, "hi there")).encode()
    body = body.replace(b'"hi ', b'"h\xff\xfe ', 1)  # not UTF-8 (latin-1 bytes)
    assert b"\xff" in body

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    error = await refused(provider, mode, answer)
    assert "not valid UTF-8" in str(error)
    assert error.status_code == 200


@pytest.mark.parametrize("provider", ["openai", "azure"])
async def test_a_chat_completion_with_no_choices_is_a_response_format_error(
    provider: str,
) -> None:
    body = json.dumps({**openai_json("hi"), "choices": []})
    error = await refused(provider, "aask", answering(200, "application/json", body))
    assert_names_the_answer(error, provider, 200, "application/json", body)
    assert "choices" in str(error)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", ["aask", *STREAM_MODES])
async def test_a_2xx_answer_with_a_corrupt_gzip_body_is_a_response_format_error(
    provider: str, mode: str
) -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        streamed = "stream" in request.url.path.lower() or b'"stream":true' in request.content
        media = "text/event-stream" if streamed else "application/json"
        return httpx2.Response(
            200,
            headers={"content-type": media, "content-encoding": "gzip"},
            content=b"\x1f\x8b\x08\x00 this is not a gzip stream at all",
        )

    error = await refused(provider, mode, answer)
    assert "could not be decoded" in str(error)
