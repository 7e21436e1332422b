"""Eval results and their JSON form (schema ``harness.evals/1``), read by reports and tools.

``SuiteResult.to_json()`` returns::

    {
      "schema": "harness.evals/1",
      "created": "2026-12-01T22:40:00Z",          # UTC, when the run ended
      "mode": "replay",                            # replay | record | rewrite | live
      "items": [ITEM, ...],                        # one per (suite, case, model), plan order
      "totals": TOTALS
    }

ITEM (one (suite, case, model), over its ``repeats`` attempts)::

    {
      "suite": "factual-qa", "case": "capital-of-france", "model": "local-smollm2",
      "id": "capital-of-france[local-smollm2]",   # the pytest item id's parameter part
      "status": "pass",     # pass | fail | regression | known_failure | improvement | flaky
      "new": false,         # true for a known failure with no baseline entry
      "passed": true,       # pass_rate >= the suite's pass_threshold
      "score": 1.0,         # score_mean
      "prompt": "...",      # what was sent: the prompt, the list of turns, or the messages
      "reply": "Paris",     # the last attempt's reply (every attempt under "attempts")
      "turns": ["Paris"],   # the last attempt's reply per turn (multi-turn cases)
      "tool_calls": [CALL, ...],                   # the last attempt's tool calls, in order
      "grades": [GRADE, ...],                      # the last attempt's grades
      "usage": USAGE,       # summed over attempts, model calls only (null: none reported)
      "cost": "0.000000",   # USD decimal string summed over attempts; null when unpriced
      "latency": 0.231,     # seconds, mean over attempts (recorded latency on replay)
      "judge": {"usage": USAGE, "cost": "0.0"},    # the llm_judge calls; null without a judge
      "cassette": "cassettes/suites/factual-qa/local-smollm2/capital-of-france.yaml",
      "error": null,        # the last failed model call's message, if any attempt had one
      "repeats": 1, "k": 1, "pass_rate": 1.0, "pass_at_k": 1.0, "pass_hat_k": 1.0,
      "score_mean": 1.0, "score_stdev": 0.0, "flaky": false,
      "attempts": [ATTEMPT, ...],
      "baseline": {"passed": true, "score": 1.0},  # the baseline entry, or null
      "tags": ["geo"],
      "pass_threshold": 1.0,
      "system": null,       # the case's system prompt
      "expected": null      # the case's expected value (as JSON; repr() when JSON cannot hold it)
    }

GRADE: ``{"name": "contains('Paris')", "passed": true, "score": 1.0, "reason": "..."}``.
USAGE: ``{"prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
"cache_write_tokens", "reasoning_tokens", "estimated"}``.
ATTEMPT: ``{"reply", "turns", "tool_calls", "passed", "score", "grades", "usage", "cost",
"latency", "error", "judge"}``.
CALL (a tool call the model made; for a case with tools, every step of its loop, in order)::

    {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_1"}

``arguments`` is the parsed JSON the model sent, or its raw text (a string) when that is not
valid JSON (or is itself a JSON string); ``id`` is null when the API gives none.
``tool_calls`` came after the first files of this schema: a reader takes it as optional
(absent: not recorded), so results written before it still load, compare and merge.

pass@k is the chance that at least one of k attempts passes, pass^k that all k pass, both
estimated without bias from the n attempts made (k = n = ``repeats`` in the JSON).

TOTALS (``harness.evals.report.data.compute_totals``, so files and reports agree)::

    {"items": 80, "passed": 70, "failed": 10, "regressions": 0, "improvements": 1,
     "known_failures": 9, "new": 2, "flaky": 0, "errors": 0,
     "pass_rate": 0.875, "score_mean": 0.9,
     "prompt_tokens": 0, "completion_tokens": 0,
     "cost": "0.0",          # priced items' sum (null when no item is priced)
     "unpriced": 0,          # items whose cost is unknown
     "judged": 0,            # items with judge calls
     "judge_prompt_tokens": 0, "judge_completion_tokens": 0,
     "judge_cost": "0.0",    # null when no judged item is priced
     "judge_unpriced": 0,
     "latency_p50": 0.2, "latency_p95": 0.5}   # over every attempt

Readers must ignore keys they do not know; a change that breaks readers bumps the version.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from harness.costs import Usage
from harness.evals.graders import Grade
from harness.evals.report.data import compute_totals
from harness.providers.results import ToolCall

__all__ = [
    "SCHEMA",
    "STATUSES",
    "Attempt",
    "ItemResult",
    "SuiteResult",
    "pass_at_k",
    "pass_hat_k",
    "percentile",
    "tool_call_from_json",
    "tool_call_json",
]

SCHEMA = "harness.evals/1"
STATUSES = ("pass", "fail", "regression", "known_failure", "improvement", "flaky")


def pass_at_k(n: int, c: int, k: int) -> float:
    """The chance that at least one of ``k`` attempts passes, from ``c`` passes in ``n``."""
    _check_nck(n, c, k)
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """The chance that all of ``k`` attempts pass (pass^k), from ``c`` passes in ``n``."""
    _check_nck(n, c, k)
    return math.comb(c, k) / math.comb(n, k)


def _check_nck(n: int, c: int, k: int) -> None:
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` (0..100) percentile, linearly interpolated; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _usage_json(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {**usage.to_dict(), "total_tokens": usage.total_tokens}


def _usage_from(data: Mapping[str, Any] | None) -> Usage | None:
    if data is None:
        return None
    fields = (
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
    )
    return Usage(
        **{f: int(data.get(f, 0)) for f in fields}, estimated=bool(data.get("estimated", False))
    )


def _cost_json(cost: Decimal | None) -> str | None:
    return None if cost is None else f"{cost:f}"  # fixed point: never "1E-7"


def _cost_from(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _sum_usage(usages: Iterable[Usage | None]) -> Usage | None:
    known = [u for u in usages if u is not None]
    return sum(known, Usage()) if known else None


def _sum_cost(costs: Sequence[Decimal | None]) -> Decimal | None:
    if not costs or any(c is None for c in costs):
        return None
    return sum((c for c in costs if c is not None), Decimal(0))


def _grade_from(data: Mapping[str, Any]) -> Grade:
    return Grade(
        passed=bool(data["passed"]),
        score=float(data["score"]),
        reason=str(data.get("reason", "")),
        name=str(data.get("name", "")),
    )


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def tool_call_json(call: ToolCall) -> dict[str, Any]:
    """A tool call as results JSON: its name, arguments (parsed; the raw text when they are not
    a JSON value other than a string) and id."""
    arguments: Any = call.arguments
    try:
        parsed = json.loads(call.arguments, parse_constant=_not_json)  # no NaN: strict JSON
    except ValueError:
        pass
    else:
        if not isinstance(parsed, str):  # a string always means the raw text, so reads are exact
            arguments = parsed
    return {"name": call.name, "arguments": arguments, "id": call.id}


def tool_call_from_json(data: Any) -> ToolCall:
    """A tool call read back from results JSON (a ValueError when it is not one)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
        raise ValueError(f"a tool call needs a name, got {data!r}")
    arguments = data.get("arguments", "")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    call_id = data.get("id")
    return ToolCall(
        id=None if call_id is None else str(call_id), name=data["name"], arguments=arguments
    )


def _tool_calls_from(data: Any) -> list[ToolCall]:
    if data is None:  # written before tool calls were recorded
        return []
    if not isinstance(data, list):
        raise ValueError(f"tool_calls must be a list, got {data!r}")
    return [tool_call_from_json(c) for c in data]


@dataclass
class Attempt:
    """One repeat of one (case, model): the reply, the tool calls, grades, usage, cost and
    latency."""

    reply: str
    passed: bool
    score: float
    grades: list[Grade] = field(default_factory=list)
    usage: Usage | None = None
    cost: Decimal | None = None
    latency: float | None = None
    error: str | None = None
    turns: list[str] = field(default_factory=list)
    judge_usage: Usage | None = None
    judge_cost: Decimal | None = None
    judged: bool = False  # whether a judge model was called
    tool_calls: list[ToolCall] = field(default_factory=list)  # every call, in order

    def to_json(self) -> dict[str, Any]:
        """The attempt as it appears under ``attempts`` in results JSON."""
        return {
            "reply": self.reply,
            "turns": list(self.turns),
            "tool_calls": [tool_call_json(c) for c in self.tool_calls],
            "passed": self.passed,
            "score": self.score,
            "grades": [g.to_json() for g in self.grades],
            "usage": _usage_json(self.usage),
            "cost": _cost_json(self.cost),
            "latency": self.latency,
            "error": self.error,
            "judge": (
                {"usage": _usage_json(self.judge_usage), "cost": _cost_json(self.judge_cost)}
                if self.judged
                else None
            ),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Attempt:
        """Read an attempt back from results JSON."""
        judge = data.get("judge")
        return cls(
            reply=str(data.get("reply", "")),
            passed=bool(data["passed"]),
            score=float(data["score"]),
            grades=[_grade_from(g) for g in data.get("grades", [])],
            usage=_usage_from(data.get("usage")),
            cost=_cost_from(data.get("cost")),
            latency=data.get("latency"),
            error=data.get("error"),
            turns=list(data.get("turns", [])),
            judge_usage=_usage_from(judge.get("usage")) if judge else None,
            judge_cost=_cost_from(judge.get("cost")) if judge else None,
            judged=judge is not None,
            tool_calls=_tool_calls_from(data.get("tool_calls")),
        )


@dataclass
class ItemResult:
    """The outcome of one (suite, case, model) over its attempts (one per repeat)."""

    suite: str
    case: str
    model: str
    attempts: list[Attempt]
    prompt: Any = None
    cassette: str | None = None
    pass_threshold: float = 1.0
    status: str = ""  # "" until classified: then one of STATUSES
    new: bool = False
    baseline: dict[str, Any] | None = None
    tags: tuple[str, ...] = ()
    system: str | None = None
    expected: Any = None

    def __post_init__(self) -> None:
        if not self.attempts:
            raise ValueError(f"{self.id} of suite {self.suite!r} has no attempts")
        if not self.status:
            self.status = "flaky" if self.flaky else ("pass" if self.passed else "fail")

    @property
    def id(self) -> str:
        """``<case>[<model>]``, as in the pytest item id."""
        return f"{self.case}[{self.model}]"

    @property
    def key(self) -> tuple[str, str, str]:
        """``(suite, case, model)``."""
        return (self.suite, self.case, self.model)

    @property
    def repeats(self) -> int:
        """How many attempts were made."""
        return len(self.attempts)

    @property
    def passes(self) -> int:
        """How many attempts passed."""
        return sum(1 for a in self.attempts if a.passed)

    @property
    def pass_rate(self) -> float:
        """The share of attempts that passed."""
        return self.passes / self.repeats

    @property
    def passed(self) -> bool:
        """Whether the pass rate reaches the suite's ``pass_threshold``."""
        return self.pass_rate >= self.pass_threshold - 1e-9

    @property
    def flaky(self) -> bool:
        """Some attempts passed and some failed."""
        return 0 < self.passes < self.repeats

    @property
    def pass_at_k(self) -> float:
        """pass@k with k = the number of attempts."""
        return pass_at_k(self.repeats, self.passes, self.repeats)

    @property
    def pass_hat_k(self) -> float:
        """pass^k with k = the number of attempts."""
        return pass_hat_k(self.repeats, self.passes, self.repeats)

    @property
    def score_mean(self) -> float:
        """The mean score over attempts."""
        return statistics.fmean(a.score for a in self.attempts)

    @property
    def score_stdev(self) -> float:
        """The population standard deviation of the scores (0.0 for one attempt)."""
        return statistics.pstdev(a.score for a in self.attempts)

    @property
    def score(self) -> float:
        """Alias of :attr:`score_mean`."""
        return self.score_mean

    @property
    def reply(self) -> str:
        """The last attempt's reply."""
        return self.attempts[-1].reply

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The last attempt's tool calls."""
        return self.attempts[-1].tool_calls

    @property
    def grades(self) -> list[Grade]:
        """The last attempt's grades."""
        return self.attempts[-1].grades

    @property
    def usage(self) -> Usage | None:
        """Model usage summed over attempts (judge excluded)."""
        return _sum_usage(a.usage for a in self.attempts)

    @property
    def cost(self) -> Decimal | None:
        """Model cost in USD summed over attempts; None when any is unpriced."""
        return _sum_cost([a.cost for a in self.attempts])

    @property
    def latency(self) -> float | None:
        """The mean latency over attempts (seconds)."""
        known = [a.latency for a in self.attempts if a.latency is not None]
        return statistics.fmean(known) if known else None

    @property
    def judged(self) -> bool:
        """Whether a judge model was called."""
        return any(a.judged for a in self.attempts)

    @property
    def judge_usage(self) -> Usage | None:
        """The judge's usage summed over attempts."""
        return _sum_usage(a.judge_usage for a in self.attempts)

    @property
    def judge_cost(self) -> Decimal | None:
        """The judge's cost summed over attempts (None when unpriced or no judge)."""
        return _sum_cost([a.judge_cost for a in self.attempts if a.judged])

    @property
    def error(self) -> str | None:
        """The last model-call error of any attempt."""
        errors = [a.error for a in self.attempts if a.error]
        return errors[-1] if errors else None

    @property
    def reason(self) -> str:
        """Why the item failed, in one line per failed grade or error (empty when passed)."""
        lines = []
        for i, attempt in enumerate(self.attempts):
            prefix = f"attempt {i + 1}: " if self.repeats > 1 else ""
            if attempt.error:
                lines.append(f"{prefix}{attempt.error}")
            lines.extend(f"{prefix}{g.name}: {g.reason}" for g in attempt.grades if not g.passed)
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The item in schema ``harness.evals/1`` (see the module docstring)."""
        return {
            "suite": self.suite,
            "case": self.case,
            "model": self.model,
            "id": self.id,
            "status": self.status,
            "new": self.new,
            "passed": self.passed,
            "score": self.score_mean,
            "prompt": self.prompt,
            "reply": self.reply,
            "turns": list(self.attempts[-1].turns),
            "tool_calls": [tool_call_json(c) for c in self.tool_calls],
            "grades": [g.to_json() for g in self.grades],
            "usage": _usage_json(self.usage),
            "cost": _cost_json(self.cost),
            "latency": self.latency,
            "judge": (
                {"usage": _usage_json(self.judge_usage), "cost": _cost_json(self.judge_cost)}
                if self.judged
                else None
            ),
            "cassette": self.cassette,
            "error": self.error,
            "repeats": self.repeats,
            "k": self.repeats,
            "pass_rate": self.pass_rate,
            "pass_at_k": self.pass_at_k,
            "pass_hat_k": self.pass_hat_k,
            "score_mean": self.score_mean,
            "score_stdev": self.score_stdev,
            "flaky": self.flaky,
            "attempts": [a.to_json() for a in self.attempts],
            "baseline": dict(self.baseline) if self.baseline is not None else None,
            "tags": list(self.tags),
            "pass_threshold": self.pass_threshold,
            "system": self.system,
            "expected": _jsonable(self.expected),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ItemResult:
        """Read an item back from results JSON."""
        try:
            return cls(
                suite=str(data["suite"]),
                case=str(data["case"]),
                model=str(data["model"]),
                attempts=[Attempt.from_json(a) for a in data["attempts"]],
                prompt=data.get("prompt"),
                cassette=data.get("cassette"),
                pass_threshold=float(data.get("pass_threshold", 1.0)),
                status=str(data.get("status", "")),
                new=bool(data.get("new", False)),
                baseline=data.get("baseline"),
                tags=tuple(data.get("tags", ())),
                system=data.get("system"),
                expected=data.get("expected"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"invalid result item {data.get('id', '?')!r}: {exc!r}") from exc


def _jsonable(value: Any) -> Any:
    """``value`` if JSON can hold it as is, else its ``repr``."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SuiteResult:
    """The results of one run (one or several suites), in plan order."""

    items: list[ItemResult]
    mode: str = "replay"
    created: str = field(default_factory=_utc_stamp)

    def __iter__(self) -> Any:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def get(self, suite: str, case: str, model: str) -> ItemResult | None:
        """The item for ``(suite, case, model)``, or None."""
        return next((i for i in self.items if i.key == (suite, case, model)), None)

    @property
    def regressions(self) -> list[ItemResult]:
        """Items whose status is ``regression``."""
        return [i for i in self.items if i.status == "regression"]

    def totals(self) -> dict[str, Any]:
        """The ``totals`` block of the JSON (computed as the reports compute it)."""
        return compute_totals(i.to_json() for i in self.items)

    def to_json(self) -> dict[str, Any]:
        """The run in schema ``harness.evals/1`` (see the module docstring)."""
        items = [i.to_json() for i in self.items]
        return {
            "schema": SCHEMA,
            "created": self.created,
            "mode": self.mode,
            "items": items,
            "totals": compute_totals(items),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SuiteResult:
        """Read a run back from its JSON (a ValueError for another schema)."""
        schema = data.get("schema")
        if schema != SCHEMA:
            raise ValueError(f"not a {SCHEMA} results document (schema: {schema!r})")
        return cls(
            items=[ItemResult.from_json(i) for i in data.get("items", [])],
            mode=str(data.get("mode", "replay")),
            created=str(data.get("created") or _utc_stamp()),
        )

    @classmethod
    def merge(cls, *results: SuiteResult) -> SuiteResult:
        """Join shard results; the same (suite, case, model) twice is a ValueError naming it."""
        seen: dict[tuple[str, str, str], int] = {}
        items: list[ItemResult] = []
        for n, result in enumerate(results):
            for item in result.items:
                if item.key in seen:
                    raise ValueError(
                        f"{item.suite}::{item.id} is in results {seen[item.key] + 1} and "
                        f"{n + 1}: shards must not overlap"
                    )
                seen[item.key] = n
                items.append(item)
        modes = sorted({r.mode for r in results})
        created = max((r.created for r in results), default=_utc_stamp())
        return cls(
            items=items, mode=modes[0] if len(modes) == 1 else "+".join(modes), created=created
        )
