"""OpenAI and every OpenAI-compatible vendor, through the official ``openai`` SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from harness.config import LLMType
from harness.errors import ConfigError
from harness.providers._sdk import map_sdk_error
from harness.providers.base import BaseLLM, ChatResponse, StreamChunk
from harness.providers.openai_compat import (
    ToolCallAssembler,
    build_chat_params,
    parse_chat_chunk,
    parse_chat_response,
)
from harness.providers.registry import register_provider

if TYPE_CHECKING:  # the SDK is imported at first use: it is slow to import
    import openai

__all__ = ["OpenAILLM"]

# Vendors whose streams accept ``stream_options.include_usage``; the others either reject
# the option or send usage on their own (on the finish chunk, or under ``x_groq``).
_STREAM_USAGE_TYPES = frozenset(
    {
        LLMType.OPENAI,
        LLMType.AZURE,
        LLMType.DEEPSEEK,
        LLMType.OPEN_ROUTER,
        LLMType.OPENROUTER,
        LLMType.OPENROUTER_REASONING,
        LLMType.FIREWORKS,
        LLMType.SILICONFLOW,
        LLMType.OPEN_LLM,
        LLMType.DASHSCOPE,
        LLMType.ARK,
        LLMType.METAGPT,
        LLMType.LLAMA_API,
    }
)


@register_provider(
    [
        LLMType.OPENAI,
        LLMType.FIREWORKS,
        LLMType.OPEN_LLM,
        LLMType.MOONSHOT,
        LLMType.MISTRAL,
        LLMType.YI,
        LLMType.OPEN_ROUTER,
        LLMType.OPENROUTER,
        LLMType.OPENROUTER_REASONING,
        LLMType.DEEPSEEK,
        LLMType.SILICONFLOW,
        LLMType.LLAMA_API,
        LLMType.METAGPT,
        # Vendors reached through their OpenAI-compatible endpoints.
        LLMType.QIANFAN,
        LLMType.DASHSCOPE,
        LLMType.ARK,
        LLMType.ZHIPUAI,
        LLMType.SPARK,
    ]
)
class OpenAILLM(BaseLLM):
    """Chat Completions over the ``openai`` SDK, for OpenAI and OpenAI-compatible vendors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.provider_name = self.config.api_type.value
        self._client: openai.AsyncOpenAI | None = None

    def _forget_clients(self) -> None:
        self._client = None

    @property
    def client(self) -> openai.AsyncOpenAI:
        """The SDK client, built at first use (that is when a missing key is reported)."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> openai.AsyncOpenAI:
        import openai

        base_url = self.config.resolved_base_url()
        if not base_url:
            raise ConfigError(
                f"api_type {self.config.api_type.value!r} has no default base_url: set base_url",
                source=self.config.source,
                key="base_url",
            )
        return openai.AsyncOpenAI(
            api_key=self._api_key(),
            base_url=base_url,
            max_retries=0,  # harness retries, the same way for every provider
            timeout=self.config.timeout,
            http_client=self._build_http_client(),
        )

    def _model_name(self) -> str:
        if not self.model:
            raise ConfigError("no model configured", source=self.config.source, key="model")
        return self.model

    def _stream_include_usage(self) -> bool:
        """Whether a streaming request may ask for the usage chunk (``stream_options``)."""
        return self.config.api_type in _STREAM_USAGE_TYPES

    def _params(self, messages: list[dict[str, Any]], stream: bool) -> dict[str, Any]:
        params = build_chat_params(
            self.config,
            messages,
            model=self._model_name(),
            stream=stream,
            include_usage=self._stream_include_usage(),
        )
        if self.config.api_type is LLMType.OPENROUTER_REASONING or (
            self.config.reasoning
            and self.config.api_type in (LLMType.OPENROUTER, LLMType.OPEN_ROUTER)
        ):
            params["extra_body"] = {"reasoning": {"max_tokens": self.config.reasoning_max_token}}
        return params

    async def _achat_completion(
        self, messages: list[dict[str, Any]], timeout: float
    ) -> ChatResponse:
        import openai

        params = self._params(messages, stream=False)
        try:
            completion = await self.client.chat.completions.create(**params, timeout=timeout)
        except openai.OpenAIError as exc:
            raise map_sdk_error(exc, openai, provider=self.provider_name, model=self.model) from exc
        return parse_chat_response(completion.to_dict())

    async def _achat_completion_stream(
        self, messages: list[dict[str, Any]], timeout: float
    ) -> AsyncIterator[StreamChunk]:
        import openai

        params = self._params(messages, stream=True)
        tools = ToolCallAssembler()
        try:
            stream = await self.client.chat.completions.create(**params, timeout=timeout)
            async with stream:
                async for chunk in stream:
                    yield parse_chat_chunk(chunk.to_dict(), tools)
        except openai.OpenAIError as exc:
            raise map_sdk_error(exc, openai, provider=self.provider_name, model=self.model) from exc
        calls = tools.calls()
        if calls:
            yield StreamChunk(tool_calls=calls)
