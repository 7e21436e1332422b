"""FakeLLM's script pieces: what a scripted reply may be and the one answer it becomes, what a
function model is told about a request, the log of tool calls, and the script of
``schema_model`` (tools and structured answers answered with generated, schema-valid data)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import pydantic

from harness.messages import content_text
from harness.providers.results import ToolCall
from harness.tools import ResponseFormat, Tool

__all__ = [
    "FakeAnswer",
    "ModelInfo",
    "SchemaScript",
    "ToolCallLog",
    "answer_of",
    "tool_call",
]


def tool_call(
    name: str, arguments: Mapping[str, Any] | str | None = None, *, id: str | None = None
) -> ToolCall:
    """A ToolCall to script: ``arguments`` a mapping (sent as JSON) or a JSON string; a call
    without ``id`` gets one from FakeLLM (``call_<request>_<n>``)."""
    if arguments is None:
        text = "{}"
    elif isinstance(arguments, str):
        text = arguments
    elif isinstance(arguments, Mapping):
        text = json.dumps(dict(arguments), ensure_ascii=False)
    else:
        raise TypeError(f"tool_call arguments: a mapping or a JSON string, got {arguments!r:.80}")
    return ToolCall(id=id, name=name, arguments=text)


@dataclass(frozen=True)
class ModelInfo:
    """What a scripted function is told about a request besides its messages."""

    tools: list[Tool] = field(default_factory=list)  # the tools offered, in order
    tool_choice: str | None = None  # auto, none, required or a tool name; None: unset
    response_format: ResponseFormat | None = None  # the structured answer asked for
    number: int = 1  # the request's number, from 1
    stream: bool = False
    model: str | None = None

    @property
    def tool_names(self) -> list[str]:
        """The names of the offered tools."""
        return [tool.name for tool in self.tools]

    def tool(self, name: str) -> Tool:
        """The offered tool called ``name`` (a KeyError naming the offered ones)."""
        for tool in self.tools:
            if tool.name == name:
                return tool
        raise KeyError(f"no tool {name!r} was offered; offered: {self.tool_names}")


@dataclass
class FakeAnswer:
    """One scripted answer: its text and the tool calls it makes."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)

    @property
    def finish_reason(self) -> str:
        """``tool_calls`` when it calls tools (as OpenAI says), else ``stop``."""
        return "tool_calls" if self.tool_calls else "stop"


def answer_of(reply: Any, number: int) -> FakeAnswer:
    """A scripted reply as the answer of request ``number``.

    A reply is text; a ToolCall; a pydantic model instance or a dict (a structured answer,
    sent as its JSON); or a list or tuple of texts and ToolCalls (the texts joined, the calls
    in order). Calls without an id get ``call_<number>_<n>``.
    """
    if isinstance(reply, FakeAnswer):
        parts: list[Any] = [reply.text, *reply.tool_calls]
    elif isinstance(reply, (list, tuple)):
        parts = list(reply)
    else:
        parts = [reply]
    texts: list[str] = []
    calls: list[ToolCall] = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, ToolCall):
            if part.id is None:
                part = ToolCall(f"call_{number}_{len(calls)}", part.name, part.arguments)
            calls.append(part)
        elif isinstance(part, pydantic.BaseModel):
            texts.append(part.model_dump_json())
        elif isinstance(part, Mapping):
            texts.append(json.dumps(dict(part), ensure_ascii=False))
        else:
            raise TypeError(
                "a FakeLLM reply is a str, a ToolCall, a pydantic model instance, a dict, or a "
                f"list of str and ToolCalls; got {type(part).__name__}: {part!r:.80}"
            )
    return FakeAnswer("".join(texts), calls)


@dataclass(frozen=True)
class _Offer:
    number: int
    names: tuple[str, ...]


class ToolCallLog(Sequence[ToolCall]):
    """Every tool call a FakeLLM answered with, in order, and the tools each request offered.

    It is a sequence of the calls (``[c.name for c in fake.tool_calls]``); ``offered`` lists,
    per request that offered tools, their names.
    """

    def __init__(self) -> None:
        self._calls: list[ToolCall] = []
        self._offers: list[_Offer] = []

    def _record(self, number: int, offered: Sequence[Tool], calls: Sequence[ToolCall]) -> None:
        if offered:
            self._offers.append(_Offer(number, tuple(t.name for t in offered)))
        self._calls.extend(calls)

    @overload
    def __getitem__(self, index: int) -> ToolCall: ...

    @overload
    def __getitem__(self, index: slice) -> list[ToolCall]: ...

    def __getitem__(self, index: int | slice) -> ToolCall | list[ToolCall]:
        return self._calls[index]

    def __len__(self) -> int:
        return len(self._calls)

    def __iter__(self) -> Iterator[ToolCall]:
        return iter(self._calls)

    def __repr__(self) -> str:
        return f"ToolCallLog(called={self.names}, offered={self.offered})"

    @property
    def names(self) -> list[str]:
        """The called tools' names, in order."""
        return [call.name for call in self._calls]

    @property
    def offered(self) -> list[tuple[str, ...]]:
        """The names of the tools offered, one tuple per request that offered any."""
        return [offer.names for offer in self._offers]

    def was_offered(self, name: str) -> bool:
        """Whether any request offered the tool ``name``."""
        return any(name in offer.names for offer in self._offers)

    def arguments(self, name: str) -> list[Any]:
        """The decoded arguments of every call of ``name``, in order."""
        return [json.loads(call.arguments) for call in self._calls if call.name == name]

    def assert_called(self, name: str, args: Mapping[str, Any] | None = None) -> None:
        """Assert ``name`` was called (with arguments containing ``args``, when given)."""
        made = self.arguments(name)
        if not made:
            raise AssertionError(f"tool {name!r} was never called; calls: {self.names or 'none'}")
        if args is not None and not any(_contains(a, args) for a in made):
            raise AssertionError(f"no call of {name!r} had arguments {dict(args)!r}; got {made}")


def _contains(value: Any, subset: Mapping[str, Any]) -> bool:
    return isinstance(value, Mapping) and all(
        key in value and value[key] == expected for key, expected in subset.items()
    )


# -- schema_model ------------------------------------------------------------------------------


def _seed(*parts: object) -> int:
    """A seed from the parts, the same in every process (``hash()`` is salted)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


Pick = Literal["first", "seeded", "all"]


class SchemaScript:
    """Answers a request with generated, schema-valid data: tool calls while tools are offered
    (``rounds`` turns of calls after the last user message; every turn when the tool choice
    requires one), then the ``response_format``'s data, else ``text`` (by default the JSON of
    each tool's latest result)."""

    def __init__(self, *, seed: int, pick: Pick, rounds: int, text: str | None) -> None:
        if pick not in ("first", "seeded", "all"):
            raise ValueError(f"pick is 'first', 'seeded' or 'all', got {pick!r}")
        if rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {rounds}")
        self.seed = seed
        self.pick: Pick = pick
        self.rounds = rounds
        self.text = text
        self._strategies: dict[str, Any] = {}

    async def __call__(self, messages: list[dict[str, Any]], info: ModelInfo) -> FakeAnswer:
        choice = info.tool_choice
        if info.tools and choice != "none":
            forced = choice not in (None, "auto")
            if forced or _tool_turns(messages) < self.rounds:
                return FakeAnswer(tool_calls=await self._calls(info))
        if info.response_format is not None:
            schema = info.response_format.schema or {"type": "object"}
            value = await self.generate(schema, info.number, "response_format")
            return FakeAnswer(json.dumps(value, ensure_ascii=False))
        if self.text is not None:
            return FakeAnswer(self.text)
        return FakeAnswer(json.dumps(_latest_results(messages), ensure_ascii=False))

    async def _calls(self, info: ModelInfo) -> list[ToolCall]:
        tools = info.tools
        if info.tool_choice not in (None, "auto", "none", "required"):
            tools = [info.tool(info.tool_choice)]
        elif self.pick == "first":
            tools = tools[:1]
        elif self.pick == "seeded":
            tools = [random.Random(_seed(self.seed, info.number)).choice(tools)]
        calls = []
        for n, tool in enumerate(tools):
            arguments = await self.generate(tool.parameters, info.number, tool.name)
            text = json.dumps(arguments, ensure_ascii=False)
            calls.append(ToolCall(f"call_{info.number}_{n}", tool.name, text))
        return calls

    async def generate(self, schema: Mapping[str, Any], number: int, purpose: str) -> Any:
        """Data valid against ``schema``, the same for the same (seed, request, purpose).

        The draw is a hypothesis run of its own on one worker thread shared by the process:
        it does not block the event loop, draws never overlap, and inside a ``@given`` test it
        is not a nested one (hypothesis keeps its test context per thread; setting up a
        thread costs it a garbage collection, hence one long-lived thread).
        """
        from harness.providers._schema_data import draw, schema_strategy

        key = json.dumps(schema, sort_keys=True, default=str)
        strategy = self._strategies.get(key)
        if strategy is None:
            strategy = self._strategies[key] = schema_strategy(schema)
        seed = _seed(self.seed, number, purpose)
        return await asyncio.get_running_loop().run_in_executor(_DRAWS, draw, strategy, seed)


# The one thread schema draws run on (started at the first draw).
_DRAWS = ThreadPoolExecutor(1, thread_name_prefix="harness-schema-draw")


def _tool_turns(messages: list[dict[str, Any]]) -> int:
    """How many assistant turns with tool calls follow the last user message."""
    turns = 0
    for message in reversed(messages):
        if message.get("role") == "user":
            break
        if message.get("role") == "assistant" and message.get("tool_calls"):
            turns += 1
    return turns


def _latest_results(messages: list[dict[str, Any]]) -> dict[str, str]:
    """Each called tool's latest result text, by tool name (ids matched to the calls)."""
    names: dict[str, str] = {}
    results: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            if call.get("id"):
                names[str(call["id"])] = str(function.get("name", ""))
        if message.get("role") == "tool":
            call_id = str(message.get("tool_call_id", ""))
            results[names.get(call_id, call_id)] = content_text(message.get("content"))
    return results
