"""Issue #9 item 13 (provider side): a stream that ends without its wire format's end marker
(OpenAI-compatible: neither a finish_reason nor ``[DONE]``; Anthropic: no ``message_stop``)
raises StreamError, live and when an old recording of such a stream is replayed; no real
recording of the wire corpus is rejected."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
import yaml

from harness import LLMConfig, StreamError, create_llm_instance
from harness.replay import ReplayTransport
from tests.providers.answers import PROVIDERS, STREAM_MODES, Upstream, ask, make_llm, stream_events
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
    assert len(upstream.requests) == 1  # not retried: replaying it would only fail again


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
