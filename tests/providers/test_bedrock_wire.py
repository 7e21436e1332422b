"""BedrockLLM against recorded Bedrock traffic and scripted HTTP answers.

Part 1 replays every file of ``tests/wire_corpus/bedrock`` (facts from INDEX.md), stream and
not; part 2 checks what harness sends: the URL, the body, and a SigV4 signature recomputed
here from the bytes sent (with a fixed clock); part 3 credentials, errors and embeddings.
No test touches the network.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import httpx2
import pytest

from harness import LLMConfig, create_llm_instance
from harness.costs import Usage
from harness.errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    MissingAPIKeyError,
    NotSupportedError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    StreamError,
)
from harness.providers._eventstream import encode_message
from harness.providers.base import StreamChunk, ToolCall
from harness.providers.bedrock import BedrockLLM
from tests.wirecorpus import CORPUS, CorpusTransport, load

CONVERSE = "bedrock/pydantic-ai__test_bedrock_model.yaml"
CONVERSE_THINKING_STREAM = "bedrock/pydantic-ai__test_bedrock_model_thinking_part_stream.yaml"
CONVERSE_ERROR = "bedrock/pydantic-ai__test_bedrock_error.yaml"
CONVERSE_TOOL_STREAM = "bedrock/openllmetry__test_anthropic_converse_stream_with_tool_use.yaml"
INVOKE = "bedrock/openllmetry__test_anthropic_3_completion_string_content.yaml"
INVOKE_STREAM = "bedrock/openllmetry__test_anthropic_3_completion_streaming.yaml"
ALL_FILES = {
    CONVERSE,
    CONVERSE_THINKING_STREAM,
    CONVERSE_ERROR,
    CONVERSE_TOOL_STREAM,
    INVOKE,
    INVOKE_STREAM,
}

NOVA = "us.amazon.nova-micro-v1:0"
CLAUDE_3 = "anthropic.claude-3-sonnet-20240229-v1:0"
CLAUDE_4 = "us.anthropic.claude-sonnet-4-20250514-v1:0"
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
FIXED = datetime(2024, 6, 11, 0, 34, 41, tzinfo=timezone.utc)


class Waits:
    """An injectable ``sleep`` that records the retry waits instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_llm(
    transport: Any,
    model: str = NOVA,
    *,
    api: str = "auto",
    environ: dict[str, str] | None = None,
    sleep: Waits | None = None,
    **config: Any,
) -> BedrockLLM:
    settings: dict[str, Any] = {
        "api_type": "bedrock",
        "model": model,
        "region_name": "us-east-1",
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "max_retries": 0,
    }
    settings.update(config)
    llm = create_llm_instance(
        LLMConfig(**settings),
        transport=transport,
        sleep=sleep or Waits(),
        api=api,
        clock=lambda: FIXED,
        environ={} if environ is None else environ,
    )
    assert isinstance(llm, BedrockLLM)
    return llm


async def ask(llm: BedrockLLM, mode: str, prompt: str = "Hello") -> tuple[Any, list[StreamChunk]]:
    if mode == "astream":
        chunks = [c async for c in llm.astream(prompt)]
        return None, chunks
    return await llm.aask(prompt, stream=(mode == "aask_stream")), []


def folded(reply: Any, chunks: list[StreamChunk]) -> dict[str, Any]:
    """The facts of a Reply, or of the chunks of astream, in one shape."""
    if reply is not None:
        return {
            "text": str(reply),
            "reasoning": reply.reasoning_content,
            "finish": reply.finish_reason,
            "usage": reply.usage,
            "tools": reply.response.tool_calls,
            "metrics": reply.response.metrics,
            "model": reply.model,
        }
    metrics: dict[str, float] = {}
    for chunk in chunks:
        metrics.update(chunk.metrics)
    usages = [c.usage for c in chunks if c.usage]
    return {
        "text": "".join(c.text for c in chunks),
        "reasoning": "".join(c.reasoning for c in chunks) or None,
        "finish": [c.finish_reason for c in chunks if c.finish_reason][-1],
        "usage": usages[-1] if usages else None,
        "tools": [t for c in chunks for t in c.tool_calls],
        "metrics": metrics,
        "model": [c.model for c in chunks if c.model][-1],
    }


def test_every_bedrock_corpus_file_has_a_replay_test() -> None:
    on_disk = {f"bedrock/{p.name}" for p in (CORPUS / "bedrock").glob("*.yaml")}
    assert on_disk == ALL_FILES


# -- an independent SigV4 (AWS's published algorithm), to check what was sent ---------------


def expected_authorization(
    request: httpx2.Request, *, access_key: str, secret_key: str, region: str
) -> str:
    """The Authorization header SigV4 gives for ``request`` as it was sent."""
    authorization = request.headers["authorization"]
    signed = authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
    amz_date = request.headers["x-amz-date"]
    # Every service but S3 encodes the (already encoded) path once more.
    canonical_uri = quote(request.url.raw_path.decode().split("?", 1)[0], safe="/~")
    canonical_headers = "".join(f"{name}:{request.headers[name].strip()}\n" for name in signed)
    canonical = "\n".join(
        [
            request.method,
            canonical_uri,
            request.url.query.decode(),
            canonical_headers,
            ";".join(signed),
            hashlib.sha256(request.content).hexdigest(),
        ]
    )
    scope = f"{amz_date[:8]}/{region}/bedrock/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{secret_key}".encode()
    for part in (amz_date[:8], region, "bedrock", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={signature}"
    )


def assert_signed(request: httpx2.Request, *, access_key: str = ACCESS_KEY) -> None:
    assert request.headers["x-amz-date"] == "20240611T003441Z"  # the injected clock
    assert request.headers["authorization"] == expected_authorization(
        request, access_key=access_key, secret_key=SECRET_KEY, region="us-east-1"
    )
    assert "SignedHeaders=accept;content-type;host;x-amz-date," in request.headers["authorization"]


# -- 1. recorded answers -------------------------------------------------------------------


async def test_converse_answer_parses_text_usage_stop_reason_and_latency() -> None:
    transport = CorpusTransport.from_file(CONVERSE)
    llm = make_llm(transport, stream=False)
    reply = await llm.aask("Hello!", system_msgs=["You are a chatbot."])
    assert reply == (
        "Hello! How can I assist you today? Whether you have questions, need information, "
        "or just want to chat, I'm here to help."
    )
    assert reply.finish_reason == "end_turn"
    assert reply.usage == Usage(prompt_tokens=7, completion_tokens=30)
    assert reply.response.metrics == {"latency": 0.268}
    assert reply.reasoning_content is None
    request = transport.requests[0]
    assert str(request.url) == load(CONVERSE)[0].uri  # the model id's ":" sent as %3A
    assert transport.sent_json(0) == {
        "messages": [{"role": "user", "content": [{"text": "Hello!"}]}],
        "system": [{"text": "You are a chatbot."}],
        "inferenceConfig": {"maxTokens": 4096},
    }
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert_signed(request)


@pytest.mark.parametrize("mode", ["aask_stream", "astream"])
async def test_converse_stream_with_reasoning_is_reassembled(mode: str) -> None:
    transport = CorpusTransport.from_file(CONVERSE_THINKING_STREAM)
    llm = make_llm(transport, CLAUDE_4, reasoning=True, reasoning_max_token=1024)
    facts = folded(*await ask(llm, mode))
    assert facts["reasoning"] is not None
    assert len(facts["reasoning"]) == 193
    assert facts["reasoning"].startswith('The user has greeted me with a simple "Hello".')
    assert facts["text"] == "Hello! It's nice to meet you. How can I help you today?"
    assert facts["finish"] == "end_turn"
    assert facts["usage"] == Usage(prompt_tokens=36, completion_tokens=73)
    assert facts["metrics"] == {"latency": 1.999}
    assert facts["tools"] == []
    request = transport.requests[0]
    assert request.url.path.endswith("/converse-stream")
    assert request.headers["accept"] == "application/vnd.amazon.eventstream"
    sent = transport.sent_json(0)
    assert sent["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 1024}
    }
    assert "temperature" not in sent["inferenceConfig"]
    assert_signed(request)


async def test_converse_error_400_is_a_bad_request_not_retried() -> None:
    transport = CorpusTransport.from_file(CONVERSE_ERROR)
    llm = make_llm(transport, "us.does-not-exist-model-v1:0", stream=False, max_retries=3)
    with pytest.raises(
        BadRequestError, match=r"The provided model identifier is invalid\."
    ) as caught:
        await llm.aask("hello")
    assert caught.value.status_code == 400
    assert len(transport.requests) == 1


@pytest.mark.parametrize("mode", ["aask_stream", "astream"])
async def test_converse_stream_tool_use_is_assembled_from_input_fragments(mode: str) -> None:
    transport = CorpusTransport.from_file(CONVERSE_TOOL_STREAM)
    # An anthropic. model id goes to InvokeModel unless Converse is asked for.
    llm = make_llm(transport, CLAUDE_3, api="converse", temperature=0.5, max_token=300)
    facts = folded(*await ask(llm, mode, "What is the weather in Barcelona?"))
    assert facts["text"] == "Okay, let me check the weather for Barcelona using the available tool:"
    assert facts["tools"] == [
        ToolCall(
            id="tooluse_yypYDr71TwCwByoyao4-Vg",
            name="get_weather",
            arguments='{"location": "Barcelona"}',
        )
    ]
    assert json.loads(facts["tools"][0].arguments) == {"location": "Barcelona"}
    assert facts["finish"] == "tool_use"
    assert facts["usage"] == Usage(prompt_tokens=236, completion_tokens=58)
    assert facts["metrics"] == {"latency": 1.176}
    assert transport.sent_json(0)["inferenceConfig"] == {"maxTokens": 300, "temperature": 0.5}


async def test_invoke_model_reads_an_anthropic_messages_body() -> None:
    transport = CorpusTransport.from_file(INVOKE)
    llm = make_llm(transport, CLAUDE_3, stream=False, temperature=0.5, max_token=200)
    reply = await llm.aask("Tell me a joke about opentelemetry")
    assert reply == "Why did the distributed trace cross the road? To get to the other service!"
    assert reply.finish_reason == "end_turn"
    assert reply.usage == Usage(prompt_tokens=16, completion_tokens=19)
    assert reply.model == "claude-3-sonnet-20240229"
    assert reply.response.metrics == {"latency": 0.711}
    request = transport.requests[0]
    assert str(request.url) == load(INVOKE)[0].uri
    assert transport.sent_json(0) == {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 200,
        "temperature": 0.5,
        "system": "You are a helpful assistant.",
        "messages": [{"role": "user", "content": "Tell me a joke about opentelemetry"}],
    }
    assert_signed(request)


@pytest.mark.parametrize("mode", ["aask_stream", "astream"])
async def test_invoke_model_stream_decodes_anthropic_events_from_frames(mode: str) -> None:
    transport = CorpusTransport.from_file(INVOKE_STREAM)
    facts = folded(*await ask(make_llm(transport, CLAUDE_3), mode))
    assert facts["text"] == (
        "Why did the distributed tracing span cross the road? To get to the other service!"
    )
    assert facts["finish"] == "end_turn"
    assert facts["usage"] == Usage(prompt_tokens=16, completion_tokens=21)
    assert facts["model"] == "claude-3-sonnet-20240229"
    assert facts["metrics"] == {"latency": 0.738, "first_byte_latency": 0.378}
    assert transport.requests[0].url.path.endswith("/invoke-with-response-stream")
    assert_signed(transport.requests[0])


# -- 2. what harness sends ----------------------------------------------------------------


class Recorder:
    """A MockTransport handler: records requests, answers with ``answers`` in turn."""

    def __init__(self, *answers: httpx2.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx2.Request] = []
        self.reaches_upstream = False

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


class Upstream(httpx2.MockTransport):
    """A mock that says it reaches the real provider (as recording and live transports do)."""

    reaches_upstream = True


def converse_answer(text: str = "ok") -> httpx2.Response:
    return httpx2.Response(
        200,
        json={
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 3, "outputTokens": 1, "totalTokens": 4},
            "metrics": {"latencyMs": 5},
        },
    )


def frames(*events: tuple[str, dict[str, Any]], kind: str = "event") -> bytes:
    body = b""
    for name, payload in events:
        type_header = ":event-type" if kind == "event" else ":exception-type"
        headers = {type_header: name, ":content-type": "application/json", ":message-type": kind}
        body += encode_message(headers, json.dumps(payload).encode())
    return body


def stream_answer(body: bytes) -> httpx2.Response:
    return httpx2.Response(
        200, content=body, headers={"content-type": "application/vnd.amazon.eventstream"}
    )


WHOLE_STREAM = frames(
    ("messageStart", {"role": "assistant"}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hi"}}),
    ("messageStop", {"stopReason": "end_turn"}),
    ("metadata", {"usage": {"inputTokens": 2, "outputTokens": 1}, "metrics": {"latencyMs": 9}}),
)


async def test_converse_sends_history_images_tools_and_sampling_settings() -> None:
    recorder = Recorder(converse_answer())
    llm = make_llm(
        httpx2.MockTransport(recorder), stream=False, temperature=0.2, top_p=0.9, top_k=5, stop="X"
    )
    history = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "t1", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "rain"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "and this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        },
    ]
    await llm.acompletion(history)
    assert recorder.json() == {
        "system": [{"text": "Be brief."}],
        "messages": [
            {"role": "user", "content": [{"text": "weather?"}]},
            {
                "role": "assistant",
                "content": [
                    {
                        "toolUse": {
                            "toolUseId": "t1",
                            "name": "get_weather",
                            "input": {"city": "Oslo"},
                        }
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": "t1", "content": [{"text": "rain"}]}},
                    {"text": "and this?"},
                    {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
                ],
            },
        ],
        "inferenceConfig": {
            "maxTokens": 4096,
            "temperature": 0.2,
            "topP": 0.9,
            "stopSequences": ["X"],
        },
        "additionalModelRequestFields": {"top_k": 5},
    }


async def test_image_urls_are_refused_before_any_request() -> None:
    recorder = Recorder(converse_answer())
    llm = make_llm(httpx2.MockTransport(recorder), stream=False)
    with pytest.raises(ValueError, match="message 1: Bedrock takes images as inline data"):
        await llm.aask("what?", images=["https://example.com/a.png"])
    assert recorder.requests == []


async def test_session_token_is_sent_and_signed() -> None:
    recorder = Recorder(converse_answer())
    llm = make_llm(httpx2.MockTransport(recorder), stream=False, session_token="TOKEN123")
    await llm.aask("hi")
    request = recorder.requests[0]
    assert request.headers["x-amz-security-token"] == "TOKEN123"
    authorization = request.headers["authorization"]
    assert "SignedHeaders=accept;content-type;host;x-amz-date;x-amz-security-token," in (
        authorization
    )
    assert authorization == expected_authorization(
        request, access_key=ACCESS_KEY, secret_key=SECRET_KEY, region="us-east-1"
    )


async def test_region_names_the_host_and_the_credential_scope() -> None:
    recorder = Recorder(converse_answer())
    llm = make_llm(httpx2.MockTransport(recorder), stream=False, region_name="eu-west-3")
    await llm.aask("hi")
    request = recorder.requests[0]
    assert request.url.host == "bedrock-runtime.eu-west-3.amazonaws.com"
    assert (
        f"Credential={ACCESS_KEY}/20240611/eu-west-3/bedrock/aws4_request"
        in (request.headers["authorization"])
    )


async def test_base_url_overrides_the_regional_endpoint() -> None:
    recorder = Recorder(converse_answer())
    llm = make_llm(
        httpx2.MockTransport(recorder), stream=False, base_url="https://vpce-1.example.com/"
    )
    await llm.aask("hi")
    assert str(recorder.requests[0].url) == (
        "https://vpce-1.example.com/model/us.amazon.nova-micro-v1%3A0/converse"
    )


async def test_endpoint_overrides_the_regional_endpoint_too() -> None:
    recorder = Recorder(converse_answer())
    llm = make_llm(
        httpx2.MockTransport(recorder), stream=False, endpoint="https://vpce-2.example.com"
    )
    await llm.aask("hi")
    assert str(recorder.requests[0].url) == (
        "https://vpce-2.example.com/model/us.amazon.nova-micro-v1%3A0/converse"
    )


async def test_the_call_timeout_reaches_the_request() -> None:
    recorder = Recorder(converse_answer())
    llm = make_llm(httpx2.MockTransport(recorder), stream=False, timeout=30.0)
    await llm.aask("hi", timeout=4.0)
    assert recorder.requests[0].extensions["timeout"]["read"] == 4.0


# -- 3. credentials -----------------------------------------------------------------------


async def test_credentials_come_from_the_environment_chain_when_the_config_has_none() -> None:
    recorder = Recorder(converse_answer())
    environ = {"AWS_ACCESS_KEY_ID": "AKIDFROMENV", "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    llm = make_llm(
        Upstream(recorder), stream=False, access_key=None, secret_key=None, environ=environ
    )
    await llm.aask("hi")
    assert_signed(recorder.requests[0], access_key="AKIDFROMENV")


async def test_no_credentials_for_a_live_transport_is_missing_key_before_any_request() -> None:
    recorder = Recorder(converse_answer())
    llm = make_llm(Upstream(recorder), stream=False, access_key=None, secret_key=None)
    with pytest.raises(MissingAPIKeyError, match="AWS_ACCESS_KEY_ID") as caught:
        await llm.aask("hi")
    assert caught.value.env_var == "AWS_ACCESS_KEY_ID"
    assert recorder.requests == []


async def test_replay_without_credentials_signs_with_placeholders() -> None:
    transport = CorpusTransport.from_file(CONVERSE)
    llm = make_llm(transport, stream=False, access_key=None, secret_key=None)
    assert await llm.aask("Hello!") != ""
    assert (
        "Credential=AKIDREPLAYNOKEY/20240611/us-east-1/bedrock/aws4_request"
        in (transport.requests[0].headers["authorization"])
    )


def test_half_a_key_pair_is_a_config_error_naming_the_missing_field() -> None:
    llm = make_llm(httpx2.MockTransport(Recorder(converse_answer())), secret_key=None)
    with pytest.raises(ConfigError, match="secret_key is missing") as caught:
        llm._credentials()
    assert caught.value.key == "secret_key"


async def test_no_region_is_a_config_error_naming_region_name() -> None:
    recorder = Recorder(converse_answer())
    llm = make_llm(httpx2.MockTransport(recorder), stream=False, region_name=None)
    with pytest.raises(ConfigError, match="AWS_REGION") as caught:
        await llm.aask("hi")
    assert caught.value.key == "region_name"
    assert recorder.requests == []


async def test_region_from_the_environment() -> None:
    recorder = Recorder(converse_answer())
    llm = make_llm(
        httpx2.MockTransport(recorder),
        stream=False,
        region_name=None,
        environ={"AWS_REGION": "ap-south-1"},
    )
    await llm.aask("hi")
    assert recorder.requests[0].url.host == "bedrock-runtime.ap-south-1.amazonaws.com"


async def test_missing_botocore_is_a_config_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("botocore", "botocore.auth", "botocore.awsrequest", "botocore.credentials"):
        monkeypatch.setitem(__import__("sys").modules, name, None)  # makes `import` fail
    recorder = Recorder(converse_answer())
    llm = make_llm(httpx2.MockTransport(recorder), stream=False)
    with pytest.raises(ConfigError, match=r"pip install 'harness-llm\[bedrock\]'"):
        await llm.aask("hi")
    assert recorder.requests == []


def test_import_harness_and_other_providers_never_import_botocore() -> None:
    import subprocess
    import sys

    code = (
        "import sys, httpx2, harness\n"
        "from harness import LLMConfig, create_llm_instance\n"
        "for t in ('openai', 'anthropic', 'ollama', 'ollama.embed'):\n"
        "    create_llm_instance(LLMConfig(api_type=t, model='m', api_key='k'),"
        " transport=httpx2.MockTransport(lambda r: None))\n"
        "assert 'botocore' not in sys.modules, 'botocore imported'\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# -- 4. errors and streams ----------------------------------------------------------------


async def test_throttling_429_is_a_rate_limit_error_and_is_retried() -> None:
    throttled = httpx2.Response(
        429,
        json={"message": "Too many requests, please wait before trying again."},
        headers={"x-amzn-errortype": "ThrottlingException:http://internal.amazon.com/coral/"},
    )
    recorder = Recorder(throttled, converse_answer("after"))
    waits = Waits()
    llm = make_llm(httpx2.MockTransport(recorder), stream=False, max_retries=2, sleep=waits)
    assert await llm.aask("hi") == "after"
    assert len(recorder.requests) == 2
    assert len(waits.calls) == 1


async def test_throttling_after_the_last_retry_names_the_error_type() -> None:
    throttled = httpx2.Response(
        429,
        json={"message": "Too many requests"},
        headers={"x-amzn-errortype": "ThrottlingException"},
    )
    llm = make_llm(httpx2.MockTransport(Recorder(throttled)), stream=False)
    with pytest.raises(RateLimitError, match="ThrottlingException: Too many requests") as caught:
        await llm.aask("hi")
    assert caught.value.error_type == "ThrottlingException"


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (424, "ModelErrorException", BadRequestError),
        (408, "ModelTimeoutException", ServerError),
        (503, "ServiceUnavailableException", ServerError),
        (403, "UnrecognizedClientException", AuthenticationError),
    ],
)
async def test_model_and_service_errors_map_to_the_harness_tree(
    status: int, error_type: str, expected: type[Exception]
) -> None:
    answer = httpx2.Response(
        status, json={"message": "failed"}, headers={"x-amzn-errortype": error_type}
    )
    llm = make_llm(httpx2.MockTransport(Recorder(answer)), stream=False)
    with pytest.raises(expected, match=f"{error_type}: failed"):
        await llm.aask("hi")


async def test_exception_frame_before_any_content_is_retried() -> None:
    throttled = stream_answer(
        frames(("throttlingException", {"message": "slow down"}), kind="exception")
    )
    recorder = Recorder(throttled, stream_answer(WHOLE_STREAM))
    llm = make_llm(httpx2.MockTransport(recorder), max_retries=1)
    reply = await llm.aask("hi")
    assert reply == "hi"
    assert reply.usage == Usage(prompt_tokens=2, completion_tokens=1)
    assert reply.response.metrics == {"latency": 0.009}
    assert len(recorder.requests) == 2


async def test_model_stream_error_frame_is_a_server_error() -> None:
    body = frames(
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "par"}}),
    ) + frames(("modelStreamErrorException", {"message": "model broke"}), kind="exception")
    llm = make_llm(httpx2.MockTransport(Recorder(stream_answer(body))))
    with pytest.raises(ServerError, match="modelStreamErrorException: model broke"):
        await llm.aask("hi")


async def test_stream_without_message_stop_is_cut_short() -> None:
    body = frames(
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "par"}}),
    )
    llm = make_llm(httpx2.MockTransport(Recorder(stream_answer(body))))
    with pytest.raises(StreamError, match="messageStop") as caught:
        await llm.aask("hi")
    assert caught.value.code == "incomplete_stream"


async def test_stream_ending_inside_a_frame_is_cut_short() -> None:
    llm = make_llm(httpx2.MockTransport(Recorder(stream_answer(WHOLE_STREAM[:-7]))))
    with pytest.raises(StreamError, match="inside a frame"):
        await llm.aask("hi")


async def test_corrupt_frame_is_a_format_error() -> None:
    corrupt = bytearray(WHOLE_STREAM)
    corrupt[40] ^= 0xFF
    llm = make_llm(httpx2.MockTransport(Recorder(stream_answer(bytes(corrupt)))))
    with pytest.raises(ResponseFormatError, match="CRC"):
        await llm.aask("hi")


async def test_json_where_a_stream_was_asked_for_is_a_format_error() -> None:
    llm = make_llm(httpx2.MockTransport(Recorder(converse_answer())))
    with pytest.raises(ResponseFormatError, match="not an AWS event stream"):
        await llm.aask("hi")


# -- 5. embeddings --------------------------------------------------------------------------


async def test_titan_embeddings_one_invoke_per_text_with_token_counts() -> None:
    recorder = Recorder(
        httpx2.Response(200, json={"embedding": [0.1, 0.2], "inputTextTokenCount": 3}),
        httpx2.Response(200, json={"embedding": [0.3, 0.4], "inputTextTokenCount": 4}),
    )
    llm = make_llm(httpx2.MockTransport(recorder), "amazon.titan-embed-text-v2:0")
    result = await llm.aembed(["one", "two"])
    assert result.vectors == [[0.1, 0.2], [0.3, 0.4]]
    assert result.usage == Usage(prompt_tokens=7)
    assert [json.loads(r.content) for r in recorder.requests] == [
        {"inputText": "one"},
        {"inputText": "two"},
    ]
    assert str(recorder.requests[0].url) == (
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
        "amazon.titan-embed-text-v2%3A0/invoke"
    )
    assert_signed(recorder.requests[0])
    assert llm.get_costs().total_prompt_tokens == 7


async def test_embeddings_on_a_chat_model_are_not_supported() -> None:
    recorder = Recorder(converse_answer())
    with pytest.raises(NotSupportedError, match="Titan"):
        await make_llm(httpx2.MockTransport(recorder)).aembed("x")
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("seed", 3), ("repetition_penalty", 1.3), ("n", 2), ("presence_penalty", 0.5)],
)
def test_vendor_fields_bedrock_would_drop_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=rf"{field}=.*'bedrock'") as caught:
        make_llm(httpx2.MockTransport(Recorder(converse_answer())), **{field: value})
    assert caught.value.key == field


def test_unknown_api_switch_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown Bedrock api 'messages'"):
        make_llm(httpx2.MockTransport(Recorder(converse_answer())), api="messages")


async def test_anthropic_model_ids_go_to_invoke_model_unless_converse_is_asked_for() -> None:
    recorder = Recorder(converse_answer())
    transport = httpx2.MockTransport(recorder)
    assert make_llm(transport, CLAUDE_3).uses_invoke() is True
    assert make_llm(transport, CLAUDE_3, api="converse").uses_invoke() is False
    assert make_llm(transport, CLAUDE_4).uses_invoke() is False  # a regional profile id
    assert make_llm(transport, NOVA, api="invoke").uses_invoke() is True


@pytest.mark.parametrize("mode", ["aask_stream", "astream"])
async def test_exception_frame_after_message_start_but_before_content_is_retried(
    mode: str,
) -> None:
    throttled = stream_answer(
        frames(("messageStart", {"role": "assistant"}))
        + frames(("throttlingException", {"message": "slow down"}), kind="exception")
    )
    recorder = Recorder(throttled, stream_answer(WHOLE_STREAM))
    llm = make_llm(httpx2.MockTransport(recorder), max_retries=1)
    facts = folded(*await ask(llm, mode))
    assert facts["text"] == "hi"
    assert facts["finish"] == "end_turn"
    assert len(recorder.requests) == 2


async def test_astream_left_early_closes_the_answer() -> None:
    closed: list[bool] = []

    class Body(httpx2.AsyncByteStream):
        async def __aiter__(self) -> Any:
            yield WHOLE_STREAM

        async def aclose(self) -> None:
            closed.append(True)

    answer = httpx2.Response(
        200, stream=Body(), headers={"content-type": "application/vnd.amazon.eventstream"}
    )
    llm = make_llm(httpx2.MockTransport(Recorder(answer)))
    seen = []
    async with contextlib.aclosing(llm.astream("hi")) as stream:
        async for chunk in stream:
            seen.append(chunk.text)
            if chunk.text:
                break
    assert seen[-1] == "hi"
    assert closed == [True]


async def test_chain_credentials_and_region_come_from_botocores_session(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    config_file = tmp_path / "config"
    config_file.write_text("[default]\nregion = eu-central-1\n", encoding="utf-8")
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSESSION")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    recorder = Recorder(converse_answer())
    llm = create_llm_instance(
        LLMConfig(api_type="bedrock", model=NOVA, max_retries=0, stream=False),
        transport=Upstream(recorder),
        clock=lambda: FIXED,
    )
    await llm.aask("hi")
    await llm.aask("again")
    for request in recorder.requests:
        assert request.url.host == "bedrock-runtime.eu-central-1.amazonaws.com"
        assert request.headers["authorization"] == expected_authorization(
            request, access_key="AKIDSESSION", secret_key=SECRET_KEY, region="eu-central-1"
        )


async def test_connection_lost_mid_stream_is_a_connection_error() -> None:
    class Broken(httpx2.AsyncByteStream):
        async def __aiter__(self) -> Any:
            yield WHOLE_STREAM[:60]
            raise httpx2.ReadError("connection reset")

    answer = httpx2.Response(
        200, stream=Broken(), headers={"content-type": "application/vnd.amazon.eventstream"}
    )
    llm = make_llm(httpx2.MockTransport(Recorder(answer)))
    with pytest.raises(APIConnectionError, match="connection reset"):
        await llm.aask("hi")


async def test_converse_answer_with_reasoning_and_tool_use_blocks() -> None:
    answer = httpx2.Response(
        200,
        json={
            "output": {
                "message": {
                    "role": "assistant",
                    "content": [
                        {"reasoningContent": {"reasoningText": {"text": "Need the weather.",
                                                                "signature": "sig"}}},
                        {"text": "Let me check."},
                        {"toolUse": {"toolUseId": "tu1", "name": "get_weather",
                                     "input": {"city": "Oslo"}}},
                    ],
                }
            },
            "stopReason": "tool_use",
            "usage": {"inputTokens": 10, "outputTokens": 5, "cacheReadInputTokens": 4,
                      "cacheWriteInputTokens": 2},
            "metrics": {"latencyMs": 120},
        },
    )  # fmt: skip
    reply = await make_llm(httpx2.MockTransport(Recorder(answer)), CLAUDE_4, stream=False).aask(
        "weather?"
    )
    assert reply == "Let me check."
    assert reply.reasoning_content == "Need the weather."
    assert reply.response.tool_calls == [
        ToolCall(id="tu1", name="get_weather", arguments='{"city": "Oslo"}')
    ]
    assert reply.finish_reason == "tool_use"
    assert reply.usage == Usage(
        prompt_tokens=16, completion_tokens=5, cached_tokens=4, cache_write_tokens=2
    )
    assert reply.response.metrics == {"latency": 0.12}


async def test_invoke_model_with_thinking_sends_the_budget_and_returns_reasoning() -> None:
    answer = httpx2.Response(
        200,
        json={
            "type": "message",
            "model": "claude-3-7-sonnet",
            "content": [
                {"type": "thinking", "thinking": "2 and 2 make 4", "signature": "s"},
                {"type": "text", "text": "4"},
            ],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 12, "output_tokens": 30},
        },
    )
    recorder = Recorder(answer)
    llm = make_llm(
        httpx2.MockTransport(recorder),
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        stream=False,
        reasoning=True,
        reasoning_max_token=2000,
        temperature=0.7,
    )
    reply = await llm.aask("2+2?")
    assert reply == "4"
    assert reply.reasoning_content == "2 and 2 make 4"
    assert reply.usage == Usage(prompt_tokens=12, completion_tokens=30)
    sent = recorder.json()
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert "temperature" not in sent  # thinking fixes the sampling settings
    assert recorder.requests[0].url.path.endswith("/invoke")


@pytest.mark.parametrize("model", [CLAUDE_4, CLAUDE_3])
async def test_thinking_budget_must_fit_in_max_token(model: str) -> None:
    recorder = Recorder(converse_answer())
    llm = make_llm(
        httpx2.MockTransport(recorder),
        model,
        reasoning=True,
        reasoning_max_token=4000,
        max_token=1000,
    )
    with pytest.raises(ConfigError, match="must exceed reasoning_max_token") as caught:
        await llm.aask("hi")
    assert caught.value.key == "max_token"
    assert recorder.requests == []


@pytest.mark.parametrize("token", [None, "TOKEN123"])
def test_signature_equals_botocores_own_add_auth_at_the_same_time(
    monkeypatch: pytest.MonkeyPatch, token: str | None
) -> None:
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from harness.providers._aws import AWSCredentials, sign_request

    url = (
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.amazon.nova-micro-v1%3A0/converse"
    )
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    body = b'{"messages": []}'
    ours = sign_request(
        method="POST",
        url=url,
        headers=headers,
        body=body,
        credentials=AWSCredentials(ACCESS_KEY, SECRET_KEY, token),
        region="us-east-1",
        now=FIXED,
    )
    # botocore's own flow, its clock set to the same instant (in this test only).
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda *a, **k: FIXED.replace(tzinfo=None)
    )
    theirs = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    botocore.auth.SigV4Auth(
        Credentials(ACCESS_KEY, SECRET_KEY, token), "bedrock", "us-east-1"
    ).add_auth(theirs)
    assert ours["Authorization"] == theirs.headers["Authorization"]
    assert ours["X-Amz-Date"] == theirs.headers["X-Amz-Date"] == "20240611T003441Z"
    assert ours.get("X-Amz-Security-Token") == theirs.headers.get("X-Amz-Security-Token") == token
