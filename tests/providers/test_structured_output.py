"""Issue #12: ``response_format`` (a pydantic model, a JSON-schema dict or "json") on every
wire format: the request shape, ``Reply.parsed``, and StructuredOutputError with the raw text
when the answer is not valid."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pydantic
import pytest

from harness import LLMConfig, StructuredOutputError, create_llm_instance
from harness.providers._gemini_wire import is_gemini_schema
from harness.providers.openai_compat import strict_schema
from tests.providers.test_tools_wire import (
    PROVIDERS,
    WEATHER,
    call_answer,
    config,
    make,
    text_answer,
)


class City(pydantic.BaseModel):
    """A city and its country."""

    name: str
    country: str


CITY_SCHEMA = City.model_json_schema()
ANSWER = {"name": "Mexico City", "country": "Mexico"}
FORCED = {"anthropic", "bedrock", "bedrock-invoke"}  # answered through a forced tool call


def structured_answer(provider: str, value: Any, name: str = "City") -> dict[str, Any]:
    """``provider``'s answer carrying ``value`` the way it answers a response_format."""
    if provider in FORCED:
        return call_answer(provider, name=name, args=value)
    return text_answer(provider, json.dumps(value))


def expected_request(provider: str, schema: dict[str, Any], name: str) -> dict[str, Any]:
    """The fields of the request that ask for the structured answer."""
    if provider in ("openai", "azure"):
        strict = strict_schema(schema)
        assert strict is not None
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": strict, "strict": True},
            }
        }
    if provider in ("anthropic", "bedrock-invoke"):
        tool = {
            "name": name,
            "description": "Answer with this tool; its input is the answer.",
            "input_schema": schema,
        }
        return {"tools": [tool], "tool_choice": {"type": "tool", "name": name}}
    if provider == "bedrock":
        spec = {
            "name": name,
            "description": "Answer with this tool; its input is the answer.",
            "inputSchema": {"json": schema},
        }
        return {
            "toolConfig": {"tools": [{"toolSpec": spec}], "toolChoice": {"tool": {"name": name}}}
        }
    if provider == "gemini":
        key = "responseSchema" if is_gemini_schema(schema) else "responseJsonSchema"
        return {"generationConfig": {"responseMimeType": "application/json", key: schema}}
    return {"format": schema}


def picked(body: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """The keys of ``expected`` as the body has them (generationConfig: only those keys)."""
    result: dict[str, Any] = {}
    for key, value in expected.items():
        sent = body.get(key)
        if key == "generationConfig" and isinstance(sent, dict):
            sent = {k: sent.get(k) for k in value}
        result[key] = sent
    return result


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_pydantic_response_format_is_sent_and_parsed_into_the_model(provider: str) -> None:
    llm, scripted = make(provider, [structured_answer(provider, ANSWER)])

    reply = await llm.aask("Largest city of Mexico?", response_format=City, stream=False)

    assert reply.parsed == City(name="Mexico City", country="Mexico")
    assert json.loads(reply) == ANSWER
    assert reply.tool_calls == []  # the forced call is the answer, not a call to run
    expected = expected_request(provider, CITY_SCHEMA, "City")
    assert picked(scripted.body(0), expected) == expected


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_json_schema_dict_is_parsed_to_validated_json(provider: str) -> None:
    schema = {
        "title": "city",
        "type": "object",
        "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["name", "population"],
    }
    value = {"name": "Oslo", "population": 709000}
    llm, scripted = make(provider, [structured_answer(provider, value, name="city")])

    reply = await llm.aask("Oslo?", response_format=schema, stream=False)

    assert reply.parsed == value
    expected = expected_request(provider, schema, "city")
    assert picked(scripted.body(0), expected) == expected


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_invalid_answer_raises_structured_output_error_with_the_raw_text(
    provider: str,
) -> None:
    wrong = {"name": "Mexico City"}  # no country
    llm, _ = make(provider, [structured_answer(provider, wrong)])

    with pytest.raises(StructuredOutputError) as info:
        await llm.aask("Largest city of Mexico?", response_format=City, stream=False)

    assert json.loads(info.value.raw) == wrong
    assert "country" in info.value.reason


@pytest.mark.parametrize("provider", ["openai", "gemini", "ollama"])
async def test_text_that_is_not_json_raises_with_the_text(provider: str) -> None:
    llm, _ = make(provider, [text_answer(provider, "Mexico City, of course")])

    with pytest.raises(StructuredOutputError) as info:
        await llm.aask("?", response_format="json", stream=False)

    assert info.value.raw == "Mexico City, of course"
    assert "not JSON" in info.value.reason


@pytest.mark.parametrize(
    "provider, expected",
    [
        ("openai", {"response_format": {"type": "json_object"}}),
        ("gemini", {"generationConfig": {"responseMimeType": "application/json"}}),
        ("ollama", {"format": "json"}),
    ],
)
async def test_json_mode_asks_for_any_json_and_decodes_it(
    provider: str, expected: dict[str, Any]
) -> None:
    llm, scripted = make(provider, [text_answer(provider, '{"ok": true}')])

    reply = await llm.aask("?", response_format="json", stream=False)

    assert reply.parsed == {"ok": True}
    assert picked(scripted.body(0), expected) == expected


def test_strict_schema_closes_objects_and_requires_every_property() -> None:
    nested = {
        "type": "object",
        "properties": {
            "city": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "required": ["name"],
            }
        },
        "required": ["city"],
    }
    strict = strict_schema(nested)
    assert strict is not None
    assert strict["additionalProperties"] is False
    assert strict["properties"]["city"]["additionalProperties"] is False
    assert "additionalProperties" not in nested  # the caller's schema is not changed


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "string"}}},  # a is optional
        {
            "type": "object",
            "properties": {"a": {}},
            "required": ["a"],
            "additionalProperties": True,
        },
    ],
)
def test_a_schema_strict_mode_would_change_is_sent_non_strict(schema: dict[str, Any]) -> None:
    assert strict_schema(schema) is None


async def test_openai_sends_an_optional_field_schema_non_strict_and_validates_locally() -> None:
    class Note(pydantic.BaseModel):
        text: str
        tag: str | None = None

    llm, scripted = make("openai", [text_answer("openai", '{"text": "hi"}')])

    reply = await llm.aask("?", response_format=Note, stream=False)

    sent = scripted.body(0)["response_format"]["json_schema"]
    assert sent["strict"] is False and sent["schema"] == Note.model_json_schema()
    assert reply.parsed == Note(text="hi")


async def test_compatible_vendors_get_non_strict_json_schema() -> None:
    llm, scripted = make("openai", [text_answer("openai", json.dumps(ANSWER))], api_type="open_llm")

    reply = await llm.aask("?", response_format=City, stream=False)

    assert scripted.body(0)["response_format"]["json_schema"]["strict"] is False
    assert reply.parsed == City(**ANSWER)


async def test_anthropic_refuses_response_format_with_extended_thinking() -> None:
    llm, scripted = make(
        "anthropic", [text_answer("anthropic", "{}")], reasoning=True, max_token=4096
    )

    with pytest.raises(ValueError, match="extended thinking"):
        await llm.aask("?", response_format=City, stream=False)
    assert scripted.requests == []


async def test_forced_tool_answer_streams_as_text_on_anthropic() -> None:
    events = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {"model": "m-test", "usage": {"input_tokens": 3, "output_tokens": 1}},
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_1", "name": "City", "input": {}},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"name": "Mexico City", '},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '"country": "Mexico"}'},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use"},
                "usage": {"output_tokens": 9},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    body = "".join(f"event: {n}\ndata: {json.dumps(d)}\n\n" for n, d in events)
    fields, _ = config("anthropic")

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, text=body)

    llm = create_llm_instance(LLMConfig(**fields), transport=httpx2.MockTransport(answer))

    reply = await llm.aask("?", response_format=City, stream=True)

    assert reply.parsed == City(**ANSWER)
    assert reply == '{"name": "Mexico City", "country": "Mexico"}'
    assert reply.tool_calls == []


async def test_an_answer_with_tool_calls_is_a_loop_step_and_is_not_parsed() -> None:
    llm, scripted = make(
        "openai", [call_answer("openai"), text_answer("openai", json.dumps(ANSWER))]
    )

    step = await llm.aask("?", tools=[WEATHER], response_format=City, stream=False)
    assert step.parsed is None and [c.name for c in step.tool_calls] == ["get_weather"]
    final = await llm.aask("?", tools=[WEATHER], response_format=City, stream=False)
    assert final.parsed == City(**ANSWER)
    assert scripted.body(0)["tools"] and scripted.body(0)["response_format"]


FORCED_CHOICE = {
    "anthropic": lambda body: body["tool_choice"],
    "bedrock-invoke": lambda body: body["tool_choice"],
    "bedrock": lambda body: body["toolConfig"]["toolChoice"],
}


@pytest.mark.parametrize(
    "provider, tool_choice, expected",
    [
        ("anthropic", None, {"type": "any"}),
        ("anthropic", "required", {"type": "any"}),
        ("anthropic", "none", {"type": "tool", "name": "City"}),
        ("anthropic", "get_weather", {"type": "tool", "name": "get_weather"}),
        ("bedrock-invoke", "auto", {"type": "any"}),
        ("bedrock", None, {"any": {}}),
        ("bedrock", "none", {"tool": {"name": "City"}}),
        ("bedrock", "get_weather", {"tool": {"name": "get_weather"}}),
    ],
)
async def test_with_tools_on_offer_the_forced_answer_lets_the_loop_call_them(
    provider: str, tool_choice: str | None, expected: dict[str, Any]
) -> None:
    llm, scripted = make(provider, [call_answer(provider), structured_answer(provider, ANSWER)])

    step = await llm.aask(
        "?", tools=[WEATHER], tool_choice=tool_choice, response_format=City, stream=False
    )
    final = await llm.aask("?", tools=[WEATHER], response_format=City, stream=False)

    assert FORCED_CHOICE[provider](scripted.body(0)) == expected
    assert step.parsed is None and [c.name for c in step.tool_calls] == ["get_weather"]
    assert final.parsed == City(**ANSWER) and final.tool_calls == []


def test_pydantic_schemas_with_refs_do_not_fit_geminis_subset() -> None:
    class Address(pydantic.BaseModel):
        city: str

    class Person(pydantic.BaseModel):
        name: str
        address: Address

    assert is_gemini_schema(CITY_SCHEMA)  # flat: title, type, properties, required
    assert not is_gemini_schema(Person.model_json_schema())  # $defs and $ref


async def test_gemini_sends_a_nested_pydantic_schema_as_json_schema() -> None:
    class Address(pydantic.BaseModel):
        city: str

    class Person(pydantic.BaseModel):
        name: str
        address: Address

    value = {"name": "Ana", "address": {"city": "Lima"}}
    llm, scripted = make("gemini", [text_answer("gemini", json.dumps(value))])

    reply = await llm.aask("?", response_format=Person, stream=False)

    config = scripted.body(0)["generationConfig"]
    assert config["responseJsonSchema"] == Person.model_json_schema()
    assert "responseSchema" not in config
    assert reply.parsed == Person.model_validate(value)
