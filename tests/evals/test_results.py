"""Results: statistics over repeats, the "harness.evals/1" JSON, round trips and merging."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from harness import Usage
from harness.evals import Grade
from harness.evals.results import (
    SCHEMA,
    Attempt,
    ItemResult,
    SuiteResult,
    pass_at_k,
    pass_hat_k,
    percentile,
)

CONTRACT_ITEM_KEYS = {
    "suite",
    "case",
    "model",
    "id",
    "status",
    "new",
    "passed",
    "score",
    "prompt",
    "reply",
    "grades",
    "usage",
    "cost",
    "latency",
    "judge",
    "cassette",
    "error",
    "repeats",
    "pass_rate",
    "pass_at_k",
    "pass_hat_k",
    "score_mean",
    "score_stdev",
    "flaky",
    "attempts",
    "baseline",
}
CONTRACT_TOTALS_KEYS = {
    "items",
    "passed",
    "failed",
    "regressions",
    "improvements",
    "known_failures",
    "flaky",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "judge_cost",
    "latency_p50",
    "latency_p95",
}


def attempt(passed: bool, score: float | None = None, **kw: Any) -> Attempt:
    kw.setdefault("usage", Usage(prompt_tokens=10, completion_tokens=2))
    kw.setdefault("cost", Decimal("0.001"))
    kw.setdefault("latency", 0.2)
    grade = Grade(passed, 1.0 if passed else 0.0, "ok" if passed else "no", "g")
    return Attempt(
        reply=kw.pop("reply", "r"),
        passed=passed,
        score=score if score is not None else grade.score,
        grades=[grade],
        **kw,
    )


def item(*attempts: Attempt, case: str = "c", model: str = "m", **kw: Any) -> ItemResult:
    return ItemResult(
        suite=kw.pop("suite", "s"), case=case, model=model, attempts=list(attempts), **kw
    )


@pytest.mark.parametrize(
    ("n", "c", "k", "at", "hat"),
    [
        (5, 2, 2, 0.7, 0.1),
        (5, 0, 3, 0.0, 0.0),
        (5, 5, 5, 1.0, 1.0),
        (4, 3, 4, 1.0, 0.0),
        (10, 3, 1, 0.3, 0.3),
    ],
)
def test_pass_at_k_and_pass_hat_k(n: int, c: int, k: int, at: float, hat: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(at)
    assert pass_hat_k(n, c, k) == pytest.approx(hat)


def test_pass_at_k_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_hat_k(3, 1, 4)


def test_percentile_interpolates() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([float(i) for i in range(1, 101)], 95) == pytest.approx(95.05)


def test_item_statistics_over_repeats() -> None:
    result = item(
        attempt(True),
        attempt(False),
        attempt(True),
        attempt(True, latency=0.6),
        pass_threshold=0.75,
    )
    assert result.repeats == 4 and result.passes == 3 and result.pass_rate == 0.75
    assert result.passed and result.flaky and result.status == "flaky"
    assert result.score_mean == 0.75 and result.score_stdev == pytest.approx(0.4330127)
    assert result.pass_at_k == 1.0 and result.pass_hat_k == 0.0
    assert result.usage == Usage(prompt_tokens=40, completion_tokens=8)
    assert result.cost == Decimal("0.004")
    assert result.latency == pytest.approx(0.3)
    assert result.reason == "attempt 2: g: no"
    steady = item(attempt(False), attempt(False))
    assert steady.status == "fail" and not steady.flaky and steady.pass_at_k == 0.0
    assert item(attempt(True)).status == "pass"


def test_unpriced_attempt_makes_the_cost_unknown() -> None:
    assert item(attempt(True), attempt(True, cost=None)).cost is None


def test_item_json_has_the_contract_keys_and_round_trips() -> None:
    judged = attempt(
        True,
        judge_usage=Usage(prompt_tokens=100, completion_tokens=5),
        judge_cost=Decimal("0.01"),
        judged=True,
        turns=["a", "r"],
    )
    result = item(
        judged,
        attempt(False, error="boom"),
        prompt=["a", "b"],
        cassette="x.yaml",
        tags=("geo",),
        system="Be brief.",
        expected={"answer": 4},
        baseline={"passed": True, "score": 1.0},
        status="regression",
    )
    data = result.to_json()
    assert set(data) >= CONTRACT_ITEM_KEYS
    assert data["id"] == "c[m]" and data["status"] == "regression" and data["new"] is False
    assert data["cost"] == "0.002" and data["judge"] == {
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 5,
            "total_tokens": 105,
            "cached_tokens": 0,
            "cache_write_tokens": 0,
            "reasoning_tokens": 0,
            "estimated": False,
        },
        "cost": "0.01",
    }
    assert data["usage"]["total_tokens"] == 24
    assert data["error"] == "boom" and data["repeats"] == 2 and data["pass_rate"] == 0.5
    assert data["grades"] == [{"name": "g", "passed": False, "score": 0.0, "reason": "no"}]
    assert data["attempts"][0]["turns"] == ["a", "r"]
    assert data["attempts"][1]["judge"] is None
    json.dumps(data)  # plain JSON
    again = ItemResult.from_json(json.loads(json.dumps(data)))
    assert again.to_json() == data


def test_expected_that_json_cannot_hold_is_written_as_repr() -> None:
    data = item(attempt(True), expected={1, 2}).to_json()
    assert data["expected"] == "{1, 2}"


def test_suite_result_totals_and_round_trip() -> None:
    items = [
        item(attempt(True, latency=0.1), case="a"),
        item(attempt(False, latency=0.3), case="b", status="regression"),
        item(attempt(False, latency=0.5, cost=None), case="c", status="known_failure", new=True),
        item(
            attempt(
                True,
                latency=0.7,
                judged=True,
                judge_cost=Decimal("0.5"),
                judge_usage=Usage(prompt_tokens=7),
            ),
            case="d",
            status="improvement",
        ),
    ]
    result = SuiteResult(items=items, mode="replay", created="2026-12-01T22:40:00Z")
    data = result.to_json()
    assert data["schema"] == SCHEMA == "harness.evals/1"
    assert data["created"] == "2026-12-01T22:40:00Z" and data["mode"] == "replay"
    totals = data["totals"]
    assert set(totals) >= CONTRACT_TOTALS_KEYS
    assert (totals["items"], totals["passed"], totals["failed"]) == (4, 2, 2)
    assert (totals["regressions"], totals["improvements"], totals["known_failures"]) == (1, 1, 1)
    assert totals["prompt_tokens"] == 40 and totals["completion_tokens"] == 8
    assert totals["cost"] == "0.003" and totals["unpriced"] == 1
    assert totals["judge_cost"] == "0.5"
    assert totals["latency_p50"] == pytest.approx(0.4)
    assert SuiteResult.from_json(json.loads(json.dumps(data))).to_json() == data
    with pytest.raises(ValueError, match=r"not a harness\.evals/1"):
        SuiteResult.from_json({"schema": "other/2", "items": []})


def test_merge_joins_shards_and_refuses_overlap() -> None:
    one = SuiteResult(items=[item(attempt(True), case="a")], created="2026-12-01T10:00:00Z")
    two = SuiteResult(items=[item(attempt(False), case="b")], created="2026-12-01T11:00:00Z")
    merged = SuiteResult.merge(one, two)
    assert [i.case for i in merged.items] == ["a", "b"]
    assert merged.created == "2026-12-01T11:00:00Z" and merged.mode == "replay"
    assert merged.to_json()["totals"]["items"] == 2
    with pytest.raises(ValueError, match=r"s::a\[m\] is in results 1 and 3"):
        SuiteResult.merge(one, two, one)


def test_costs_are_fixed_point_decimal_strings() -> None:
    tiny = item(attempt(True, cost=Decimal(1) / Decimal(10**7)))
    assert tiny.to_json()["cost"] == "0.0000001"
    assert Decimal(SuiteResult(items=[tiny]).to_json()["totals"]["cost"]) == Decimal("1E-7")
