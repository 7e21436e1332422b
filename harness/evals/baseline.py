"""The baseline: per (suite, case, model), whether it passed and its score when last accepted.

File (``suites/baseline.json``, schema ``harness.baseline/1``)::

    {"schema": "harness.baseline/1",
     "entries": {"<suite>::<case>[<model>]": {"passed": true, "score": 1.0}, ...}}

Rules (:meth:`Baseline.classify`): passed before and fails now = ``regression``; fails in
both = ``known_failure``; failed before and passes now = ``improvement``; no entry and fails =
``known_failure`` (listed as new); no entry and passes, or passes in both = ``pass``. A case
that passes and fails across repeats is ``flaky``, unless it is a regression (it still passes
or fails by the suite's ``pass_threshold``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.evals.results import ItemResult

__all__ = ["BASELINE_SCHEMA", "Baseline", "BaselineEntry", "baseline_key"]

BASELINE_SCHEMA = "harness.baseline/1"


def baseline_key(suite: str, case: str, model: str) -> str:
    """``<suite>::<case>[<model>]``, the key of an entry in the file."""
    return f"{suite}::{case}[{model}]"


@dataclass(frozen=True)
class BaselineEntry:
    """What the baseline says about one (suite, case, model)."""

    passed: bool
    score: float

    def to_json(self) -> dict[str, Any]:
        """The entry as stored."""
        return {"passed": self.passed, "score": self.score}


def _key_of(key: str | tuple[str, str, str] | ItemResult) -> str:
    if isinstance(key, ItemResult):
        return baseline_key(*key.key)
    if isinstance(key, tuple):
        return baseline_key(*key)
    return key


class Baseline:
    """Accepted outcomes that decide regressions, known failures and improvements."""

    def __init__(self, entries: Mapping[str, BaselineEntry] | None = None) -> None:
        self.entries: dict[str, BaselineEntry] = dict(entries or {})

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, (str, tuple, ItemResult)):
            return _key_of(key) in self.entries
        return False

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Baseline:
        """Read a baseline file; a missing file is an empty baseline."""
        path = Path(path)
        if not path.exists():
            return cls()
        source = str(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"invalid JSON at line {exc.lineno}: {exc.msg}", source=source
            ) from exc
        if not isinstance(data, dict) or data.get("schema") != BASELINE_SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise ConfigError(
                f"not a {BASELINE_SCHEMA} file (schema: {found!r}); rewrite it with "
                "--llm-update-baseline",
                source=source,
                key="schema",
            )
        raw = data.get("entries", {})
        if not isinstance(raw, dict):
            raise ConfigError("must be a mapping", source=source, key="entries")
        entries = {}
        for key, value in raw.items():
            if (
                not isinstance(value, dict)
                or not isinstance(value.get("passed"), bool)
                or not isinstance(value.get("score", 0.0), (int, float))
            ):
                raise ConfigError(
                    'expected {"passed": true|false, "score": number}',
                    source=source,
                    key=f"entries.{key}",
                )
            entries[key] = BaselineEntry(value["passed"], float(value.get("score", 0.0)))
        return cls(entries)

    def get(self, key: str | tuple[str, str, str] | ItemResult) -> BaselineEntry | None:
        """The entry for a key (``(suite, case, model)``, its string form, or a result)."""
        return self.entries.get(_key_of(key))

    def classify(self, result: ItemResult) -> str:
        """The status of ``result`` against this baseline (changes nothing)."""
        entry = self.get(result)
        if entry is not None and entry.passed and not result.passed:
            return "regression"
        if result.flaky:
            return "flaky"
        if result.passed:
            return "improvement" if entry is not None and not entry.passed else "pass"
        return "known_failure"

    def apply(self, results: Iterable[ItemResult]) -> None:
        """Set ``status``, ``new`` and ``baseline`` on each result."""
        for result in results:
            entry = self.get(result)
            result.status = self.classify(result)
            result.new = entry is None and not result.passed
            result.baseline = entry.to_json() if entry is not None else None

    def updated(self, results: Iterable[ItemResult]) -> Baseline:
        """A new baseline: these results' outcomes replace their entries; others are kept."""
        entries = dict(self.entries)
        for result in results:
            entries[_key_of(result)] = BaselineEntry(result.passed, round(result.score_mean, 6))
        return Baseline(entries)

    def to_json(self) -> dict[str, Any]:
        """The file's content, entries sorted by key."""
        return {
            "schema": BASELINE_SCHEMA,
            "entries": {k: self.entries[k].to_json() for k in sorted(self.entries)},
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the file: stable, sorted, one entry per line (atomic replace)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.to_json()
        lines = ["{", f'  "schema": {json.dumps(data["schema"])},', '  "entries": {']
        keys = list(data["entries"])
        for i, key in enumerate(keys):
            comma = "," if i < len(keys) - 1 else ""
            entry = json.dumps(data["entries"][key], sort_keys=True)
            lines.append(f"    {json.dumps(key)}: {entry}{comma}")
        lines += ["  }", "}"]
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, path)
