from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.evals.compare import compare, load_results, merge, merge_files
from harness.evals.report.data import compute_totals
from tests.evals.test_report import make_item, results_document


def _find(data: dict[str, Any], case: str, model: str) -> dict[str, Any]:
    return next(i for i in data["items"] if i["case"] == case and i["model"] == model)


def _runs() -> tuple[dict[str, Any], dict[str, Any]]:
    """Last week's run and today's: one regression, one improvement, one score change."""
    old = results_document()
    new = copy.deepcopy(old)
    smol = "local-smollm2"
    # passed before, fails now
    france = _find(new, "capital-of-france", smol)
    france.update(
        status="regression",
        passed=False,
        score=0.0,
        reply="Lyon",
        cost="0.000020",
        latency=0.5,
        grades=[
            {
                "name": "contains('Paris')",
                "passed": False,
                "score": 0.0,
                "reason": "'Paris' not in 'Lyon'",
            }
        ],
    )
    france["attempts"] = [{**france["attempts"][0], "latency": 0.5, "passed": False}]
    # failed before, passes now
    one_word = _find(new, "one-word", smol)
    one_word.update(status="pass", passed=True, score=1.0, reply="Blue")
    # same outcome, lower score (the flaky case lost an attempt)
    _find(new, "explain-recursion", smol).update(score=0.33)
    # a case added, one removed
    new["items"].append(make_item("factual-qa", "tallest-mountain", smol, "pass", reply="Everest"))
    gone = _find(new, "capital-of-japan", "local-gemma")
    new["items"] = [i for i in new["items"] if i is not gone]
    return old, new


def test_a_case_that_passed_and_now_fails_is_a_regression() -> None:
    old, new = _runs()
    result = compare(old, new)
    assert result.has_regressions
    assert [c.name for c in result.regressions] == ["factual-qa::capital-of-france[local-smollm2]"]
    change = result.regressions[0]
    assert change.score_delta == pytest.approx(-1.0)
    assert change.cost_delta == Decimal("0.000008")
    assert change.latency_delta == pytest.approx(0.29)
    assert [c.name for c in result.improvements] == [
        "instruction-following::one-word[local-smollm2]"
    ]


def test_changes_are_listed_by_kind_and_unchanged_cases_are_left_out() -> None:
    old, new = _runs()
    result = compare(old, new)
    assert [(c.kind, c.key[1]) for c in result.changes] == [
        ("regression", "capital-of-france"),
        ("improvement", "one-word"),
        ("changed", "explain-recursion"),
        ("added", "tallest-mountain"),
        ("removed", "capital-of-japan"),
    ]
    assert result.compared == 11
    assert result.unchanged == 8
    changed = result.of_kind("changed")[0]
    assert changed.score_delta == pytest.approx(0.33 - 2 / 3)
    assert changed.cost_delta is None  # unpriced on both sides: no invented zero


def test_render_is_a_table_of_changed_cases_then_one_summary_line() -> None:
    old, new = _runs()
    text = compare(old, new).render()
    lines = text.splitlines()
    assert re.split(r"\s{2,}", lines[0].strip()) == [
        "change", "case", "status", "score", "cost Δ", "latency Δ", "why",
    ]  # fmt: skip
    body = lines[2:-3]
    assert len(body) == 3
    assert re.split(r"\s{2,}", body[0].strip()) == [
        "regression",
        "factual-qa::capital-of-france[local-smollm2]",
        "pass → regression",
        "1.00 → 0.00 (-1.00)",
        "+$0.000008",
        "+290 ms",
        "contains('Paris'): 'Paris' not in 'Lyon'",
    ]
    assert "fail → pass" in body[1] and "0.00 → 1.00 (+1.00)" in body[1]
    assert lines[-3] == "added (1): factual-qa::tallest-mountain[local-smollm2]"
    assert lines[-2] == "removed (1): factual-qa::capital-of-japan[local-gemma]"
    assert not any("capital-of-france[local-smollm2-anthropic]" in line for line in lines)
    assert lines[-1] == (
        "1 regressions, 1 improvements, 1 other changes, 1 added, 1 removed in 11 cases "
        "compared; cost $0.000096 → $0.000116 (+$0.000020); latency p50 400 ms → 400 ms "
        "(+0 ms), p95 1.05 s → 1.05 s (+0 ms)"
    )


def test_identical_runs_have_no_changes_and_no_regression() -> None:
    data = results_document()
    result = compare(data, copy.deepcopy(data))
    assert not result.has_regressions
    assert result.changes == ()
    assert result.render().splitlines()[0] == "no changed cases"
    assert result.render().splitlines()[1].startswith("0 regressions, 0 improvements, 0 other")


def test_a_latency_or_cost_change_alone_is_not_a_changed_case() -> None:
    old = results_document()
    new = copy.deepcopy(old)
    for item in new["items"]:
        item["latency"] *= 2
        for attempt in item["attempts"]:
            attempt["latency"] *= 2
    assert compare(old, new).changes == ()
    assert "latency p50 400 ms → 800 ms (+400 ms)" in compare(old, new).summary()


def test_compare_refuses_another_schema() -> None:
    old, new = _runs()
    new["schema"] = "promptfoo/3"
    with pytest.raises(ConfigError, match=r"new results, key 'schema'.*'promptfoo/3'"):
        compare(old, new)


# ---- merge -----------------------------------------------------------------------------------


def _shards(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The document split the way ``--llm-shard K/3`` would: every item in one shard."""
    shards = []
    for k in range(3):
        items = data["items"][k::3]
        shards.append(
            {
                "schema": "harness.evals/1",
                "created": f"2026-12-01T22:4{k}:00Z",
                "mode": "replay",
                "items": items,
                "totals": compute_totals(items),
            }
        )
    return shards


def test_merged_shards_hold_every_item_once_with_recomputed_totals() -> None:
    data = results_document()
    merged = merge(_shards(data), ["s1.json", "s2.json", "s3.json"])
    keys = [(i["suite"], i["case"], i["model"]) for i in merged["items"]]
    assert keys == sorted((i["suite"], i["case"], i["model"]) for i in data["items"])
    assert merged["totals"] == compute_totals(data["items"])
    assert merged["totals"]["regressions"] == 2
    assert merged["schema"] == "harness.evals/1"
    assert merged["mode"] == "replay"
    assert merged["created"] == "2026-12-01T22:42:00Z"  # the latest shard
    assert merged["merged_from"] == ["s1.json", "s2.json", "s3.json"]


def test_merge_does_not_depend_on_the_order_of_the_shards() -> None:
    shards = _shards(results_document())
    forward = merge(shards)
    backward = merge(shards[::-1])
    assert forward["items"] == backward["items"]
    assert forward["totals"] == backward["totals"]
    # and a merged file compares equal to the unsharded run
    assert compare(results_document(), forward).changes == ()


def test_merge_of_different_modes_says_mixed() -> None:
    shards = _shards(results_document())
    shards[1]["mode"] = "record"
    assert merge(shards)["mode"] == "mixed"


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_merge_files_names_an_item_found_in_two_files(tmp_path: Path) -> None:
    shards = _shards(results_document())
    shards[2]["items"].append(copy.deepcopy(shards[0]["items"][1]))
    paths = [_write(tmp_path / f"shard-{k}.json", s) for k, s in enumerate(shards, 1)]
    with pytest.raises(ConfigError) as caught:
        merge_files(paths)
    message = str(caught.value)
    name = "factual-qa::capital-of-japan[local-smollm2]"
    assert f"item {name} appears in {paths[0]} and {paths[2]}" in message


def test_merge_names_an_item_repeated_inside_one_file() -> None:
    data = results_document()
    data["items"].append(copy.deepcopy(data["items"][0]))
    with pytest.raises(ConfigError, match=r"capital-of-france\[local-smollm2\] appears twice"):
        merge([data], ["run.json"])


def test_merge_files_names_a_file_in_another_schema(tmp_path: Path) -> None:
    shards = _shards(results_document())
    shards[1]["schema"] = "harness.evals/2"
    paths = [_write(tmp_path / f"shard-{k}.json", s) for k, s in enumerate(shards, 1)]
    with pytest.raises(ConfigError) as caught:
        merge_files(paths)
    assert caught.value.source == str(paths[1])
    assert "'harness.evals/2'" in str(caught.value)


def test_load_results_names_a_file_that_is_not_json_or_missing(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": "harness.evals/1", "items": [', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.json: not JSON"):
        load_results(broken)
    with pytest.raises(ConfigError, match=r"absent\.json: cannot read results"):
        load_results(tmp_path / "absent.json")


def test_merge_of_nothing_is_an_error() -> None:
    with pytest.raises(ConfigError, match="nothing to merge"):
        merge([])


def test_merged_file_round_trips_through_load_results(tmp_path: Path) -> None:
    shards = _shards(results_document())
    paths = [_write(tmp_path / f"shard-{k}.json", s) for k, s in enumerate(shards, 1)]
    merged = merge_files(paths)
    out = _write(tmp_path / "merged.json", merged)
    assert load_results(out) == merged


def test_many_added_cases_are_named_not_tabled() -> None:
    old = results_document()
    new = copy.deepcopy(old)
    new["items"] += [make_item("new-suite", f"case-{n:02}", "m", "pass") for n in range(25)]
    text = compare(old, new).render()
    assert text.splitlines()[0].startswith("added (25): new-suite::case-00[m], ")
    assert text.splitlines()[0].endswith("new-suite::case-09[m] … and 15 more")
    assert len(text.splitlines()) == 2  # no table: nothing that was in both runs changed
    assert not compare(old, new).has_regressions
