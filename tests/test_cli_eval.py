"""``harness eval run|merge|compare``: suites without pytest, against a loopback echo server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli import main
from tests.replay.conftest import LLMServer, serve_llm

pytest_plugins = ["pytester"]

MODELS = """
models:
  echo:
    api_type: open_llm
    base_url: ${HARNESS_TEST_BASE_URL:-http://127.0.0.1:9}/v1
    model: echo-1
    stream: false
    price: {input: 1, output: 2}
"""

# The server answers "echo: <prompt>": "france" passes, "lyon" fails.
SUITE = """
suite: qa
models: [echo]
cases:
  - id: france
    prompt: What is the capital of France?
    expect: [{contains: France}]
  - id: lyon
    prompt: Name a city.
    expect: [{contains: Lyon}]
"""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMServer]:
    """The echo server; its URL in HARNESS_TEST_BASE_URL."""
    with serve_llm() as state:
        monkeypatch.setenv("HARNESS_TEST_BASE_URL", state.base_url)
        yield state


@pytest.fixture
def suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``suites/qa.suite.yaml`` with ``models.yaml`` beside it; the working dir is tmp_path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites/models.yaml").write_text(MODELS, encoding="utf-8")
    path = tmp_path / "suites/qa.suite.yaml"
    path.write_text(SUITE, encoding="utf-8")
    return path


def _posts(server: LLMServer) -> int:
    return sum(1 for method, _, _ in server.requests if method == "POST")


def test_run_records_then_replays_and_writes_reports(
    suite: Path, server: LLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    other = Path("other.yaml")
    other.write_text(MODELS.replace("echo:", "mirror:"), encoding="utf-8")
    command = ["eval", "run", str(suite), "--config", str(other), "--models", "mirror"]
    assert main([*command, "--mode", "record", "--cassette-dir", "tapes"]) == 0
    assert sorted(p.name for p in Path("tapes/qa/mirror").glob("*.yaml")) == [
        "france.yaml",
        "lyon.yaml",
    ]
    assert main(["eval", "run", str(suite), "--mode", "record"]) == 0
    assert _posts(server) == 4
    assert Path("cassettes/suites/qa/echo/france.yaml").is_file()
    server.stopped.set()
    capsys.readouterr()

    assert main(["eval", "run", str(suite), "--report", "out", "--concurrency", "2"]) == 0
    out = capsys.readouterr().out
    assert _posts(server) == 4  # replayed
    assert "0 regressions, 0 improvements, 1 known failures vs baseline" in out
    data = json.loads(Path("out/results.json").read_text())
    assert {i["id"]: i["status"] for i in data["items"]} == {
        "france[echo]": "pass",
        "lyon[echo]": "known_failure",
    }
    assert Path("out/summary.md").is_file() and Path("out/report.html").is_file()


def test_run_exits_1_on_a_regression_and_update_baseline_accepts_it(
    suite: Path, server: LLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = suite.parent / "baseline.json"
    entries = {"qa::lyon[echo]": {"passed": True, "score": 1.0}}
    baseline.write_text(json.dumps({"schema": "harness.baseline/1", "entries": entries}))
    assert main(["eval", "run", str(suite), "--mode", "record"]) == 1
    assert "1 regressions" in capsys.readouterr().out

    assert main(["eval", "run", str(suite), "--update-baseline"]) == 1  # still reported
    assert json.loads(baseline.read_text())["entries"]["qa::lyon[echo]"]["passed"] is False
    assert main(["eval", "run", str(suite)]) == 0


def test_run_exits_1_when_a_case_changed_since_it_was_recorded(
    suite: Path, server: LLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "run", str(suite), "--mode", "record"]) == 0
    suite.write_text(SUITE.replace("Name a city.", "Name a town."), encoding="utf-8")
    capsys.readouterr()
    assert main(["eval", "run", str(suite)]) == 1
    out = capsys.readouterr().out
    assert "lyon[echo]: the case changed since it was recorded" in out
    assert f"re-record it with: harness eval run {suite} --mode record" in out


def test_run_reports_a_missing_file_or_bad_suite_with_status_2(
    suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "run", "nope.suite.yaml"]) == 2
    assert "nope.suite.yaml: no such file" in capsys.readouterr().err
    suite.write_text(SUITE.replace("contains:", "contans:"), encoding="utf-8")
    assert main(["eval", "run", str(suite)]) == 2
    assert "cases[0].expect[0]" in capsys.readouterr().err


def _results(path: Path, items: list[tuple[str, bool]]) -> Path:
    def item(case: str, passed: bool) -> dict[str, object]:
        return {
            "suite": "qa", "case": case, "model": "echo", "id": f"{case}[echo]",
            "status": "pass" if passed else "known_failure", "passed": passed,
            "score": 1.0 if passed else 0.0, "reply": "r", "grades": [], "usage": None,
            "cost": "0.001", "latency": 0.2, "cassette": None, "error": None,
            "attempts": [{"reply": "r", "passed": passed, "score": 1.0 if passed else 0.0,
                          "grades": [], "usage": None, "cost": "0.001", "latency": 0.2,
                          "error": None}],
        }  # fmt: skip

    data = {"schema": "harness.evals/1", "mode": "replay", "items": [item(*i) for i in items]}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_merge_joins_shards_and_refuses_an_overlap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = _results(tmp_path / "1.json", [("a", True)])
    two = _results(tmp_path / "2.json", [("b", False)])
    out = tmp_path / "all.json"
    assert main(["eval", "merge", str(out), str(one), str(two)]) == 0
    data = json.loads(out.read_text())
    assert [i["case"] for i in data["items"]] == ["a", "b"]
    assert data["totals"]["items"] == 2
    assert main(["eval", "merge", str(out), str(one), str(one)]) == 2
    assert "qa::a[echo]" in capsys.readouterr().err


def test_compare_exits_1_on_a_regression_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _results(tmp_path / "old.json", [("a", True), ("b", False)])
    better = _results(tmp_path / "better.json", [("a", True), ("b", True)])
    worse = _results(tmp_path / "worse.json", [("a", False), ("b", False)])
    assert main(["eval", "compare", str(old), str(better)]) == 0
    assert "qa::b[echo]" in capsys.readouterr().out
    assert main(["eval", "compare", str(old), str(worse)]) == 1
    assert "qa::a[echo]" in capsys.readouterr().out
    assert main(["eval", "compare", str(old), str(tmp_path / "missing.json")]) == 2


def test_run_shards_split_the_items_as_pytest_llm_shard_does(
    suite: Path,
    server: LLMServer,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(suite.parent.parent)  # pytester moved to its own folder
    many = SUITE + "".join(
        f"  - id: city-{i}\n    prompt: Name city {i}.\n    expect: [{{contains: '{i}'}}]\n"
        for i in range(12)
    )
    suite.write_text(many.replace("models: [echo]", "models: [echo, mirror]"), encoding="utf-8")
    models = Path("suites/models.yaml")
    models.write_text(MODELS + MODELS.split("models:\n")[1].replace("echo:", "mirror:"))
    models = models.resolve()
    assert main(["eval", "run", "suites/qa.suite.yaml", "--mode", "record"]) == 0
    server.stopped.set()
    shards = []
    for k in (1, 2, 3):
        out = f"shard-{k}"
        assert (
            main(["eval", "run", "suites/qa.suite.yaml", "--shard", f"{k}/3", "--report", out]) == 0
        )
        shards.append(json.loads(Path(out, "results.json").read_text())["items"])
    ids = [{f"suites/qa.suite.yaml::{i['case']}[{i['model']}]" for i in items} for items in shards]
    assert all(ids) and sum(len(s) for s in ids) == len(set().union(*ids)) == 28  # disjoint, whole

    # pytest --llm-shard keeps the same node ids in each shard
    pytester.makeini(
        "[pytest]\nllm_suite_files = *.suite.yaml\nasyncio_default_fixture_loop_scope = function\n"
    )
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites/qa.suite.yaml").write_text(suite.read_text())
    monkeypatch.chdir(pytester.path)
    (pytester.path / "suites/models.yaml").write_text(models.read_text())
    for k, expected in enumerate(ids, start=1):
        result = pytester.runpytest("--collect-only", "-q", f"--llm-shard={k}/3", "suites")
        collected = {line for line in result.outlines if "::" in line}
        assert collected == expected

    monkeypatch.chdir(suite.parent.parent)
    assert main(["eval", "run", "suites/qa.suite.yaml", "--shard", "4/3"]) == 2
    assert "--shard '4/3': expected K/N with 1 <= K <= N" in capsys.readouterr().err
