"""Baseline: the status rules, load/save, update, and clear errors for a bad file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.evals import Baseline
from harness.evals.baseline import BaselineEntry, baseline_key
from harness.evals.results import Attempt, ItemResult


def result(*passes: bool, case: str = "c", threshold: float = 1.0) -> ItemResult:
    attempts = [Attempt(reply="r", passed=p, score=1.0 if p else 0.0) for p in passes]
    return ItemResult(suite="s", case=case, model="m", attempts=attempts, pass_threshold=threshold)


PASSED, FAILED = BaselineEntry(True, 1.0), BaselineEntry(False, 0.0)


@pytest.mark.parametrize(
    ("entry", "passes", "threshold", "status", "new"),
    [
        (PASSED, [True], 1.0, "pass", False),
        (PASSED, [False], 1.0, "regression", False),
        (FAILED, [False], 1.0, "known_failure", False),
        (FAILED, [True], 1.0, "improvement", False),
        (None, [False], 1.0, "known_failure", True),
        (None, [True], 1.0, "pass", False),
        # flaky: passes and fails across repeats; a regression still wins under the threshold
        (PASSED, [True, False, True, True], 1.0, "regression", False),
        (PASSED, [True, False, True, True], 0.75, "flaky", False),
        (FAILED, [True, False], 0.5, "flaky", False),
        (None, [True, False], 1.0, "flaky", True),
    ],
)
def test_classify_and_apply(
    entry: BaselineEntry | None, passes: list[bool], threshold: float, status: str, new: bool
) -> None:
    baseline = Baseline({baseline_key("s", "c", "m"): entry} if entry else {})
    item = result(*passes, threshold=threshold)
    assert baseline.classify(item) == status
    assert item.status in ("pass", "fail", "flaky")  # classify changes nothing
    baseline.apply([item])
    assert item.status == status and item.new is new
    assert item.baseline == (entry.to_json() if entry else None)
    assert item.to_json()["status"] == status


def test_missing_file_is_an_empty_baseline(tmp_path: Path) -> None:
    baseline = Baseline.load(tmp_path / "nope.json")
    assert len(baseline) == 0 and baseline.get(("s", "c", "m")) is None


def test_save_is_sorted_stable_and_loads_back(tmp_path: Path) -> None:
    baseline = Baseline().updated(
        [result(True, case="zeta"), result(False, case="alpha"), result(True, False, case="mid")]
    )
    path = tmp_path / "suites" / "baseline.json"
    baseline.save(path)
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    assert data["schema"] == "harness.baseline/1"
    assert list(data["entries"]) == ["s::alpha[m]", "s::mid[m]", "s::zeta[m]"]
    assert data["entries"]["s::mid[m]"] == {"passed": False, "score": 0.5}
    assert text.count("\n") == 8  # one entry per line: diff-friendly
    loaded = Baseline.load(path)
    assert loaded.get(("s", "zeta", "m")) == BaselineEntry(True, 1.0)
    loaded.save(path)
    assert path.read_text(encoding="utf-8") == text  # stable
    assert not list(path.parent.glob(".*tmp"))


def test_updated_replaces_only_the_given_results() -> None:
    old = Baseline({"s::c[m]": PASSED, "other::x[m]": FAILED})
    new = old.updated([result(False)])
    assert new.get("s::c[m]") == BaselineEntry(False, 0.0)
    assert new.get("other::x[m]") == FAILED
    assert old.get("s::c[m]") == PASSED  # the old one is untouched


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ('{"passing": ["c[m]"]}', "schema", "not a harness.baseline/1 file"),
        (
            '{"schema": "harness.baseline/1", "entries": {"s::c[m]": {"passed": "yes"}}}',
            "entries.s::c[m]",
            "passed",
        ),
        ('{"schema": "harness.baseline/1", "entries": []}', "entries", "mapping"),
    ],
)
def test_bad_files_name_the_file_and_key(tmp_path: Path, text: str, key: str, message: str) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Baseline.load(path)
    assert info.value.source == str(path) and info.value.key == key
    assert message in str(info.value)


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text('{\n"schema": \n', encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid JSON at line"):
        Baseline.load(path)
