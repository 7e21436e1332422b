"""``--llm-unplayed-report FILE``: the run's unplayed interactions, for ``harness cassettes
prune --unplayed FILE``.

Each test that ran on a cassette hands over the report its transport writes
(:meth:`harness.replay.ReplayTransport.unplayed_report`, one entry); the entries of a
cassette used by several tests (or xdist workers) are merged: an interaction is unplayed only
when no test played it. A test that failed counts as having played everything, so a failure
never gets a needed interaction pruned. The end-of-run summary lists the same merged view.

No pytest here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.replay import ReplayTransport

__all__ = ["merge_unplayed", "unplayed_entry", "write_report"]


def unplayed_entry(transport: ReplayTransport, *, failed: bool) -> dict[str, Any]:
    """The transport's unplayed report (one cassette); nothing unplayed when ``failed``."""
    entry = transport.unplayed_report()
    if failed:
        entry["unplayed"] = []
    return entry


def _key(item: dict[str, Any]) -> tuple[Any, ...]:
    return (item.get("index"), item.get("method"), item.get("uri"), item.get("fingerprint"))


def merge_unplayed(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per cassette; unplayed: what every test on that cassette left unplayed."""
    merged: dict[str, dict[str, Any]] = {}
    for entry in entries:
        path = str(entry["cassette"])
        known = merged.get(path)
        if known is None:
            merged[path] = {**entry, "unplayed": list(entry.get("unplayed") or [])}
            continue
        theirs = {_key(item) for item in entry.get("unplayed") or []}
        known["unplayed"] = [item for item in known["unplayed"] if _key(item) in theirs]
        known["interactions"] = max(known["interactions"], entry["interactions"])
    return [merged[path] for path in sorted(merged)]


def write_report(path: str | os.PathLike[str], entries: Iterable[dict[str, Any]]) -> int:
    """Write the merged report (a JSON list of entries); the number of unplayed interactions."""
    report = merge_unplayed(entries)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return sum(len(entry["unplayed"]) for entry in report)
