"""Eval suites under pytest (``pytester``): collection, replay, baseline outcomes, xdist, shards.

Inner sessions record against a loopback OpenAI-compatible server started here (it answers
``echo: <the last user message>``), then replay with the server stopped.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import hypothesis  # noqa: F401  imported once here: inline runs would import it again each time
import pytest

from harness.evals.runner import parse_shard, shard_of
from harness.pytest_plugin.suites import xdist_scope
from tests.replay.conftest import LLMServer, _Handler

pytest_plugins = ["pytester"]

INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"

MODELS = """
models:
  echo:
    api_type: open_llm
    base_url: ${HARNESS_TEST_BASE_URL:-http://127.0.0.1:9}/v1
    model: echo-1
    stream: false
    price: {input: 1, output: 2}
  echo-b:
    api_type: open_llm
    base_url: ${HARNESS_TEST_BASE_URL:-http://127.0.0.1:9}/v1
    model: echo-2
    stream: false
    price: {input: 1, output: 2}
"""

# The echo server repeats the prompt: "france" and "italy" pass, "lyon" never does.
SUITE = """
suite: qa
models: [echo, echo-b]
cases:
  - id: france
    prompt: What is the capital of France?
    expect: [{contains: France}]
    tags: [europe]
  - id: lyon
    prompt: Name a city.
    expect: [{contains: Lyon}]
  - id: italy
    prompt: What is the capital of Italy?
    expect: [{contains: Italy}]
"""


class _CountingHandler(_Handler):
    """The echo server, counting requests in flight; ``barrier`` makes requests wait in pairs."""

    barrier: threading.Barrier | None = None
    lock = threading.Lock()
    in_flight = 0
    most = 0

    def do_POST(self) -> None:
        cls = type(self)
        with cls.lock:
            cls.in_flight += 1
            cls.most = max(cls.most, cls.in_flight)
        try:
            if cls.barrier is not None:
                cls.barrier.wait()
            super().do_POST()
        finally:
            with cls.lock:
                cls.in_flight -= 1


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMServer]:
    """The echo server on 127.0.0.1; its URL in HARNESS_TEST_BASE_URL (kept after a stop)."""
    state = LLMServer()
    handler: Any = type("H", (_CountingHandler,), {"server_state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    state.handler = handler  # type: ignore[attr-defined]
    monkeypatch.setenv("HARNESS_TEST_BASE_URL", state.base_url)
    try:
        yield state
    finally:
        state.stopped.set()
        if handler.barrier is not None:
            handler.barrier.abort()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with ``qa.suite.yaml`` and ``models.yaml`` beside it."""
    pytester.makeini(INI)
    pytester.makefile(".yaml", models=MODELS)
    (pytester.path / "qa.suite.yaml").write_text(SUITE, encoding="utf-8")
    return pytester


CASES = ("france", "lyon", "italy")


def _posts(server: LLMServer) -> list[str]:
    return [path for method, path, _ in server.requests if method == "POST"]


def _collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line]


def _baseline(path: Path, entries: dict[str, bool]) -> None:
    data = {
        "schema": "harness.baseline/1",
        "entries": {k: {"passed": v, "score": 1.0 if v else 0.0} for k, v in entries.items()},
    }
    path.write_text(json.dumps(data), encoding="utf-8")


# -- collection ----------------------------------------------------------------------------------


def test_each_case_and_model_is_one_item_and_k_selects_them(project: pytest.Pytester) -> None:
    result = project.runpytest("--collect-only", "-q")
    assert _collected(result) == [
        "qa.suite.yaml::france[echo]",
        "qa.suite.yaml::france[echo-b]",
        "qa.suite.yaml::lyon[echo]",
        "qa.suite.yaml::lyon[echo-b]",
        "qa.suite.yaml::italy[echo]",
        "qa.suite.yaml::italy[echo-b]",
    ]
    chosen = project.runpytest("--collect-only", "-q", "-k", "france and not echo-b")
    assert _collected(chosen) == ["qa.suite.yaml::france[echo]"]
    tagged = project.runpytest("--collect-only", "-q", "-k", "europe")  # case tags
    assert _collected(tagged) == ["qa.suite.yaml::france[echo]", "qa.suite.yaml::france[echo-b]"]
    models = project.runpytest("--collect-only", "-q", "--llm-models", "echo-b", "-k", "italy")
    assert _collected(models) == ["qa.suite.yaml::italy[echo-b]"]
    (project.path / "alt").mkdir()
    (project.path / "alt/models.yaml").write_text(MODELS.replace("echo-b:", "solo:"))
    other = project.runpytest(
        "--collect-only", "-q", "--llm-config", "alt/models.yaml", "--llm-models", "solo"
    )
    assert _collected(other) == [f"qa.suite.yaml::{case}[solo]" for case in CASES]


def test_a_bad_suite_file_is_one_collection_error_naming_the_file_and_key(
    project: pytest.Pytester,
) -> None:
    (project.path / "bad.suite.yaml").write_text(
        "suite: bad\nmodels: [echo]\ncases:\n  - id: a\n    prompt: hi\n"
        "    expect: [{contians: x}]\n",
        encoding="utf-8",
    )
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR collecting bad.suite.yaml*", "*bad.suite.yaml, key 'cases?0?.expect?0?'*contians*"]
    )
    assert "Traceback" not in result.stdout.str()


def test_a_model_missing_from_the_config_is_a_collection_error(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest("--llm-models", "nope")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*qa.suite.yaml*'nope'*not in */models.yaml (from *)*echo, echo-b*"]
    )


def test_module_level_suite_objects_are_collected_and_run(
    project: pytest.Pytester, server: LLMServer
) -> None:
    (project.path / "qa.suite.yaml").unlink()
    project.makepyfile(
        test_evals="""
        from harness.evals import Case, Suite
        from harness.evals.graders import contains

        SMALL = Suite(
            "small",
            cases=(Case("hello", prompt="say hello", graders=(contains("hello"),)),),
            models=("echo",),
        )
        """
    )
    collected = project.runpytest("--collect-only", "-q")
    assert _collected(collected) == ["test_evals.py::SMALL::hello[echo]"]
    project.runpytest("--llm-mode=record").assert_outcomes(passed=1)
    assert (project.path / "cassettes/suites/small/echo/hello.yaml").is_file()


def test_a_suite_that_cannot_run_fails_its_items_only_with_the_reason(
    project: pytest.Pytester, server: LLMServer
) -> None:
    (project.path / "judged.suite.yaml").write_text(
        "suite: judged\nmodels: [echo]\ncases:\n  - id: a\n    prompt: hi\n"
        "    expect: [{llm_judge: Is it polite}]\n",
        encoding="utf-8",
    )  # no "judge" model in models.yaml: this suite cannot run, the other one can
    result = project.runpytest("--llm-mode=record")
    result.assert_outcomes(failed=1, passed=4, xfailed=2)
    result.stdout.fnmatch_lines(["judged::a?echo?: *judge*"])
    assert "Traceback" not in result.stdout.str()


# -- record, replay, outcomes --------------------------------------------------------------------


def test_recorded_then_replayed_offline_with_a_summary(
    project: pytest.Pytester, server: LLMServer
) -> None:
    recorded = project.runpytest("--llm-mode=record")
    recorded.assert_outcomes(passed=4, xfailed=2)
    assert len(_posts(server)) == 6  # one call per (case, model)
    assert (project.path / "cassettes/suites/qa/echo-b/lyon.yaml").is_file()

    server.stopped.set()
    replayed = project.runpytest("-rx", "--llm-budget", "0.00005")
    replayed.assert_outcomes(passed=4, xfailed=2)
    assert replayed.ret == pytest.ExitCode.TESTS_FAILED  # 6 calls x (3 x $1 + 4 x $2) / 1M tokens
    replayed.stdout.fnmatch_lines(["*--llm-budget exceeded: LLM calls cost $0.000066*"])
    assert len(_posts(server)) == 6  # nothing new reached the server
    replayed.stdout.fnmatch_lines(
        [
            "*harness evals (--llm-mode=replay)*",
            "*qa*echo *2/3*",
            "*qa*echo-b*2/3*",
            "0 regressions, 0 improvements, 2 known failures vs baseline",
            "XFAIL qa.suite.yaml::lyon?echo? - known failure (new: no baseline entry)*Lyon*",
        ]
    )


def test_k_limits_the_model_calls_to_the_selected_items(
    project: pytest.Pytester, server: LLMServer
) -> None:
    project.runpytest("--llm-mode=record", "-k", "italy and echo-b").assert_outcomes(passed=1)
    assert len(_posts(server)) == 1


def test_a_changed_prompt_fails_with_the_command_that_records_it_again(
    project: pytest.Pytester, server: LLMServer
) -> None:
    project.runpytest("--llm-mode=record").assert_outcomes(passed=4, xfailed=2)
    server.stopped.set()
    suite = project.path / "qa.suite.yaml"
    suite.write_text(SUITE.replace("capital of Italy", "capital city of Italy"), encoding="utf-8")
    result = project.runpytest()
    result.assert_outcomes(passed=2, failed=2, xfailed=2)
    result.stdout.fnmatch_lines(
        [
            "italy?echo?: the case changed since it was recorded "
            "(cassettes/suites/qa/echo/italy.yaml); re-record it with: "
            "pytest qa.suite.yaml --llm-mode=record -k 'italy?echo?'",
            '*-*"content": "What is the capital of Italy?"*',
            '*+*"content": "What is the capital city of Italy?"*',
        ]
    )
    assert len(_posts(server)) == 6


def test_baseline_decides_regressions_known_failures_and_improvements(
    project: pytest.Pytester, server: LLMServer
) -> None:
    _baseline(
        project.path / "baseline.json",
        {
            "qa::lyon[echo]": True,  # passed before, fails now: a regression
            "qa::lyon[echo-b]": False,  # failed before and now: known
            "qa::france[echo]": False,  # failed before, passes now: an improvement
            "qa::italy[echo]": True,
        },
    )
    result = project.runpytest("--llm-mode=record", "-rx")
    result.assert_outcomes(passed=4, failed=1, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "regression: qa::lyon?echo? passed in the baseline (baseline.json: passed=True, "
            "score=1.0) and fails now (score=0.0*",
            "*contains*Lyon*",
            "*reply: 'echo: Name a city.'*",
            "improvements (1):",
            "*qa::france?echo?",
            "1 regressions, 1 improvements, 1 known failures vs baseline",
            "XFAIL qa.suite.yaml::lyon?echo-b? - known failure: *",
        ]
    )


def test_update_baseline_rewrites_it_from_the_run(
    project: pytest.Pytester, server: LLMServer
) -> None:
    baseline = project.path / "baseline.json"
    _baseline(baseline, {"qa::lyon[echo]": True, "other::kept[echo]": True})
    updated = project.runpytest("--llm-mode=record", "--llm-update-baseline")
    updated.assert_outcomes(passed=4, failed=1, xfailed=1)  # reported against the old one
    updated.stdout.fnmatch_lines(["*baseline updated: baseline.json (6 entries)*"])
    entries = json.loads(baseline.read_text())["entries"]
    assert entries["qa::lyon[echo]"] == {"passed": False, "score": 0.0}
    assert entries["qa::france[echo-b]"] == {"passed": True, "score": 1.0}
    assert entries["other::kept[echo]"] == {"passed": True, "score": 1.0}  # not run: kept
    assert len(entries) == 7
    project.runpytest().assert_outcomes(passed=4, xfailed=2)


def test_llm_baseline_ini_moves_the_baseline(project: pytest.Pytester, server: LLMServer) -> None:
    project.makeini(INI + "llm_baseline = evals/accepted.json\n")
    project.runpytest("--llm-mode=record", "--llm-update-baseline").assert_outcomes(
        passed=4, xfailed=2
    )
    assert len(json.loads((project.path / "evals/accepted.json").read_text())["entries"]) == 6
    assert not (project.path / "baseline.json").exists()


def test_report_dir_gets_results_summary_and_html(
    project: pytest.Pytester, server: LLMServer
) -> None:
    project.runpytest("--llm-mode=record", "--llm-report", "out").assert_outcomes(
        passed=4, xfailed=2
    )
    out = project.path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "results.json", "summary.md"]
    data = json.loads((out / "results.json").read_text())
    assert data["schema"] == "harness.evals/1"
    assert data["mode"] == "record"
    statuses = {i["id"]: i["status"] for i in data["items"]}
    assert statuses == {
        "france[echo]": "pass",
        "france[echo-b]": "pass",
        "italy[echo]": "pass",
        "italy[echo-b]": "pass",
        "lyon[echo]": "known_failure",
        "lyon[echo-b]": "known_failure",
    }
    assert data["totals"]["known_failures"] == 2
    assert all(i["cassette"].startswith("cassettes/suites/qa/") for i in data["items"])
    assert "lyon" in (out / "report.html").read_text()


def test_junitxml_and_x_work_on_suite_items(project: pytest.Pytester, server: LLMServer) -> None:
    _baseline(project.path / "baseline.json", {"qa::lyon[echo]": True})
    result = project.runpytest("--llm-mode=record", "-x", "--junitxml=junit.xml")
    result.assert_outcomes(passed=2, failed=1)  # france x 2, then the regression stops it
    xml = (project.path / "junit.xml").read_text()
    assert 'name="lyon[echo]"' in xml and "regression: qa::lyon[echo]" in xml
    assert '<property name="llm_status" value="regression"' in xml


def test_model_calls_run_ahead_concurrently_up_to_the_limit(
    project: pytest.Pytester, server: LLMServer
) -> None:
    handler = server.handler  # type: ignore[attr-defined]
    handler.barrier = threading.Barrier(2, timeout=10)  # each call waits for a second one
    result = project.runpytest("--llm-mode=record", "--llm-concurrency", "2")
    result.assert_outcomes(passed=4, xfailed=2)
    assert handler.most == 2  # two at a time: never one alone, never three


def test_flaky_cases_pass_or_xfail_by_their_pass_rate_and_are_listed(
    project: pytest.Pytester, server: LLMServer
) -> None:
    (project.path / "qa.suite.yaml").unlink()
    project.makepyfile(
        test_flaky="""
        from harness.evals import Case, Suite

        def every_other():
            graded = []

            def grade(reply):  # the first attempt graded passes, the second fails
                graded.append(reply)
                return len(graded) % 2 == 1

            return grade

        WOBBLY = Suite("wobbly", (Case("coin", prompt="flip", graders=(every_other(),)),),
                       models=("echo",), repeats=2)
        LENIENT = Suite("lenient", (Case("coin", prompt="flip", graders=(every_other(),)),),
                        models=("echo",), repeats=2, pass_threshold=0.5)
        """
    )
    result = project.runpytest("--llm-mode=record", "-rx")
    result.assert_outcomes(passed=1, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "flaky (2):",
            "*lenient::coin?echo?*",
            "*wobbly::coin?echo?*",
            "XFAIL test_flaky.py::WOBBLY::coin?echo? - flaky, under the pass threshold*",
        ]
    )
    assert len(_posts(server)) == 4  # 2 suites x 2 repeats, each repeat its own call


# -- shards --------------------------------------------------------------------------------------


def test_shards_split_the_items_stably_and_disjointly(project: pytest.Pytester) -> None:
    every = _collected(project.runpytest("--collect-only", "-q"))
    first = _collected(project.runpytest("--collect-only", "-q", "--llm-shard", "1/2"))
    second = _collected(project.runpytest("--collect-only", "-q", "--llm-shard=2/2"))
    assert first and second
    assert sorted(first + second) == sorted(every)
    assert set(first).isdisjoint(second)
    assert [n for n in every if shard_of(n, 2) == 1] == first  # by node id, not by order


@pytest.mark.parametrize("value", ["0/2", "3/2", "1/0", "x", "1-2"])
def test_a_bad_shard_is_a_usage_error(project: pytest.Pytester, value: str) -> None:
    result = project.runpytest(f"--llm-shard={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--llm-shard '{value}': expected K/N*"])


def test_parse_shard_and_shard_of() -> None:
    assert parse_shard("3/4") == (3, 4)
    assert {shard_of(f"s.suite.yaml::c{i}[m]", 3) for i in range(50)} == {1, 2, 3}
    assert shard_of("suites/qa.suite.yaml::capital-of-france[local-smollm2]", 4) == shard_of(
        "suites/qa.suite.yaml::capital-of-france[local-smollm2]", 4
    )


# -- xdist ---------------------------------------------------------------------------------------


def test_xdist_scope_keeps_a_suite_and_model_together() -> None:
    patterns = ["*.suite.yaml"]
    assert xdist_scope("s/qa.suite.yaml::france[m-1]", patterns) == "s/qa.suite.yaml::[m-1]"
    assert xdist_scope("t.py::SUITE::france[m]", patterns) == "t.py::SUITE::[m]"
    assert xdist_scope("t.py::test_a[1]", patterns) == "t.py::test_a[1]"  # plain tests alone
    assert xdist_scope("t.py::test_a", patterns) == "t.py::test_a"


def test_suite_items_carry_an_xdist_group_that_loadgroup_reads(project: pytest.Pytester) -> None:
    from xdist.scheduler import LoadGroupScheduling

    items, _ = project.inline_genitems("-p", "xdist")
    groups = {item.nodeid: item.get_closest_marker("xdist_group").args[0] for item in items}
    assert groups["qa.suite.yaml::lyon[echo-b]"] == "qa.suite.yaml::echo-b"
    split = LoadGroupScheduling._split_scope  # what --dist loadgroup makes of a node id
    assert split(None, "qa.suite.yaml::lyon[echo-b]@qa.suite.yaml::echo-b") == (
        "qa.suite.yaml::echo-b"
    )


def test_xdist_workers_call_each_case_once_and_the_summary_is_merged(
    project: pytest.Pytester, server: LLMServer
) -> None:
    (project.path / "qb.suite.yaml").write_text(
        SUITE.replace("suite: qa", "suite: qb"), encoding="utf-8"
    )
    project.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = project.runpytest_subprocess(
        "-n", "2", "-v", "--llm-mode=record", "--llm-report=out", "--llm-update-baseline",
        timeout=120,
    )  # fmt: skip
    result.assert_outcomes(passed=9, xfailed=4)
    results = json.loads((project.path / "out/results.json").read_text())
    assert len(results["items"]) == 12  # both workers' items, in one document
    baseline = json.loads((project.path / "baseline.json").read_text())["entries"]
    assert len(baseline) == 12 and baseline["qb::lyon[echo-b]"]["passed"] is False
    assert len(_posts(server)) == 12  # 2 suites x 3 cases x 2 models, each called once
    workers = {}  # which worker ran each suite x model
    for line in result.outlines:
        if line.startswith("[gw") and ".suite.yaml::" in line:
            nodeid = line.split()[-1]
            workers.setdefault(xdist_scope(nodeid, ["*.suite.yaml"]), set()).add(line[:5])
    assert len(workers) == 4 and all(len(w) == 1 for w in workers.values())
    assert set().union(*workers.values()) == {"[gw0]", "[gw1]"}  # both workers had some
    result.stdout.fnmatch_lines(
        [
            "*harness evals (--llm-mode=record)*",
            "*qa*echo *2/3*",
            "*qb*echo-b*2/3*",
            "0 regressions, 0 improvements, 4 known failures vs baseline",
        ]
    )
