"""OpenAI and every OpenAI-compatible vendor, through the official ``openai`` SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, NoReturn

from harness.config import LLMType
from harness.errors import ConfigError, NotSupportedError
from harness.providers._sdk import in_stream_error, raise_mapped, require_sdk
from harness.providers._wire import SSEStream, format_error, json_answer
from harness.providers.base import BaseLLM, ChatOptions, ChatResponse, Embeddings, StreamChunk
from harness.providers.openai_compat import (
    ToolCallAssembler,
    build_chat_params,
    is_reasoning_model,
    openai_options,
    parse_chat_chunks,
    parse_chat_response,
    parse_embeddings,
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

# Fields of the OpenAI Chat Completions schema, sent by every OpenAI-family provider.
_CHAT_FIELDS = frozenset(
    {"n", "seed", "stop", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs"}
)
# Sampling fields outside OpenAI's schema that some vendors read from the body (sent as
# ``extra_body``); the others would drop them, so a config setting them is refused.
_EXTRA_SAMPLING: dict[LLMType, frozenset[str]] = {
    LLMType.OPEN_LLM: frozenset({"top_k", "repetition_penalty"}),  # vLLM, llama.cpp server
    LLMType.OPENROUTER: frozenset({"top_k", "repetition_penalty"}),
    LLMType.OPEN_ROUTER: frozenset({"top_k", "repetition_penalty"}),
    LLMType.OPENROUTER_REASONING: frozenset({"top_k", "repetition_penalty"}),
    LLMType.FIREWORKS: frozenset({"top_k", "repetition_penalty"}),
    LLMType.SILICONFLOW: frozenset({"top_k"}),
    LLMType.DASHSCOPE: frozenset({"top_k"}),
}

# Vendors whose OpenAI-compatible API has no ``/embeddings`` endpoint: ``aembed`` says so
# before sending anything.
_NO_EMBEDDINGS_TYPES = frozenset(
    {LLMType.DEEPSEEK, LLMType.MOONSHOT, LLMType.YI, LLMType.SPARK, LLMType.LLAMA_API}
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
        require_sdk("openai", self.config.api_type.value)  # ConfigError naming the extra
        self.provider_name = self.config.api_type.value
        self._client: openai.AsyncOpenAI | None = None
        domain = self.config.domain
        if domain and self.config.api_type is LLMType.SPARK:
            # The seed's Spark configs name the model in ``domain`` (e.g. generalv3.5).
            if self.model and self.model != domain:
                raise ConfigError(
                    f"model {self.model!r} and domain {domain!r} disagree: Spark's model is "
                    "one of them; set model only",
                    source=self.config.source,
                    key="domain",
                )
            self.model = domain

    def _supported_fields(self) -> frozenset[str]:
        api_type = self.config.api_type
        supported = _CHAT_FIELDS | _EXTRA_SAMPLING.get(api_type, frozenset())
        if api_type is LLMType.SPARK:
            supported |= {"domain"}
        if api_type is LLMType.AZURE:
            supported |= {"endpoint", "api_version"}
        config = self.config
        reasoning = config.reasoning_model
        if reasoning is None:
            reasoning = is_reasoning_model(config.model)
        if reasoning:  # o-series and gpt-5 take no penalties: build_chat_params leaves them out
            supported -= {"presence_penalty", "frequency_penalty"}
        return supported

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

        base_url = self.config.resolved_base_url(self._environ)
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

    def _params(
        self, messages: list[dict[str, Any]], stream: bool, options: ChatOptions | None = None
    ) -> dict[str, Any]:
        params = build_chat_params(
            self.config,
            messages,
            model=self._model_name(),
            stream=stream,
            include_usage=self._stream_include_usage(),
        )
        if options:
            strict = self.config.api_type in (LLMType.OPENAI, LLMType.AZURE)
            params.update(openai_options(options, strict=strict))
        extra: dict[str, Any] = {}
        sampling = _EXTRA_SAMPLING.get(self.config.api_type, frozenset())
        if "top_k" in sampling and self.config.top_k:
            extra["top_k"] = self.config.top_k
        if "repetition_penalty" in sampling and self.config.repetition_penalty != 1.0:
            extra["repetition_penalty"] = self.config.repetition_penalty
        if self.config.api_type is LLMType.OPENROUTER_REASONING or (
            self.config.reasoning
            and self.config.api_type in (LLMType.OPENROUTER, LLMType.OPEN_ROUTER)
        ):
            extra["reasoning"] = {"max_tokens": self.config.reasoning_max_token}
        if extra:
            params["extra_body"] = extra
        return params

    def _raise(self, exc: Exception) -> NoReturn:
        import openai

        raise_mapped(exc, openai, provider=self.provider_name, model=self.model)

    def _embedding_encoding(self) -> str:
        """``encoding_format`` of embeddings requests: OpenAI's and Azure's APIs take base64
        (a third of the bytes of JSON floats); compatible vendors are asked for plain floats."""
        return "base64" if self.config.api_type in (LLMType.OPENAI, LLMType.AZURE) else "float"

    async def _aembed(self, texts: list[str], timeout: float) -> Embeddings:
        if self.config.api_type in _NO_EMBEDDINGS_TYPES:
            raise NotSupportedError(
                f"{self.config.api_type.value} has no embeddings API",
                provider=self.provider_name,
                model=self.model,
            )
        try:
            raw = await self.client.embeddings.with_raw_response.create(
                model=self._model_name(),
                input=texts,
                encoding_format=self._embedding_encoding(),  # type: ignore[arg-type]
                timeout=timeout,
            )
        except Exception as exc:
            self._raise(exc)
        response = raw.http_response
        data = await json_answer(response, provider=self.provider_name, model=self.model)
        if not isinstance(data.get("data"), list):
            raise format_error(
                "the answer has no 'data' list: not an embeddings answer",
                response,
                response.content,
                provider=self.provider_name,
                model=self.model,
            )
        try:
            return parse_embeddings(data)
        except ValueError as exc:
            raise format_error(
                f"unreadable embeddings answer: {exc}",
                response,
                response.content,
                provider=self.provider_name,
                model=self.model,
            ) from exc

    async def _achat_completion(
        self, messages: list[dict[str, Any]], timeout: float, options: ChatOptions | None = None
    ) -> ChatResponse:
        params = self._params(messages, stream=False, options=options)
        try:
            raw = await self.client.chat.completions.with_raw_response.create(
                **params, timeout=timeout
            )
        except Exception as exc:
            self._raise(exc)
        data = await json_answer(raw.http_response, provider=self.provider_name, model=self.model)
        if not isinstance(data.get("choices"), list) or not data["choices"]:
            if data.get("error"):  # an error object in a 2xx answer (OpenRouter does this)
                raise in_stream_error(
                    data["error"],
                    provider=self.provider_name,
                    model=self.model,
                    headers=raw.http_response.headers,
                )
            raise format_error(
                "the answer has no 'choices' (or an empty list): not a chat completion",
                raw.http_response,
                raw.http_response.content,
                provider=self.provider_name,
                model=self.model,
            )
        return parse_chat_response(data)

    async def _achat_completion_stream(
        self, messages: list[dict[str, Any]], timeout: float, options: ChatOptions | None = None
    ) -> AsyncIterator[StreamChunk]:
        params = self._params(messages, stream=True, options=options)
        tools: dict[int, ToolCallAssembler] = {}
        try:
            stream = await self.client.chat.completions.create(**params, timeout=timeout)
        except Exception as exc:
            self._raise(exc)
        reader = SSEStream(stream.response, provider=self.provider_name, model=self.model)
        ended = False  # a finish_reason or [DONE] seen: the wire format's end of an answer
        done = False
        try:
            async for event in reader.events():
                # After [DONE], read on to the body's end (ignoring anything there), so the
                # connection goes back to the pool instead of being closed.
                if done or event.data.startswith("[DONE]"):
                    ended = done = True
                    continue
                data = reader.json(event)
                if data.get("error"):
                    raise in_stream_error(
                        data["error"],
                        provider=self.provider_name,
                        model=self.model,
                        headers=stream.response.headers,
                    )
                ended = ended or _has_finish_reason(data)
                for chunk in parse_chat_chunks(data, tools):
                    yield chunk
        finally:
            await reader.aclose()
        if not ended:
            raise reader.cut("the stream ended without a finish_reason or [DONE]")
        for index, assembler in sorted(tools.items()):
            calls = assembler.calls()
            if calls:
                yield StreamChunk(tool_calls=calls, index=index)


def _has_finish_reason(data: dict[str, Any]) -> bool:
    choices = data.get("choices")
    return isinstance(choices, list) and any(
        isinstance(choice, dict) and choice.get("finish_reason") for choice in choices
    )
