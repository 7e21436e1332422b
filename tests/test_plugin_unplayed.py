"""Issue #13 item 6: ``--llm-unplayed-report FILE`` writes the report that ``harness cassettes
prune --unplayed FILE`` takes as is (merged across tests and pytest-xdist workers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.pytest_plugin.summary import TestRecord, decode_records, encode_records
from harness.pytest_plugin.unplayed import merge_unplayed
from harness.replay import load_interactions
from tests.replay.conftest import LLMServer
from tests.test_pytest_plugin import _quiet_inner_sessions, _stop, server

__all__ = ["_quiet_inner_sessions", "server"]  # fixtures shared with the plugin tests

pytest_plugins = ["pytester"]

TWO_CALLS = """
import os

import openai
import pytest

BASE = os.environ["HARNESS_TEST_BASE_URL"]
PROMPTS = os.environ.get("PROMPTS", "one,two").split(",")


def ask(prompt):
    client = openai.OpenAI(base_url=BASE + "/v1", api_key="sk-test-key", max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    return reply.choices[0].message.content


@pytest.mark.llm_cassette
def test_chat():
    for prompt in PROMPTS:
        assert ask(prompt) == "echo: " + prompt


@pytest.mark.llm_cassette("shared.yaml")
def test_shared_first():
    assert ask("one") == "echo: one"


@pytest.mark.llm_cassette("shared.yaml")
def test_shared_second():
    assert ask("two") == "echo: two"
"""


def _prompts(cassette: Path) -> list[str]:
    return [
        json.loads(x.request.body)["messages"][0]["content"] for x in load_interactions(cassette)
    ]


def test_the_report_of_a_run_prunes_what_it_left_unplayed(
    pytester: pytest.Pytester,
    server: LLMServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytester.makepyfile(test_chat=TWO_CALLS)
    pytester.runpytest("--llm-mode=record").assert_outcomes(passed=3)
    cassette = pytester.path / "cassettes" / "test_chat" / "test_chat.yaml"
    shared = pytester.path / "cassettes" / "shared.yaml"
    assert _prompts(cassette) == ["one", "two"]
    assert _prompts(shared) == ["one", "two"]
    _stop(server)

    monkeypatch.setenv("PROMPTS", "two")  # the test now plays 1 of its 2 interactions
    report = pytester.path / "out" / "unplayed.json"
    result = pytester.runpytest("--llm-unplayed-report", str(report))
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([f"*unplayed report: {report} (1 interaction(s)*"])
    entries = json.loads(report.read_text())
    # the shared cassette: each test left the other's interaction unplayed, together none
    assert {Path(e["cassette"]).name: len(e["unplayed"]) for e in entries} == {
        "shared.yaml": 0,
        "test_chat.yaml": 1,
    }

    assert main(["cassettes", "prune", "--unplayed", str(report)]) == 0
    assert _prompts(cassette) == ["two"]
    assert _prompts(shared) == ["one", "two"]
    pytester.runpytest("--llm-strict", "-k", "test_chat and not shared").assert_outcomes(passed=1)
    assert "dropping interactions[0]: POST" in capsys.readouterr().out


def test_workers_entries_travel_in_their_records_and_are_merged() -> None:
    first = {"index": 0, "method": "POST", "uri": "u0", "fingerprint": "f0"}
    second = {"index": 1, "method": "POST", "uri": "u1", "fingerprint": "f1"}
    worker_a = TestRecord(
        "t.py::a", unplayed_report={"cassette": "/c.yaml", "interactions": 2, "unplayed": [second]}
    )
    worker_b = TestRecord("t.py::b", unplayed_report={
        "cassette": "/c.yaml", "interactions": 2, "unplayed": [first, second]})  # fmt: skip
    received = decode_records(encode_records([worker_a])) + decode_records(
        encode_records([worker_b])
    )
    merged = merge_unplayed(r.unplayed_report for r in received if r.unplayed_report)
    assert merged == [{"cassette": "/c.yaml", "interactions": 2, "unplayed": [second]}]


def test_a_failed_test_leaves_nothing_to_prune() -> None:
    played = {"cassette": "/c.yaml", "interactions": 2, "unplayed": []}
    one = {"index": 1, "method": "POST", "uri": "u", "fingerprint": "f"}
    left = {"cassette": "/c.yaml", "interactions": 2, "unplayed": [one]}
    other = {"cassette": "/b.yaml", "interactions": 1, "unplayed": [one]}
    assert merge_unplayed([left, played]) == [played]
    assert merge_unplayed([left, left, other]) == [other, left]
