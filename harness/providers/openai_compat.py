"""Helpers for the OpenAI Chat Completions wire format, shared by OpenAI-family providers.

Everything here works on decoded JSON (dicts), so the same code reads OpenAI, Azure and the
OpenAI-compatible vendors, whose extras (``reasoning_content``, ``x_groq.usage``,
``prompt_cache_hit_tokens``...) the SDK's types do not declare.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import struct
from collections.abc import Mapping
from typing import Any

from harness.config import LLMConfig
from harness.costs import Usage
from harness.providers.base import (
    ChatOptions,
    ChatResponse,
    Choice,
    Embeddings,
    StreamChunk,
    ToolCall,
)
from harness.tools import ResponseFormat

__all__ = [
    "ToolCallAssembler",
    "build_chat_params",
    "is_reasoning_model",
    "openai_options",
    "parse_chat_chunk",
    "parse_chat_chunks",
    "parse_chat_response",
    "parse_embeddings",
    "parse_openai_usage",
    "strict_schema",
]

# o1, o3, o4-mini, gpt-5... take no temperature and count max_completion_tokens.
_REASONING_MODEL = re.compile(r"^(o\d+(-[\w.]+)*|gpt-5[\w.-]*)$")


def _bare_model(model: str) -> str:
    # "openai/gpt-4o" (routers) and "ft:gpt-4o:org" (fine-tunes) name the same family.
    name = model.rsplit("/", 1)[-1].lower()
    return name.removeprefix("ft:").split(":", 1)[0]


def is_reasoning_model(model: str | None) -> bool:
    """Whether ``model`` is an OpenAI reasoning model (o-series, gpt-5 family)."""
    if not model:
        return False
    bare = _bare_model(model)
    return bool(_REASONING_MODEL.match(bare)) and not bare.startswith("gpt-5-chat")


def build_chat_params(
    config: LLMConfig,
    messages: list[dict[str, Any]],
    *,
    model: str,
    stream: bool,
    include_usage: bool,
) -> dict[str, Any]:
    """The request body for ``chat.completions.create``: only what the config sets."""
    reasoning = (
        config.reasoning_model if config.reasoning_model is not None else is_reasoning_model(model)
    )
    params: dict[str, Any] = {"model": model, "messages": _openai_messages(messages)}
    if reasoning:
        params["max_completion_tokens"] = config.max_token
    else:
        params["max_tokens"] = config.max_token
        params["temperature"] = config.temperature
        if config.top_p != 1.0:
            params["top_p"] = config.top_p
        if config.presence_penalty:
            params["presence_penalty"] = config.presence_penalty
        if config.frequency_penalty:
            params["frequency_penalty"] = config.frequency_penalty
    optional = {
        "stop": config.stop,
        "n": config.n,
        "seed": config.seed,
        "logprobs": config.logprobs,
        "top_logprobs": config.top_logprobs,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    if stream:
        params["stream"] = True
        if include_usage:
            params["stream_options"] = {"include_usage": True}
    return params


def _openai_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # harness's ``is_error`` on a tool message has no Chat Completions field: left out.
    if not any(m.get("role") == "tool" and "is_error" in m for m in messages):
        return messages
    return [
        {k: v for k, v in m.items() if k != "is_error"} if m.get("role") == "tool" else m
        for m in messages
    ]


def openai_options(options: ChatOptions, *, strict: bool) -> dict[str, Any]:
    """The ``tools``, ``tool_choice`` and ``response_format`` fields of a Chat Completions
    request; ``strict``: the API enforces ``json_schema`` strictly (OpenAI, Azure)."""
    params: dict[str, Any] = {}
    if options.tools:
        params["tools"] = [tool.to_openai() for tool in options.tools]
    # tool_choice without tools is an error on the API: "none" with no tools is the default.
    choice = options.tool_choice if options.tools else None
    if choice in ("auto", "none", "required"):
        params["tool_choice"] = choice
    elif choice is not None:
        params["tool_choice"] = {"type": "function", "function": {"name": choice}}
    if options.response_format is not None:
        params["response_format"] = openai_response_format(options.response_format, strict)
    return params


def openai_response_format(response_format: ResponseFormat, strict: bool) -> dict[str, Any]:
    """OpenAI's ``response_format``: ``json_object`` for any JSON, else ``json_schema``, strict
    when the API enforces it and the schema allows it (see :func:`strict_schema`)."""
    if response_format.kind == "json" or response_format.schema is None:
        return {"type": "json_object"}
    schema = response_format.schema
    strict_version = strict_schema(schema) if strict else None
    return {
        "type": "json_schema",
        "json_schema": {
            "name": response_format.name,
            "schema": strict_version if strict_version is not None else schema,
            "strict": strict_version is not None,
        },
    }


def strict_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """``schema`` made fit for OpenAI's strict mode, or None when it cannot be without
    changing its meaning.

    The rule: every object that lists ``properties`` gets ``additionalProperties: false``
    unless it sets ``additionalProperties`` itself (then it must be false), and must list all
    its properties in ``required``. An optional property would have to become a required
    nullable one, which changes what a valid answer is, so such a schema is sent non-strict
    (the answer is still validated locally).
    """
    result = copy.deepcopy(schema)
    return result if _make_strict(result) else None


def _make_strict(node: Any) -> bool:
    if isinstance(node, list):
        return all(_make_strict(item) for item in node)
    if not isinstance(node, dict):
        return True
    properties = node.get("properties")
    if isinstance(properties, dict):
        if node.setdefault("additionalProperties", False) is not False:
            return False
        if set(node.get("required") or []) != set(properties):
            return False
    return all(_make_strict(value) for value in node.values() if isinstance(value, (dict, list)))


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def parse_openai_usage(usage: Mapping[str, Any] | None) -> Usage | None:
    """A Usage from an OpenAI-style ``usage`` object (and its vendor variants)."""
    if not isinstance(usage, Mapping):
        return None
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    cached = _int(prompt_details.get("cached_tokens")) or _int(usage.get("prompt_cache_hit_tokens"))
    reasoning = _int(completion_details.get("reasoning_tokens"))
    return Usage(
        prompt_tokens=_int(usage.get("prompt_tokens")),
        completion_tokens=_int(usage.get("completion_tokens")),
        cached_tokens=cached,
        cache_write_tokens=_int(prompt_details.get("cache_write_tokens")),
        reasoning_tokens=reasoning,
    )


def _usage_anywhere(data: Mapping[str, Any]) -> Usage | None:
    # Top level (OpenAI), Groq's x_groq.usage, or the first choice (some vendors' finish chunk).
    if data.get("usage"):
        return parse_openai_usage(data["usage"])
    x_groq = data.get("x_groq")
    if isinstance(x_groq, Mapping) and x_groq.get("usage"):
        return parse_openai_usage(x_groq["usage"])
    for choice in data.get("choices") or []:
        if isinstance(choice, Mapping) and choice.get("usage"):
            return parse_openai_usage(choice["usage"])
    return None


def _reasoning_of(message: Mapping[str, Any]) -> str | None:
    # DeepSeek / Zhipu: reasoning_content; OpenRouter and Ollama's /v1: reasoning.
    value = message.get("reasoning_content")
    if not value:
        value = message.get("reasoning")
    return value if isinstance(value, str) and value else None


def _choice(position: int, choice: Mapping[str, Any]) -> Choice:
    message = choice.get("message") or {}  # Azure's content filter drops the message entirely
    tool_calls = [
        ToolCall(
            id=call.get("id"),
            name=(call.get("function") or {}).get("name", ""),
            arguments=(call.get("function") or {}).get("arguments") or "",
        )
        for call in message.get("tool_calls") or []
    ]
    return Choice(
        index=_int(choice.get("index", position)),
        text=message.get("content"),
        reasoning_content=_reasoning_of(message),
        finish_reason=choice.get("finish_reason"),
        tool_calls=tool_calls,
    )


def parse_chat_response(data: Mapping[str, Any]) -> ChatResponse:
    """A ChatResponse from a decoded (non-streaming) chat completion; with several choices
    (``n`` > 1) the first is the answer and ``choices`` holds them all, in index order."""
    raw_choices = [c for c in data.get("choices") or [] if isinstance(c, Mapping)]
    choices = sorted((_choice(i, c) for i, c in enumerate(raw_choices)), key=lambda c: c.index)
    first = choices[0] if choices else Choice(index=0, text=None)
    return ChatResponse(
        text=first.text,
        usage=_usage_anywhere(data),
        reasoning_content=first.reasoning_content,
        finish_reason=first.finish_reason,
        model=data.get("model") or None,
        tool_calls=first.tool_calls,
        raw=dict(data),
        choices=choices if len(choices) > 1 else [],
    )


class ToolCallAssembler:
    """Joins streamed tool-call fragments (keyed by ``index``) into whole calls."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, Any]] = {}

    def add(self, fragments: list[Mapping[str, Any]]) -> None:
        """Take the ``delta.tool_calls`` of one chunk."""
        for fragment in fragments:
            index = _int(fragment.get("index"))
            call = self._calls.setdefault(index, {"id": None, "name": "", "arguments": ""})
            call["id"] = fragment.get("id") or call["id"]
            function = fragment.get("function") or {}
            call["name"] += function.get("name") or ""
            call["arguments"] += function.get("arguments") or ""

    def calls(self) -> list[ToolCall]:
        """The assembled calls, in index order."""
        return [ToolCall(**self._calls[i]) for i in sorted(self._calls)]


def parse_chat_chunk(data: Mapping[str, Any], tools: ToolCallAssembler) -> StreamChunk:
    """A StreamChunk from one decoded ``chat.completion.chunk``.

    Tool-call fragments go to ``tools``; the caller emits ``tools.calls()`` at the end.
    """
    choices = data.get("choices") or []
    first: Mapping[str, Any] = choices[0] if choices else {}
    delta = first.get("delta") or {}
    if delta.get("tool_calls"):
        tools.add(delta["tool_calls"])
    content = delta.get("content")
    return StreamChunk(
        text=content if isinstance(content, str) else "",
        reasoning=_reasoning_of(delta) or "",
        usage=_usage_anywhere(data),
        finish_reason=first.get("finish_reason"),
        model=data.get("model") or None,
        raw=dict(data),
    )


def _vector(embedding: Any, index: int) -> list[float]:
    if isinstance(embedding, str):  # encoding_format=base64: little-endian float32
        try:
            packed = base64.b64decode(embedding, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"data[{index}].embedding is not valid base64") from exc
        if len(packed) % 4:
            raise ValueError(f"data[{index}].embedding is {len(packed)} bytes, not float32s")
        return [value for (value,) in struct.iter_unpack("<f", packed)]
    if isinstance(embedding, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in embedding
    ):
        return [float(v) for v in embedding]
    raise ValueError(f"data[{index}].embedding is neither a list of numbers nor base64")


def parse_embeddings(data: Mapping[str, Any]) -> Embeddings:
    """Embeddings from a decoded ``/embeddings`` answer, in input order (by ``index``);
    base64 vectors (little-endian float32) are decoded. A ValueError names what is wrong."""
    items = data.get("data") or []
    ordered: list[tuple[int, list[float]]] = []
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValueError(f"data[{position}] is not an object")
        index = item.get("index", position)
        ordered.append((_int(index), _vector(item.get("embedding"), position)))
    ordered.sort(key=lambda pair: pair[0])
    usage = data.get("usage")
    return Embeddings(
        vectors=[vector for _, vector in ordered],
        model=data.get("model") or None,
        usage=parse_openai_usage(usage) if isinstance(usage, Mapping) else None,
        raw=dict(data),
    )


def parse_chat_chunks(
    data: Mapping[str, Any], tools: dict[int, ToolCallAssembler]
) -> list[StreamChunk]:
    """The StreamChunks of one decoded ``chat.completion.chunk``: one per choice it carries
    (``index`` set; ``n`` > 1 streams interleave the answers), or one without text when it
    carries none (the usage chunk). Tool-call fragments go to ``tools[index]``."""
    choices = [c for c in data.get("choices") or [] if isinstance(c, Mapping)]
    if len(choices) <= 1:
        index = _int(choices[0].get("index")) if choices else 0
        assembler = tools.setdefault(index, ToolCallAssembler())
        chunk = parse_chat_chunk(data, assembler)
        chunk.index = index
        return [chunk]
    chunks = []
    for choice in choices:
        index = _int(choice.get("index"))
        single = {**data, "choices": [choice]}
        chunk = parse_chat_chunk(single, tools.setdefault(index, ToolCallAssembler()))
        chunk.index = index
        chunks.append(chunk)
    for chunk in chunks[1:]:  # one event's usage is counted once
        chunk.usage = None
    return chunks
