"""The Ollama providers against recorded native-API traffic and scripted HTTP answers.

Part 1 replays every file of ``tests/wire_corpus/ollama`` (facts from INDEX.md), stream and
not; part 2 checks what harness sends (URL, headers, body); part 3 errors, timeouts and
embeddings. No test touches the network.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from harness import LLMConfig, create_llm_instance
from harness.costs import Usage
from harness.errors import (
    APIConnectionError,
    APITimeoutError,
    ConfigError,
    NotFoundError,
    NotSupportedError,
    ResponseFormatError,
    ServerError,
    StreamError,
)
from harness.providers.base import BaseLLM, StreamChunk, ToolCall
from harness.providers.ollama import (
    OllamaEmbeddingsLLM,
    OllamaEmbedLLM,
    OllamaGenerateLLM,
    OllamaLLM,
    ollama_api_url,
)
from harness.tokens import count_message_tokens
from tests.wirecorpus import CORPUS, CorpusTransport

CHAT = "ollama/openllmetry__test_ollama_chat_legacy.yaml"
CHAT_NO_PROMPT_COUNT = "ollama/openllmetry__test_ollama_async_chat_legacy.yaml"
CHAT_STREAM = "ollama/openllmetry__test_ollama_streaming_chat_legacy.yaml"
GENERATE = "ollama/openllmetry__test_ollama_generation_legacy.yaml"
GENERATE_STREAM = "ollama/openllmetry__test_ollama_streaming_metrics.yaml"
EMBEDDINGS = "ollama/openllmetry__test_ollama_embeddings_legacy.yaml"
ALL_FILES = {CHAT, CHAT_NO_PROMPT_COUNT, CHAT_STREAM, GENERATE, GENERATE_STREAM, EMBEDDINGS}

PROMPT = "Tell me a joke about OpenTelemetry"
STREAM_TEXT = (
    "Why did the OpenTelemetry agent go to therapy?\n\nBecause it was feeling traced out and "
    "needed some instrumentation in its life!\n\n(Sorry, I know it's a bit of a stretch, but I "
    "hope it brought a smile to your face!)"
)


class Waits:
    """An injectable ``sleep`` that records the retry waits instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_llm(
    transport: httpx2.AsyncBaseTransport, api_type: str = "ollama", **config: Any
) -> BaseLLM:
    settings: dict[str, Any] = {"api_type": api_type, "model": "llama3", "max_retries": 0}
    settings.update(config)
    return create_llm_instance(LLMConfig(**settings), transport=transport, sleep=Waits())


async def ask(llm: BaseLLM, mode: str, prompt: str = PROMPT) -> tuple[Any, list[StreamChunk]]:
    """The Reply of ``aask`` (stream or not), or a Reply-like summary of ``astream``."""
    if mode == "astream":
        chunks = [c async for c in llm.astream(prompt)]
        return chunks, chunks
    return await llm.aask(prompt, stream=(mode == "aask_stream")), []


def test_every_ollama_corpus_file_has_a_replay_test() -> None:
    on_disk = {f"ollama/{p.name}" for p in (CORPUS / "ollama").glob("*.yaml")}
    assert on_disk == ALL_FILES


def test_each_ollama_type_creates_its_class() -> None:
    transport = httpx2.MockTransport(lambda r: httpx2.Response(500))
    assert type(make_llm(transport, "ollama")) is OllamaLLM
    assert type(make_llm(transport, "ollama.generate")) is OllamaGenerateLLM
    assert type(make_llm(transport, "ollama.embed")) is OllamaEmbedLLM
    assert type(make_llm(transport, "ollama.embeddings")) is OllamaEmbeddingsLLM


# -- 1. recorded answers -------------------------------------------------------------------


async def test_chat_answer_parses_text_usage_done_reason_and_durations() -> None:
    transport = CorpusTransport.from_file(CHAT)
    reply = await make_llm(transport, stream=False).aask(PROMPT)
    assert len(reply) == 256
    assert reply.startswith(
        "A joke about OpenTelemetry!\n\nWhy did the OpenTelemetry agent go to therapy?"
    )
    assert reply.finish_reason == "stop"
    assert reply.usage == Usage(prompt_tokens=17, completion_tokens=66)
    assert reply.model == "llama3"
    assert reply.reasoning_content is None
    assert reply.response.metrics["total_duration"] == pytest.approx(10.386172208)
    assert str(transport.requests[0].url) == "http://127.0.0.1:11434/api/chat"
    assert transport.sent_json(0)["stream"] is False


async def test_missing_prompt_eval_count_is_counted_locally_and_flagged_estimated() -> None:
    transport = CorpusTransport.from_file(CHAT_NO_PROMPT_COUNT)
    llm = make_llm(transport, stream=False)
    reply = await llm.aask(PROMPT)
    assert len(reply) == 348
    assert reply.startswith("A joke about OpenTelemetry! Here it is:")
    assert reply.finish_reason == "stop"
    sent = [
        {"role": "system", "content": llm.system_prompt},
        {"role": "user", "content": PROMPT},
    ]
    assert transport.sent_json(0)["messages"] == sent
    expected_prompt = count_message_tokens(sent, "llama3")
    assert reply.usage == Usage(
        prompt_tokens=int(expected_prompt), completion_tokens=79, estimated=True
    )
    assert reply.usage is not None and reply.usage.prompt_tokens > 0
    # The cost manager billed the same usage.
    assert llm.get_costs().total_prompt_tokens == expected_prompt


@pytest.mark.parametrize("mode", ["aask_stream", "astream"])
async def test_chat_stream_is_reassembled_with_final_counters(mode: str) -> None:
    transport = CorpusTransport.from_file(CHAT_STREAM)
    out, chunks = await ask(make_llm(transport), mode)
    if mode == "astream":
        assert len(chunks) == 50
        assert "".join(c.text for c in chunks) == STREAM_TEXT
        assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
        assert [c.usage for c in chunks if c.usage] == [
            Usage(prompt_tokens=17, completion_tokens=50)
        ]
        assert chunks[-1].metrics["eval_duration"] == pytest.approx(1.57799)
    else:
        assert out == STREAM_TEXT
        assert out.finish_reason == "stop"
        assert out.usage == Usage(prompt_tokens=17, completion_tokens=50)
        assert out.model == "llama3"
        assert out.response.metrics["total_duration"] == pytest.approx(1.897385625)
    assert transport.sent_json(0)["stream"] is True


async def test_generate_answer_reads_response_and_counters() -> None:
    transport = CorpusTransport.from_file(GENERATE)
    llm = make_llm(transport, "ollama.generate", stream=False, use_system_prompt=False)
    reply = await llm.aask(PROMPT)
    assert len(reply) == 261
    assert reply.startswith("A niche topic!\n\nHere's one:")
    assert reply.finish_reason == "stop"
    assert reply.usage == Usage(prompt_tokens=17, completion_tokens=63)
    assert reply.response.raw["context"][:2] == [128006, 882]
    assert len(reply.response.raw["context"]) == 80
    sent = transport.sent_json(0)
    assert sent["prompt"] == PROMPT
    assert "system" not in sent
    assert sent["stream"] is False
    assert transport.requests[0].url.path == "/api/generate"


@pytest.mark.parametrize("mode", ["aask_stream", "astream"])
async def test_generate_stream_is_reassembled(mode: str) -> None:
    transport = CorpusTransport.from_file(GENERATE_STREAM)
    llm = make_llm(transport, "ollama.generate", model="gemma3:1b")
    out, chunks = await ask(llm, mode)
    text = "".join(c.text for c in chunks) if chunks else str(out)
    assert len(text) == 188
    assert text.startswith("Okay, here's a joke about OpenTelemetry:")
    assert text.endswith("Would you like to hear another one? 😊")
    if chunks:
        assert len(chunks) == 51
        assert chunks[-1].finish_reason == "stop"
        assert chunks[-1].usage == Usage(prompt_tokens=16, completion_tokens=51)
    else:
        assert out.finish_reason == "stop"
        assert out.usage == Usage(prompt_tokens=16, completion_tokens=51)
        assert out.model == "gemma3:1b"
    sent = transport.sent_json(0)
    assert sent["system"] == llm.system_prompt  # the system prompt is not dropped
    assert sent["prompt"] == PROMPT


async def test_legacy_embeddings_endpoint_returns_the_recorded_vector() -> None:
    transport = CorpusTransport.from_file(EMBEDDINGS)
    llm = make_llm(transport, "ollama.embeddings")
    result = await llm.aembed("all-minilm")
    assert len(result.vectors) == 1
    assert len(result.vectors[0]) == 4096
    assert result.vectors[0][0] == -0.07757184654474258
    assert result.model == "llama3"
    assert result.usage is not None and result.usage.estimated  # Ollama says no usage
    assert transport.sent_json(0) == {"model": "llama3", "prompt": "all-minilm"}
    assert str(transport.requests[0].url) == "http://127.0.0.1:11434/api/embeddings"


# -- 2. what harness sends ----------------------------------------------------------------

Handler = Callable[[httpx2.Request], httpx2.Response]


class Recorder:
    """A MockTransport handler that records requests and answers with ``answers`` in turn."""

    def __init__(self, *answers: httpx2.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def done_answer(**extra: Any) -> httpx2.Response:
    body = {
        "model": "llama3",
        "message": {"role": "assistant", "content": "ok"},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 5,
        "eval_count": 1,
        **extra,
    }
    return httpx2.Response(200, json=body)


def ndjson(*lines: dict[str, Any], tail: str = "") -> httpx2.Response:
    text = "".join(json.dumps(line) + "\n" for line in lines) + tail
    return httpx2.Response(200, content=text, headers={"content-type": "application/x-ndjson"})


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        (None, "http://127.0.0.1:11434/api/chat"),
        ("http://gpu:11434", "http://gpu:11434/api/chat"),
        ("http://gpu:11434/", "http://gpu:11434/api/chat"),
        ("http://gpu:11434/api", "http://gpu:11434/api/chat"),
        ("http://gpu:11434/api/", "http://gpu:11434/api/chat"),
        ("https://proxy.example/ollama/api", "https://proxy.example/ollama/api/chat"),
    ],
)
async def test_base_url_with_or_without_api(base_url: str | None, expected: str) -> None:
    recorder = Recorder(done_answer())
    llm = make_llm(httpx2.MockTransport(recorder), base_url=base_url, stream=False)
    await llm.aask("hi")
    assert str(recorder.requests[0].url) == expected
    assert ollama_api_url(base_url, "embed") == expected.replace("/chat", "/embed")


async def test_chat_sends_the_whole_history_with_system_and_images() -> None:
    recorder = Recorder(done_answer())
    llm = make_llm(httpx2.MockTransport(recorder), stream=False)
    history = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        },
    ]
    await llm.acompletion_text(history)
    sent = recorder.json()
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "what is this?", "images": ["iVBORw0KGgo="]},
    ]
    assert sent["model"] == "llama3"
    assert sent["stream"] is False


async def test_aask_images_and_system_msgs_reach_the_request() -> None:
    recorder = Recorder(done_answer())
    llm = make_llm(httpx2.MockTransport(recorder), stream=False)
    await llm.aask("describe", system_msgs=["You see images."], images=["QUJD"])
    assert recorder.json()["messages"] == [
        {"role": "system", "content": "You see images."},
        {"role": "user", "content": "describe", "images": ["QUJD"]},
    ]


async def test_image_urls_are_refused_with_the_message_index() -> None:
    recorder = Recorder(done_answer())
    llm = make_llm(httpx2.MockTransport(recorder), stream=False)
    with pytest.raises(ValueError, match=r"message 1: Ollama takes images as base64"):
        await llm.aask("describe", images=["https://example.com/cat.png"])
    assert recorder.requests == []


async def test_config_options_map_to_ollama_names() -> None:
    recorder = Recorder(done_answer())
    llm = make_llm(
        httpx2.MockTransport(recorder),
        stream=False,
        temperature=0.3,
        top_p=0.8,
        top_k=20,
        seed=7,
        stop="END",
        max_token=123,
        context_length=8192,
        repetition_penalty=1.2,
    )
    await llm.aask("hi")
    assert recorder.json()["options"] == {
        "temperature": 0.3,
        "top_p": 0.8,
        "top_k": 20,
        "seed": 7,
        "stop": ["END"],
        "num_predict": 123,
        "num_ctx": 8192,
        "repeat_penalty": 1.2,
    }


async def test_default_options_leave_ollamas_own_defaults_alone() -> None:
    recorder = Recorder(done_answer())
    await make_llm(httpx2.MockTransport(recorder), stream=False).aask("hi")
    assert recorder.json()["options"] == {"temperature": 0.0, "top_p": 1.0, "num_predict": 4096}
    assert "think" not in recorder.json()


async def test_reasoning_asks_for_thinking_and_returns_it_apart() -> None:
    answer = done_answer(
        message={"role": "assistant", "content": "4", "thinking": "2+2 is 4"},
    )
    recorder = Recorder(answer)
    reply = await make_llm(httpx2.MockTransport(recorder), stream=False, reasoning=True).aask(
        "2+2?"
    )
    assert recorder.json()["think"] is True
    assert reply == "4"
    assert reply.reasoning_content == "2+2 is 4"


async def test_tool_calls_are_read_and_history_tool_calls_are_sent_as_objects() -> None:
    answer = done_answer(
        message={
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}],
        }
    )
    recorder = Recorder(answer)
    llm = make_llm(httpx2.MockTransport(recorder), stream=False)
    history = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c1", "function": {"name": "get_weather", "arguments": '{"city": "Bergen"}'}}
            ],
        },
        {"role": "tool", "content": "rain", "tool_call_id": "c1", "name": "get_weather"},
    ]
    response = await llm.acompletion(history)
    assert response.tool_calls == [
        ToolCall(id=None, name="get_weather", arguments='{"city": "Oslo"}')
    ]
    sent = recorder.json()["messages"]
    assert sent[1]["tool_calls"] == [
        {"function": {"name": "get_weather", "arguments": {"city": "Bergen"}}}
    ]
    assert sent[2] == {"role": "tool", "content": "rain", "tool_name": "get_weather"}


async def test_generate_writes_a_multi_turn_history_as_a_transcript() -> None:
    recorder = Recorder(httpx2.Response(200, json={"response": "ok", "done": True}))
    llm = make_llm(httpx2.MockTransport(recorder), "ollama.generate", stream=False)
    history = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "bye"},
    ]
    await llm.acompletion_text(history)
    sent = recorder.json()
    assert sent["system"] == "Be brief."
    assert sent["prompt"] == "User: hi\n\nAssistant: hello\n\nUser: bye\n\nAssistant:"


async def test_no_authorization_header_unless_a_key_is_configured() -> None:
    recorder = Recorder(done_answer())
    await make_llm(httpx2.MockTransport(recorder), stream=False).aask("hi")
    assert "authorization" not in recorder.requests[0].headers
    await make_llm(httpx2.MockTransport(recorder), stream=False, api_key="tok-1").aask("hi")
    assert recorder.requests[1].headers["authorization"] == "Bearer tok-1"


async def test_the_call_timeout_reaches_the_request() -> None:
    recorder = Recorder(done_answer())
    llm = make_llm(httpx2.MockTransport(recorder), stream=False, timeout=42.0)
    await llm.aask("hi")
    await llm.aask("hi", timeout=3.0)
    first, second = (r.extensions["timeout"] for r in recorder.requests)
    assert first["read"] == 42.0
    assert second["read"] == 3.0
    assert second["connect"] == 3.0


# -- 3. errors, streams cut short, embeddings ----------------------------------------------


async def test_http_404_is_not_found_with_ollamas_message() -> None:
    answer = httpx2.Response(404, json={"error": 'model "nope" not found, try pulling it first'})
    llm = make_llm(httpx2.MockTransport(Recorder(answer)), stream=False)
    with pytest.raises(NotFoundError, match="try pulling it first") as caught:
        await llm.aask("hi")
    assert caught.value.status_code == 404


async def test_server_errors_are_retried_with_the_injected_sleep() -> None:
    recorder = Recorder(httpx2.Response(500, json={"error": "boom"}), done_answer())
    transport = httpx2.MockTransport(recorder)
    llm = make_llm(transport, stream=False, max_retries=2, retry_min_wait=0.5)
    reply = await llm.aask("hi")
    assert reply == "ok"
    assert len(recorder.requests) == 2
    assert isinstance(llm._sleep, Waits) and llm._sleep.calls == [0.5]


async def test_server_error_after_retries_is_a_server_error() -> None:
    recorder = Recorder(httpx2.Response(503, text="overloaded"))
    llm = make_llm(httpx2.MockTransport(recorder), stream=True, max_retries=1)
    with pytest.raises(ServerError, match="overloaded"):
        await llm.aask("hi")
    assert len(recorder.requests) == 2


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (httpx2.ConnectError("refused"), APIConnectionError),
        (httpx2.ReadTimeout("slow"), APITimeoutError),
    ],
)
async def test_transport_failures_are_harness_connection_errors(
    raised: Exception, expected: type[Exception]
) -> None:
    llm = make_llm(httpx2.MockTransport(Recorder(raised)), stream=False)
    with pytest.raises(expected):
        await llm.aask("hi")


async def test_error_line_inside_a_stream_is_a_stream_error() -> None:
    answer = ndjson(
        {"model": "llama3", "message": {"role": "assistant", "content": "par"}, "done": False},
        {"error": "an unexpected error occurred"},
    )
    llm = make_llm(httpx2.MockTransport(Recorder(answer)))
    with pytest.raises(StreamError, match="an unexpected error occurred"):
        await llm.aask("hi")


async def test_stream_without_its_done_line_is_cut_short() -> None:
    answer = ndjson({"model": "llama3", "message": {"content": "par"}, "done": False})
    llm = make_llm(httpx2.MockTransport(Recorder(answer)))
    with pytest.raises(StreamError, match="done") as caught:
        await llm.aask("hi")
    assert caught.value.code == "incomplete_stream"


async def test_stream_ending_inside_a_line_is_cut_short() -> None:
    answer = ndjson({"message": {"content": "par"}, "done": False}, tail='{"message": {"con')
    llm = make_llm(httpx2.MockTransport(Recorder(answer)))
    with pytest.raises(StreamError, match="inside a line"):
        await llm.aask("hi")


async def test_html_where_a_stream_was_asked_for_is_a_format_error() -> None:
    answer = httpx2.Response(
        200, text="<html>gateway</html>", headers={"content-type": "text/html"}
    )
    llm = make_llm(httpx2.MockTransport(Recorder(answer)))
    with pytest.raises(ResponseFormatError, match="text/html") as caught:
        await llm.aask("hi")
    assert caught.value.body_excerpt == "<html>gateway</html>"


async def test_stream_without_counters_estimates_usage() -> None:
    answer = ndjson(
        {"message": {"content": "hello there"}, "done": False},
        {"message": {"content": ""}, "done": True, "done_reason": "stop"},
    )
    reply = await make_llm(httpx2.MockTransport(Recorder(answer))).aask("hi")
    assert reply == "hello there"
    assert reply.usage is not None and reply.usage.estimated
    assert reply.usage.completion_tokens > 0


async def test_embed_sends_one_batch_and_reads_its_usage() -> None:
    answer = httpx2.Response(
        200,
        json={
            "model": "all-minilm",
            "embeddings": [[0.1, 0.2], [0.3, 0.4]],
            "prompt_eval_count": 9,
            "total_duration": 1000,
        },
    )
    recorder = Recorder(answer)
    llm = make_llm(httpx2.MockTransport(recorder), "ollama.embed", model="all-minilm")
    result = await llm.aembed(["a", "b"])
    assert result.vectors == [[0.1, 0.2], [0.3, 0.4]]
    assert result.usage == Usage(prompt_tokens=9)
    assert result.model == "all-minilm"
    assert recorder.json() == {"model": "all-minilm", "input": ["a", "b"]}
    assert recorder.requests[0].url.path == "/api/embed"
    assert llm.get_costs().total_prompt_tokens == 9


async def test_chat_type_embeds_through_api_embed_too() -> None:
    recorder = Recorder(httpx2.Response(200, json={"embeddings": [[1.0]]}))
    result = await make_llm(httpx2.MockTransport(recorder)).aembed("x")
    assert result.vectors == [[1.0]]
    assert recorder.requests[0].url.path == "/api/embed"


async def test_legacy_embeddings_send_one_request_per_text_in_order() -> None:
    recorder = Recorder(
        httpx2.Response(200, json={"embedding": [1.0]}),
        httpx2.Response(200, json={"embedding": [2.0]}),
    )
    llm = make_llm(httpx2.MockTransport(recorder), "ollama.embeddings")
    result = await llm.aembed(["one", "two"])
    assert result.vectors == [[1.0], [2.0]]
    assert [json.loads(r.content)["prompt"] for r in recorder.requests] == ["one", "two"]


async def test_embeddings_answer_without_vectors_is_a_format_error() -> None:
    recorder = Recorder(httpx2.Response(200, json={"oops": True}))
    with pytest.raises(ResponseFormatError, match="embeddings"):
        await make_llm(httpx2.MockTransport(recorder), "ollama.embed").aembed("x")


@pytest.mark.parametrize("api_type", ["ollama.embed", "ollama.embeddings"])
@pytest.mark.parametrize("stream", [False, True])
async def test_embeddings_only_types_refuse_chat_before_any_request(
    api_type: str, stream: bool
) -> None:
    recorder = Recorder(done_answer())
    llm = make_llm(httpx2.MockTransport(recorder), api_type)
    with pytest.raises(NotSupportedError, match=r"embeddings only: call aembed\(\)"):
        await llm.aask("hi", stream=stream)
    with pytest.raises(NotSupportedError):
        async for _ in llm.astream("hi"):
            pass
    assert recorder.requests == []
    assert llm.get_costs().total_cost == 0


@pytest.mark.parametrize(
    ("api_type", "field", "value"),
    [
        ("ollama", "n", 2),
        ("ollama", "access_key", "AKID"),
        ("ollama", "logprobs", True),
        ("ollama.generate", "best_of", 3),
        ("ollama.embed", "seed", 1),
        ("ollama.embeddings", "top_k", 5),
    ],
)
def test_vendor_fields_ollama_would_drop_are_refused(api_type: str, field: str, value: Any) -> None:
    transport = httpx2.MockTransport(Recorder(done_answer()))
    with pytest.raises(ConfigError, match=rf"{field}=.*{api_type}") as caught:
        make_llm(transport, api_type, **{field: value})
    assert caught.value.key == field


async def test_penalties_reach_ollamas_options_when_set() -> None:
    recorder = Recorder(done_answer())
    llm = make_llm(
        httpx2.MockTransport(recorder), stream=False, presence_penalty=0.5, frequency_penalty=0.25
    )
    await llm.aask("hi")
    options = recorder.json()["options"]
    assert options["presence_penalty"] == 0.5
    assert options["frequency_penalty"] == 0.25


class BreaksAfterFirstLine(httpx2.AsyncByteStream):
    """A body whose connection drops after its first line."""

    async def __aiter__(self) -> Any:
        yield b'{"message": {"content": "par"}, "done": false}\n'
        raise httpx2.ReadError("connection reset")


async def test_connection_lost_mid_stream_is_a_connection_error_and_retried() -> None:
    def broken() -> httpx2.Response:
        return httpx2.Response(
            200, stream=BreaksAfterFirstLine(), headers={"content-type": "application/x-ndjson"}
        )

    whole = ndjson(
        {"message": {"content": "whole"}, "done": False},
        {"message": {"content": ""}, "done": True, "prompt_eval_count": 1, "eval_count": 1},
    )
    recorder = Recorder(broken(), whole)
    llm = make_llm(httpx2.MockTransport(recorder), max_retries=1)
    assert await llm.aask("hi") == "whole"
    assert len(recorder.requests) == 2
    with pytest.raises(APIConnectionError, match="connection reset"):
        await make_llm(httpx2.MockTransport(Recorder(broken()))).aask("hi")


@pytest.mark.parametrize("mode", ["aask_stream", "astream"])
async def test_invalid_utf8_in_an_ndjson_stream_is_a_response_format_error(mode: str) -> None:
    lines = [
        {
            "model": "llama3",
            "message": {"role": "assistant", "content": "caf\u00e9"},
            "done": False,
        },
        {"model": "llama3", "message": {"role": "assistant", "content": ""}, "done": True},
    ]
    body = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
    body = body.replace("\u00e9".encode(), b"\xe9")  # latin-1, not UTF-8
    requests: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        requests.append(request)
        return httpx2.Response(200, content=body, headers={"content-type": "application/x-ndjson"})

    llm = make_llm(httpx2.MockTransport(answer), max_retries=2)
    with pytest.raises(ResponseFormatError, match="not valid UTF-8"):
        await ask(llm, mode)
    assert len(requests) == 1
