from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from harness import LLM_REGISTRY, LLMConfig, LLMType, create_llm_instance, register_provider
from harness.errors import ProviderNotRegisteredError
from harness.providers import AnthropicLLM, AzureOpenAILLM, FakeLLM, OpenAILLM
from harness.providers.base import BaseLLM, ChatResponse, StreamChunk
from harness.providers.registry import provider_class

OPENAI_FAMILY = [
    "openai",
    "fireworks",
    "open_llm",
    "moonshot",
    "mistral",
    "yi",
    "open_router",
    "openrouter",
    "deepseek",
    "siliconflow",
    "llama_api",
    "metagpt",
]


@pytest.mark.parametrize("api_type", OPENAI_FAMILY)
def test_openai_family_types_use_the_openai_provider(api_type: str) -> None:
    assert LLM_REGISTRY[LLMType(api_type)] is OpenAILLM


def test_anthropic_azure_and_fake_are_registered() -> None:
    assert LLM_REGISTRY[LLMType.ANTHROPIC] is AnthropicLLM
    assert LLM_REGISTRY[LLMType.CLAUDE] is AnthropicLLM
    assert LLM_REGISTRY[LLMType.AZURE] is AzureOpenAILLM
    assert LLM_REGISTRY[LLMType.FAKE] is FakeLLM


def test_registry_view_is_read_only() -> None:
    with pytest.raises(TypeError):
        LLM_REGISTRY[LLMType.OPENAI] = FakeLLM  # type: ignore[index]


def test_unregistered_type_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every LLMType has a built-in provider: take one out of the table for this test.
    from harness.providers import registry

    monkeypatch.delitem(registry._providers, LLMType.BEDROCK, raising=False)
    monkeypatch.setattr(registry, "_entry_points_loaded", True)
    with pytest.raises(ProviderNotRegisteredError) as info:
        create_llm_instance(LLMConfig(api_type="bedrock", model="m"))
    assert "'bedrock'" in str(info.value)
    assert "registered: " in str(info.value) and "openai" in str(info.value)


def test_create_llm_instance_passes_seams_to_the_provider() -> None:
    llm = create_llm_instance(LLMConfig(api_type="deepseek", model="deepseek-chat"), environ={})
    assert isinstance(llm, OpenAILLM)
    assert llm.provider_name == "deepseek"
    assert llm.model == "deepseek-chat"


def test_register_provider_adds_and_replaces_an_entry() -> None:
    previous = provider_class(LLMType.BEDROCK) if LLMType.BEDROCK in LLM_REGISTRY else None

    @register_provider(LLMType.BEDROCK)
    class MyBedrock(BaseLLM):
        async def _achat_completion(
            self, messages: list[dict[str, Any]], timeout: float
        ) -> ChatResponse:
            return ChatResponse(text="from bedrock")

        async def _achat_completion_stream(
            self, messages: list[dict[str, Any]], timeout: float
        ) -> AsyncIterator[StreamChunk]:
            yield StreamChunk(text="x")

    try:
        assert isinstance(create_llm_instance(LLMConfig(api_type="bedrock")), MyBedrock)
    finally:
        from harness.providers import registry

        if previous is None:
            registry._providers.pop(LLMType.BEDROCK, None)
        else:
            registry._providers[LLMType.BEDROCK] = previous
