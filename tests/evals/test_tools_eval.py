"""Cases with tools: the loading of tools/tool_results/max_steps, the agent loop with scripted
tool results (on FakeLLM, and recorded then replayed over OpenAI's wire format), and the
called_tool / tool_sequence graders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest

from harness import FakeLLM, LLMConfig, Tool, ToolCall
from harness.evals import Case, GradeContext, Suite, SuiteFormatError, graders
from harness.evals.graders import GRADERS, run_grader
from harness.evals.runner import run_suite
from harness.providers.base import ChatResponse
from harness.providers.fake import ModelInfo, function_model, tool_call

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
BOOK = {
    "name": "book_table",
    "description": "Book a restaurant table.",
    "parameters": {
        "type": "object",
        "properties": {"restaurant": {"type": "string"}, "people": {"type": "integer"}},
        "required": ["restaurant", "people"],
    },
}
RESULTS = {
    "get_weather": {'{"city": "Paris"}': "18 C and sunny", "*": "unknown city"},
    "book_table": "booked",
}

SUITE_YAML = """
suite: agent
models: [fake]
cases:
  - id: weather
    prompt: Is it sunny in Paris? Then book Chez Nous for 2.
    tools:
      - type: function
        function:
          name: get_weather
          description: The current weather in a city.
          parameters: {type: object, properties: {city: {type: string}}, required: [city]}
      - name: book_table
        parameters:
          type: object
          properties: {restaurant: {type: string}, people: {type: integer}}
    tool_results:
      get_weather: {'{"city": "Paris"}': 18 C and sunny, '*': unknown city}
      book_table: booked
    max_steps: 4
    expect:
      - called_tool: {name: get_weather, args: {city: Paris}}
      - tool_sequence: [get_weather, book_table]
      - contains: sunny
"""


def ctx_with_calls(*calls: ToolCall) -> GradeContext:
    response = ChatResponse(text="done", tool_calls=list(calls))
    return GradeContext(reply="done", case=Case(id="c", prompt="x"), model="m", response=response)


def call(name: str, **arguments: Any) -> ToolCall:
    return ToolCall(f"id-{name}", name, json.dumps(arguments))


def fake_models() -> dict[str, LLMConfig]:
    return {"fake": LLMConfig(api_type="fake", model="fake-model", stream=False)}


def agent(messages: list[dict[str, Any]], info: ModelInfo) -> Any:
    """A scripted agent: weather first, then the booking if sunny, then a summary."""
    results = [m["content"] for m in messages if m["role"] == "tool"]
    if not results:
        return tool_call("get_weather", {"city": "Paris"})
    if len(results) == 1:
        return [
            "Sunny, booking. ",
            tool_call("book_table", {"restaurant": "Chez Nous", "people": 2}),
        ]
    return f"It is {results[0]}; your table is {results[1]}."


# -- loading ------------------------------------------------------------------------------------


def test_a_suite_file_case_loads_its_tools_results_and_max_steps(tmp_path: Path) -> None:
    path = tmp_path / "agent.suite.yaml"
    path.write_text(SUITE_YAML)
    (case,) = Suite.from_file(path).cases
    assert [t.name for t in case.tools] == ["get_weather", "book_table"]
    assert isinstance(case.tools[0], Tool) and case.tools[0].parameters["required"] == ["city"]
    assert case.tool_results["book_table"] == "booked"
    assert case.max_steps == 4
    assert [g.name for g in case.graders] == [  # type: ignore[attr-defined]
        "called_tool('get_weather', args={'city': 'Paris'})",
        "tool_sequence(['get_weather', 'book_table'])",
        "contains('sunny')",
    ]


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [
        (
            {"tool_results": {"get_wether": "x", "book_table": "y"}},
            "tool_results.get_wether",
            "did you mean 'get_weather'",
        ),
        (
            {"tool_results": {"get_weather": "x"}},
            "tool_results",
            "no scripted result for book_table",
        ),
        (
            {"tool_results": {"get_weather": {"Paris": "x"}, "book_table": "y"}},
            "tool_results.get_weather['Paris']",
            "not a JSON object",
        ),
        ({"max_steps": 0}, "max_steps", "integer >= 1"),
        ({"tool_choice": "book"}, "tool_choice", "names no offered tool"),
        ({"tools": [{"description": "no name"}]}, "tools", "needs function.name"),
        ({"prompt": ["a", "b"]}, "prompt", "not a list of turns"),
    ],
)
def test_bad_tool_fields_name_the_file_and_key(
    tmp_path: Path, change: dict[str, Any], key: str, message: str
) -> None:
    case: dict[str, Any] = {
        "id": "c",
        "prompt": "x",
        "tools": [WEATHER, BOOK],
        "tool_results": RESULTS,
        **change,
    }
    path = tmp_path / "bad.suite.yaml"
    path.write_text(json.dumps({"suite": "s", "cases": [case]}))
    with pytest.raises(SuiteFormatError) as caught:
        Suite.from_file(path)
    assert caught.value.source == str(path)
    assert caught.value.key == f"cases[0].{key}"
    assert message in str(caught.value)


def test_tool_results_without_tools_are_refused() -> None:
    with pytest.raises(SuiteFormatError, match="need 'tools'"):
        Case(id="c", prompt="x", tool_results={"a": "b"})


# -- graders -------------------------------------------------------------------------------------


async def test_called_tool_matches_the_name_and_an_arguments_subset() -> None:
    calls = ctx_with_calls(call("get_weather", city="Paris", unit="c"), call("book_table"))
    assert (await run_grader(graders.called_tool("get_weather"), calls)).passed
    subset = await run_grader(graders.called_tool("get_weather", {"city": "Paris"}), calls)
    assert subset.passed and "get_weather(" in subset.reason
    wrong = await run_grader(graders.called_tool("get_weather", {"city": "Oslo"}), calls)
    assert not wrong.passed and "with {'city': 'Oslo'} was not called" in wrong.reason
    missing = await run_grader(graders.called_tool("send_mail"), ctx_with_calls())
    assert not missing.passed and missing.reason == "send_mail was not called; no tool was called"
    with pytest.raises(ValueError, match="tool name"):
        graders.called_tool("")


async def test_tool_sequence_in_order_with_gaps_or_exactly() -> None:
    calls = ctx_with_calls(call("search"), call("get_weather", city="Paris"), call("book_table"))
    in_order = graders.tool_sequence(["search", "book_table"])
    assert (await run_grader(in_order, calls)).passed
    reversed_ = await run_grader(graders.tool_sequence(["book_table", "search"]), calls)
    assert not reversed_.passed and reversed_.score == 0.5
    assert "1/2 steps of book_table -> search" in reversed_.reason
    exact = graders.tool_sequence(["search", "book_table"], exact=True)
    assert not (await run_grader(exact, calls)).passed
    all_three = ["search", {"get_weather": {"city": "Paris"}}, "book_table"]
    assert (await run_grader(graders.tool_sequence(all_three, exact=True), calls)).passed
    wrong_args = ["search", {"get_weather": {"city": "Rome"}}]
    assert not (await run_grader(graders.tool_sequence(wrong_args), calls)).passed
    with pytest.raises(ValueError, match="non-empty list"):
        graders.tool_sequence("search")


def test_the_tool_graders_are_in_the_suite_file_registry() -> None:
    assert GRADERS["called_tool"] is graders.called_tool
    assert GRADERS["tool_sequence"] is graders.tool_sequence


# -- the loop ------------------------------------------------------------------------------------


async def test_the_loop_answers_calls_with_scripted_results_and_grades_every_call(
    tmp_path: Path,
) -> None:
    path = tmp_path / "agent.suite.yaml"
    path.write_text(SUITE_YAML)
    suite = Suite.from_file(path)
    fakes: list[FakeLLM] = []

    def make_llm(config: LLMConfig, transport: Any, costs: Any) -> FakeLLM:
        fakes.append(function_model(agent, cost_manager=costs))
        return fakes[-1]

    result = await run_suite(suite, fake_models(), cassette_dir=tmp_path, make_llm=make_llm)
    (item,) = result.items
    assert item.passed, [g.reason for g in item.attempts[0].grades]
    assert item.attempts[0].reply == "It is 18 C and sunny; your table is booked."
    (fake,) = fakes
    assert fake.tool_calls.names == ["get_weather", "book_table"]
    assert fake.tool_calls.offered == [("get_weather", "book_table")] * 3
    last = fake.last_call.messages
    assert [m["role"] for m in last[-5:]] == ["user", "assistant", "tool", "assistant", "tool"]
    assert last[-3]["tool_call_id"] == "call_1_0" and last[-3]["content"] == "18 C and sunny"
    assert last[-2]["content"] == "Sunny, booking. "
    assert item.usage is not None and item.usage.prompt_tokens > 0  # three requests billed


async def test_max_steps_stops_a_model_that_keeps_calling(tmp_path: Path) -> None:
    seen: list[GradeContext] = []

    def spy(ctx: GradeContext) -> bool:
        seen.append(ctx)
        return True

    case = Case(
        id="loop",
        prompt="x",
        tools=(WEATHER,),
        tool_results={"get_weather": {"*": "rain"}},
        max_steps=3,
        graders=[spy],
    )
    fake = FakeLLM(lambda messages: tool_call("get_weather", {"city": "Oslo"}))
    result = await run_suite(
        Suite("s", (case,), models=("fake",)),
        fake_models(),
        cassette_dir=tmp_path,
        make_llm=lambda config, transport, costs: fake,
    )
    assert result.items[0].passed
    assert fake.call_count == 3
    assert [c.name for c in seen[0].tool_calls] == ["get_weather"] * 3
    assert seen[0].reply == ""


def test_scripted_results_match_arguments_and_say_what_went_wrong() -> None:
    from harness.evals._tool_loop import scripted_result

    case = Case(
        id="c",
        prompt="x",
        tools=(WEATHER, BOOK),
        tool_results={
            "get_weather": {'{"city": "Paris"}': {"celsius": 18}, '{"city": "Oslo"}': "snow"},
            "book_table": lambda args: f"booked for {args['people']}",
        },
    )
    assert scripted_result(case, call("get_weather", city="Paris", unit="c")) == '{"celsius": 18}'
    assert scripted_result(case, call("get_weather", city="Oslo")) == "snow"
    assert scripted_result(case, call("get_weather", city="Rome")) == (
        'error: no result for get_weather with arguments {"city": "Rome"}'
    )
    assert scripted_result(case, call("book_table", people=3)) == "booked for 3"
    assert scripted_result(case, ToolCall("x", "book_table", "{oops")).startswith(
        "error: the arguments are not valid JSON"
    )
    assert scripted_result(case, call("send_mail")) == (
        "error: there is no tool named 'send_mail'; tools: get_weather, book_table"
    )


# -- recorded over the wire, replayed from the cassette -------------------------------------------


def _openai_answer(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-compatible server that calls get_weather once, then answers."""
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather"]
    tool_messages = [m for m in body["messages"] if m["role"] == "tool"]
    if tool_messages:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": f"It is {tool_messages[0]['content']}.",
        }
        finish = "stop"
    else:
        arguments = json.dumps({"city": "Paris"})
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": arguments},
                }
            ],
        }
        finish = "tool_calls"
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
    }


async def test_the_loop_records_then_replays_over_the_openai_wire_format(tmp_path: Path) -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        bodies.append(json.loads(request.content))
        return httpx2.Response(200, json=_openai_answer(bodies[-1]))

    case = Case(
        id="weather",
        prompt="Weather in Paris?",
        tools=(WEATHER,),
        tool_results={"get_weather": RESULTS["get_weather"]},
        graders=[graders.called_tool("get_weather", {"city": "Paris"}), graders.contains("sunny")],
    )
    suite = Suite("agent", (case,), models=("m",))
    models = {
        "m": LLMConfig(
            api_type="open_llm", model="m", base_url="http://127.0.0.1:9/v1", stream=False
        )
    }
    recorded = await run_suite(
        suite, models, mode="record", cassette_dir=tmp_path, upstream=httpx2.MockTransport(handler)
    )
    assert recorded.items[0].passed, [g.reason for g in recorded.items[0].attempts[0].grades]
    assert len(bodies) == 2
    sent = bodies[1]["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == "call_abc"
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_abc", "content": "18 C and sunny"}
    replayed = await run_suite(suite, models, cassette_dir=tmp_path)
    (item,) = replayed.items
    assert item.passed and item.attempts[0].reply == "It is 18 C and sunny."
    assert len(bodies) == 2  # nothing left the machine
