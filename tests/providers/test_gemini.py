"""GeminiLLM behaviour beyond the recorded corpus, against scripted ``httpx2.MockTransport``
answers: safety blocks, retries, images, config fields, several candidates, embeddings,
cut streams, keys and timeouts."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx2
import pytest

from harness import (
    APITimeoutError,
    ConfigError,
    ContentFilterError,
    CostManager,
    LLMConfig,
    MissingAPIKeyError,
    PermissionDeniedError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    StreamError,
    create_llm_instance,
)
from harness.costs import Usage
from harness.providers.gemini import GeminiLLM, to_gemini_contents

KEY = "gemini-key-abcdef0123"
PNG = "iVBORw0KGgo="


class Waits:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class Server:
    """Answers each request with the next scripted response (or a callable's)."""

    def __init__(self, *answers: httpx2.Response | Callable[[httpx2.Request], Any]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if callable(answer) and not isinstance(answer, httpx2.Response):
            result: httpx2.Response = answer(request)
            return result
        return answer

    def body(self, index: int = -1) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.requests[index].content)
        return data


def response_json(*texts: str, finish: str = "STOP", **extra: Any) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": t} for t in texts]},
                "finishReason": finish,
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6},
        "modelVersion": "gemini-2.5-flash",
        **extra,
    }


def sse(*objects: dict[str, Any]) -> httpx2.Response:
    body = "".join(f"data: {json.dumps(o)}\r\n\r\n" for o in objects)
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)


def make(server: Server, waits: Waits | None = None, **config: Any) -> GeminiLLM:
    settings: dict[str, Any] = {
        "api_type": "gemini",
        "model": "gemini-2.5-flash",
        "api_key": KEY,
        "max_retries": 2,
        "stream": False,
    }
    settings.update(config)
    llm = create_llm_instance(
        LLMConfig(**settings), transport=httpx2.MockTransport(server), sleep=waits or Waits()
    )
    assert isinstance(llm, GeminiLLM)
    return llm


# -- safety ---------------------------------------------------------------------------------------


async def test_a_blocked_prompt_is_a_content_filter_error_with_the_reason() -> None:
    blocked = {
        "promptFeedback": {
            "blockReason": "SAFETY",
            "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH"}],
        },
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
    }
    server = Server(httpx2.Response(200, json=blocked))
    with pytest.raises(ContentFilterError, match=r"the prompt was blocked \(SAFETY\)") as info:
        await make(server).aask("bad")
    assert info.value.reason == "SAFETY"
    assert info.value.body["promptFeedback"]["blockReason"] == "SAFETY"
    assert len(server.requests) == 1  # not retried


@pytest.mark.parametrize("stream", [False, True])
async def test_an_answer_stopped_by_the_safety_filter_is_a_content_filter_error(
    stream: bool,
) -> None:
    stopped = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "Well"}]},
                "finishReason": "SAFETY",
                "index": 0,
                "safetyRatings": [
                    {
                        "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                        "probability": "HIGH",
                        "blocked": True,
                    }
                ],
            }
        ]
    }
    answer = sse(stopped) if stream else httpx2.Response(200, json=stopped)
    with pytest.raises(ContentFilterError, match="HARM_CATEGORY_DANGEROUS_CONTENT") as info:
        await make(Server(answer)).aask("x", stream=stream)
    assert info.value.reason == "SAFETY"


async def test_prohibited_content_in_a_stream_stops_it() -> None:
    server = Server(sse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}))
    llm = make(server)
    with pytest.raises(ContentFilterError) as info:
        [c async for c in llm.astream("x")]
    assert info.value.reason == "PROHIBITED_CONTENT"


# -- errors and retries ---------------------------------------------------------------------------


def google_error(code: int, status: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "status": status, "message": message, **extra}}


async def test_429_is_retried_after_the_retry_info_delay() -> None:
    quota = google_error(
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded",
        details=[{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "31s"}],
    )
    server = Server(
        httpx2.Response(429, json=quota), httpx2.Response(200, json=response_json("ok"))
    )
    waits = Waits()
    reply = await make(server, waits).aask("x")
    assert reply == "ok"
    assert waits.calls == [31.0]
    assert len(server.requests) == 2


@pytest.mark.parametrize("stream", [False, True])
async def test_500_is_a_retried_server_error_with_the_vendors_message(stream: bool) -> None:
    server = Server(httpx2.Response(500, json=google_error(500, "INTERNAL", "boom")))
    waits = Waits()
    with pytest.raises(ServerError, match="boom") as info:
        await make(server, waits).aask("x", stream=stream)
    assert info.value.error_type == "INTERNAL"
    assert len(server.requests) == 3  # max_retries=2
    assert waits.calls == [1.0, 2.0]


async def test_403_is_permission_denied_and_429_without_hint_a_rate_limit() -> None:
    denied = Server(httpx2.Response(403, json=google_error(403, "PERMISSION_DENIED", "no")))
    with pytest.raises(PermissionDeniedError):
        await make(denied).aask("x")
    limited = Server(httpx2.Response(429, json=google_error(429, "RESOURCE_EXHAUSTED", "slow")))
    with pytest.raises(RateLimitError, match="slow"):
        await make(limited, max_retries=0).aask("x")


async def test_a_transport_timeout_is_an_api_timeout_error() -> None:
    def timeout(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("slow", request=request)

    server = Server(timeout)
    with pytest.raises(APITimeoutError):
        await make(server, max_retries=1).aask("x")
    assert len(server.requests) == 2


async def test_the_call_timeout_reaches_the_request() -> None:
    server = Server(httpx2.Response(200, json=response_json("ok")))
    await make(server, timeout=30).aask("x", timeout=7)
    assert server.requests[0].extensions["timeout"]["read"] == 7


@pytest.mark.parametrize(
    "body",
    [
        b"<html>bad gateway</html>",
        json.dumps({"unexpected": True}).encode(),
    ],
)
async def test_a_2xx_answer_that_is_not_a_response_is_a_format_error(body: bytes) -> None:
    server = Server(
        httpx2.Response(200, headers={"content-type": "application/json"}, content=body)
    )
    with pytest.raises(ResponseFormatError):
        await make(server).aask("x")


# -- cut streams ----------------------------------------------------------------------------------


async def test_an_sse_stream_without_a_finish_reason_is_cut() -> None:
    partial = response_json("The")
    del partial["candidates"][0]["finishReason"]
    server = Server(sse(partial))
    with pytest.raises(StreamError, match="without a finishReason"):
        await make(server, max_retries=0).aask("x", stream=True)


async def test_a_json_array_stream_without_its_closing_bracket_is_cut() -> None:
    body = "[" + json.dumps(response_json("Hi")) + ",\n"
    server = Server(
        httpx2.Response(200, headers={"content-type": "application/json"}, content=body)
    )
    llm = create_llm_instance(
        LLMConfig(api_type="gemini", model="g", api_key=KEY, max_retries=0),
        transport=httpx2.MockTransport(server),
        stream_format="json",
    )
    with pytest.raises(StreamError, match="without its ']'"):
        await llm.aask("x", stream=True)
    assert "alt" not in server.requests[0].url.params


async def test_a_json_array_stream_that_is_not_utf8_is_a_format_error_as_its_sse_form_is() -> None:
    body = ("[" + json.dumps(response_json("caf\u00e9"), ensure_ascii=False) + "]").encode()
    body = body.replace("\u00e9".encode(), b"\xe9")  # latin-1, not UTF-8
    server = Server(
        httpx2.Response(200, headers={"content-type": "application/json"}, content=body)
    )
    llm = create_llm_instance(
        LLMConfig(api_type="gemini", model="g", api_key=KEY, max_retries=0),
        transport=httpx2.MockTransport(server),
        stream_format="json",
    )
    with pytest.raises(ResponseFormatError, match="not valid UTF-8 after object 0"):
        await llm.aask("x", stream=True)


async def test_a_json_array_stream_arriving_in_small_pieces_is_read_object_by_object() -> None:
    objects = [response_json("Hel", finish=""), response_json("lo", finish="STOP")]
    del objects[0]["candidates"][0]["finishReason"]
    text = "[" + ",\r\n".join(json.dumps(o, indent=2) for o in objects) + "]"

    class Pieces(httpx2.AsyncByteStream):
        async def __aiter__(self) -> Any:
            data = text.encode()
            for start in range(0, len(data), 7):
                yield data[start : start + 7]

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "application/json"}, stream=Pieces())

    llm = create_llm_instance(
        LLMConfig(api_type="gemini", model="g", api_key=KEY),
        transport=httpx2.MockTransport(Server(answer)),
        stream_format="json",
    )
    chunks = [c async for c in llm.astream("x")]
    assert [c.text for c in chunks] == ["Hel", "lo"]


# -- requests -------------------------------------------------------------------------------------


def test_roles_system_images_and_consecutive_turns_map_to_gemini_contents() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp?x=1"}},
            ],
        },
        {"role": "user", "content": "Quickly."},
        {"role": "assistant", "content": "A cat."},
        {"role": "system", "content": "No emoji."},
        {"role": "user", "content": "Sure?"},
    ]
    instruction, contents = to_gemini_contents(messages)
    assert instruction == {"parts": [{"text": "Be brief.\n\nNo emoji."}]}
    assert contents == [
        {
            "role": "user",
            "parts": [
                {"text": "What is in these?"},
                {"inlineData": {"mimeType": "image/png", "data": PNG}},
                {
                    "fileData": {
                        "mimeType": "image/webp",
                        "fileUri": "https://example.com/cat.webp?x=1",
                    }
                },
                {"text": "Quickly."},
            ],
        },
        {"role": "model", "parts": [{"text": "A cat."}]},
        {"role": "user", "parts": [{"text": "Sure?"}]},
    ]


async def test_aask_with_images_sends_inline_data_and_file_data() -> None:
    server = Server(httpx2.Response(200, json=response_json("two")))
    await make(server).aask("count", images=[PNG, "https://example.com/a.jpg"])
    parts = server.body()["contents"][0]["parts"]
    assert parts == [
        {"text": "count"},
        {"inlineData": {"mimeType": "image/jpeg", "data": PNG}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/a.jpg"}},
    ]


async def test_config_fields_map_to_generation_config() -> None:
    server = Server(httpx2.Response(200, json=response_json("ok")))
    llm = make(
        server,
        temperature=0.3,
        top_p=0.9,
        top_k=20,
        max_token=256,
        stop=["END", "STOP"],
        seed=42,
        presence_penalty=0.5,
        frequency_penalty=0.25,
        logprobs=True,
        top_logprobs=3,
        reasoning=True,
        reasoning_max_token=1024,
    )
    await llm.aask("x")
    assert server.body()["generationConfig"] == {
        "temperature": 0.3,
        "topP": 0.9,
        "topK": 20,
        "maxOutputTokens": 256,
        "stopSequences": ["END", "STOP"],
        "seed": 42,
        "presencePenalty": 0.5,
        "frequencyPenalty": 0.25,
        "responseLogprobs": True,
        "logprobs": 3,
        "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True},
    }


@pytest.mark.parametrize(
    "field", ["repetition_penalty", "best_of", "access_key", "region_name", "app_id", "domain"]
)
def test_fields_gemini_does_not_have_are_refused_by_name(field: str) -> None:
    values = {"repetition_penalty": 1.2, "best_of": 2, "access_key": "AK", "region_name": "r"}
    values.update(app_id="a", domain="d")
    with pytest.raises(ConfigError, match=f"{field}=.*'gemini'") as info:
        create_llm_instance(LLMConfig(api_type="gemini", model="g", **{field: values[field]}))
    assert info.value.key == field


@pytest.mark.parametrize("stream", [False, True])
async def test_n_candidates_come_back_as_choices(stream: bool) -> None:
    data = {
        "candidates": [
            {"content": {"parts": [{"text": "one"}]}, "finishReason": "STOP", "index": 0},
            {"content": {"parts": [{"text": "two"}]}, "finishReason": "MAX_TOKENS", "index": 1},
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4},
    }
    answer = sse(data) if stream else httpx2.Response(200, json=data)
    server = Server(answer)
    reply = await make(server, n=2).aask("x", stream=stream)
    assert server.body()["generationConfig"]["candidateCount"] == 2
    assert reply == "one"
    assert reply.alternatives == ["one", "two"]
    assert reply.response.choices[1].finish_reason == "MAX_TOKENS"
    assert reply.usage == Usage(prompt_tokens=3, completion_tokens=4)


@pytest.mark.parametrize(
    ("base_url", "api_version", "expected"),
    [
        (None, None, "https://generativelanguage.googleapis.com/v1beta/models/g:generateContent"),
        ("https://proxy.test/gemini/", None, "https://proxy.test/gemini/v1beta/models/g:generateContent"),
        ("https://proxy.test/v1", None, "https://proxy.test/v1/models/g:generateContent"),
        (None, "v1", "https://generativelanguage.googleapis.com/v1/models/g:generateContent"),
    ],
)  # fmt: skip
async def test_the_url_follows_base_url_and_api_version(
    base_url: str | None, api_version: str | None, expected: str
) -> None:
    server = Server(httpx2.Response(200, json=response_json("ok")))
    await make(server, model="g", base_url=base_url, api_version=api_version).aask("x")
    assert str(server.requests[0].url) == expected


async def test_a_models_prefix_in_the_model_name_is_not_doubled() -> None:
    server = Server(httpx2.Response(200, json=response_json("ok")))
    await make(server, model="models/gemini-2.5-pro").aask("x")
    assert server.requests[0].url.path == "/v1beta/models/gemini-2.5-pro:generateContent"


# -- keys -----------------------------------------------------------------------------------------


class UpstreamBound(httpx2.MockTransport):
    reaches_upstream = True


async def test_no_key_with_an_upstream_bound_transport_is_missing_api_key_unsent() -> None:
    server = Server(httpx2.Response(200, json=response_json("ok")))
    llm = create_llm_instance(
        LLMConfig(api_type="gemini", model="g"), transport=UpstreamBound(server), environ={}
    )
    with pytest.raises(MissingAPIKeyError, match="GEMINI_API_KEY") as info:
        await llm.aask("x")
    assert info.value.env_var == "GEMINI_API_KEY"
    assert server.requests == []


@pytest.mark.parametrize("variable", ["GEMINI_API_KEY", "GOOGLE_API_KEY"])
async def test_the_key_comes_from_the_environment_in_the_header(variable: str) -> None:
    server = Server(httpx2.Response(200, json=response_json("ok")))
    llm = create_llm_instance(
        LLMConfig(api_type="gemini", model="g", stream=False),
        transport=UpstreamBound(server),
        environ={variable: "env-key-123"},
    )
    await llm.aask("x")
    assert server.requests[0].headers["x-goog-api-key"] == "env-key-123"
    assert "env-key-123" not in str(server.requests[0].url)


# -- embeddings -----------------------------------------------------------------------------------


async def test_one_text_uses_embed_content() -> None:
    server = Server(httpx2.Response(200, json={"embedding": {"values": [0.5, -0.25]}}))
    costs = CostManager()
    llm = make(server, model="gemini-embedding-001")
    llm.cost_manager = costs
    result = await llm.aembed("hello world")
    assert result.vectors == [[0.5, -0.25]]
    request = server.requests[0]
    assert str(request.url) == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:embedContent"
    )
    assert request.headers["x-goog-api-key"] == KEY
    assert server.body() == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "hello world"}]},
    }
    assert result.usage is not None and result.usage.estimated  # the API reports no tokens
    entry = costs.per_model()["gemini-embedding-001"]  # $0.15 / 1M input tokens
    assert entry.cost == Decimal("0.15") * entry.usage.prompt_tokens / 1_000_000


async def test_several_texts_use_batch_embed_contents_in_order() -> None:
    answer = {"embeddings": [{"values": [1.0]}, {"values": [2.0]}, {"values": [3.0]}]}
    server = Server(httpx2.Response(200, json=answer))
    result = await make(server, model="gemini-embedding-001").aembed(["a", "b", "c"])
    assert result.vectors == [[1.0], [2.0], [3.0]]
    assert server.requests[0].url.path.endswith("/models/gemini-embedding-001:batchEmbedContents")
    assert server.body() == {
        "requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": t}]}}
            for t in ("a", "b", "c")
        ]
    }


async def test_embedding_usage_metadata_is_used_when_present() -> None:
    answer = {"embedding": {"values": [1.0]}, "usageMetadata": {"promptTokenCount": 3}}
    result = await make(Server(httpx2.Response(200, json=answer)), model="e").aembed("x")
    assert result.usage == Usage(prompt_tokens=3)


async def test_an_embedding_answer_without_values_is_a_format_error() -> None:
    server = Server(httpx2.Response(200, json={"embedding": {"values": "nope"}}))
    with pytest.raises(ResponseFormatError, match="'values'"):
        await make(server, model="e").aembed("x")


async def test_requests_share_one_http_client_until_aclose() -> None:
    server = Server(httpx2.Response(200, json=response_json("ok")))
    llm = make(server)
    await llm.aask("a")
    await llm.aask("b")
    assert len(llm._owned_clients) == 1  # connections are reused, not one client per call
    first = llm._owned_clients[0]
    await llm.aclose()
    assert first.is_closed
    assert await llm.aask("c") == "ok"  # usable again after aclose, on a new client
    assert len(llm._owned_clients) == 1 and llm._owned_clients[0] is not first


def test_a_tool_call_message_carries_the_signature_only_when_there_is_one() -> None:
    from harness.providers.base import ToolCall

    plain = ToolCall(id="c1", name="f", arguments="{}").to_message()
    assert plain == {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    signed = ToolCall(id=None, name="f", arguments='{"a": 1}', signature="sig==").to_message()
    assert signed["extra_content"] == {"google": {"thought_signature": "sig=="}}
    _, contents = to_gemini_contents([{"role": "assistant", "tool_calls": [signed]}])
    assert contents == [
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "sig=="}
            ],
        }
    ]


def test_usage_metadata_counts_cached_tool_use_prompt_and_thought_tokens() -> None:
    from harness.providers.gemini import parse_gemini_usage

    usage = parse_gemini_usage(
        {
            "promptTokenCount": 100,
            "cachedContentTokenCount": 60,
            "toolUsePromptTokenCount": 5,
            "candidatesTokenCount": 7,
            "thoughtsTokenCount": 20,
            "totalTokenCount": 132,
        }
    )
    assert usage == Usage(
        prompt_tokens=105, completion_tokens=27, cached_tokens=60, reasoning_tokens=20
    )
    assert usage.total_tokens == 132
    assert parse_gemini_usage({}) is None
    assert parse_gemini_usage(None) is None
