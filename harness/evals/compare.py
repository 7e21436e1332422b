"""Compare two eval runs, and join the results of CI shards into one document.

Both work on "harness.evals/1" results documents (plain dicts, or the files holding them), so
they need nothing but the JSON: ``harness eval compare OLD.json NEW.json`` and
``harness eval merge OUT.json IN.json...`` are thin wrappers around them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from tabulate import tabulate

from harness.errors import ConfigError
from harness.evals.report.data import (
    SCHEMA,
    check_results,
    compute_totals,
    failure_reason,
    format_latency,
    item_key,
    to_decimal,
    tool_calls_of,
)

__all__ = [
    "CaseChange",
    "Comparison",
    "compare",
    "compute_totals",
    "load_results",
    "merge",
    "merge_files",
]

Key = tuple[str, str, str]

# Display order of the kinds of change: what needs attention first.
_KINDS = ("regression", "improvement", "changed", "added", "removed")
_SCORE_EPSILON = 1e-9
_NAMED = 10  # added or removed cases named in render()


@dataclass(frozen=True)
class CaseChange:
    """How one (suite, case, model) result differs between the old run and the new one."""

    key: Key
    kind: str  # regression | improvement | changed | added | removed
    old: Mapping[str, Any] | None
    new: Mapping[str, Any] | None

    @property
    def name(self) -> str:
        """``suite::case[model]``."""
        suite, case, model = self.key
        return f"{suite}::{case}[{model}]"

    @property
    def score_delta(self) -> float | None:
        """New score minus old score (None when either is missing)."""
        return _delta(self.old, self.new, "score")

    @property
    def latency_delta(self) -> float | None:
        """New latency minus old latency, in seconds (None when either is missing)."""
        return _delta(self.old, self.new, "latency")

    @property
    def cost_delta(self) -> Decimal | None:
        """New cost minus old cost in USD (None when either is unpriced or missing)."""
        old = to_decimal(self.old.get("cost")) if self.old else None
        new = to_decimal(self.new.get("cost")) if self.new else None
        return None if old is None or new is None else new - old


def _delta(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, key: str) -> float | None:
    before = old.get(key) if old else None
    after = new.get(key) if new else None
    if isinstance(before, int | float) and isinstance(after, int | float):
        return float(after) - float(before)
    return None


@dataclass(frozen=True)
class Comparison:
    """The changed cases between two runs, with both runs' totals."""

    changes: tuple[CaseChange, ...]
    old_totals: Mapping[str, Any]
    new_totals: Mapping[str, Any]
    compared: int = 0  # cases present in both runs
    unchanged: int = 0  # cases in both runs with no change

    def of_kind(self, kind: str) -> list[CaseChange]:
        """The changes of one kind (``regression``, ``improvement``, ``changed``, ...)."""
        return [change for change in self.changes if change.kind == kind]

    @property
    def regressions(self) -> list[CaseChange]:
        """Cases that passed in the old run and fail in the new one."""
        return self.of_kind("regression")

    @property
    def improvements(self) -> list[CaseChange]:
        """Cases that failed in the old run and pass in the new one."""
        return self.of_kind("improvement")

    @property
    def has_regressions(self) -> bool:
        """True when some case passed before and fails now."""
        return bool(self.regressions)

    def summary(self) -> str:
        """One line: how many cases regressed, improved or changed, and the cost and latency."""
        counts = {kind: len(self.of_kind(kind)) for kind in _KINDS}
        parts = [
            f"{counts['regression']} regressions",
            f"{counts['improvement']} improvements",
            f"{counts['changed']} other changes",
        ]
        parts += [f"{counts[k]} {k}" for k in ("added", "removed") if counts[k]]
        return (
            ", ".join(parts)
            + f" in {self.compared} cases compared; cost "
            + _cost_change(self.old_totals.get("cost"), self.new_totals.get("cost"))
            + "; latency p50 "
            + _latency_change(
                self.old_totals.get("latency_p50"), self.new_totals.get("latency_p50")
            )
            + ", p95 "
            + _latency_change(
                self.old_totals.get("latency_p95"), self.new_totals.get("latency_p95")
            )
        )

    def render(self) -> str:
        """The changed cases (regressions first) as a table, cases added or removed by name,
        then the one-line summary."""
        if not self.changes:
            return "no changed cases\n" + self.summary()
        lines = []
        changed = [c for c in self.changes if c.kind not in ("added", "removed")]
        if changed:
            lines.append(self._table(changed))
        for kind in ("added", "removed"):  # a suite edit can add dozens: names only
            names = [c.name for c in self.of_kind(kind)]
            if names:
                more = f" … and {len(names) - _NAMED} more" if len(names) > _NAMED else ""
                lines.append(f"{kind} ({len(names)}): {', '.join(names[:_NAMED])}{more}")
        lines.append(self.summary())
        return "\n".join(lines)

    @staticmethod
    def _table(changes: Sequence[CaseChange]) -> str:
        rows = [
            [
                change.kind,
                change.name,
                f"{_status(change.old)} → {_status(change.new)}",
                _score_change(change),
                _signed_cost(change.cost_delta),
                _signed_latency(change.latency_delta),
                _reason(change),
            ]
            for change in changes
        ]
        headers = ["change", "case", "status", "score", "cost Δ", "latency Δ", "why"]
        return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def _status(item: Mapping[str, Any] | None) -> str:
    return "-" if item is None else str(item.get("status"))


def _score(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


def _score_change(change: CaseChange) -> str:
    old = change.old.get("score") if change.old else None
    new = change.new.get("score") if change.new else None
    delta = change.score_delta
    text = f"{_score(old)} → {_score(new)}"
    return f"{text} ({delta:+.2f})" if delta else text


def _signed_cost(delta: Decimal | None) -> str:
    if delta is None:
        return "-"
    return f"{'+' if delta >= 0 else '-'}${abs(delta):.6f}"


def _signed_latency(delta: float | None) -> str:
    if delta is None:
        return "-"
    return f"{'+' if delta >= 0 else '-'}{format_latency(abs(delta))}"


def _cost_change(old: Any, new: Any) -> str:
    before, after = to_decimal(old), to_decimal(new)
    text = f"{'n/a' if before is None else f'${before:.6f}'} → "
    text += "n/a" if after is None else f"${after:.6f}"
    if before is not None and after is not None:
        text += f" ({_signed_cost(after - before)})"
    return text


def _latency_change(old: Any, new: Any) -> str:
    text = f"{format_latency(old)} → {format_latency(new)}"
    if isinstance(old, int | float) and isinstance(new, int | float):
        text += f" ({_signed_latency(float(new) - float(old))})"
    return text


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _reason(change: CaseChange) -> str:
    parts = []
    if change.new is not None and not change.new.get("passed"):
        parts.append(_clip(failure_reason(change.new), 100))
    calls = _calls_change(change)
    if calls:
        parts.append(_clip(calls, 80))
    return "; ".join(parts)


def _call_names(item: Mapping[str, Any] | None) -> list[str] | None:
    calls = tool_calls_of(item) if item is not None else None
    return None if calls is None else [str(call.get("name")) for call in calls]


def _calls_change(change: CaseChange) -> str:
    """``tool calls: get_weather → none`` when the tools called differ (both runs recorded
    them: a file written before tool calls were recorded says nothing)."""
    old, new = _call_names(change.old), _call_names(change.new)
    if old is None or new is None or old == new:
        return ""
    return f"tool calls: {', '.join(old) or 'none'} → {', '.join(new) or 'none'}"


def _kind(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> str | None:
    if old is None:
        return "added"
    if new is None:
        return "removed"
    if old.get("passed") and not new.get("passed"):
        return "regression"
    if not old.get("passed") and new.get("passed"):
        return "improvement"
    score = _delta(old, new, "score")
    if old.get("status") != new.get("status") or (
        score is not None and abs(score) > _SCORE_EPSILON
    ):
        return "changed"
    if (old.get("score") is None) != (new.get("score") is None):
        return "changed"
    return None


def _by_key(data: Mapping[str, Any], source: str) -> dict[Key, Mapping[str, Any]]:
    found: dict[Key, Mapping[str, Any]] = {}
    for item in data["items"]:
        key = item_key(item)
        if key in found:
            raise ConfigError(f"item {_name(key)} appears twice", source=source, key="items")
        found[key] = item
    return found


def _name(key: Key) -> str:
    return f"{key[0]}::{key[1]}[{key[2]}]"


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> Comparison:
    """What changed per (suite, case, model) from the ``old`` results to the ``new`` ones.

    A regression passed in ``old`` and fails in ``new``; an improvement is the reverse;
    "changed" is a different status or score with the same outcome; cases in one run only are
    "added" or "removed". Cost and latency deltas are reported for each changed case.
    """
    before = _by_key(check_results(old, "old results"), "old results")
    after = _by_key(check_results(new, "new results"), "new results")
    changes = []
    for key in sorted(before.keys() | after.keys()):
        kind = _kind(before.get(key), after.get(key))
        if kind is not None:
            changes.append(CaseChange(key, kind, before.get(key), after.get(key)))
    changes.sort(key=lambda change: _KINDS.index(change.kind))  # stable: keys stay sorted
    compared = len(before.keys() & after.keys())
    return Comparison(
        changes=tuple(changes),
        old_totals=compute_totals(before.values()),
        new_totals=compute_totals(after.values()),
        compared=compared,
        unchanged=compared - sum(1 for c in changes if c.kind not in ("added", "removed")),
    )


def load_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a results file, checking it is a "harness.evals/1" document (errors name the file)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"cannot read results: {error.strerror or error}", source=source
        ) from None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"not JSON: {error}", source=source) from None
    check_results(data, source)
    return dict(data)


def merge(
    datas: Sequence[Mapping[str, Any]], sources: Sequence[str] | None = None
) -> dict[str, Any]:
    """Join results documents (CI shards) into one: items sorted by (suite, case, model).

    The totals are recomputed; the same item in two documents is an error naming it and both
    sources; so is a document in another schema. The order of the inputs does not matter.
    """
    names = (
        list(sources) if sources is not None else [f"results #{i + 1}" for i in range(len(datas))]
    )
    if len(names) != len(datas):
        raise ValueError(f"{len(datas)} documents but {len(names)} sources")
    if not datas:
        raise ConfigError("nothing to merge: give at least one results file")
    seen: dict[Key, str] = {}
    items: list[Mapping[str, Any]] = []
    for data, source in zip(datas, names, strict=True):
        check_results(data, source)
        for item in data["items"]:
            key = item_key(item)
            if key in seen:
                where = (
                    "twice in " + source if seen[key] == source else f"in {seen[key]} and {source}"
                )
                raise ConfigError(f"item {_name(key)} appears {where}", source=source, key="items")
            seen[key] = source
            items.append(item)
    items.sort(key=item_key)
    modes = {str(data.get("mode")) for data in datas if data.get("mode")}
    created = [str(data["created"]) for data in datas if data.get("created")]
    return {
        "schema": SCHEMA,
        "created": max(created) if created else None,
        "mode": modes.pop() if len(modes) == 1 else ("mixed" if modes else None),
        "merged_from": names,
        "items": items,
        "totals": compute_totals(items),
    }


def merge_files(paths: Iterable[str | os.PathLike[str]]) -> dict[str, Any]:
    """:func:`merge` of results files, each named in any error about it."""
    paths = list(paths)
    return merge([load_results(path) for path in paths], [str(path) for path in paths])
