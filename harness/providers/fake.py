"""FakeLLM: a scripted model for tests; no HTTP, no keys, real harness behaviour around it.

Replies can be a list (served in order; an exception instance in the list is raised at that
call), a callable of the messages, or a mapping from a regular expression (searched in the
last user message) to a reply. Every request is recorded in ``calls``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.config import LLMConfig, LLMType
from harness.costs import Usage
from harness.messages import content_text
from harness.providers.base import BaseLLM, ChatResponse, StreamChunk
from harness.providers.registry import register_provider

__all__ = ["FakeCall", "FakeLLM"]

Script = Sequence["str | BaseException"] | Callable[[list[dict[str, Any]]], str] | Mapping[str, str]


@dataclass
class FakeCall:
    """One request FakeLLM received."""

    messages: list[dict[str, Any]]
    model: str | None
    stream: bool
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt(self) -> str:
        """The text of the last user message."""
        users = [m for m in self.messages if m.get("role") == "user"]
        return content_text(users[-1].get("content")) if users else ""


@register_provider(LLMType.FAKE)
class FakeLLM(BaseLLM):
    """A scripted model. ``FakeLLM(["hi", "there"])`` answers "hi", then "there"."""

    provider_name = "fake"

    def __init__(
        self,
        replies: Script | LLMConfig | None = None,
        *,
        config: LLMConfig | None = None,
        reasoning: str | None = None,
        usage: Usage | None = None,
        chunk_size: int = 4,
        **kwargs: Any,
    ) -> None:
        if isinstance(replies, LLMConfig):  # built by create_llm_instance(config)
            config, replies = replies, None
        super().__init__(config or LLMConfig(api_type=LLMType.FAKE, model="fake-model"), **kwargs)
        self.replies: Script = replies if replies is not None else ["fake reply"]
        self.reasoning = reasoning
        self.usage = usage
        self.chunk_size = max(chunk_size, 1)
        self.calls: list[FakeCall] = []

    def _reply_for(self, messages: list[dict[str, Any]]) -> str:
        index = len(self.calls) - 1
        script = self.replies
        if callable(script):
            return script(messages)
        if isinstance(script, Mapping):
            prompt = self.calls[-1].prompt
            for pattern, reply in script.items():
                if re.search(pattern, prompt):
                    return reply
            raise LookupError(f"FakeLLM has no scripted reply matching prompt {prompt!r}")
        if index >= len(script):
            raise LookupError(f"FakeLLM was called {index + 1} times but has {len(script)} replies")
        scripted = script[index]
        if isinstance(scripted, BaseException):
            raise scripted
        return scripted

    async def _achat_completion(
        self, messages: list[dict[str, Any]], timeout: float
    ) -> ChatResponse:
        self.calls.append(FakeCall(messages=list(messages), model=self.model, stream=False))
        text = self._reply_for(messages)
        return ChatResponse(
            text=text,
            usage=self.usage,
            reasoning_content=self.reasoning,
            finish_reason="stop",
            model=self.model,
        )

    async def _achat_completion_stream(
        self, messages: list[dict[str, Any]], timeout: float
    ) -> AsyncIterator[StreamChunk]:
        self.calls.append(FakeCall(messages=list(messages), model=self.model, stream=True))
        text = self._reply_for(messages)
        if self.reasoning:
            yield StreamChunk(reasoning=self.reasoning, model=self.model)
        for start in range(0, len(text), self.chunk_size):
            yield StreamChunk(text=text[start : start + self.chunk_size], model=self.model)
        yield StreamChunk(finish_reason="stop", usage=self.usage, model=self.model)
