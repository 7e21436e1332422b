"""``BaseLLM.aembed``: retries, budget and costs around each provider's ``_aembed``.

Provider wire formats (OpenAI, Azure, Gemini...) are tested with their other wire tests;
here FakeLLM and small subclasses drive the shared machinery.
"""

from __future__ import annotations

import math
from decimal import Decimal

import httpx2
import pytest

from harness import (
    CostManager,
    Embeddings,
    FakeLLM,
    LLMConfig,
    NotSupportedError,
    RateLimitError,
    ResponseFormatError,
    create_llm_instance,
)
from harness.costs import Usage
from harness.errors import BadRequestError, NoMoneyException, ProviderError
from harness.providers.fake import fake_vector


class Waits:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def _embedding_config(**overrides: object) -> LLMConfig:
    settings: dict[str, object] = {"api_type": "fake", "model": "text-embedding-3-small"}
    settings.update(overrides)
    return LLMConfig(**settings)  # type: ignore[arg-type]


async def test_fake_vectors_are_deterministic_unit_vectors_of_the_configured_size() -> None:
    llm = FakeLLM(embedding_dimensions=5)
    first = await llm.aembed(["alpha", "beta", "alpha"])
    again = await FakeLLM(embedding_dimensions=5).aembed("alpha")
    assert isinstance(first, Embeddings)
    assert len(first) == 3
    assert first.dimensions == 5
    assert first.vectors[0] == first.vectors[2] == again.vectors[0]
    assert first.vectors[0] != first.vectors[1]
    for vector in first.vectors:
        assert math.isclose(math.fsum(v * v for v in vector), 1.0, rel_tol=1e-9)
    assert llm.embed_calls == [["alpha", "beta", "alpha"]]
    assert fake_vector("alpha", 5) == first.vectors[0]


async def test_fake_vectors_longer_than_one_digest_are_still_distinct_numbers() -> None:
    vector = fake_vector("x", 20)  # one SHA-256 gives 8 numbers: three digests are used
    assert len(vector) == 20
    assert len(set(vector)) == 20


def test_fake_rejects_a_zero_dimension() -> None:
    with pytest.raises(ValueError, match="embedding_dimensions"):
        FakeLLM(embedding_dimensions=0)


async def test_a_single_string_is_one_text_not_its_characters() -> None:
    result = await FakeLLM().aembed("hello world")
    assert len(result.vectors) == 1


async def test_empty_or_non_string_input_is_refused_before_any_request() -> None:
    llm = FakeLLM()
    with pytest.raises(ValueError, match="at least one text"):
        await llm.aembed([])
    with pytest.raises(TypeError, match="text 1 is a int"):
        await llm.aembed(["ok", 3])  # type: ignore[list-item]
    assert llm.embed_calls == []


async def test_embedding_usage_is_billed_as_prompt_tokens_at_the_models_price() -> None:
    costs = CostManager()
    llm = create_llm_instance(_embedding_config(), cost_manager=costs)
    result = await llm.aembed(["one two three", "four"])
    assert result.usage is not None
    # text-embedding-3-small counts exactly with cl100k_base: 3 + 1 tokens
    assert result.usage == Usage(prompt_tokens=4)
    entry = costs.per_model()["text-embedding-3-small"]
    assert entry.requests == 1
    assert entry.usage.prompt_tokens == 4
    assert entry.cost == Decimal("0.02") * 4 / 1_000_000


class _Flaky(FakeLLM):
    """Fails with 429 ``failures`` times, then embeds; may drop usage or vectors."""

    def __init__(self, failures: int, *, usage: bool = True, lose_one: bool = False) -> None:
        super().__init__(config=_embedding_config(max_retries=3), sleep=Waits())
        self.failures = failures
        self.report_usage = usage
        self.lose_one = lose_one
        self.attempts = 0

    async def _aembed(self, texts: list[str], timeout: float) -> Embeddings:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise RateLimitError(
                "slow down", provider="fake", model=self.model, status_code=429, retry_after=2.0
            )
        result = await super()._aembed(texts, timeout)
        if not self.report_usage:
            result.usage = None
        if self.lose_one:
            result.vectors = result.vectors[1:]
        return result


async def test_embeddings_go_through_the_one_retry_policy() -> None:
    llm = _Flaky(failures=2)
    result = await llm.aembed(["a", "b"])
    assert llm.attempts == 3
    assert isinstance(llm._sleep, Waits)
    assert llm._sleep.calls == [2.0, 2.0]  # Retry-After honoured, no real sleep
    assert len(result.vectors) == 2


async def test_a_bad_request_is_not_retried() -> None:
    class Bad(FakeLLM):
        attempts = 0

        async def _aembed(self, texts: list[str], timeout: float) -> Embeddings:
            self.attempts += 1
            raise BadRequestError("no", provider="fake", model=None, status_code=400)

    llm = Bad(config=_embedding_config(max_retries=3), sleep=Waits())
    with pytest.raises(BadRequestError):
        await llm.aembed("x")
    assert llm.attempts == 1


async def test_missing_provider_usage_is_counted_locally_and_flagged_when_inexact() -> None:
    llm = _Flaky(failures=0, usage=False)
    result = await llm.aembed(["one two three"])
    assert result.usage == Usage(prompt_tokens=3)  # exact: an OpenAI encoding
    other = _Flaky(failures=0, usage=False)
    other.model = "some-local-embedder"
    estimated = await other.aembed(["one two three"])
    assert estimated.usage is not None
    assert estimated.usage.estimated


async def test_fewer_vectors_than_texts_is_a_response_format_error() -> None:
    with pytest.raises(ResponseFormatError, match="asked for 2 embeddings, got 1"):
        await _Flaky(failures=0, lose_one=True).aembed(["a", "b"])


async def test_a_budget_refuses_an_unpriced_embedding_model_unsent() -> None:
    llm = create_llm_instance(
        _embedding_config(model="mystery-embedder"), cost_manager=CostManager(max_budget=1)
    )
    assert isinstance(llm, FakeLLM)
    with pytest.raises(NoMoneyException):
        await llm.aembed("x")
    assert llm.embed_calls == []


async def test_a_budget_reservation_is_released_when_the_request_fails() -> None:
    costs = CostManager(max_budget=1)
    llm = _Flaky(failures=99)
    llm.cost_manager = costs
    llm.config = _embedding_config(max_retries=1)
    with pytest.raises(RateLimitError):
        await llm.aembed("x")
    assert costs._reserved == {}


def _refusing_transport() -> httpx2.MockTransport:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise AssertionError(f"no request expected, got {request.method} {request.url}")

    return httpx2.MockTransport(handler)


async def test_a_provider_without_embeddings_says_so_before_any_request() -> None:
    llm = create_llm_instance(
        LLMConfig(api_type="anthropic", model="claude-sonnet-4-5"), transport=_refusing_transport()
    )
    with pytest.raises(NotSupportedError, match=r"AnthropicLLM \(anthropic\) has no embeddings"):
        await llm.aembed("x")
    assert issubclass(NotSupportedError, ProviderError)


# -- OpenAI and OpenAI-compatible vendors: POST {base_url}/embeddings ---------------------------


def _b64(values: list[float]) -> str:
    import base64
    import struct

    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


class _Server:
    """A MockTransport handler answering each request with the next scripted response."""

    def __init__(self, *responses: httpx2.Response) -> None:
        self.responses = list(responses)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return self.responses.pop(0)

    def sent(self, index: int = -1) -> dict[str, object]:
        import json

        body: dict[str, object] = json.loads(self.requests[index].content)
        return body


async def test_openai_aembed_asks_for_base64_and_decodes_float32_in_index_order() -> None:
    server = _Server(
        httpx2.Response(
            200,
            json={
                "object": "list",
                "data": [  # out of order on purpose: index decides
                    {"object": "embedding", "index": 1, "embedding": _b64([0.5, -1.0])},
                    {"object": "embedding", "index": 0, "embedding": _b64([0.25, 2.0])},
                ],
                "model": "text-embedding-3-small",
                "usage": {"prompt_tokens": 5, "total_tokens": 5},
            },
        )
    )
    costs = CostManager()
    llm = create_llm_instance(
        LLMConfig(api_type="openai", model="text-embedding-3-small", api_key="sk-test-key-1"),
        transport=httpx2.MockTransport(server),
        cost_manager=costs,
    )
    result = await llm.aembed(["first text", "second"])
    assert result.vectors == [[0.25, 2.0], [0.5, -1.0]]
    assert result.model == "text-embedding-3-small"
    assert result.usage == Usage(prompt_tokens=5)
    request = server.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "https://api.openai.com/v1/embeddings"
    assert request.headers["authorization"] == "Bearer sk-test-key-1"
    assert server.sent() == {
        "model": "text-embedding-3-small",
        "input": ["first text", "second"],
        "encoding_format": "base64",
    }
    assert costs.per_model()["text-embedding-3-small"].cost == Decimal("0.02") * 5 / 1_000_000


async def test_a_compatible_vendor_is_asked_for_floats_at_its_own_base_url() -> None:
    server = _Server(
        httpx2.Response(
            200,
            json={
                "data": [{"index": 0, "embedding": [0.1, 0.2, 0.3]}],
                "model": "mistral-embed",
                "usage": {"prompt_tokens": 2, "total_tokens": 2, "completion_tokens": 0},
            },
        )
    )
    llm = create_llm_instance(
        LLMConfig(api_type="mistral", model="mistral-embed"),
        transport=httpx2.MockTransport(server),
    )
    result = await llm.aembed("hi there")
    assert result.vectors == [[0.1, 0.2, 0.3]]
    assert str(server.requests[0].url) == "https://api.mistral.ai/v1/embeddings"
    assert server.sent()["encoding_format"] == "float"


async def test_openai_embeddings_429_is_retried_then_answers() -> None:
    server = _Server(
        httpx2.Response(
            429,
            headers={"retry-after": "3"},
            json={"error": {"message": "Rate limit reached", "type": "requests"}},
        ),
        httpx2.Response(200, json={"data": [{"index": 0, "embedding": _b64([1.0])}], "model": "m"}),
    )
    waits = Waits()
    llm = create_llm_instance(
        LLMConfig(api_type="openai", model="text-embedding-3-small", max_retries=2),
        transport=httpx2.MockTransport(server),
        sleep=waits,
    )
    result = await llm.aembed("x")
    assert result.vectors == [[1.0]]
    assert waits.calls == [3.0]
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"data": [{"index": 0, "embedding": "not base64!"}]}, "not valid base64"),
        ({"data": [{"index": 0, "embedding": "AAA="}]}, "is 2 bytes, not float32s"),
        ({"data": [{"index": 0, "embedding": ["a"]}]}, "neither a list of numbers nor base64"),
        ({"object": "list"}, "no 'data' list"),
    ],
)
async def test_an_unreadable_embeddings_answer_is_a_response_format_error(
    body: dict[str, object], problem: str
) -> None:
    llm = create_llm_instance(
        LLMConfig(api_type="openai", model="text-embedding-3-small"),
        transport=httpx2.MockTransport(_Server(httpx2.Response(200, json=body))),
    )
    with pytest.raises(ResponseFormatError, match=problem):
        await llm.aembed("x")


@pytest.mark.parametrize("api_type", ["deepseek", "moonshot", "yi", "spark", "llama_api"])
async def test_compatible_vendors_without_embeddings_raise_not_supported_unsent(
    api_type: str,
) -> None:
    llm = create_llm_instance(
        LLMConfig(api_type=api_type, model="m", base_url="https://example.invalid/v1"),
        transport=_refusing_transport(),
    )
    with pytest.raises(NotSupportedError, match=f"{api_type} has no embeddings API"):
        await llm.aembed("x")
