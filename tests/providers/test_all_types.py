"""Every LLMType makes a working provider through ``create_llm_instance``.

One parametrized test: each type's instance is the registered class and answers two requests
(chats, or embeddings for the embeddings-only Ollama types, over one reused HTTP client) from
a MockTransport that speaks its wire format, at the URL and with the auth header shape of that
format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest

from harness import LLM_REGISTRY, LLMConfig, LLMType, create_llm_instance
from harness.providers.base import BaseLLM

ANSWER = "pong"


@dataclass(frozen=True)
class Expect:
    """What one LLMType must be: its class, where its request goes and how it authenticates."""

    cls: str
    url: str  # the request URL (fake: empty, no HTTP)
    auth: str | None  # the auth header ("authorization", "api-key", ...) or None
    embeddings_only: bool = False
    config: tuple[tuple[str, Any], ...] = ()


def _openai(base: str) -> Expect:
    return Expect("OpenAILLM", f"{base}/chat/completions", "authorization")


EXPECTED: dict[LLMType, Expect] = {
    LLMType.OPENAI: _openai("https://api.openai.com/v1"),
    LLMType.ANTHROPIC: Expect("AnthropicLLM", "https://api.anthropic.com/v1/messages", "x-api-key"),
    LLMType.CLAUDE: Expect("AnthropicLLM", "https://api.anthropic.com/v1/messages", "x-api-key"),
    LLMType.GEMINI: Expect(
        "GeminiLLM",
        "https://generativelanguage.googleapis.com/v1beta/models/m-test:generateContent",
        "x-goog-api-key",
    ),
    LLMType.AZURE: Expect(
        "AzureOpenAILLM",
        "https://res.openai.azure.com/openai/deployments/m-test/chat/completions"
        "?api-version=2024-10-21",
        "api-key",
        config=(("base_url", "https://res.openai.azure.com"),),
    ),
    LLMType.BEDROCK: Expect(
        "BedrockLLM",
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/m-test/converse",
        "authorization",
        config=(
            ("region_name", "us-east-1"),
            ("access_key", "AKIDEXAMPLE"),
            ("secret_key", "secret-example"),
        ),
    ),
    LLMType.QIANFAN: _openai("https://qianfan.baidubce.com/v2"),
    LLMType.DASHSCOPE: _openai("https://dashscope.aliyuncs.com/compatible-mode/v1"),
    LLMType.ARK: _openai("https://ark.cn-beijing.volces.com/api/v3"),
    LLMType.ZHIPUAI: _openai("https://open.bigmodel.cn/api/paas/v4"),
    LLMType.SPARK: _openai("https://spark-api-open.xf-yun.com/v1"),
    LLMType.MOONSHOT: _openai("https://api.moonshot.cn/v1"),
    LLMType.YI: _openai("https://api.lingyiwanwu.com/v1"),
    LLMType.DEEPSEEK: _openai("https://api.deepseek.com"),
    LLMType.OLLAMA: Expect("OllamaLLM", "http://127.0.0.1:11434/api/chat", None),
    LLMType.OLLAMA_GENERATE: Expect(
        "OllamaGenerateLLM", "http://127.0.0.1:11434/api/generate", None
    ),
    LLMType.OLLAMA_EMBEDDINGS: Expect(
        "OllamaEmbeddingsLLM", "http://127.0.0.1:11434/api/embeddings", None, embeddings_only=True
    ),
    LLMType.OLLAMA_EMBED: Expect(
        "OllamaEmbedLLM", "http://127.0.0.1:11434/api/embed", None, embeddings_only=True
    ),
    LLMType.OPEN_LLM: Expect(
        "OpenAILLM",
        "http://127.0.0.1:8080/v1/chat/completions",
        "authorization",
        config=(("base_url", "http://127.0.0.1:8080/v1"),),
    ),
    LLMType.FIREWORKS: _openai("https://api.fireworks.ai/inference/v1"),
    LLMType.MISTRAL: _openai("https://api.mistral.ai/v1"),
    LLMType.OPEN_ROUTER: _openai("https://openrouter.ai/api/v1"),
    LLMType.OPENROUTER: _openai("https://openrouter.ai/api/v1"),
    LLMType.OPENROUTER_REASONING: _openai("https://openrouter.ai/api/v1"),
    LLMType.SILICONFLOW: _openai("https://api.siliconflow.cn/v1"),
    LLMType.LLAMA_API: _openai("https://api.llama.com/compat/v1"),
    LLMType.METAGPT: Expect(
        "OpenAILLM",
        "https://metagpt.example/v1/chat/completions",
        "authorization",
        config=(("base_url", "https://metagpt.example/v1"),),
    ),
    LLMType.FAKE: Expect("FakeLLM", "", None),
}


def answer(request: httpx2.Request) -> httpx2.Response:
    """The non-streaming answer of whichever wire format ``request`` speaks."""
    path = request.url.path
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    if path.endswith("/chat/completions"):
        message = {"role": "assistant", "content": ANSWER}
        body: dict[str, Any] = {
            "id": "c",
            "object": "chat.completion",
            "model": "m-test",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": usage,
        }
    elif path.endswith("/v1/messages"):
        body = {
            "id": "msg",
            "type": "message",
            "role": "assistant",
            "model": "m-test",
            "content": [{"type": "text", "text": ANSWER}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 3, "output_tokens": 1},
        }
    elif path.endswith(":generateContent"):
        body = {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": ANSWER}]}, "finishReason": "STOP"}
            ],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1},
        }
    elif path.endswith("/api/chat"):
        body = {
            "model": "m-test",
            "message": {"role": "assistant", "content": ANSWER},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 3,
            "eval_count": 1,
        }
    elif path.endswith("/api/generate"):
        body = {"model": "m-test", "response": ANSWER, "done": True, "prompt_eval_count": 3}
    elif path.endswith("/api/embed"):
        body = {"model": "m-test", "embeddings": [[0.25, 0.5]], "prompt_eval_count": 1}
    elif path.endswith("/api/embeddings"):
        body = {"embedding": [0.25, 0.5]}
    elif path.endswith("/converse"):
        body = {
            "output": {"message": {"role": "assistant", "content": [{"text": ANSWER}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 3, "outputTokens": 1, "totalTokens": 4},
            "metrics": {"latencyMs": 12},
        }
    else:
        raise AssertionError(f"no wire format answers {request.method} {request.url}")
    return httpx2.Response(200, json=body)


def test_the_table_covers_every_llm_type() -> None:
    assert set(EXPECTED) == set(LLMType)
    assert len([t for t in LLMType if t is not LLMType.FAKE]) == 27


@pytest.mark.parametrize("llm_type", list(LLMType), ids=lambda t: t.value)
async def test_every_llm_type_creates_a_working_instance(llm_type: LLMType) -> None:
    expect = EXPECTED[llm_type]
    requests: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        requests.append(request)
        return answer(request)

    settings: dict[str, Any] = {
        "api_type": llm_type,
        "model": "m-test",
        "api_key": "key-test-123",
        "stream": False,
        "max_retries": 0,
    }
    settings.update(dict(expect.config))
    llm = create_llm_instance(LLMConfig(**settings), transport=httpx2.MockTransport(handler))

    assert isinstance(llm, BaseLLM)
    assert type(llm).__name__ == expect.cls
    assert LLM_REGISTRY[llm_type] is type(llm)
    if llm_type is LLMType.FAKE:
        assert await llm.aask("ping") == "fake reply"
        assert requests == []
        return
    for _ in range(2):
        if expect.embeddings_only:
            result = await llm.aembed("ping")
            assert result.vectors == [[0.25, 0.5]]
        else:
            reply = await llm.aask("ping")
            assert reply == ANSWER
            assert reply.usage is not None and reply.usage.prompt_tokens == 3
    assert len(requests) == 2
    assert len(llm._owned_clients) == 1  # one HTTP client, reused by both requests
    await llm.aclose()
    request = requests[0]
    assert request.method == "POST"
    assert str(request.url) == expect.url
    if expect.auth is not None:
        assert request.headers.get(expect.auth), f"no {expect.auth} header"
    if expect.auth == "authorization" and llm_type is not LLMType.BEDROCK:
        assert request.headers["authorization"] == "Bearer key-test-123"
    if llm_type is LLMType.BEDROCK:
        assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID")
    body = json.loads(request.content)
    assert "ping" in json.dumps(body)
