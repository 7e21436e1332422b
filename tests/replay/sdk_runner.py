"""Drive the real openai / anthropic SDKs with the requests a cassette recorded (test helper)."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anthropic
import httpx2
import openai

from harness.replay import ReplayTransport, load_interactions

_ENDPOINTS = {
    "/chat/completions": "openai.chat",
    "/embeddings": "openai.embeddings",
    "/v1/messages": "anthropic.messages",
}


@dataclass
class Outcome:
    """What the SDK returned for one recorded request."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)  # (name, arguments json)
    finish_reason: str | None = None
    error: BaseException | None = None
    chunks: int = 0
    result: Any = None


def _split_kwargs(method: Any, body: dict[str, Any]) -> dict[str, Any]:
    known = set(inspect.signature(method).parameters)
    kwargs = {k: v for k, v in body.items() if k in known}
    extra = {k: v for k, v in body.items() if k not in known}
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def _endpoint(uri: str) -> tuple[str, str, dict[str, str]]:
    parts = urlsplit(uri)
    for suffix, kind in _ENDPOINTS.items():
        if parts.path.endswith(suffix):
            base = f"{parts.scheme}://{parts.netloc}{parts.path[: -len(suffix)]}"
            if kind.startswith("anthropic"):
                base = f"{parts.scheme}://{parts.netloc}"
            return kind, base, dict(parse_qsl(parts.query))
    raise ValueError(f"no SDK endpoint for {uri}")


async def _openai_chat(
    client: openai.AsyncOpenAI, body: dict[str, Any], query: dict[str, str]
) -> Outcome:
    create = client.chat.completions.create
    result = await create(**_split_kwargs(create, body), extra_query=query or None)
    outcome = Outcome(result=result)
    if not body.get("stream"):
        choice = result.choices[0]
        outcome.finish_reason = choice.finish_reason
        if choice.message is not None:
            outcome.text = choice.message.content or ""
            for call in choice.message.tool_calls or []:
                outcome.tool_calls.append((call.function.name, call.function.arguments))
        return outcome
    calls: dict[int, list[str]] = {}
    async for chunk in result:
        outcome.chunks += 1
        for choice in chunk.choices:
            delta = choice.delta
            outcome.text += delta.content or ""
            extra = delta.model_extra or {}
            outcome.reasoning += extra.get("reasoning_content") or extra.get("reasoning") or ""
            for call in delta.tool_calls or []:
                entry = calls.setdefault(call.index, ["", ""])
                if call.function and call.function.name:
                    entry[0] = call.function.name
                if call.function and call.function.arguments:
                    entry[1] += call.function.arguments
            outcome.finish_reason = choice.finish_reason or outcome.finish_reason
    outcome.tool_calls = [(name, args) for name, args in calls.values()]
    return outcome


async def _anthropic_messages(
    client: anthropic.AsyncAnthropic, body: dict[str, Any], query: dict[str, str]
) -> Outcome:
    create = client.messages.create
    result = await create(**_split_kwargs(create, body), extra_query=query or None)
    outcome = Outcome(result=result)
    if not body.get("stream"):
        outcome.finish_reason = result.stop_reason
        for block in result.content:
            if block.type == "text":
                outcome.text += block.text
            elif block.type == "thinking":
                outcome.reasoning += block.thinking
            elif block.type == "tool_use":
                outcome.tool_calls.append((block.name, json.dumps(block.input)))
        return outcome
    tools: dict[int, list[str]] = {}
    async for event in result:
        outcome.chunks += 1
        if event.type == "content_block_start" and event.content_block.type == "tool_use":
            tools[event.index] = [event.content_block.name, ""]
        elif event.type == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                outcome.text += delta.text
            elif delta.type == "thinking_delta":
                outcome.reasoning += delta.thinking
            elif delta.type == "input_json_delta":
                tools[event.index][1] += delta.partial_json
        elif event.type == "message_delta":
            outcome.finish_reason = event.delta.stop_reason
    outcome.tool_calls = [(name, args) for name, args in tools.values()]
    return outcome


async def replay_with_sdk(path: Path) -> list[Outcome]:
    """Send each recorded request of ``path`` again through the matching SDK, replayed."""
    outcomes = []
    transport = ReplayTransport(path, mode="replay")
    async with httpx2.AsyncClient(transport=transport) as http:
        for interaction in load_interactions(path):
            kind, base, query = _endpoint(interaction.request.uri)
            body = json.loads(interaction.request.body)
            try:
                if kind == "anthropic.messages":
                    client = anthropic.AsyncAnthropic(
                        api_key="test", base_url=base, max_retries=0, http_client=http
                    )
                    outcomes.append(await _anthropic_messages(client, body, query))
                else:
                    oai = openai.AsyncOpenAI(
                        api_key="test", base_url=base, max_retries=0, http_client=http
                    )
                    if kind == "openai.embeddings":
                        create = oai.embeddings.create
                        result = await create(
                            **_split_kwargs(create, body), extra_query=query or None
                        )
                        outcomes.append(Outcome(result=result))
                    else:
                        outcomes.append(await _openai_chat(oai, body, query))
            except (openai.APIError, anthropic.APIError) as exc:
                outcomes.append(Outcome(error=exc))
    assert not transport.unplayed(), transport.unplayed()
    return outcomes
