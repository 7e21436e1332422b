"""What a provider call returns: ChatResponse (and its Choices and ToolCalls), StreamChunk,
Embeddings, and Reply, the ``str`` that :meth:`BaseLLM.aask` answers with."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from harness.costs import Usage
from harness.tools import ResponseFormat, Tool

__all__ = [
    "ChatOptions",
    "ChatResponse",
    "Choice",
    "Embeddings",
    "Reply",
    "StreamChunk",
    "StreamCollector",
    "ToolCall",
    "content_first",
    "split_forced_answer",
]


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for; ``arguments`` is the raw JSON string.

    ``signature`` is an opaque token some APIs attach to a call (Gemini's
    ``thoughtSignature``) and want back with it in the next turn; :meth:`to_message` keeps it.
    """

    id: str | None
    name: str
    arguments: str
    signature: str | None = None

    def to_message(self) -> dict[str, Any]:
        """The call as an OpenAI-shaped ``tool_calls`` entry of an assistant message (with the
        signature under ``extra_content.google.thought_signature``, as Google's OpenAI
        compatibility layer does)."""
        entry: dict[str, Any] = {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }
        if self.signature:
            entry["extra_content"] = {"google": {"thought_signature": self.signature}}
        return entry


@dataclass(frozen=True)
class ChatOptions:
    """What a request asks beyond its messages: the tools offered, the tool choice (``auto``,
    ``none``, ``required`` or a tool name) and the structured answer wanted."""

    tools: list[Tool] = field(default_factory=list)
    tool_choice: str | None = None
    response_format: ResponseFormat | None = None

    def __bool__(self) -> bool:
        return bool(self.tools) or self.tool_choice is not None or self.response_format is not None


def split_forced_answer(
    calls: list[ToolCall], options: ChatOptions | None
) -> tuple[str | None, list[ToolCall]]:
    """For APIs that answer a ``response_format`` through a forced tool (Anthropic, Bedrock):
    the synthetic tool's input as the answer's text, and the other calls (None: no such call)."""
    if options is None or options.response_format is None:
        return None, calls
    name = options.response_format.name
    answer = [call for call in calls if call.name == name]
    if not answer:
        return None, calls
    return answer[0].arguments, [call for call in calls if call.name != name]


@dataclass
class Choice:
    """One of the answers of a request that asked for several (``n`` > 1)."""

    index: int
    text: str | None
    reasoning_content: str | None = None
    finish_reason: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)


@dataclass
class ChatResponse:
    """The facts of one completed chat request, parsed from the provider's answer.

    ``text``, ``reasoning_content``, ``finish_reason`` and ``tool_calls`` are the first
    answer's; ``choices`` holds every answer, in index order, when the provider returned more
    than one (``n`` > 1), else it is empty. ``metrics`` are the provider's timings and
    counters in seconds or units (Ollama's durations, Bedrock's latency...).
    """

    text: str | None
    usage: Usage | None = None
    reasoning_content: str | None = None
    finish_reason: str | None = None
    model: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    raw: Any = None  # the provider's decoded body (or the list of stream chunks)
    choices: list[Choice] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    parsed: Any = None  # the validated structured answer, when a response_format asked for one
    # Content parts the provider wants back verbatim in the next turn's assistant message
    # (Anthropic's signed thinking blocks before the text), when there are any.
    replay_content: list[dict[str, Any]] | None = None

    def message(self) -> dict[str, Any]:
        """This answer as the assistant message to append to the history for the next turn:
        its text and tool calls, in OpenAI's shape, with the parts the provider wants back
        (Anthropic's thinking blocks and their signatures)."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.replay_content is not None:
            message["content"] = list(self.replay_content)
        elif not self.text and not self.tool_calls:
            message["content"] = ""
        if self.tool_calls:
            message["tool_calls"] = [call.to_message() for call in self.tool_calls]
        return message


@dataclass
class StreamChunk:
    """One increment of a streamed answer; ``index`` says which answer when ``n`` > 1."""

    text: str = ""
    reasoning: str = ""
    usage: Usage | None = None  # the latest cumulative usage a chunk carried, if any
    finish_reason: str | None = None
    model: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)  # complete calls, at the end
    raw: Any = None
    index: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    # At the end: the parts to send back in the next turn (see ChatResponse.replay_content).
    replay_content: list[dict[str, Any]] | None = None


@dataclass
class Embeddings:
    """The answer of :meth:`BaseLLM.aembed`: one vector per input text, in input order."""

    vectors: list[list[float]]
    model: str | None = None
    usage: Usage | None = None  # prompt tokens only; estimated when the provider said none
    raw: Any = field(default=None, repr=False)  # the provider's decoded body (or bodies)

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def dimensions(self) -> int | None:
        """The length of the vectors (None when there are none)."""
        return len(self.vectors[0]) if self.vectors else None


class Reply(str):
    """The answer of :meth:`BaseLLM.aask`: a ``str`` that also carries the call's facts.

    Each call returns its own Reply, so ``reasoning_content`` and ``usage`` stay correct when
    many calls run concurrently.
    """

    response: ChatResponse

    def __new__(cls, response: ChatResponse) -> Reply:
        reply = super().__new__(cls, response.text or "")
        reply.response = response
        return reply

    @property
    def reasoning_content(self) -> str | None:
        """The model's reasoning ("thinking") text, when the provider returned it."""
        return self.response.reasoning_content

    @property
    def usage(self) -> Usage | None:
        """Tokens this call consumed."""
        return self.response.usage

    @property
    def finish_reason(self) -> str | None:
        """Why the model stopped (``stop``, ``length``, ``end_turn``, ``content_filter``...)."""
        return self.response.finish_reason

    @property
    def model(self) -> str | None:
        """The model that answered, as the provider named it."""
        return self.response.model

    @property
    def alternatives(self) -> list[str]:
        """Every answer's text (``n`` > 1), the first being this Reply's; else just this one."""
        if not self.response.choices:
            return [str(self)]
        return [choice.text or "" for choice in self.response.choices]

    @property
    def metrics(self) -> dict[str, float]:
        """The provider's timings and counters for this call (may be empty)."""
        return self.response.metrics

    @property
    def parsed(self) -> Any:
        """The structured answer a ``response_format`` asked for: the pydantic model instance,
        or the decoded (validated) JSON; None without a ``response_format``."""
        return self.response.parsed

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls the model asked for (empty when it answered with text)."""
        return self.response.tool_calls


class _ChoiceCollector:
    """The text, reasoning, finish reason and tool calls of one answer of a stream."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.finish_reason: str | None = None
        self.tool_calls: list[ToolCall] = []
        self.replay_content: list[dict[str, Any]] | None = None

    def add(self, chunk: StreamChunk) -> None:
        self.text.append(chunk.text)
        self.reasoning.append(chunk.reasoning)
        self.finish_reason = chunk.finish_reason or self.finish_reason
        self.tool_calls.extend(chunk.tool_calls)
        if chunk.replay_content is not None:
            self.replay_content = chunk.replay_content

    def choice(self, index: int) -> Choice:
        return Choice(
            index=index,
            text="".join(self.text),
            reasoning_content="".join(self.reasoning) or None,
            finish_reason=self.finish_reason,
            tool_calls=self.tool_calls,
        )


class StreamCollector:
    """Folds stream chunks into one ChatResponse (chunks of several answers by ``index``)."""

    def __init__(self) -> None:
        self.chunks = 0
        self.answers: dict[int, _ChoiceCollector] = {}
        self.usage: Usage | None = None
        self.model: str | None = None
        self.metrics: dict[str, float] = {}
        self.raw: list[Any] = []

    def add(self, chunk: StreamChunk) -> None:
        self.chunks += 1
        self.answers.setdefault(chunk.index, _ChoiceCollector()).add(chunk)
        self.usage = chunk.usage or self.usage
        self.model = chunk.model or self.model
        self.metrics.update(chunk.metrics)
        if chunk.raw is not None:
            self.raw.append(chunk.raw)

    def response(self) -> ChatResponse:
        choices = [self.answers[i].choice(i) for i in sorted(self.answers)] or [Choice(0, "")]
        first = choices[0]
        replay = self.answers[min(self.answers)].replay_content if self.answers else None
        return ChatResponse(
            text=first.text,
            usage=self.usage,
            reasoning_content=first.reasoning_content,
            finish_reason=first.finish_reason,
            model=self.model,
            tool_calls=first.tool_calls,
            raw=self.raw,
            choices=choices if len(choices) > 1 else [],
            metrics=self.metrics,
            replay_content=replay,
        )


async def content_first(chunks: AsyncGenerator[StreamChunk, None]) -> AsyncIterator[StreamChunk]:
    """``chunks``, those without content (message and block starts, tool-input fragments)
    held back until the first content: an error event before it (an overload, a throttle) then
    fails the stream before anything was yielded, so the retry policy can still retry it."""
    held: list[StreamChunk] | None = []
    try:
        async for chunk in chunks:
            if held is not None:
                if not (chunk.text or chunk.reasoning or chunk.finish_reason):
                    held.append(chunk)
                    continue
                for earlier in held:
                    yield earlier
                held = None
            yield chunk
        for earlier in held or ():
            yield earlier
    finally:
        await chunks.aclose()
