"""The README's eval-suite commands, run as written.

``harness eval run|merge|compare`` run on a copy of the shipped suites and cassettes. The
record, rewrite, live and re-record commands start ``harness local-llm`` as a user types them
(and the ``local_llm`` fixture example starts it from a test session):
a temporary ``HARNESS_LLM_CACHE`` holds ``tests/fake_llama_server.py`` as its ``llama-server``
binary, so the real command line starts a loopback stand-in on 127.0.0.1:8080 (the port the
README and the cassettes name) instead of a model; ``pytest`` lines run in a pytester project
holding a few of the shipped suites, their cassettes and baseline.
"""

from __future__ import annotations

import json
import shlex
import shutil
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli import main as harness_main
from harness.local_llm import server as local_llm
from harness.replay import load_interactions
from tests.test_readme_examples import ROOT, readme_blocks

pytest_plugins = ["pytester"]

PORT = 8080  # the README's commands and the shipped cassettes name it
STAND_IN = ROOT / "tests" / "fake_llama_server.py"


def commands(lang: str, heading: str, rank: int = 0) -> list[list[str]]:
    """The command lines of one README block, continuation lines joined, comments dropped."""
    text = readme_blocks()[(lang, heading, rank)].replace("\\\n", " ")
    return [argv for line in text.splitlines() if (argv := shlex.split(line, comments=True))]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every cassette under ``folder`` by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.yaml"))}


# -- harness eval run | merge | compare on the shipped suites ------------------------------------


def test_eval_run_merge_compare_commands_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(ROOT / "suites", tmp_path / "suites")
    shutil.copytree(ROOT / "cassettes", tmp_path / "cassettes")
    monkeypatch.chdir(tmp_path)
    for argv in commands("bash", "### Without pytest"):
        assert argv[:2] == ["harness", "eval"], argv
        assert harness_main(argv[1:]) == 0, argv
    printed = capsys.readouterr().out
    out = json.loads(Path("out/results.json").read_text(encoding="utf-8"))["items"]
    whole = json.loads(Path("whole/results.json").read_text(encoding="utf-8"))["items"]
    merged = json.loads(Path("all.json").read_text(encoding="utf-8"))["items"]
    shards = [
        json.loads(Path(f"shard-{k}/results.json").read_text(encoding="utf-8"))["items"]
        for k in (1, 2)
    ]

    def keys(items: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
        return sorted((i["suite"], i["case"], i["model"], i["status"]) for i in items)

    assert len(out) == (24 + 10) * 2  # two suites x the two models named, replayed
    assert {i["model"] for i in out} == {"local-smollm2", "local-gemma"}
    assert len(whole) == 24 * 3  # the suite's own models
    assert all(shards) and len(shards[0]) + len(shards[1]) == len(whole)
    assert keys(merged) == keys(whole)
    assert "0 regressions, 0 improvements, 0 other changes" in printed


# -- live, record, rewrite and re-record against the stand-in server ------------------------------


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A ``HARNESS_LLM_CACHE`` whose llama-server is the stand-in; yields its request log."""
    monkeypatch.setenv("HARNESS_LLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HARNESS_LOCAL_LLM_URL", raising=False)
    binary = local_llm.server_binary()
    binary.parent.mkdir(parents=True)
    binary.write_text(f"#!{sys.executable}\n{STAND_IN.read_text(encoding='utf-8')}")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    for model in ("smollm2", "gemma"):
        local_llm.model_path(model).parent.mkdir(parents=True)
        local_llm.model_path(model).write_bytes(b"GGUF stand-in")
    log = tmp_path / "requests.jsonl"
    monkeypatch.setenv("FAKE_LLAMA_LOG", str(log))
    try:
        yield log
    finally:  # whatever failed, no server outlives the test
        local_llm.main(["stop"])


def requests_in(log: Path) -> list[dict[str, Any]]:
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


# a few cases of three shipped suites keep the project small; their cassettes come along
KEPT = {"factual-qa": 3, "multi-turn": 2, "tools": 1}


def _project(root: Path) -> None:
    suites, tapes = root / "suites", root / "cassettes" / "suites"
    (root / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n", encoding="utf-8"
    )
    suites.mkdir()
    for name in ("models.yaml", "baseline.json"):
        shutil.copy(ROOT / "suites" / name, suites / name)
    for name, count in KEPT.items():
        data = yaml.safe_load((ROOT / "suites" / f"{name}.suite.yaml").read_text("utf-8"))
        data["cases"] = data["cases"][:count]
        text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
        (suites / f"{name}.suite.yaml").write_text(text, encoding="utf-8")
        for case in data["cases"]:
            for source in (ROOT / "cassettes" / "suites" / name).glob(f"*/{case['id']}.yaml"):
                target = tapes / name / source.parent.name / source.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, target)
    shutil.copy(ROOT / "cassettes/suites/tools/chatml-tools.jinja", tapes / "tools")


def _run(pytester: pytest.Pytester, argv: list[str]) -> pytest.RunResult:
    if argv[0] == "harness":
        assert harness_main(argv[1:]) == 0, argv
        return pytest.RunResult(0, [], [], 0.0)
    assert argv[0] == "pytest", argv
    return pytester.runpytest(*argv[1:], "-p", "no:cacheprovider")


def _items(result: pytest.RunResult) -> int:
    outcomes = result.parseoutcomes()
    return sum(outcomes.get(k, 0) for k in ("passed", "failed", "xfailed", "xpassed"))


HEARD = "heard: "  # what every stand-in answer says


def test_live_and_re_record_commands_against_the_stand_in(
    pytester: pytest.Pytester, stand_in: Path
) -> None:
    if not local_llm.port_free(PORT):
        pytest.skip(f"127.0.0.1:{PORT} is in use (a local-llm server running?): cannot stand in")
    _project(pytester.path)
    tapes = pytester.path / "cassettes" / "suites"
    replayed = pytester.runpytest("suites/", "-p", "no:cacheprovider")
    # 5 cases x 3 models and tools on one: as the shipped table says, offline, before anything
    replayed.assert_outcomes(passed=8, xfailed=8)
    start, record, rewrite, live, stop = commands("bash", "### Running live and re-recording")

    # record adds what is new: two cassettes removed are recorded again, from the stand-in
    gone = [tapes / "factual-qa/local-smollm2/capital-of-france.yaml"]
    gone.append(tapes / "factual-qa/local-gemma/capital-of-france.yaml")
    for path in gone:
        path.unlink()
    before = snapshot(tapes)
    _run(pytester, start)
    assert requests_in(stand_in) == []
    _run(pytester, record)
    assert not gone[1].exists()  # -k local-smollm2: the gemma item is not recorded
    answer = load_interactions(gone[0])[0]
    assert HEARD.encode() in answer.response.body
    assert answer.request.uri.startswith(f"http://127.0.0.1:{PORT}/")
    assert {k: v for k, v in snapshot(tapes).items() if k in before} == before  # kept as they were
    assert len(requests_in(stand_in)) == 1

    # rewrite: every smollm2 cassette of factual-qa afresh, the others untouched
    _run(pytester, rewrite)
    now = snapshot(tapes)
    for name, data in now.items():
        fresh = HEARD in data.decode()
        assert fresh == (name.startswith("factual-qa/local-smollm2")), name
    assert len(requests_in(stand_in)) == 1 + 3 * 2

    # live: every local-smollm2* item asks the server, no cassette changes
    result = _run(pytester, live)
    assert _items(result) == 3 * 2 + 2 * 2 + 1
    assert snapshot(tapes) == now
    assert len(requests_in(stand_in)) > 1 + 6 + 6  # multi-turn asks once per turn
    _run(pytester, stop)
    assert not local_llm.health(f"http://127.0.0.1:{PORT}")

    # one test for both blocks: each needs port 8080, so they must not run side by side
    _the_shipped_recording_procedure_and_baseline_update(pytester, stand_in)


def _the_shipped_recording_procedure_and_baseline_update(
    pytester: pytest.Pytester, stand_in: Path
) -> None:
    for folder in ("suites", "cassettes"):
        shutil.rmtree(pytester.path / folder)
    stand_in.unlink()
    _project(pytester.path)
    tapes = pytester.path / "cassettes" / "suites"
    baseline = pytester.path / "suites" / "baseline.json"
    kept_entry = "arithmetic::add-small[local-smollm2]"  # a suite not in this project
    assert kept_entry in json.loads(baseline.read_text())["entries"]
    for argv in commands("bash", "### Running live and re-recording", 1):
        _run(pytester, argv)
        if argv[:2] == ["harness", "local-llm"] and argv[2] == "start":
            assert local_llm.health(f"http://127.0.0.1:{PORT}")
    # every cassette of the project was recorded afresh, by the model its server served
    models_seen = {r["body"].get("model") for r in requests_in(stand_in)}
    assert models_seen == {"smollm2", "gemma"}
    for name, data in snapshot(tapes).items():
        assert HEARD in data.decode(), name
    # the baseline now holds this run's outcomes (the stand-in fails most cases), the rest kept
    entries = json.loads(baseline.read_text())["entries"]
    assert kept_entry in entries
    assert entries["factual-qa::capital-of-france[local-smollm2]"]["passed"] is False  # was True
    assert list(entries) == sorted(entries)
    assert not local_llm.health(f"http://127.0.0.1:{PORT}")  # stopped by the last stop


def test_update_baseline_command(pytester: pytest.Pytester) -> None:
    _project(pytester.path)
    baseline = pytester.path / "suites" / "baseline.json"
    data = json.loads(baseline.read_text())
    key = "factual-qa::capital-of-france[local-smollm2]"
    assert data["entries"][key]["passed"] is True
    data["entries"][key] = {"passed": False, "score": 0.0}  # as if it used to fail
    baseline.write_text(json.dumps(data))
    [argv] = commands("bash", "### Updating the baseline")
    result = _run(pytester, argv)
    assert "1 improvements" in result.stdout.str()  # reported against the old baseline
    assert json.loads(baseline.read_text())["entries"][key] == {"passed": True, "score": 1.0}


def test_the_local_llm_fixture_example(pytester: pytest.Pytester, stand_in: Path) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_local=readme_blocks()[("python", "## Use harness in your own tests", 7)]
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    (request,) = requests_in(stand_in)
    assert request["path"] == "/v1/chat/completions" and request["body"]["model"] == "smollm2"
    (log,) = local_llm.run_dir().glob("llama-server-smollm2-*.log")  # the port in its name
    port = log.stem.rsplit("-", 1)[1]
    assert not local_llm.health(f"http://127.0.0.1:{port}")  # stopped at the session's end
