"""The tool calls a model made: recorded per attempt by the runner, written to results.json
(optional on read: files written before them still load, compare and merge), shown as text in
report.html, listed in summary.md for failed cases, and named by compare when they change."""

from __future__ import annotations

import copy
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx2
import pytest

from harness import FakeLLM, LLMConfig, ToolCall
from harness.evals import Case, Suite, graders
from harness.evals.compare import compare, load_results, merge, merge_files
from harness.evals.report import render_html, render_markdown, write_reports
from harness.evals.results import (
    Attempt,
    ItemResult,
    SuiteResult,
    tool_call_from_json,
    tool_call_json,
)
from harness.evals.runner import run_suite
from harness.providers.fake import ModelInfo, function_model, tool_call
from tests.evals.test_report import make_item
from tests.evals.test_tools_eval import WEATHER, _openai_answer

USAGE = {
    "prompt_tokens": 90,
    "completion_tokens": 8,
    "total_tokens": 98,
    "cached_tokens": 0,
    "cache_write_tokens": 0,
    "reasoning_tokens": 0,
    "estimated": False,
}
# A results.json as harness wrote it before tool calls were recorded (no "tool_calls" key).
OLD_RESULTS: dict[str, Any] = {
    "schema": "harness.evals/1",
    "created": "2026-12-01T22:40:00Z",
    "mode": "replay",
    "items": [
        {
            "suite": "tools",
            "case": "weather-call",
            "model": "local-smollm2",
            "id": "weather-call[local-smollm2]",
            "status": "known_failure",
            "new": False,
            "passed": False,
            "score": 0.0,
            "prompt": "What is the weather in Paris right now? Use the get_weather tool.",
            "reply": "I cannot check the weather.",
            "turns": ["I cannot check the weather."],
            "grades": [
                {
                    "name": "called_tool('get_weather')",
                    "passed": False,
                    "score": 0.0,
                    "reason": "get_weather was not called; no tool was called",
                }
            ],
            "usage": USAGE,
            "cost": "0",
            "latency": 0.12,
            "judge": None,
            "cassette": "cassettes/suites/tools/local-smollm2/weather-call.yaml",
            "error": None,
            "repeats": 1,
            "k": 1,
            "pass_rate": 0.0,
            "pass_at_k": 0.0,
            "pass_hat_k": 0.0,
            "score_mean": 0.0,
            "score_stdev": 0.0,
            "flaky": False,
            "attempts": [
                {
                    "reply": "I cannot check the weather.",
                    "turns": ["I cannot check the weather."],
                    "passed": False,
                    "score": 0.0,
                    "grades": [
                        {
                            "name": "called_tool('get_weather')",
                            "passed": False,
                            "score": 0.0,
                            "reason": "get_weather was not called; no tool was called",
                        }
                    ],
                    "usage": USAGE,
                    "cost": "0",
                    "latency": 0.12,
                    "error": None,
                    "judge": None,
                }
            ],
            "baseline": {"passed": False, "score": 0.0},
            "tags": [],
            "pass_threshold": 1.0,
            "system": None,
            "expected": None,
        }
    ],
    "totals": {},
}

SCRIPT_ARGUMENT = '<script>alert("x")</script>'


def fake_models() -> dict[str, LLMConfig]:
    return {"fake": LLMConfig(api_type="fake", model="fake-model", stream=False)}


# -- results.json ---------------------------------------------------------------------------------


def test_a_call_is_written_with_parsed_arguments_or_the_raw_text_and_reads_back_exactly() -> None:
    calls = [
        ToolCall("call_1", "get_weather", '{"city": "Paris", "days": [1, 2]}'),
        ToolCall(None, "get_weather", '{"city": "Rome"'),  # cut off: not JSON
        ToolCall("call_3", "echo", '"just a string"'),  # JSON, but a string: kept raw
        ToolCall("call_4", "noop", ""),
        ToolCall("call_5", "odd", "NaN"),  # Python's json reads it; strict JSON has no NaN
    ]
    written = [tool_call_json(call) for call in calls]
    assert written == [
        {"name": "get_weather", "arguments": {"city": "Paris", "days": [1, 2]}, "id": "call_1"},
        {"name": "get_weather", "arguments": '{"city": "Rome"', "id": None},
        {"name": "echo", "arguments": '"just a string"', "id": "call_3"},
        {"name": "noop", "arguments": "", "id": "call_4"},
        {"name": "odd", "arguments": "NaN", "id": "call_5"},
    ]
    text = json.dumps(written, allow_nan=False)  # strict JSON
    again = [tool_call_from_json(data) for data in json.loads(text)]
    assert again[1:] == calls[1:]  # raw text comes back as sent
    assert json.loads(again[0].arguments) == {"city": "Paris", "days": [1, 2]}
    assert (again[0].id, again[0].name) == ("call_1", "get_weather")


def test_each_attempt_holds_its_calls_and_the_item_the_last_attempts() -> None:
    paris = ToolCall("a", "get_weather", '{"city": "Paris"}')
    oslo = ToolCall("b", "get_weather", '{"city": "Oslo"}')
    book = ToolCall("c", "book_table", '{"people": 2}')
    result = ItemResult(
        suite="s",
        case="c",
        model="m",
        attempts=[
            Attempt(reply="one", passed=True, score=1.0, tool_calls=[paris, book]),
            Attempt(reply="two", passed=False, score=0.0),
            Attempt(reply="three", passed=False, score=0.0, tool_calls=[oslo]),
        ],
    )
    data = json.loads(json.dumps(result.to_json()))
    assert [[c["arguments"] for c in a["tool_calls"]] for a in data["attempts"]] == [
        [{"city": "Paris"}, {"people": 2}],
        [],
        [{"city": "Oslo"}],
    ]
    assert data["tool_calls"] == [{"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "b"}]
    again = ItemResult.from_json(data)
    assert [c.name for c in again.attempts[0].tool_calls] == ["get_weather", "book_table"]
    assert again.tool_calls == [oslo]
    assert again.to_json() == data


def test_a_results_file_written_before_tool_calls_still_loads() -> None:
    result = SuiteResult.from_json(copy.deepcopy(OLD_RESULTS))
    (item,) = result.items
    assert item.tool_calls == [] and item.attempts[0].tool_calls == []
    assert item.reply == "I cannot check the weather." and item.status == "known_failure"
    assert item.usage is not None and item.usage.prompt_tokens == 90
    assert result.to_json()["items"][0]["tool_calls"] == []
    # the reports render it: no tool-call section, nothing made up
    assert "Tool calls" not in render_html(OLD_RESULTS)
    assert "tool calls" not in render_markdown(OLD_RESULTS)


def test_bad_tool_calls_in_a_results_file_name_the_item() -> None:
    data = copy.deepcopy(OLD_RESULTS)
    data["items"][0]["attempts"][0]["tool_calls"] = [{"arguments": {}}]
    with pytest.raises(ValueError, match=r"weather-call\[local-smollm2\].*needs a name"):
        SuiteResult.from_json(data)
    data["items"][0]["attempts"][0]["tool_calls"] = "get_weather"
    with pytest.raises(ValueError, match=r"weather-call\[local-smollm2\].*must be a list"):
        SuiteResult.from_json(data)


def _new_results() -> dict[str, Any]:
    """OLD_RESULTS run again: the model now calls get_weather, and passes."""
    new = copy.deepcopy(OLD_RESULTS)
    item = new["items"][0]
    call = {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_1"}
    item.update(status="improvement", passed=True, score=1.0, tool_calls=[call])
    item["attempts"][0].update(passed=True, score=1.0, tool_calls=[call])
    return new


def test_compare_and_merge_take_old_and_new_files_mixed(tmp_path: Path) -> None:
    old_path, new_path = tmp_path / "old.json", tmp_path / "new.json"
    old_path.write_text(json.dumps(OLD_RESULTS))
    new = _new_results()
    new["items"][0]["model"] = "local-gemma"  # another shard: no overlap
    new_path.write_text(json.dumps(new))
    merged = merge_files([old_path, new_path])
    assert [i["model"] for i in merged["items"]] == ["local-gemma", "local-smollm2"]
    assert merged["totals"]["items"] == 2
    assert "tool_calls" not in merged["items"][1]  # the old item is left as it was
    assert SuiteResult.from_json(merged).items[0].tool_calls[0].name == "get_weather"
    assert "get_weather" in render_html(merged) and "local-gemma" in render_markdown(merged)
    # compare, both ways round
    result = compare(load_results(old_path), _new_results())
    assert [c.kind for c in result.changes] == ["improvement"]
    assert "tool calls" not in result.render()  # the old file says nothing about its calls
    assert [c.kind for c in compare(_new_results(), OLD_RESULTS).changes] == ["regression"]
    assert merge([OLD_RESULTS], ["old.json"])["items"] == OLD_RESULTS["items"]


def test_compare_names_a_change_of_the_tools_called() -> None:
    old = _new_results()
    new = copy.deepcopy(old)
    item = new["items"][0]
    item.update(status="regression", passed=False, score=0.0, tool_calls=[])
    item["attempts"][0].update(passed=False, score=0.0, tool_calls=[])
    rendered = compare(old, new).render()
    row = next(line for line in rendered.splitlines() if line.startswith("regression"))
    assert "tool calls: get_weather → none" in row
    assert "get_weather was not called" in row  # the reason comes first
    # the same calls with other arguments are not a change of the tools called
    same = copy.deepcopy(old)
    same["items"][0]["tool_calls"] = [{"name": "get_weather", "arguments": {"city": "Oslo"}}]
    same["items"][0]["score"] = 0.5
    assert "tool calls" not in compare(old, same).render()


# -- the runner ---------------------------------------------------------------------------------

CITIES = {"Paris": "18 C and sunny", "Oslo": "snow"}


def agent_for(arguments: str) -> FakeLLM:
    """A fake that calls get_weather with ``arguments`` (raw text), then repeats the result."""

    def answer(messages: list[dict[str, Any]], info: ModelInfo) -> Any:
        results = [m["content"] for m in messages if m["role"] == "tool"]
        if not results:
            return tool_call("get_weather", arguments)
        return f"result: {results[0]}"

    return function_model(answer)


async def test_a_run_writes_each_attempts_calls_to_results_json(tmp_path: Path) -> None:
    arguments = ['{"city": "Paris"}', '{"city": "Oslo"}', '{"city": "Par']  # the last: cut off
    made = iter(arguments)

    def make_llm(config: LLMConfig, transport: Any, costs: Any) -> FakeLLM:
        return agent_for(next(made))

    case = Case(
        id="weather",
        prompt="Weather in Paris?",
        tools=(WEATHER,),
        tool_results={"get_weather": {'{"city": "Paris"}': CITIES["Paris"], "*": CITIES["Oslo"]}},
        graders=[graders.called_tool("get_weather", {"city": "Paris"})],
    )
    suite = Suite("agent", (case,), models=("fake",), repeats=3)
    result = await run_suite(suite, fake_models(), cassette_dir=tmp_path, make_llm=make_llm)
    paths = write_reports(result.to_json(), tmp_path / "out")
    (item,) = json.loads(paths["json"].read_text(encoding="utf-8"))["items"]
    assert item["repeats"] == 3 and item["status"] == "flaky"
    # each attempt's reply tells which arguments its model sent (attempts run concurrently)
    by_reply: dict[str, Any] = {
        "result: 18 C and sunny": {"city": "Paris"},
        "result: snow": {"city": "Oslo"},
        "result: error: the arguments are not valid JSON (Unterminated string starting at)": (
            '{"city": "Par'
        ),
    }
    seen = []
    for attempt in item["attempts"]:
        (call,) = attempt["tool_calls"]
        assert call["name"] == "get_weather"
        assert call["id"] and call["id"].startswith("call_")
        assert call["arguments"] == by_reply[attempt["reply"]]
        seen.append(call["arguments"])
    assert sorted(map(str, seen)) == sorted(map(str, by_reply.values()))
    assert item["tool_calls"] == item["attempts"][-1]["tool_calls"]
    # the report shows every attempt's call; the summary lists the failed attempt's
    page = paths["html"].read_text(encoding="utf-8")
    assert page.count('<ol class="tool-calls">') == 4  # the last attempt's, then each attempt
    summary = paths["markdown"].read_text(encoding="utf-8")
    (line,) = [x for x in summary.splitlines() if "tool calls" in x]
    failed = [n for n, a in enumerate(item["attempts"], 1) if not a["passed"]]
    number = 3 if 3 in failed else failed[0]  # the one the reason explains
    explained = item["attempts"][number - 1]["tool_calls"][0]["arguments"]
    shown = explained if isinstance(explained, str) else json.dumps(explained)
    assert line == f"  - tool calls (attempt {number} of 3): get\\_weather({shown})"


async def test_a_recorded_then_replayed_run_keeps_the_calls_of_the_wire(tmp_path: Path) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=_openai_answer(json.loads(request.content)))

    case = Case(
        id="weather",
        prompt="Weather in Paris?",
        tools=(WEATHER,),
        tool_results={"get_weather": "18 C and sunny"},
        graders=[graders.called_tool("get_weather")],
    )
    suite = Suite("agent", (case,), models=("m",))
    models = {
        "m": LLMConfig(
            api_type="open_llm", model="m", base_url="http://127.0.0.1:9/v1", stream=False
        )
    }
    upstream = httpx2.MockTransport(handler)
    await run_suite(suite, models, mode="record", cassette_dir=tmp_path, upstream=upstream)
    replayed = (await run_suite(suite, models, cassette_dir=tmp_path)).to_json()
    expected = [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_abc"}]
    assert replayed["items"][0]["tool_calls"] == expected
    assert replayed["items"][0]["attempts"][0]["tool_calls"] == expected


async def test_an_answer_without_calls_records_none(tmp_path: Path) -> None:
    case = Case(id="plain", prompt="2 + 3?", graders=[graders.contains("5")])
    result = await run_suite(
        Suite("s", (case,), models=("fake",)),
        fake_models(),
        make_llm=lambda config, transport, costs: FakeLLM(["5"]),
        cassette_dir=tmp_path,
    )
    assert result.to_json()["items"][0]["tool_calls"] == []


# -- report.html and summary.md -----------------------------------------------------------------


def _calls_item(status: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
    item = make_item("tools", "weather-call", "local-smollm2", status, reply="Done.")
    item["tool_calls"] = calls
    item["attempts"][0]["tool_calls"] = calls
    return item


def _document(*items: dict[str, Any]) -> dict[str, Any]:
    return {"schema": "harness.evals/1", "mode": "replay", "items": list(items)}


class _Texts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_shows_each_calls_name_arguments_and_id_as_text() -> None:
    calls = [
        {"name": "run<b>", "arguments": {"code": SCRIPT_ARGUMENT}, "id": 'id"1'},
        {"name": "get_weather", "arguments": "{broken <img src=x onerror=alert(1)>", "id": None},
    ]
    page = render_html(_document(_calls_item("fail", calls)))
    parser = _Texts()
    parser.feed(page)
    assert parser.scripts == 1  # the report's own script only
    assert "<img" not in page and "<b>" not in page and SCRIPT_ARGUMENT not in page
    assert "&lt;script&gt;alert(\\&quot;x\\&quot;)&lt;/script&gt;" in page
    text = "".join(parser.text)
    assert "Tool calls (2)" in text
    assert 'run<b> id id"1' in text  # name and id, shown as text
    assert '"code": "<script>alert(\\"x\\")</script>"' in text  # pretty JSON, as text
    assert "get_weather arguments are not valid JSON{broken <img src=x onerror=alert(1)>" in text
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_summary_lists_the_calls_of_a_failed_case_only() -> None:
    calls = [
        {"name": "get_weather", "arguments": {"city": "Lyon"}, "id": "c1"},
        {"name": "book_table", "arguments": "{oops|", "id": "c2"},
    ]
    passing = _calls_item("pass", calls)
    passing["case"] = "passing"
    text = render_markdown(_document(_calls_item("fail", calls), passing))
    lines = text.splitlines()
    failed = lines.index(next(x for x in lines if x.startswith("- **tools::weather-call")))
    assert lines[failed + 1] == (
        '  - tool calls: get\\_weather({"city": "Lyon"}), book\\_table({oops\\|)'
    )
    assert sum("tool calls" in line for line in lines) == 1  # not for the passing case
    # a failed case that called nothing gets no line
    assert "tool calls" not in render_markdown(_document(_calls_item("fail", [])))


async def test_an_attempt_that_fails_mid_loop_keeps_the_calls_made_before(tmp_path: Path) -> None:
    def answer(messages: list[dict[str, Any]], info: ModelInfo) -> Any:
        return tool_call("get_weather", '{"city": "Paris"}')

    case = Case(
        id="weather",
        prompt="Weather in Paris?",
        tools=(WEATHER,),
        tool_results={"get_weather": CITIES["Paris"]},
        graders=[graders.called_tool("get_weather")],
    )
    result = await run_suite(
        Suite("agent", (case,), models=("fake",)),
        fake_models(),
        make_llm=lambda config, transport, costs: function_model(answer, errors={2: "bad_request"}),
        cassette_dir=tmp_path,
    )
    (item,) = result.to_json()["items"]
    (attempt,) = item["attempts"]
    assert attempt["error"] and "BadRequest" in attempt["error"]  # the second step failed
    assert attempt["tool_calls"] == [
        {
            "name": "get_weather",
            "arguments": {"city": "Paris"},
            "id": attempt["tool_calls"][0]["id"],
        }
    ]
