"""FakeLLM: a scripted model for tests; no HTTP, no keys, real harness behaviour around it.

Replies can be a list (served in order; an exception instance in the list is raised at that
call), a callable of the messages, or a mapping from a regular expression (searched in the
last user message) to a reply. ``errors`` injects harness's real provider errors at given
call numbers (counted from 1, retries included), ``latency`` waits before each answer through
the injectable ``sleep``, and usage is the given one or counted with harness's tokenizers.
Every request is recorded in ``calls``; ``assert_called_with_prompt``, ``last_call`` and
``call_count`` help assertions. ``aembed`` returns deterministic unit vectors of
``embedding_dimensions`` floats derived from a hash of each text (the same text always gets
the same vector), and records each batch in ``embed_calls``. Selectable in config as
``api_type: fake``.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from harness.config import LLMConfig, LLMType, PriceConfig
from harness.costs import Usage
from harness.errors import (
    APIConnectionError,
    APITimeoutError,
    ProviderError,
    status_error_class,
)
from harness.messages import content_text
from harness.providers.base import BaseLLM, ChatResponse, Embeddings, StreamChunk
from harness.providers.registry import register_provider
from harness.tokens import count_message_tokens, count_output_tokens

__all__ = ["ERROR_KINDS", "FakeCall", "FakeLLM", "fake_vector"]

Script = Sequence["str | BaseException"] | Callable[[list[dict[str, Any]]], str] | Mapping[str, str]
ErrorSpec = str | int | BaseException
"""An injected error: a kind from ``ERROR_KINDS``, an HTTP status, or an exception instance."""

ERROR_KINDS: dict[str, int | None] = {
    "rate_limit": 429,
    "timeout": None,
    "connection": None,
    "api_error": 500,
    "server_error": 500,
    "overloaded": 529,
    "bad_request": 400,
    "auth": 401,
    "permission": 403,
    "not_found": 404,
}
"""Error kinds ``errors={k: kind}`` accepts, with the HTTP status each stands for."""


@dataclass
class FakeCall:
    """One request FakeLLM received (``number`` counts from 1; ``error`` what it raised)."""

    messages: list[dict[str, Any]]
    model: str | None
    stream: bool
    params: dict[str, Any] = field(default_factory=dict)
    number: int = 0
    error: BaseException | None = None

    @property
    def prompt(self) -> str:
        """The text of the last user message."""
        users = [m for m in self.messages if m.get("role") == "user"]
        return content_text(users[-1].get("content")) if users else ""

    @property
    def system(self) -> list[str]:
        """The texts of the system messages, in order."""
        return [content_text(m.get("content")) for m in self.messages if m.get("role") == "system"]


def _fake_config() -> LLMConfig:
    # Priced at zero so cost reports show $0 rather than "no price" for the fake.
    free = PriceConfig(input=Decimal(0), output=Decimal(0))
    return LLMConfig(api_type=LLMType.FAKE, model="fake-model", price=free)


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
        errors: Mapping[int, ErrorSpec] | None = None,
        latency: float | Sequence[float] = 0.0,
        embedding_dimensions: int = 8,
        **kwargs: Any,
    ) -> None:
        if isinstance(replies, LLMConfig):  # built by create_llm_instance(config)
            config, replies = replies, None
        super().__init__(config or _fake_config(), **kwargs)
        self.replies: Script = replies if replies is not None else ["fake reply"]
        self.reasoning = reasoning
        self.usage = usage
        self.chunk_size = max(chunk_size, 1)
        self.errors: dict[int, ErrorSpec] = dict(errors or {})
        for spec in self.errors.values():
            if isinstance(spec, str) and spec not in ERROR_KINDS:
                known = ", ".join(ERROR_KINDS)
                raise ValueError(f"unknown error kind {spec!r}; expected one of: {known}")
        self.latency = latency
        if embedding_dimensions < 1:
            raise ValueError("embedding_dimensions must be at least 1")
        self.embedding_dimensions = embedding_dimensions
        self.calls: list[FakeCall] = []
        self.embed_calls: list[list[str]] = []
        self._served = 0  # list-script entries used (injected errors do not use one)

    # -- assertions ----------------------------------------------------------------------------

    @property
    def call_count(self) -> int:
        """How many requests were made (failed attempts and retries included)."""
        return len(self.calls)

    @property
    def last_call(self) -> FakeCall:
        """The latest request; an AssertionError if there was none."""
        if not self.calls:
            raise AssertionError("FakeLLM was never called")
        return self.calls[-1]

    def assert_called_with_prompt(self, expected: str | re.Pattern[str], *, call: int = 0) -> None:
        """Assert a request's prompt contains ``expected`` (a string, or a regex searched).

        ``call`` picks the request by number (1 is the first, -1 the last); 0, the default,
        accepts any request.
        """
        if call > 0:
            chosen = self.calls[call - 1 : call]
        elif call < 0:
            chosen = self.calls[call:][:1] if len(self.calls) >= -call else []
        else:
            chosen = self.calls

        def matches(prompt: str) -> bool:
            if isinstance(expected, re.Pattern):
                return expected.search(prompt) is not None
            return expected in prompt

        if not any(matches(c.prompt) for c in chosen):
            seen = "\n".join(f"  call {c.number}: {c.prompt!r}" for c in self.calls) or "  (none)"
            which = f"call {call}" if call else "any call"
            raise AssertionError(f"no prompt of {which} contains {expected!r}; prompts:\n{seen}")

    # -- the script ----------------------------------------------------------------------------

    def _record(self, messages: list[dict[str, Any]], stream: bool, timeout: float) -> FakeCall:
        params = {
            "temperature": self.config.temperature,
            "max_token": self.config.max_token,
            "timeout": timeout,
        }
        call = FakeCall(
            messages=list(messages),
            model=self.model,
            stream=stream,
            params=params,
            number=len(self.calls) + 1,
        )
        self.calls.append(call)
        return call

    def _injected(self, call: FakeCall) -> BaseException | None:
        spec = self.errors.get(call.number)
        if spec is None or isinstance(spec, BaseException):
            return spec
        provider, model = self.provider_name, self.model
        if spec == "timeout":
            return APITimeoutError("request timed out (injected)", provider=provider, model=model)
        if spec == "connection":
            return APIConnectionError("connect failed (injected)", provider=provider, model=model)
        status = ERROR_KINDS[spec] if isinstance(spec, str) else spec
        assert status is not None
        error: ProviderError = status_error_class(status)(
            f"{'rate limited' if status == 429 else 'provider error'} (injected)",
            provider=provider,
            model=model,
            status_code=status,
        )
        return error

    def _reply_for(self, messages: list[dict[str, Any]]) -> str:
        script = self.replies
        if callable(script):
            return script(messages)
        if isinstance(script, Mapping):
            prompt = self.calls[-1].prompt
            for pattern, reply in script.items():
                if re.search(pattern, prompt):
                    return reply
            raise LookupError(f"FakeLLM has no scripted reply matching prompt {prompt!r}")
        index = self._served
        self._served += 1
        if index >= len(script):
            raise LookupError(f"FakeLLM was called {index + 1} times but has {len(script)} replies")
        scripted = script[index]
        if isinstance(scripted, BaseException):
            raise scripted
        return scripted

    async def _answer(self, messages: list[dict[str, Any]], stream: bool, timeout: float) -> str:
        call = self._record(messages, stream, timeout)
        latency = self.latency
        wait = latency if isinstance(latency, (int, float)) else _nth(latency, call.number)
        if wait > 0:
            await self._sleep(wait)
        try:
            injected = self._injected(call)
            if injected is not None:
                raise injected
            return self._reply_for(messages)
        except BaseException as exc:
            call.error = exc
            raise

    def _usage_for(self, messages: list[dict[str, Any]], text: str) -> Usage:
        if self.usage is not None:
            return self.usage
        prompt = count_message_tokens(messages, self.model)
        reasoning = count_output_tokens(self.reasoning or "", self.model)
        completion = count_output_tokens(text, self.model)
        return Usage(
            prompt_tokens=prompt,
            completion_tokens=completion + reasoning,
            reasoning_tokens=reasoning,
            estimated=prompt.estimated or completion.estimated,
        )

    async def _achat_completion(
        self, messages: list[dict[str, Any]], timeout: float
    ) -> ChatResponse:
        text = await self._answer(messages, False, timeout)
        return ChatResponse(
            text=text,
            usage=self._usage_for(messages, text),
            reasoning_content=self.reasoning,
            finish_reason="stop",
            model=self.model,
        )

    async def _achat_completion_stream(
        self, messages: list[dict[str, Any]], timeout: float
    ) -> AsyncIterator[StreamChunk]:
        text = await self._answer(messages, True, timeout)
        if self.reasoning:
            yield StreamChunk(reasoning=self.reasoning, model=self.model)
        for start in range(0, len(text), self.chunk_size):
            yield StreamChunk(text=text[start : start + self.chunk_size], model=self.model)
        usage = self._usage_for(messages, text)
        yield StreamChunk(finish_reason="stop", usage=usage, model=self.model)

    async def _aembed(self, texts: list[str], timeout: float) -> Embeddings:
        self.embed_calls.append(list(texts))
        vectors = [fake_vector(text, self.embedding_dimensions) for text in texts]
        tokens = [count_output_tokens(text, self.model) for text in texts]
        usage = Usage(prompt_tokens=sum(tokens), estimated=any(t.estimated for t in tokens))
        return Embeddings(vectors=vectors, model=self.model, usage=usage)


def fake_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for ``text``: SHA-256 of the text (and a counter) as
    floats in [-1, 1), normalised. Equal texts give equal vectors; different ones differ."""
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        for (word,) in struct.iter_unpack(">I", digest):
            values.append(word / 2**31 - 1.0)
        counter += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _nth(values: Sequence[float], number: int) -> float:
    """The latency of call ``number`` (from 1); past the end, the last value."""
    if not values:
        return 0.0
    return float(values[min(number, len(values)) - 1])
