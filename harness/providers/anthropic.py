"""Anthropic's Messages API through the official ``anthropic`` SDK.

The request and answer bodies (also Bedrock InvokeModel's) are built and read in
:mod:`harness.providers._anthropic_wire`; its public helpers are re-exported here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from harness.config import LLMType
from harness.errors import ConfigError
from harness.providers._anthropic_wire import (
    anthropic_stream_chunk,
    anthropic_tool_params,
    collect_thinking,
    parse_anthropic_usage,
    read_messages_answer,
    reasoning_replay,
    to_anthropic_messages,
)
from harness.providers._sdk import in_stream_error, raise_mapped, require_sdk
from harness.providers._wire import SSEStream, json_answer
from harness.providers.base import BaseLLM, ChatOptions, ChatResponse, StreamChunk, ToolCall
from harness.providers.registry import register_provider
from harness.providers.results import content_first, split_forced_answer

if TYPE_CHECKING:  # the SDK is imported at first use: it is slow to import
    import anthropic

__all__ = [
    "AnthropicLLM",
    "anthropic_tool_params",
    "parse_anthropic_usage",
    "to_anthropic_messages",
]


@register_provider([LLMType.ANTHROPIC, LLMType.CLAUDE])
class AnthropicLLM(BaseLLM):
    """Claude models over the Messages API, streaming and extended thinking included."""

    provider_name = "anthropic"
    # top_k and stop (stop_sequences) go on the wire; n > 1, seed, penalties and logprobs
    # have no Messages API equivalent and are refused.
    supported_fields = frozenset({"top_k", "stop"})

    def _supported_fields(self) -> frozenset[str]:
        # Extended thinking fixes the sampling: a top_k would be dropped, so it is refused.
        return frozenset({"stop"}) if self.config.reasoning else self.supported_fields

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        require_sdk("anthropic", self.config.api_type.value)  # ConfigError naming the extra
        self._client: anthropic.AsyncAnthropic | None = None

    def _forget_clients(self) -> None:
        self._client = None

    @property
    def client(self) -> anthropic.AsyncAnthropic:
        """The SDK client, built at first use (that is when a missing key is reported)."""
        import anthropic

        if self._client is None:
            api_key = self._api_key()
            # SDK 2.x sends an api_key as "Authorization: Bearer"; the Messages API
            # authenticates API keys with the x-api-key header (omit drops the bearer one).
            headers: dict[str, Any] = {"x-api-key": api_key, "Authorization": anthropic.omit}
            self._client = anthropic.AsyncAnthropic(
                api_key=api_key,
                base_url=self.config.resolved_base_url(self._environ),
                max_retries=0,
                timeout=self.config.timeout,
                http_client=self._build_http_client(),
                default_headers=headers,
            )
        return self._client

    def _params(
        self, messages: list[dict[str, Any]], stream: bool, options: ChatOptions | None = None
    ) -> dict[str, Any]:
        config = self.config
        if not self.model:
            raise ConfigError("no model configured", source=config.source, key="model")
        system, chat = to_anthropic_messages(messages)
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": config.max_token,
            "messages": chat,
        }
        if system:
            params["system"] = system
        if config.reasoning:
            if config.max_token <= config.reasoning_max_token:
                raise ConfigError(
                    f"max_token ({config.max_token}) must exceed reasoning_max_token "
                    f"({config.reasoning_max_token}): Anthropic counts thinking within max_tokens",
                    source=config.source,
                    key="max_token",
                )
            params["thinking"] = {"type": "enabled", "budget_tokens": config.reasoning_max_token}
        # The anthropic SDK 2.x no longer declares sampling parameters and current models
        # reject some of them, so they are sent only when the config sets them explicitly
        # (and never with extended thinking, which fixes them).
        sampling = {
            name: getattr(config, name)
            for name in ("temperature", "top_p", "top_k")
            if name in config.model_fields_set and not config.reasoning
        }
        if sampling:
            params["extra_body"] = sampling
        if config.stop:
            params["stop_sequences"] = (
                [config.stop] if isinstance(config.stop, str) else config.stop
            )
        if options:
            params.update(anthropic_tool_params(options, thinking=bool(config.reasoning)))
        if stream:
            params["stream"] = True
        return params

    def _raise(self, exc: Exception) -> NoReturn:
        import anthropic

        raise_mapped(exc, anthropic, provider=self.provider_name, model=self.model)

    async def _achat_completion(
        self, messages: list[dict[str, Any]], timeout: float, options: ChatOptions | None = None
    ) -> ChatResponse:
        params = self._params(messages, stream=False, options=options)
        try:
            raw = await self.client.messages.with_raw_response.create(**params, timeout=timeout)
        except Exception as exc:
            self._raise(exc)
        response = raw.http_response
        data = await json_answer(response, provider=self.provider_name, model=self.model)
        content = read_messages_answer(
            data, response, provider=self.provider_name, model=self.model
        )
        answer, calls = split_forced_answer(content.calls, options)
        joined = content.text if answer is None else answer
        replay = reasoning_replay(content.signed, joined)
        return ChatResponse(
            text=joined,
            usage=parse_anthropic_usage(data.get("usage")),
            reasoning_content=content.thinking or None,
            finish_reason=data.get("stop_reason"),
            model=data.get("model"),
            tool_calls=calls,
            raw=data,
            replay_content=replay,
        )

    def _achat_completion_stream(
        self, messages: list[dict[str, Any]], timeout: float, options: ChatOptions | None = None
    ) -> AsyncIterator[StreamChunk]:
        return content_first(self._events(messages, timeout, options))

    async def _events(
        self, messages: list[dict[str, Any]], timeout: float, options: ChatOptions | None
    ) -> AsyncGenerator[StreamChunk, None]:
        params = self._params(messages, stream=True, options=options)
        try:
            stream = await self.client.messages.create(**params, timeout=timeout)
        except Exception as exc:
            self._raise(exc)
        reader = SSEStream(stream.response, provider=self.provider_name, model=self.model)
        start_usage: Mapping[str, Any] | None = None
        model: str | None = None
        tools: dict[int, dict[str, Any]] = {}
        signed: dict[int, dict[str, Any]] = {}  # thinking blocks, rebuilt to send back
        text: list[str] = []
        stopped = False  # message_stop seen: the wire format's end of an answer
        try:
            async for event in reader.events():
                if event.event == "error":
                    try:
                        body: Any = json.loads(event.data)
                    except ValueError:
                        body = event.data
                    raise in_stream_error(
                        body,
                        provider=self.provider_name,
                        model=self.model,
                        headers=stream.response.headers,
                    )
                if event.event == "ping" or not event.data:
                    continue
                data = reader.json(event)
                kind = data.get("type")
                if kind == "error":  # an error event whose event name a proxy dropped
                    raise in_stream_error(
                        data,
                        provider=self.provider_name,
                        model=self.model,
                        headers=stream.response.headers,
                    )
                if kind == "message_stop":
                    stopped = True
                chunk = anthropic_stream_chunk(data, tools, start_usage)
                collect_thinking(data, signed)
                text.append(chunk.text)
                if kind == "message_start":
                    message = data.get("message") or {}
                    start_usage = message.get("usage")
                    model = message.get("model")
                    chunk.model = model
                    chunk.usage = parse_anthropic_usage(start_usage)
                yield chunk
        finally:
            await reader.aclose()
        if not stopped:
            raise reader.cut("the stream ended without message_stop")
        replay = reasoning_replay([block for _, block in sorted(signed.items())], "".join(text))
        if tools:
            calls = [
                ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"] or "{}")
                for _, c in sorted(tools.items())
            ]
            answer, calls = split_forced_answer(calls, options)
            yield StreamChunk(
                text=answer or "", tool_calls=calls, model=model, replay_content=replay
            )
        elif replay is not None:
            yield StreamChunk(model=model, replay_content=replay)
