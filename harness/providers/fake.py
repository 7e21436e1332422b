"""FakeLLM: a scripted model for tests; no HTTP, no keys, real harness behaviour around it.

Replies can be a list (served in order; an exception instance in the list is raised at that
call), a callable of the messages (or of the messages and the offered tools; it may be async),
or a mapping from a regular expression (searched in the last user message) to a reply. A reply
is text, a ``ToolCall`` (see :func:`tool_call`), a list of texts and ToolCalls, or a pydantic
model instance or a dict: a structured answer, sent as its JSON (and validated into
``Reply.parsed`` when the request has a ``response_format``). Streaming sends the text in
chunks, then the tool calls as OpenAI-style fragments (in ``raw``), then the complete calls, as
the real providers do. ``tool_calls`` logs every call answered and the tools each request
offered. :func:`function_model` answers with a function of the messages and a
:class:`ModelInfo`; :func:`schema_model` answers any tool or ``response_format`` with
generated, schema-valid data. ``errors`` injects harness's real provider errors at given
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
import inspect
import math
import re
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
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
from harness.providers._fake_script import (
    FakeAnswer,
    ModelInfo,
    Pick,
    SchemaScript,
    ToolCallLog,
    answer_of,
    tool_call,
)
from harness.providers.base import BaseLLM, ChatResponse, Embeddings, StreamChunk
from harness.providers.registry import register_provider
from harness.providers.results import ChatOptions, ToolCall
from harness.tokens import count_message_tokens, count_output_tokens
from harness.tools import ResponseFormat, Tool

__all__ = [
    "ERROR_KINDS",
    "FakeCall",
    "FakeLLM",
    "ModelInfo",
    "ToolCallLog",
    "fake_vector",
    "function_model",
    "schema_model",
    "tool_call",
]

ScriptedReply = Any
"""A reply: str, ToolCall, a list of str and ToolCalls, a pydantic model instance or a dict."""
Script = (
    Sequence["ScriptedReply | BaseException"]
    | Callable[..., "ScriptedReply | Awaitable[ScriptedReply]"]
    | Mapping[str, "ScriptedReply"]
)
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
    tools: list[Tool] = field(default_factory=list)  # the tools offered
    tool_choice: str | None = None
    response_format: ResponseFormat | None = None
    answer: FakeAnswer | None = None  # what the fake answered (None when it raised)

    @property
    def tool_names(self) -> list[str]:
        """The names of the tools offered."""
        return [tool.name for tool in self.tools]

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
        self.tool_calls = ToolCallLog()
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

    def _record(
        self,
        messages: list[dict[str, Any]],
        stream: bool,
        timeout: float,
        options: ChatOptions | None,
    ) -> FakeCall:
        options = options or ChatOptions()
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
            tools=list(options.tools),
            tool_choice=options.tool_choice,
            response_format=options.response_format,
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

    def _reply_for(self, messages: list[dict[str, Any]], call: FakeCall) -> Any:
        script = self.replies
        if isinstance(script, _InfoFunction):
            info = ModelInfo(
                tools=list(call.tools),
                tool_choice=call.tool_choice,
                response_format=call.response_format,
                number=call.number,
                stream=call.stream,
                model=self.model,
            )
            return script.fn(messages, info)
        if callable(script):
            if _takes_tools(script):
                return script(messages, list(call.tools))
            return script(messages)
        if isinstance(script, Mapping):
            prompt = call.prompt
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

    async def _answer(
        self,
        messages: list[dict[str, Any]],
        stream: bool,
        timeout: float,
        options: ChatOptions | None = None,
    ) -> FakeAnswer:
        call = self._record(messages, stream, timeout, options)
        latency = self.latency
        wait = latency if isinstance(latency, (int, float)) else _nth(latency, call.number)
        if wait > 0:
            await self._sleep(wait)
        try:
            injected = self._injected(call)
            if injected is not None:
                raise injected
            reply = self._reply_for(messages, call)
            if inspect.isawaitable(reply):
                reply = await reply
            answer = answer_of(reply, call.number)
        except BaseException as exc:
            call.error = exc
            raise
        call.answer = answer
        self.tool_calls._record(call.number, call.tools, answer.tool_calls)
        return answer

    def _usage_for(
        self, messages: list[dict[str, Any]], answer: FakeAnswer, options: ChatOptions | None
    ) -> Usage:
        if self.usage is not None:
            return self.usage
        tools = [tool.to_openai() for tool in options.tools] if options else None
        choice = options.tool_choice if options else None
        prompt = count_message_tokens(messages, self.model, tools=tools, tool_choice=choice)
        reasoning = count_output_tokens(self.reasoning or "", self.model)
        spoken = answer.text + "".join(c.name + c.arguments for c in answer.tool_calls)
        completion = count_output_tokens(spoken, self.model)
        return Usage(
            prompt_tokens=prompt,
            completion_tokens=completion + reasoning,
            reasoning_tokens=reasoning,
            estimated=prompt.estimated or completion.estimated,
        )

    async def _achat_completion(
        self, messages: list[dict[str, Any]], timeout: float, options: ChatOptions | None = None
    ) -> ChatResponse:
        answer = await self._answer(messages, False, timeout, options)
        return ChatResponse(
            text=answer.text,
            usage=self._usage_for(messages, answer, options),
            reasoning_content=self.reasoning,
            finish_reason=answer.finish_reason,
            model=self.model,
            tool_calls=list(answer.tool_calls),
        )

    async def _achat_completion_stream(
        self, messages: list[dict[str, Any]], timeout: float, options: ChatOptions | None = None
    ) -> AsyncIterator[StreamChunk]:
        answer = await self._answer(messages, True, timeout, options)
        if self.reasoning:
            yield StreamChunk(reasoning=self.reasoning, model=self.model)
        text = answer.text
        for start in range(0, len(text), self.chunk_size):
            yield StreamChunk(text=text[start : start + self.chunk_size], model=self.model)
        # Tool calls stream as OpenAI's fragments (the id and name first, then the arguments
        # piece by piece); like the real providers, the complete calls come after the end.
        for index, call in enumerate(answer.tool_calls):
            for fragment in _fragments(call, index, self.chunk_size):
                yield StreamChunk(model=self.model, raw=_delta_chunk(fragment, self.model))
        usage = self._usage_for(messages, answer, options)
        yield StreamChunk(finish_reason=answer.finish_reason, usage=usage, model=self.model)
        if answer.tool_calls:
            yield StreamChunk(tool_calls=list(answer.tool_calls))

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


def _takes_tools(fn: Callable[..., Any]) -> bool:
    """Whether a script callable takes (messages, tools) rather than (messages)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return True
    return sum(1 for p in params if p.kind in positional) >= 2


def _fragments(call: ToolCall, index: int, size: int) -> list[dict[str, Any]]:
    """A call as OpenAI streams it: id, type and name with empty arguments, then the
    arguments in pieces of ``size`` characters."""
    head = {
        "index": index,
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": ""},
    }
    pieces = [call.arguments[i : i + size] for i in range(0, len(call.arguments), size)]
    return [head, *({"index": index, "function": {"arguments": p}} for p in pieces)]


def _delta_chunk(fragment: dict[str, Any], model: str | None) -> dict[str, Any]:
    return {
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": {"tool_calls": [fragment]}, "finish_reason": None}],
    }


@dataclass(frozen=True)
class _InfoFunction:
    """A script function of (messages, ModelInfo), as :func:`function_model` takes it."""

    fn: Callable[[list[dict[str, Any]], ModelInfo], Any]


def function_model(fn: Callable[[list[dict[str, Any]], ModelInfo], Any], **kwargs: Any) -> FakeLLM:
    """A FakeLLM that answers each request with ``fn(messages, info)`` (sync or async).

    ``info`` is a :class:`ModelInfo`: the offered tools, the tool choice, the
    ``response_format``, the request's number and whether it streams. ``fn`` returns any
    FakeLLM reply: text, ToolCalls, a pydantic instance or a dict. ``kwargs`` go to FakeLLM
    (``usage``, ``errors``, ``latency``...).
    """
    if not callable(fn):
        raise TypeError(f"function_model needs a function of (messages, info), got {fn!r:.80}")
    return FakeLLM(_InfoFunction(fn), **kwargs)  # type: ignore[arg-type]


def schema_model(
    *,
    seed: int = 0,
    pick: Pick = "first",
    rounds: int = 1,
    text: str | None = None,
    **kwargs: Any,
) -> FakeLLM:
    """A FakeLLM that answers with generated, schema-valid data, so an agent test needs no
    hand-written replies.

    While tools are offered it calls them, ``rounds`` turns after the user's message (every
    turn when ``tool_choice`` is ``required`` or a tool's name, none when it is ``none``),
    with arguments drawn from each tool's JSON schema: ``pick`` calls the ``first`` offered
    tool, one chosen by the ``seed`` (``seeded``), or ``all`` of them. Then it answers the
    ``response_format`` with data drawn from its schema, else ``text`` (by default the JSON of
    each called tool's latest result). The same ``seed`` gives the same answers (with the same
    hypothesis version). Needs hypothesis: ``pip install 'harness-llm[schema]'``.
    """
    try:
        import hypothesis  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "schema_model generates data with hypothesis, which is not installed; "
            "install the extra: pip install 'harness-llm[schema]'"
        ) from exc
    script = SchemaScript(seed=seed, pick=pick, rounds=rounds, text=text)
    return function_model(script, **kwargs)
