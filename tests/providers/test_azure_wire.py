"""AzureOpenAILLM against real recorded Azure OpenAI HTTP traffic.

Every file of ``tests/wire_corpus/azure`` is replayed, each recorded interaction on its own
(``load(path)[i:i + 1]``); expected facts come from ``tests/wire_corpus/INDEX.md`` (or, for
re-recordings INDEX.md does not spell out, from decoding the recorded body in the test).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import openai
import pytest

from harness import (
    AuthenticationError,
    AzureOpenAILLM,
    ConfigError,
    CostManager,
    LLMConfig,
    NotFoundError,
    create_llm_instance,
)
from harness.costs import Usage
from harness.providers._sdk import map_sdk_error
from harness.providers.azure import DEFAULT_AZURE_API_VERSION
from harness.providers.base import BaseLLM, StreamChunk
from tests.wirecorpus import CorpusTransport, Recorded, load

PYDANTIC_CALL = "azure/pydantic-ai__test_azure_provider_call.yaml"
STREAMING = "azure/openllmetry__test_chat_streaming.yaml"
CONTENT_FILTER = "azure/openllmetry__test_chat_content_filtering.yaml"
REASONING = "azure/openllmetry__test_chat_reasoning.yaml"
EMBEDDINGS = "azure/openllmetry__test_azure_openai_embeddings.yaml"

TRACELOOP = "https://traceloop-stg.openai.azure.com"
KEY = "azure-secret-key-0123456789"


class Sleeps:
    """An async no-op ``sleep`` that records the retry waits."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def azure(
    interactions: list[Recorded],
    *,
    sleeps: Sleeps | None = None,
    strict_path: bool = True,
    environ: dict[str, str] | None = None,
    cost_manager: CostManager | None = None,
    **config: Any,
) -> tuple[BaseLLM, CorpusTransport]:
    transport = CorpusTransport(interactions, strict_path=strict_path)
    config.setdefault("max_retries", 0)
    llm = create_llm_instance(
        LLMConfig(api_type="azure", **config),
        transport=transport,
        sleep=sleeps or Sleeps(),
        environ=environ,
        cost_manager=cost_manager,
    )
    return llm, transport


def traceloop(path: str, index: int, model: str, **config: Any) -> tuple[BaseLLM, CorpusTransport]:
    config.setdefault("api_version", "2024-02-01")
    config.setdefault("api_key", KEY)
    return azure(load(path)[index : index + 1], model=model, base_url=TRACELOOP, **config)


def sse_text(recorded: Recorded) -> str:
    """The assistant text of a recorded SSE body, decoded independently of harness."""
    text = []
    for line in recorded.body.decode().splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            for choice in json.loads(line[6:])["choices"]:
                text.append((choice.get("delta") or {}).get("content") or "")
    return "".join(text)


def assert_azure_request(
    transport: CorpusTransport, deployment: str, api_version: str, key: str = KEY
) -> None:
    request = transport.requests[0]
    assert request.method == "POST"
    assert request.url.path == f"/openai/deployments/{deployment}/chat/completions"
    assert request.url.params["api-version"] == api_version
    assert request.headers["api-key"] == key
    assert "authorization" not in request.headers
    assert transport.sent_json()["model"] == deployment


# -- pydantic-ai: a plain call -----------------------------------------------------------------


async def test_azure_call_text_usage_model_and_deployment_path() -> None:
    llm, transport = azure(
        load(PYDANTIC_CALL),
        model="gpt-4o",
        base_url="https://pydanticai7521574644.openai.azure.com",
        api_version="2024-12-01-preview",
        api_key=KEY,
    )

    reply = await llm.aask("What is the capital of France?", stream=False)

    assert isinstance(llm, AzureOpenAILLM)
    assert reply == "The capital of France is **Paris**."
    assert reply.finish_reason == "stop"
    assert reply.model == "gpt-4o-2024-11-20"
    assert reply.usage == Usage(prompt_tokens=14, completion_tokens=9)
    assert reply.response.raw["prompt_filter_results"][0]["prompt_index"] == 0
    assert str(transport.requests[0].url) == (
        "https://pydanticai7521574644.openai.azure.com/openai/deployments/gpt-4o/"
        "chat/completions?api-version=2024-12-01-preview"
    )
    assert_azure_request(transport, "gpt-4o", "2024-12-01-preview")


async def test_azure_key_and_endpoint_come_from_the_environment() -> None:
    environ = {
        "AZURE_OPENAI_API_KEY": "key-from-env",
        "AZURE_OPENAI_ENDPOINT": "https://pydanticai7521574644.openai.azure.com",
    }
    llm, transport = azure(load(PYDANTIC_CALL), model="gpt-4o", environ=environ)

    reply = await llm.aask("What is the capital of France?", stream=False)

    assert reply == "The capital of France is **Paris**."
    assert_azure_request(transport, "gpt-4o", DEFAULT_AZURE_API_VERSION, key="key-from-env")
    assert transport.requests[0].url.host == "pydanticai7521574644.openai.azure.com"


async def test_azure_without_an_endpoint_is_a_config_error() -> None:
    llm, transport = azure(load(PYDANTIC_CALL), model="gpt-4o", environ={})

    with pytest.raises(ConfigError, match="endpoint"):
        await llm.aask("hello", stream=False)

    assert transport.requests == []


# -- content filtering -----------------------------------------------------------------------


async def test_azure_content_filter_without_message_gives_no_text_and_usage() -> None:
    llm, transport = traceloop(CONTENT_FILTER, 0, "openllmetry-testing")

    response = await llm.acompletion([{"role": "user", "content": "joke"}], stream=False)

    assert response.text is None
    assert response.finish_reason == "content_filter"
    assert response.usage == Usage(prompt_tokens=15, completion_tokens=19)
    assert response.model == "gpt-35-turbo"
    assert response.raw["choices"][0]["content_filter_results"]["hate"] == {
        "filtered": True,
        "severity": "high",
    }
    assert_azure_request(transport, "openllmetry-testing", "2024-02-01")


async def test_azure_content_filter_reply_is_empty_with_the_finish_reason() -> None:
    llm, _ = traceloop(CONTENT_FILTER, 0, "openllmetry-testing")

    reply = await llm.aask("joke", stream=False)

    assert reply == ""
    assert reply.finish_reason == "content_filter"


async def test_azure_content_filter_rerecording_answers_normally() -> None:
    llm, _ = traceloop(CONTENT_FILTER, 1, "openllmetry-testing")

    reply = await llm.aask("joke", stream=False)

    assert reply == (
        "Why did the developer bring OpenTelemetry to the party?\n\n"
        "Because they wanted to trace all the good times! 😄"
    )
    assert reply.usage == Usage(prompt_tokens=16, completion_tokens=24)
    assert reply.finish_reason == "stop"
    assert reply.model == "gpt-4.1-mini-2025-04-14"


@pytest.mark.parametrize("index", [2, 3])
async def test_azure_content_filter_later_rerecordings(index: int) -> None:
    recorded = load(CONTENT_FILTER)[index]
    expected = json.loads(recorded.body)
    llm, transport = traceloop(CONTENT_FILTER, index, "openllmetry-testing")

    reply = await llm.aask("joke", stream=False)

    assert reply == expected["choices"][0]["message"]["content"]
    assert reply.finish_reason == "stop"
    assert reply.usage == Usage(
        prompt_tokens=expected["usage"]["prompt_tokens"],
        completion_tokens=expected["usage"]["completion_tokens"],
    )
    assert reply.model == expected["model"]
    assert len(transport.requests) == 1


# -- streaming ---------------------------------------------------------------------------------


AZURE_STREAM_0 = (
    "Why did the Opentelemetry developer bring a ladder to the coding competition? \n\n"
    "Because they wanted to reach new traces!"
)
AZURE_STREAM_1 = (
    "Why did the developer bring a map to the OpenTelemetry conference? \n\n"
    "Because they wanted to trace every step!"
)


async def test_azure_stream_skips_the_prompt_filter_chunk_and_reads_the_text() -> None:
    llm, transport = traceloop(STREAMING, 0, "openllmetry-testing")

    reply = await llm.aask("Tell me a joke about opentelemetry", stream=True)

    assert reply == AZURE_STREAM_0
    assert reply.finish_reason == "stop"
    assert reply.model == "gpt-35-turbo"  # the first chunk's empty model is ignored
    assert len(reply.response.raw) == 27
    assert reply.response.raw[0]["choices"] == []
    assert reply.usage is not None and reply.usage.estimated is True  # no usage chunk
    assert_azure_request(transport, "openllmetry-testing", "2024-02-01")


async def test_azure_stream_with_old_api_version_sends_no_stream_options() -> None:
    # Azure rejects stream_options before api-version 2024-08-01-preview.
    llm, transport = traceloop(STREAMING, 0, "openllmetry-testing", api_version="2024-02-01")

    await llm.aask("joke", stream=True)

    body = transport.sent_json()
    assert body["stream"] is True
    assert "stream_options" not in body


@pytest.mark.parametrize(
    "api_version", [DEFAULT_AZURE_API_VERSION, "2024-08-01-preview", "preview"]
)
async def test_azure_stream_with_current_api_version_asks_for_usage(api_version: str) -> None:
    llm, transport = traceloop(STREAMING, 1, "openllmetry-testing", api_version=api_version)

    reply = await llm.aask("joke", stream=True)

    assert reply == AZURE_STREAM_1
    assert transport.sent_json()["stream_options"] == {"include_usage": True}
    assert transport.requests[0].url.params["api-version"] == api_version


async def test_azure_astream_rerecording_text_and_model() -> None:
    llm, _ = traceloop(STREAMING, 1, "openllmetry-testing")

    chunks: list[StreamChunk] = [c async for c in llm.astream("joke")]

    assert "".join(c.text for c in chunks) == AZURE_STREAM_1
    assert chunks[0].text == ""
    assert chunks[0].model is None  # the prompt_filter_results chunk: model ""
    assert {c.model for c in chunks[1:]} == {"gpt-4.1-mini-2025-04-14"}
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert all(c.usage is None for c in chunks)


@pytest.mark.parametrize("index", [2, 3])
async def test_azure_stream_later_rerecordings(index: int) -> None:
    recorded = load(STREAMING)[index]
    llm, transport = traceloop(STREAMING, index, "openllmetry-testing")

    reply = await llm.aask("joke", stream=True)

    assert reply == sse_text(recorded)
    assert reply.startswith("Sure! Here's a l")
    assert reply.finish_reason == "stop"
    assert reply.model == "gpt-4.1-mini-2025-04-14"
    assert len(transport.requests) == 1


# -- reasoning model and 404 -----------------------------------------------------------------


async def test_azure_gpt5_nano_reasoning_usage_and_max_completion_tokens() -> None:
    llm, transport = traceloop(REASONING, 0, "gpt-5-nano", max_token=500)

    reply = await llm.aask("What is 1 + 2?", stream=False)

    assert reply == "3"
    assert reply.finish_reason == "stop"
    assert reply.model == "gpt-5-nano-2025-08-07"
    assert reply.usage == Usage(prompt_tokens=11, completion_tokens=203, reasoning_tokens=192)
    body = transport.sent_json()
    assert body["max_completion_tokens"] == 500
    assert "max_tokens" not in body
    assert "temperature" not in body
    assert_azure_request(transport, "gpt-5-nano", "2024-02-01")


@pytest.mark.parametrize("index", [1, 2, 3])
async def test_azure_deployment_not_found_404_without_content_type(index: int) -> None:
    sleeps = Sleeps()
    llm, transport = traceloop(REASONING, index, "gpt-5-nano", max_retries=3, sleeps=sleeps)

    with pytest.raises(NotFoundError) as info:
        await llm.aask("What is 1 + 2?", stream=False)

    error = info.value
    assert error.status_code == 404
    assert error.provider == "azure"
    assert error.model == "gpt-5-nano"
    assert error.error_code == "DeploymentNotFound"
    assert error.error_type == "invalid_request_error"
    assert error.message.startswith("The API deployment for this resource does not exist.")
    recorded = load(REASONING)[index]
    assert error.request_id == dict(recorded.headers)["apim-request-id"]
    assert len(transport.requests) == 1
    assert sleeps.waits == []


async def test_azure_404_is_not_retried_even_with_more_recorded_404s() -> None:
    sleeps = Sleeps()
    llm, transport = azure(
        load(REASONING)[1:],
        sleeps=sleeps,
        model="gpt-5-nano",
        base_url=TRACELOOP,
        api_version="2024-02-01",
        api_key=KEY,
        max_retries=3,
    )

    with pytest.raises(NotFoundError):
        await llm.aask("What is 1 + 2?", stream=True)

    assert len(transport.requests) == 1
    assert sleeps.waits == []


# -- embeddings file: the SDK client harness builds, and the 401 --------------------------------


async def test_azure_aembed_targets_the_deployment_and_decodes_the_base64_vector() -> None:
    costs = CostManager()
    llm, transport = azure(
        load(EMBEDDINGS)[0:1],
        model="test-deployment",
        base_url="https://test-resource.openai.azure.com",
        api_version="2023-07-01-preview",
        api_key=KEY,
        pricing_plan="text-embedding-3-large",  # a deployment name says nothing of the model
        cost_manager=costs,
    )
    assert isinstance(llm, AzureOpenAILLM)

    result = await llm.aembed("Tell me a joke about opentelemetry")

    assert len(result.vectors) == 1
    vector = result.vectors[0]
    assert len(vector) == 3072
    assert vector[0] == pytest.approx(0.015223807655274868)
    assert result.model == "text-embedding-3-large"
    assert result.usage == Usage(prompt_tokens=8)
    request = transport.requests[0]
    assert request.url.path == "/openai/deployments/test-deployment/embeddings"
    assert request.url.params["api-version"] == "2023-07-01-preview"
    assert request.headers["api-key"] == KEY
    assert "authorization" not in request.headers
    sent = transport.sent_json()
    assert sent["encoding_format"] == "base64"
    assert sent["input"] == ["Tell me a joke about opentelemetry"]
    # billed at the pricing plan's row, $0.13 / 1M
    entry = costs.per_model()["text-embedding-3-large"]
    assert entry.usage.prompt_tokens == 8
    assert entry.cost == Decimal("0.13") * 8 / 1_000_000


async def test_azure_client_routes_embeddings_to_the_deployment() -> None:
    # The SDK client harness builds serves direct SDK calls the same way.
    llm, transport = azure(
        load(EMBEDDINGS)[0:1],
        model="test-deployment",
        base_url="https://test-resource.openai.azure.com",
        api_version="2023-07-01-preview",
        api_key=KEY,
    )
    assert isinstance(llm, AzureOpenAILLM)

    result = await llm.client.embeddings.create(
        model="test-deployment", input="Tell me a joke about opentelemetry"
    )

    vector = result.data[0].embedding
    assert len(vector) == 3072
    assert vector[0] == pytest.approx(0.015223807655274868)
    assert transport.requests[0].url.path == "/openai/deployments/test-deployment/embeddings"


@pytest.mark.parametrize("index", [2, 3])
async def test_azure_aembed_401_is_an_authentication_error_with_the_vendors_message(
    index: int,
) -> None:
    llm, transport = azure(
        load(EMBEDDINGS)[index : index + 1],
        model="test-deployment",
        base_url="https://test-resource.openai.azure.com",
        api_version="2023-07-01-preview",
        api_key="wrong-key",
        max_retries=2,
    )
    with pytest.raises(AuthenticationError) as info:
        await llm.aembed("Tell me a joke about opentelemetry")
    assert info.value.status_code == 401
    assert info.value.error_code == "401"
    assert info.value.message.startswith(
        "Access denied due to invalid subscription key or wrong API endpoint."
    )
    assert len(transport.requests) == 1  # not retried


@pytest.mark.parametrize("index", [2, 3])
async def test_azure_401_with_string_code_maps_to_authentication_error(index: int) -> None:
    llm, transport = azure(
        load(EMBEDDINGS)[index : index + 1],
        model="test-deployment",
        base_url="https://test-resource.openai.azure.com",
        api_version="2023-07-01-preview",
        api_key="wrong-key",
    )
    assert isinstance(llm, AzureOpenAILLM)

    with pytest.raises(openai.AuthenticationError) as info:
        await llm.client.embeddings.create(model="test-deployment", input="joke")

    error = map_sdk_error(info.value, openai, provider="azure", model="test-deployment")
    assert isinstance(error, AuthenticationError)
    assert error.status_code == 401
    assert error.error_code == "401"
    assert error.message.startswith(
        "Access denied due to invalid subscription key or wrong API endpoint."
    )
    assert len(transport.requests) == 1


async def test_azure_401_through_aask_fails_at_once() -> None:
    # The gateway answers 401 before routing, so the recorded embeddings 401 stands for any
    # data-plane path: replay it against the chat request (path check relaxed).
    sleeps = Sleeps()
    llm, transport = azure(
        load(EMBEDDINGS)[2:],
        sleeps=sleeps,
        strict_path=False,
        model="test-deployment",
        base_url="https://test-resource.openai.azure.com",
        api_version="2023-07-01-preview",
        api_key="wrong-key",
        max_retries=3,
    )

    with pytest.raises(AuthenticationError) as info:
        await llm.aask("hello", stream=False)

    error = info.value
    assert error.status_code == 401
    assert error.provider == "azure"
    assert error.model == "test-deployment"
    assert error.error_code == "401"
    assert error.error_type is None
    assert "Access denied due to invalid subscription key" in error.message
    assert len(transport.requests) == 1
    assert sleeps.waits == []
    assert transport.requests[0].headers["api-key"] == "wrong-key"
