"""Anthropic's Messages API through the official ``anthropic`` SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from harness.config import LLMType
from harness.costs import Usage
from harness.errors import ConfigError
from harness.messages import content_text
from harness.providers._sdk import in_stream_error, raise_mapped, require_sdk
from harness.providers._wire import SSEStream, format_error, json_answer
from harness.providers.base import BaseLLM, ChatOptions, ChatResponse, StreamChunk, ToolCall
from harness.providers.registry import register_provider
from harness.providers.results import split_forced_answer
from harness.tools import Tool

if TYPE_CHECKING:  # the SDK is imported at first use: it is slow to import
    import anthropic

__all__ = [
    "AnthropicLLM",
    "anthropic_tool_params",
    "parse_anthropic_usage",
    "to_anthropic_messages",
]


def _image_block(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[len("data:") :].split(";", 1)[0] or "image/jpeg"
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _content_blocks(content: Any) -> Any:
    if not isinstance(content, list):
        return content if content is not None else ""
    blocks: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") == "image_url":
            blocks.append(_image_block(str((part.get("image_url") or {}).get("url", ""))))
        elif part.get("type") == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        else:  # already an Anthropic block (image, tool_result, document...)
            blocks.append(dict(part))
    return blocks


def _tool_use_blocks(message: Mapping[str, Any], index: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        arguments = function.get("arguments") or "{}"
        try:
            arguments_input = json.loads(arguments) if isinstance(arguments, str) else arguments
        except ValueError as exc:  # json.JSONDecodeError
            raise ValueError(
                f"message {index}: tool call {call.get('id')!r} has arguments that are not "
                f"valid JSON ({exc}): {arguments!r}"
            ) from exc
        if not isinstance(arguments_input, dict):
            raise ValueError(
                f"message {index}: tool call {call.get('id')!r} has arguments that are not a "
                f"JSON object: {arguments!r}"
            )
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name", ""),
                "input": dict(arguments_input),  # a copy: the caller's dict is not shared
            }
        )
    return blocks


def _without_empty_text(content: Any) -> list[dict[str, Any]]:
    """Content as a list of blocks, empty text dropped (Anthropic rejects empty text)."""
    blocks = _content_blocks(content)
    if isinstance(blocks, str):
        blocks = [{"type": "text", "text": blocks}]
    return [b for b in blocks if not (b.get("type") == "text" and not b.get("text"))]


def _tool_result_block(message: Mapping[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.get("tool_call_id")}
    content = message.get("content")
    if isinstance(content, list):
        parts = _without_empty_text(content)
        if parts:
            block["content"] = parts
    elif content:
        block["content"] = str(content)
    if message.get("is_error") is not None:
        block["is_error"] = bool(message["is_error"])
    return block


def _anthropic_tool(tool: Tool) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}


def _forced_answer_choice(options: ChatOptions, answer: str) -> dict[str, Any] | None:
    """The Anthropic ``tool_choice`` of a request with a ``response_format``: the answer tool
    when no other tool may be called; with tools on offer (choice unset, auto or required)
    ``any``, so the model either calls a tool (a step of the loop) or answers through the
    answer tool; None (keep the choice) when a named tool is forced for this step."""
    choice = options.tool_choice
    if not options.tools or choice == "none":
        return {"type": "tool", "name": answer}
    if choice in (None, "auto", "required"):
        return {"type": "any"}
    return None


def anthropic_tool_params(options: ChatOptions, *, thinking: bool = False) -> dict[str, Any]:
    """The ``tools`` and ``tool_choice`` of a Messages API request.

    A ``response_format`` is asked for with a forced tool: a synthetic tool whose input schema
    is the answer's; the call's input is the answer. ``tool_choice`` names it, unless other
    tools are offered too (see :func:`_forced_answer_choice`). Extended thinking allows no
    forced tool, so the two together are refused.
    """
    tools = [_anthropic_tool(tool) for tool in options.tools]
    choice = options.tool_choice if options.tools else None  # "none" without tools: default
    wire_choice: dict[str, Any] | None = None
    if choice == "auto":
        wire_choice = {"type": "auto"}
    elif choice == "required":
        wire_choice = {"type": "any"}
    elif choice == "none":
        wire_choice = {"type": "none"}
    elif choice is not None:
        wire_choice = {"type": "tool", "name": choice}
    if options.response_format is not None:
        answer = options.response_format.as_tool()
        if any(tool.name == answer.name for tool in options.tools):
            raise ValueError(
                f"response_format {answer.name!r} has the name of an offered tool: rename one"
            )
        if thinking:
            raise ValueError(
                "response_format on Anthropic is answered through a forced tool call, which "
                "extended thinking does not allow: turn reasoning off for this request"
            )
        tools.append(_anthropic_tool(answer))
        wire_choice = _forced_answer_choice(options, answer.name) or wire_choice
    params: dict[str, Any] = {}
    if tools:
        params["tools"] = tools
    if wire_choice is not None:
        params["tool_choice"] = wire_choice
    return params


def to_anthropic_messages(
    messages: list[dict[str, Any]],
) -> tuple[str | None, list[dict[str, Any]]]:
    """Split OpenAI-shaped messages into Anthropic's ``system`` text and ``messages``.

    OpenAI's tool conversations are converted: an assistant message's ``tool_calls`` become
    ``tool_use`` blocks after its text (empty text is left out), and ``role: "tool"`` messages
    become ``tool_result`` blocks of a ``user`` message, consecutive results merged into one
    message (Anthropic wants all the results of a turn together). A tool result with empty
    content is sent without ``content``.

    Raises:
        ValueError: a tool call's ``arguments`` are not a JSON object; the message names the
            index of the message in ``messages`` and the arguments. Sending them on (wrapped
            or dropped) would only hide the broken call from the model and the caller.
    """
    system = [content_text(m.get("content")) for m in messages if m.get("role") == "system"]
    rest: list[dict[str, Any]] = []
    merging_results = False  # is rest[-1] a user message made of tool results?
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "system":
            continue
        if role == "tool":
            block = _tool_result_block(message)
            if merging_results:
                rest[-1]["content"].append(block)
            else:
                rest.append({"role": "user", "content": [block]})
                merging_results = True
            continue
        merging_results = False
        if role == "assistant" and message.get("tool_calls"):
            content = _without_empty_text(message.get("content"))
            content += _tool_use_blocks(message, index)
            rest.append({"role": "assistant", "content": content})
            continue
        rest.append({"role": message["role"], "content": _content_blocks(message.get("content"))})
    return ("\n\n".join(system) if system else None), rest


def parse_anthropic_usage(*parts: Mapping[str, Any] | None) -> Usage | None:
    """A Usage from Anthropic usage objects; later parts override earlier ones field by field.

    Anthropic's ``input_tokens`` excludes cache reads and writes; harness's ``prompt_tokens``
    includes them.
    """
    merged: dict[str, Any] = {}
    for part in parts:
        if isinstance(part, Mapping):
            merged.update({k: v for k, v in part.items() if v is not None})
    if not merged:
        return None
    cache_read = int(merged.get("cache_read_input_tokens") or 0)
    cache_write = int(merged.get("cache_creation_input_tokens") or 0)
    return Usage(
        prompt_tokens=int(merged.get("input_tokens") or 0) + cache_read + cache_write,
        completion_tokens=int(merged.get("output_tokens") or 0),
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def _collect_thinking(data: Mapping[str, Any], signed: dict[int, dict[str, Any]]) -> None:
    """Rebuild streamed thinking blocks (text and signature) as the API wants them back."""
    kind = data.get("type")
    index = int(data.get("index", 0) or 0)
    if kind == "content_block_start":
        block = data.get("content_block") or {}
        if block.get("type") in ("thinking", "redacted_thinking"):
            signed[index] = dict(block)
    elif kind == "content_block_delta" and index in signed:
        delta = data.get("delta") or {}
        if delta.get("type") == "thinking_delta":
            signed[index]["thinking"] = signed[index].get("thinking", "") + delta.get(
                "thinking", ""
            )
        elif delta.get("type") == "signature_delta":
            signed[index]["signature"] = signed[index].get("signature", "") + delta.get(
                "signature", ""
            )


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
        if data.get("type") == "error":  # an error object in a 2xx answer
            raise in_stream_error(
                data, provider=self.provider_name, model=self.model, headers=response.headers
            )
        if not isinstance(data.get("content"), list):
            raise format_error(
                "the answer has no 'content' list: not a Messages API message",
                response,
                response.content,
                provider=self.provider_name,
                model=self.model,
            )
        text: list[str] = []
        thinking: list[str] = []
        signed: list[dict[str, Any]] = []  # thinking blocks, sent back as they came
        calls: list[ToolCall] = []
        for block in data["content"]:
            if not isinstance(block, Mapping):
                continue
            kind = block.get("type")
            if kind == "text":
                text.append(block.get("text", ""))
            elif kind in ("thinking", "redacted_thinking"):
                thinking.append(block.get("thinking", ""))
                signed.append(dict(block))
            elif kind == "tool_use":
                arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
                calls.append(
                    ToolCall(id=block.get("id"), name=block.get("name", ""), arguments=arguments)
                )
        answer, calls = split_forced_answer(calls, options)
        joined = "".join(text) if answer is None else answer
        replay = None
        if signed:  # with thinking and tools, Anthropic wants the thinking back, unchanged
            replay = signed + ([{"type": "text", "text": joined}] if joined else [])
        return ChatResponse(
            text=joined,
            usage=parse_anthropic_usage(data.get("usage")),
            reasoning_content="".join(thinking) or None,
            finish_reason=data.get("stop_reason"),
            model=data.get("model"),
            tool_calls=calls,
            raw=data,
            replay_content=replay,
        )

    async def _achat_completion_stream(
        self, messages: list[dict[str, Any]], timeout: float, options: ChatOptions | None = None
    ) -> AsyncIterator[StreamChunk]:
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
        # Chunks without content (message_start, block starts, tool-input fragments) are held
        # back until the first content arrives: an error event before it (e.g. overloaded_error)
        # then fails the stream before anything was yielded, so it can still be retried.
        held: list[StreamChunk] | None = []
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
                chunk = self._chunk(data, tools, start_usage)
                _collect_thinking(data, signed)
                text.append(chunk.text)
                if kind == "message_start":
                    message = data.get("message") or {}
                    start_usage = message.get("usage")
                    model = message.get("model")
                    chunk.model = model
                    chunk.usage = parse_anthropic_usage(start_usage)
                if held is not None:
                    if not (chunk.text or chunk.reasoning or chunk.finish_reason):
                        held.append(chunk)
                        continue
                    for earlier in held:
                        yield earlier
                    held = None
                yield chunk
        finally:
            await reader.aclose()
        if not stopped:
            raise reader.cut("the stream ended without message_stop")
        for earlier in held or ():
            yield earlier
        replay = None
        if signed:
            joined = "".join(text)
            replay = [block for _, block in sorted(signed.items())]
            replay += [{"type": "text", "text": joined}] if joined else []
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

    @staticmethod
    def _chunk(
        data: dict[str, Any], tools: dict[int, dict[str, Any]], start_usage: Any
    ) -> StreamChunk:
        """The StreamChunk of one decoded stream event (tool inputs go to ``tools``)."""
        kind = data.get("type")
        chunk = StreamChunk(raw=data)
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                tools[int(data.get("index", 0))] = {
                    "id": block.get("id"),
                    "name": block.get("name", ""),
                    "arguments": "",
                }
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                chunk.text = delta.get("text", "")
            elif dtype == "thinking_delta":
                chunk.reasoning = delta.get("thinking", "")
            elif dtype == "input_json_delta":
                call = tools.get(int(data.get("index", 0)))
                if call is not None:
                    call["arguments"] += delta.get("partial_json", "")
        elif kind == "message_delta":
            # output_tokens here is final; message_start's was provisional.
            chunk.usage = parse_anthropic_usage(start_usage, data.get("usage"))
            chunk.finish_reason = (data.get("delta") or {}).get("stop_reason")
        return chunk
