"""harness.Tool from every accepted shape, tool_choice and response_format normalisation, and
the tool-call message builders (issue #12)."""

from __future__ import annotations

from typing import Literal

import pydantic
import pytest

from harness import StructuredOutputError, Tool, ToolCall
from harness.messages import assistant_msg, format_msgs, tool_result
from harness.tools import normalize_tool_choice, response_format_of, tools_of

WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
    """Current weather in a city.

    Longer notes that are not part of the description.
    """
    return f"sunny in {city} ({unit})"


class Lookup(pydantic.BaseModel):
    """Look a word up in the dictionary."""

    word: str
    limit: int = 3


def test_tool_from_an_openai_function_dict_and_a_bare_one_are_equal() -> None:
    wrapped = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather",
            "parameters": WEATHER_PARAMETERS,
        },
    }
    bare = {"name": "get_weather", "description": "Weather", "parameters": WEATHER_PARAMETERS}
    assert Tool.of(wrapped) == Tool.of(bare) == Tool("get_weather", "Weather", WEATHER_PARAMETERS)
    assert Tool.of(wrapped).to_openai() == wrapped


def test_tool_from_a_function_reads_signature_annotations_and_docstring() -> None:
    tool = Tool.of(get_weather)
    assert tool.name == "get_weather"
    assert tool.description == "Current weather in a city."
    assert tool.parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"enum": ["c", "f"], "type": "string", "default": "c"},
        },
        "required": ["city"],
    }


def test_tool_from_a_pydantic_model_uses_its_fields_and_docstring() -> None:
    tool = Tool.of(Lookup)
    assert tool.name == "Lookup"
    assert tool.description == "Look a word up in the dictionary."
    assert tool.parameters["required"] == ["word"]
    assert tool.parameters["properties"]["limit"]["default"] == 3


def test_a_tool_without_parameters_takes_an_empty_object() -> None:
    assert Tool.of({"name": "now"}).parameters == {"type": "object", "properties": {}}


@pytest.mark.parametrize(
    "bad, error",
    [
        ({"type": "function", "function": {"description": "x"}}, ValueError),
        (42, TypeError),
        (lambda x: x, ValueError),
    ],
)
def test_unreadable_tools_are_refused_with_the_reason(bad: object, error: type) -> None:
    with pytest.raises(error):
        Tool.of(bad)  # type: ignore[arg-type]


def test_tools_of_refuses_duplicate_names_and_a_single_tool() -> None:
    with pytest.raises(ValueError, match="two tools are named 'get_weather'"):
        tools_of([get_weather, get_weather])
    with pytest.raises(TypeError, match="list of tools"):
        tools_of(Tool("x"))  # type: ignore[arg-type]


def test_tool_choice_accepts_the_modes_a_name_and_openais_dict() -> None:
    tools = [Tool.of(get_weather)]
    assert normalize_tool_choice(None, tools) is None
    for mode in ("auto", "none", "required"):
        assert normalize_tool_choice(mode, tools) == mode
    assert normalize_tool_choice("get_weather", tools) == "get_weather"
    as_dict = {"type": "function", "function": {"name": "get_weather"}}
    assert normalize_tool_choice(as_dict, tools) == "get_weather"
    with pytest.raises(ValueError, match="names no offered tool"):
        normalize_tool_choice("get_time", tools)
    with pytest.raises(ValueError, match="without tools"):
        normalize_tool_choice("required", [])


def test_assistant_msg_carries_tool_calls_in_openai_shape() -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    msg = assistant_msg(tool_calls=[call])
    assert msg == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    assert assistant_msg("hi") == {"role": "assistant", "content": "hi"}
    assert format_msgs([msg]) == [msg]
    with pytest.raises(ValueError):
        assistant_msg()


def test_tool_result_is_a_tool_message_and_sends_non_strings_as_json() -> None:
    assert tool_result("call_1", "sunny") == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "sunny",
    }
    assert tool_result("call_1", {"temp": 21})["content"] == '{"temp": 21}'


def test_response_format_parses_a_model_a_schema_and_json() -> None:
    model_format = response_format_of(Lookup)
    assert model_format is not None and model_format.name == "Lookup"
    assert model_format.parse('{"word": "tea"}') == Lookup(word="tea")
    schema_format = response_format_of(WEATHER_PARAMETERS)
    assert schema_format is not None
    assert schema_format.parse('{"city": "Oslo"}') == {"city": "Oslo"}
    with pytest.raises(ValueError, match="not valid against the schema"):
        schema_format.parse('{"town": "Oslo"}')
    json_format = response_format_of("json")
    assert json_format is not None and json_format.parse("[1, 2]") == [1, 2]
    with pytest.raises(ValueError, match="not JSON"):
        json_format.parse("[1, 2")
    with pytest.raises(TypeError):
        response_format_of("yaml")


def test_structured_output_error_carries_the_raw_text() -> None:
    error = StructuredOutputError("not JSON", raw="{oops", provider="openai", model="m")
    assert error.raw == "{oops" and error.reason == "not JSON"
    assert "{oops" in str(error)
