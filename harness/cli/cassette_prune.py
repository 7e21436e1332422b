"""``harness cassettes prune``: drop the interactions a run reported unplayed.

The report is what ``pytest --llm-unplayed-report FILE`` wrote; each entry is checked against
the cassette as it is now (a cassette changed since the run is refused), and the file is
rewritten under its lock, in its own format.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock

from harness.cli.cassette_files import (
    YAML_DUMPER,
    YAML_LOADER,
    CommandError,
    cassette_format,
    existing_file,
)
from harness.replay import (
    Cassette,
    Interaction,
    RecordedRequest,
    dump_interactions,
    load_interactions,
)
from harness.replay.cassette import atomic_write
from harness.replay.matching import request_fingerprint

__all__ = ["run_prune"]


def _report_entry(report_path: Path, cassette: Path) -> dict[str, Any]:
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CommandError(f"{report_path}: not a JSON unplayed report: {exc}") from None
    entries = report if isinstance(report, list) else [report]
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("cassette"), str):
            raise CommandError(f"{report_path}: expected objects with a 'cassette' path")
        named = Path(entry["cassette"])
        candidates = [named] if named.is_absolute() else [named, report_path.parent / named]
        if any(c.exists() and os.path.samefile(c, cassette) for c in candidates):
            return entry
    raise CommandError(f"{report_path}: no entry for {cassette}")


def _differs(item: dict[str, Any], request: RecordedRequest) -> bool:
    """Whether a report entry describes another request than the one now at its index."""
    return (
        str(item.get("method", request.method)).upper() != request.method
        or item.get("uri", request.uri) != request.uri
        or ("fingerprint" in item and item["fingerprint"] != request_fingerprint(request))
    )


def _unplayed_indexes(
    entry: dict[str, Any], interactions: list[Interaction], cassette: Path, report: str
) -> list[int]:
    """The indexes to drop, checked against the cassette as it is now."""
    where = f"{cassette} (report {report})"
    count = entry.get("interactions")
    if isinstance(count, int) and count > len(interactions):
        raise CommandError(
            f"{cassette}: {len(interactions)} interaction(s) now, {count} when {report} was "
            "written: the cassette lost interactions since the report was written; re-run "
            "pytest with --llm-unplayed-report for a fresh report"
        )
    indexes = set()
    for item in entry.get("unplayed") or []:
        index = item.get("index") if isinstance(item, dict) else item
        if not isinstance(index, int) or isinstance(index, bool):
            raise CommandError(f"{where}: unplayed entries must be indexes or {{'index': ...}}")
        if not 0 <= index < len(interactions):
            raise CommandError(f"{where}: no interactions[{index}] in the cassette")
        request = interactions[index].request
        if isinstance(item, dict) and _differs(item, request):
            raise CommandError(
                f"{where}: interactions[{index}] is no longer the {item.get('method')} "
                f"{item.get('uri')} request the run reported; the cassette changed since the "
                "run (re-run pytest with --llm-unplayed-report for a fresh report)"
            )
        indexes.add(index)
    return sorted(indexes)


def _report_cassettes(report_path: Path) -> list[Path]:
    """Every cassette a report names (relative paths: from the report's folder)."""
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CommandError(f"{report_path}: not a JSON unplayed report: {exc}") from None
    entries = report if isinstance(report, list) else [report]
    paths = []
    for entry in entries:
        name = entry.get("cassette") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            raise CommandError(f"{report_path}: expected objects with a 'cassette' path")
        path = Path(name) if Path(name).is_absolute() else report_path.parent / name
        if not path.exists() and not entry.get("unplayed"):
            continue  # a test that made no request: its cassette was never written
        paths.append(path)
    return paths


def run_prune(args: argparse.Namespace) -> int:
    """Prune one cassette (``args.file``) or every cassette the report names, with a summary."""
    if args.file is not None:
        _prune_file(existing_file(args.file), args)
        return 0
    pruned: dict[Path, int] = {}
    for cassette in _report_cassettes(existing_file(args.unplayed)):
        pruned[cassette] = _prune_file(existing_file(str(cassette)), args)
    dropped = sum(pruned.values())
    if not dropped:
        print("nothing to prune: the report lists no unplayed interactions")
    else:
        verb = "would prune" if args.dry_run else "pruned"
        touched = sum(1 for n in pruned.values() if n)
        print(f"{verb} {dropped} interaction(s) from {touched} cassette(s)")
    return 0


def _prune_file(file: Path, args: argparse.Namespace) -> int:
    """Drop (or with ``--dry-run`` list) the unplayed interactions of one cassette; how many."""
    entry = _report_entry(existing_file(args.unplayed), file)
    with FileLock(Cassette(file).lock_path, timeout=60):
        text = file.read_text(encoding="utf-8")
        interactions = load_interactions(file)
        drop = _unplayed_indexes(entry, interactions, file, args.unplayed)
        verb = "would drop" if args.dry_run else "dropping"
        for i in drop:
            request = interactions[i].request
            print(f"{verb} interactions[{i}]: {request.method} {request.uri}")
        print(f"{file}: {verb} {len(drop)} of {len(interactions)} interaction(s)")
        if args.dry_run or not drop:
            return len(drop)
        gone = set(drop)
        if cassette_format(text) == "harness":
            _, new_text = dump_interactions(x for i, x in enumerate(interactions) if i not in gone)
        else:  # keep vcrpy's own layout: drop the items from the document as it is
            data = yaml.load(text, Loader=YAML_LOADER)
            data["interactions"] = [x for i, x in enumerate(data["interactions"]) if i not in gone]
            new_text = yaml.dump(data, Dumper=YAML_DUMPER, sort_keys=False, allow_unicode=True)
        atomic_write(file, new_text)
    return len(drop)
