"""Anthropic Messages API bodies, shared by the Anthropic provider and Bedrock's InvokeModel
(which carries the same bodies): OpenAI-shaped messages and tools to Messages API ones, usage,
response content, and stream events to chunks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.costs import Usage
from harness.messages import content_text
from harness.providers._sdk import in_stream_error
from harness.providers._wire import format_error
from harness.providers.base import ChatOptions, StreamChunk, ToolCall
from harness.tools import Tool

__all__ = [
    "AnthropicContent",
    "anthropic_stream_chunk",
    "anthropic_tool_params",
    "collect_thinking",
    "parse_anthropic_usage",
    "read_anthropic_content",
    "read_messages_answer",
    "reasoning_replay",
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


def collect_thinking(data: Mapping[str, Any], signed: dict[int, dict[str, Any]]) -> None:
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


@dataclass
class AnthropicContent:
    """What a Messages API answer's ``content`` blocks hold: text, thinking, tool calls, and
    the thinking blocks as they came (signed: to be sent back unchanged)."""

    text: str
    thinking: str
    calls: list[ToolCall]
    signed: list[dict[str, Any]]


def read_anthropic_content(blocks: list[Any]) -> AnthropicContent:
    """The text, thinking, tool calls and signed thinking blocks of ``content`` blocks."""
    text: list[str] = []
    thinking: list[str] = []
    signed: list[dict[str, Any]] = []
    calls: list[ToolCall] = []
    for block in blocks:
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
    return AnthropicContent("".join(text), "".join(thinking), calls, signed)


def reasoning_replay(reasoning: list[dict[str, Any]], text: str) -> list[dict[str, Any]] | None:
    """The assistant content to send back when the answer reasoned, else None: the signed
    reasoning blocks as they came (Converse ``reasoningContent``, or Anthropic ``thinking`` and
    ``redacted_thinking`` over InvokeModel; both APIs want them again, unchanged, in a tool-use
    conversation) and then the text."""
    if not reasoning:
        return None
    return reasoning + ([{"type": "text", "text": text}] if text else [])


def read_messages_answer(
    data: Mapping[str, Any], response: Any, *, provider: str, model: str | None
) -> AnthropicContent:
    """The content of a Messages API answer (the Anthropic API's, or Bedrock InvokeModel's).

    An error object sent with a 2xx status raises its harness error; a body without a
    ``content`` list raises a ResponseFormatError.
    """
    if data.get("type") == "error":
        raise in_stream_error(data, provider=provider, model=model, headers=response.headers)
    if not isinstance(data.get("content"), list):
        raise format_error(
            "the answer has no 'content' list: not a Messages API message",
            response,
            response.content,
            provider=provider,
            model=model,
        )
    return read_anthropic_content(data["content"])


def anthropic_stream_chunk(
    data: dict[str, Any], tools: dict[int, dict[str, Any]], start_usage: Any
) -> StreamChunk:
    """The StreamChunk of one decoded Messages API stream event; a tool call's start and
    input fragments go to ``tools`` (by block index), ``start_usage`` is message_start's."""
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
