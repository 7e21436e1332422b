"""schema_model: every answer it generates is valid against the schema it was asked for."""

from __future__ import annotations

import asyncio
import json
import string
import sys
from typing import Any, Literal

import jsonschema
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import Tool
from harness.messages import assistant_msg, tool_result
from harness.providers._schema_data import SchemaNotSupportedError, schema_strategy
from harness.providers.fake import schema_model

_NAMES = st.text(string.ascii_lowercase + "_", min_size=1, max_size=8)


def _bounds(draw: st.DrawFn, schema: dict[str, Any], integral: bool) -> dict[str, Any]:
    number = st.integers(-50, 50) if integral else st.floats(-50, 50, allow_nan=False)
    low = draw(st.none() | number)
    high = draw(st.none() | number)
    if low is not None and high is not None and low > high:
        low, high = high, low
    # exclusive bounds only where a value lies strictly between them
    room = low is None or high is None or high - low > 1
    if low is not None:
        exclusive = not integral and room and draw(st.booleans())
        schema["exclusiveMinimum" if exclusive else "minimum"] = low
    if high is not None:
        exclusive = not integral and room and draw(st.booleans())
        schema["exclusiveMaximum" if exclusive else "maximum"] = high
    return schema


@st.composite
def _scalar_schemas(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["string", "integer", "number", "boolean", "enum", "null"]))
    if kind == "string":
        schema: dict[str, Any] = {"type": "string"}
        low = draw(st.none() | st.integers(0, 5))
        if low is not None:
            schema["minLength"] = low
        if draw(st.booleans()):
            schema["maxLength"] = (low or 0) + draw(st.integers(0, 8))
        return schema
    if kind in ("integer", "number"):
        return _bounds(draw, {"type": kind}, integral=kind == "integer")
    if kind == "enum":
        values = st.one_of(st.text(max_size=5), st.integers(-9, 9), st.booleans(), st.none())
        return {"enum": draw(st.lists(values, min_size=1, max_size=4, unique_by=json.dumps))}
    return {"type": kind}


def _containers(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def arrays(draw: st.DrawFn) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "array", "items": draw(inner)}
        low = draw(st.integers(0, 2))
        if low:
            schema["minItems"] = low
        if draw(st.booleans()):
            schema["maxItems"] = low + draw(st.integers(0, 3))
        return schema

    return st.one_of(arrays(), _objects(inner))


def _objects(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def objects(draw: st.DrawFn) -> dict[str, Any]:
        properties = draw(st.dictionaries(_NAMES, inner, max_size=4))
        required = (
            draw(st.lists(st.sampled_from(sorted(properties)), unique=True)) if (properties) else []
        )
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        if draw(st.booleans()):
            schema["additionalProperties"] = False
        return schema

    return objects()


_SCHEMAS = st.recursive(_scalar_schemas(), _containers, max_leaves=8)
_OBJECT_SCHEMAS = _objects(_SCHEMAS)

_FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FAST
@given(parameters=_OBJECT_SCHEMAS, seed=st.integers(0, 2**16))
def test_schema_model_tool_arguments_are_valid_against_any_drawn_schema(
    parameters: dict[str, Any], seed: int
) -> None:
    tool = Tool("act", "Do something.", parameters)
    llm = schema_model(seed=seed)
    messages = [{"role": "user", "content": "go"}]
    response = asyncio.run(llm.acompletion(messages, tools=[tool]))
    assert [call.name for call in response.tool_calls] == ["act"]
    arguments = json.loads(response.tool_calls[0].arguments)
    jsonschema.validate(arguments, parameters)
    assert set(arguments) <= set(parameters["properties"])  # fits fn(**arguments)


@_FAST
@given(schema=_SCHEMAS, seed=st.integers(0, 2**16), stream=st.booleans())
def test_schema_model_structured_answers_are_valid_against_any_drawn_schema(
    schema: dict[str, Any], seed: int, stream: bool
) -> None:
    reply = asyncio.run(schema_model(seed=seed).aask("go", response_format=schema, stream=stream))
    jsonschema.validate(reply.parsed, schema)
    assert json.loads(reply) == reply.parsed


# -- examples ----------------------------------------------------------------------------------


class Address(pydantic.BaseModel):
    street: str
    postcode: str | None = None


class Person(pydantic.BaseModel):
    name: str = pydantic.Field(min_length=2, max_length=10)
    age: int = pydantic.Field(ge=0, le=120)
    home: Address
    friends: list[Person] = []  # recursive: a $ref to itself
    role: Literal["admin", "user"] = "user"


def get_weather(city: str, days: int = 1) -> str:
    """The forecast."""
    return "sunny"


def book_table(restaurant: str, people: int) -> str:
    """Book a table."""
    return "booked"


async def test_a_pydantic_model_with_refs_recursion_and_optionals_is_answered_validly() -> None:
    for seed in range(5):
        reply = await schema_model(seed=seed).aask("who?", response_format=Person)
        assert isinstance(reply.parsed, Person)
        assert Person.model_validate_json(reply) == reply.parsed


async def test_the_same_seed_gives_the_same_answers_and_seeds_differ() -> None:
    async def answers(seed: int) -> list[str]:
        llm = schema_model(seed=seed)
        first = await llm.acompletion([{"role": "user", "content": "x"}], tools=[get_weather])
        second = await llm.aask("y", response_format=Person)
        return [first.tool_calls[0].arguments, str(second)]

    assert await answers(7) == await answers(7)
    runs = [await answers(seed) for seed in range(4)]
    assert len({json.dumps(r) for r in runs}) > 1


async def test_the_agent_loop_calls_the_first_tool_then_answers_with_the_results() -> None:
    llm = schema_model()
    messages: list[dict[str, Any]] = [{"role": "user", "content": "weather in Paris?"}]
    tools = [get_weather, book_table]
    first = await llm.acompletion(messages, tools=tools)
    assert [c.name for c in first.tool_calls] == ["get_weather"]
    assert first.finish_reason == "tool_calls"
    call = first.tool_calls[0]
    assert get_weather(**json.loads(call.arguments)) == "sunny"  # fits the function
    messages += [assistant_msg(None, first.tool_calls), tool_result(call.id or "", "sunny")]
    final = await llm.acompletion(messages, tools=tools)
    assert final.tool_calls == []
    assert json.loads(final.text or "") == {"get_weather": "sunny"}
    assert llm.tool_calls.names == ["get_weather"]
    assert llm.tool_calls.offered == [("get_weather", "book_table")] * 2


async def test_pick_all_calls_every_tool_and_rounds_bounds_the_turns() -> None:
    llm = schema_model(pick="all", rounds=2, text="done")
    messages: list[dict[str, Any]] = [{"role": "user", "content": "plan"}]
    for _ in range(2):
        response = await llm.acompletion(messages, tools=[get_weather, book_table])
        assert [c.name for c in response.tool_calls] == ["get_weather", "book_table"]
        messages.append(assistant_msg(None, response.tool_calls))
        messages += [tool_result(c.id or "", "ok") for c in response.tool_calls]
    last = await llm.acompletion(messages, tools=[get_weather, book_table])
    assert (last.text, last.tool_calls) == ("done", [])


async def test_pick_seeded_chooses_by_the_seed() -> None:
    chosen = set()
    for seed in range(12):
        response = await schema_model(seed=seed, pick="seeded").acompletion(
            [{"role": "user", "content": "x"}], tools=[get_weather, book_table]
        )
        chosen.add(response.tool_calls[0].name)
    assert chosen == {"get_weather", "book_table"}


async def test_tool_choice_is_obeyed() -> None:
    messages = [{"role": "user", "content": "x"}]
    tools = [get_weather, book_table]
    named = await schema_model().acompletion(messages, tools=tools, tool_choice="book_table")
    assert [c.name for c in named.tool_calls] == ["book_table"]
    none = await schema_model(text="no tools").acompletion(
        messages, tools=tools, tool_choice="none"
    )
    assert (none.text, none.tool_calls) == ("no tools", [])
    # required: a call every turn, whatever the rounds
    llm = schema_model(rounds=0)
    required = await llm.acompletion(messages, tools=tools, tool_choice="required")
    assert [c.name for c in required.tool_calls] == ["get_weather"]


async def test_a_json_response_format_gets_a_json_object() -> None:
    reply = await schema_model().aask("x", response_format="json")
    assert isinstance(reply.parsed, dict)


def test_schema_strategy_is_a_hypothesis_strategy_of_valid_values() -> None:
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "when": {"type": "string", "format": "date"},
            "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "n": {"type": "integer", "multipleOf": 5, "minimum": 1, "maximum": 50},
            "x": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
            "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "uniqueItems": True},
            "either": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "fixed": {"const": 3},
        },
        "required": ["id", "when", "code", "n", "x", "pair", "tags", "either", "fixed"],
    }

    @settings(max_examples=25, deadline=None)
    @given(schema_strategy(schema))
    def check(value: Any) -> None:
        jsonschema.validate(value, schema)
        assert len(value["pair"]) >= 2 and value["n"] % 5 == 0

    check()


def test_an_unsupported_keyword_is_named_with_its_place() -> None:
    with pytest.raises(SchemaNotSupportedError, match=r"#\.properties\.x: .*'not'"):
        schema_strategy({"type": "object", "properties": {"x": {"not": {"type": "string"}}}})


async def test_an_unsatisfiable_schema_is_a_clear_error() -> None:
    schema = {"type": "integer", "minimum": 5, "maximum": 1}
    with pytest.raises(SchemaNotSupportedError, match="no integer satisfies the bounds"):
        await schema_model().aask("x", response_format=schema)


def test_without_hypothesis_schema_model_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    with pytest.raises(ImportError, match=r"harness-llm\[schema\]"):
        schema_model()


async def test_tools_and_a_response_format_call_the_tools_first_then_answer_structured() -> None:
    llm = schema_model(seed=2)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "plan"}]
    step = await llm.aask(messages, tools=[get_weather], response_format=Address, stream=False)
    assert step.parsed is None and [c.name for c in step.tool_calls] == ["get_weather"]
    messages += [
        assistant_msg(None, step.tool_calls),
        tool_result(step.tool_calls[0].id or "", "ok"),
    ]
    final = await llm.aask(messages, tools=[get_weather], response_format=Address, stream=False)
    assert final.tool_calls == [] and isinstance(final.parsed, Address)
