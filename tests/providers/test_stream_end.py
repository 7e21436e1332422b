"""Issue #9 item 13 (provider side): a stream that ends without its wire format's end marker
(OpenAI-compatible: neither a finish_reason nor ``[DONE]``; Anthropic: no ``message_stop``)
raises StreamError, live and when an old recording of such a stream is replayed; no real
recording of the wire corpus is rejected."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest
import yaml

from harness import LLMConfig, StreamError, create_llm_instance
from harness.replay import ReplayTransport
from harness.replay.errors import CassetteMiss
from tests.providers.answers import (
    PROVIDERS,
    STREAM_MODES,
    Upstream,
    Waits,
    ask,
    make_llm,
    stream_events,
)
from tests.wirecorpus import CORPUS, CorpusTransport, load


def streaming(events: list[str]) -> Upstream:
    def answer(request: httpx2.Request) -> httpx2.Response:
        body = "".join(events).encode()
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return Upstream("any", answer=answer)


@pytest.mark.parametrize("provider", ["openai", "azure"])
@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_openai_stream_without_finish_reason_or_done_raises_stream_error(
    provider: str, mode: str
) -> None:
    upstream = streaming(stream_events(provider, "cut short", finish=False, done=False))
    llm = make_llm(provider, upstream.transport(), max_retries=2)
    with pytest.raises(StreamError) as info:
        await ask(llm, mode)
    assert "without a finish_reason or [DONE]" in str(info.value)
    assert info.value.code == "incomplete_stream"
    # Retried like a reset; astream had given the caller text already, so it cannot be.
    assert len(upstream.requests) == (1 if mode == "astream" else 3)


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_anthropic_stream_without_message_stop_raises_stream_error(mode: str) -> None:
    upstream = streaming(stream_events("anthropic", "cut short", stop=False))
    llm = make_llm("anthropic", upstream.transport())
    with pytest.raises(StreamError, match="without message_stop"):
        await ask(llm, mode)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_stream_cut_inside_its_last_event_raises_stream_error(provider: str) -> None:
    body = "".join(stream_events(provider, "cut short"))
    cut = body[: body.rindex('"type"') + 3] if provider == "anthropic" else body[:-30]
    upstream = streaming([cut])
    with pytest.raises(StreamError):
        await ask(make_llm(provider, upstream.transport()), "aask_stream")


@pytest.mark.parametrize(
    ("finish", "done"), [(True, False), (False, True), (True, True)], ids=["finish", "done", "both"]
)
@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_either_openai_end_marker_is_enough(finish: bool, done: bool, mode: str) -> None:
    # Some vendors omit [DONE]; a finish_reason counts as the end.
    upstream = streaming(stream_events("openai", "whole answer", finish=finish, done=done))
    assert await ask(make_llm("openai", upstream.transport()), mode) == "whole answer"


def _corpus_streams() -> list[tuple[str, int]]:
    found = []
    for folder in ("openai", "openai_compatible", "azure", "anthropic"):
        for path in sorted((CORPUS / folder).glob("*.yaml")):
            for index, recorded in enumerate(load(path)):
                media = dict((k.lower(), v) for k, v in recorded.headers).get("content-type", "")
                if recorded.status == 200 and media.startswith("text/event-stream"):
                    found.append((f"{folder}/{path.name}", index))
    return found


CORPUS_STREAMS = _corpus_streams()


def test_the_corpus_has_streams_of_both_wire_formats() -> None:
    folders = {name.split("/")[0] for name, _ in CORPUS_STREAMS}
    assert {"openai", "openai_compatible", "azure", "anthropic"} <= folders
    assert len(CORPUS_STREAMS) >= 10


@pytest.mark.parametrize(
    ("name", "index"), CORPUS_STREAMS, ids=[f"{n}#{i}" for n, i in CORPUS_STREAMS]
)
async def test_no_real_recorded_stream_of_the_corpus_is_rejected_as_incomplete(
    name: str, index: int
) -> None:
    recorded = load(name)[index]
    transport = CorpusTransport([recorded], strict_path=False)
    folder = name.split("/")[0]
    provider = {"openai_compatible": "openai"}.get(folder, folder)
    llm = make_llm(provider, transport)
    try:
        chunks = [chunk async for chunk in llm.astream("hello")]
    except StreamError as exc:
        # An error object the provider sent in the stream is fine; a missing end is not.
        assert exc.code != "incomplete_stream", f"{name}#{index}: {exc}"
        return
    assert chunks


def _cut_recording() -> str:
    """An old (version 1) cassette of an Anthropic stream recorded without its message_stop."""
    events = stream_events("anthropic", "Half an answer", stop=False)[:3]
    interaction = {
        "request": {
            "method": "POST",
            "uri": "http://127.0.0.1:8080/v1/messages",
            "headers": {"content-type": "application/json"},
            "body": {
                "json": {
                    "max_tokens": 64,
                    "messages": [{"role": "user", "content": "hello"}],
                    "model": "claude-old",
                    "stream": True,
                }
            },
        },
        "response": {
            "status": 200,
            "headers": {"content-type": "text/event-stream"},
            "body": {"sse": [event.rstrip("\n") for event in events]},
        },
    }
    document = {"format": "harness", "version": 1, "interactions": [interaction]}
    return yaml.safe_dump(document, sort_keys=False)


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_replaying_an_old_recording_of_a_cut_stream_raises_stream_error(
    tmp_path: Path, mode: str
) -> None:
    cassette = tmp_path / "old-cut-stream.yaml"
    cassette.write_text(_cut_recording(), encoding="utf-8")
    config = LLMConfig(
        api_type="anthropic",
        model="claude-old",
        base_url="http://127.0.0.1:8080",
        max_token=64,
        use_system_prompt=False,
        max_retries=0,
    )
    llm = create_llm_instance(config, transport=ReplayTransport(cassette, "replay"))
    llm.use_system_prompt = False
    with pytest.raises(StreamError, match="without message_stop"):
        await ask(llm, mode)


async def test_the_openai_stream_ends_at_done_even_if_the_body_goes_on() -> None:
    events = stream_events("openai", "whole answer", finish=False)
    events += stream_events("openai", "ignored trailer", finish=False, done=False)
    upstream = streaming(events)
    assert await ask(make_llm("openai", upstream.transport()), "aask_stream") == "whole answer"


def cut_then_whole(provider: str, cut: list[str]) -> Upstream:
    """An upstream whose first stream ends after ``cut`` (cleanly, no end marker), then
    answers whole."""
    bodies = ["".join(cut), "".join(stream_events(provider, "whole answer"))]

    def answer(request: httpx2.Request) -> httpx2.Response:
        body = bodies.pop(0) if len(bodies) > 1 else bodies[0]
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=body.encode()
        )

    return Upstream(provider, answer=answer)


def _no_end(provider: str) -> list[str]:
    if provider == "anthropic":
        return stream_events(provider, "half an", stop=False)
    if provider == "gemini":
        return stream_events(provider, "half an", finish=False)
    return stream_events(provider, "half an", finish=False, done=False)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_stream_cut_cleanly_mid_answer_is_retried_by_aask_stream(provider: str) -> None:
    upstream = cut_then_whole(provider, _no_end(provider))
    waits = Waits()
    llm = make_llm(provider, upstream.transport(), waits=waits, max_retries=2)
    assert await ask(llm, "aask_stream") == "whole answer"
    assert len(upstream.requests) == 2
    assert len(waits.calls) == 1


def _before_text(provider: str) -> list[str]:
    """The events of a stream cut before its first text."""
    if provider == "anthropic":
        return stream_events(provider, "x", stop=False)[:2]  # message_start, block start
    if provider == "gemini":
        return ['data: {"candidates": [{"content": {"role": "model", "parts": []}}]}\r\n\r\n']
    role = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
    return [f"data: {json.dumps(role)}\n\n"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_stream_cut_cleanly_before_its_first_text_is_retried_by_astream(
    provider: str,
) -> None:
    upstream = cut_then_whole(provider, _before_text(provider))
    llm = make_llm(provider, upstream.transport(), max_retries=2)
    chunks = [chunk async for chunk in llm.astream("hello")]
    assert "".join(chunk.text for chunk in chunks) == "whole answer"
    assert len(upstream.requests) == 2


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_replaying_an_old_cut_stream_with_retries_raises_stream_error_not_the_miss(
    tmp_path: Path, mode: str
) -> None:
    cassette = tmp_path / "old-cut-stream.yaml"
    cassette.write_text(_cut_recording(), encoding="utf-8")
    config = LLMConfig(
        api_type="anthropic",
        model="claude-old",
        base_url="http://127.0.0.1:8080",
        max_token=64,
        use_system_prompt=False,
        max_retries=2,
    )
    waits = Waits()
    transport = ReplayTransport(cassette, "replay")
    llm = create_llm_instance(config, transport=transport, sleep=waits)
    with pytest.raises(StreamError, match="without message_stop") as info:
        await ask(llm, mode)
    assert info.value.code == "incomplete_stream"
    if mode == "aask_stream":  # retried; the retry found nothing more on the cassette
        assert isinstance(info.value.__cause__, CassetteMiss)
        assert len(waits.calls) == 1
    else:  # astream had yielded the recorded text: not retried
        assert waits.calls == []
