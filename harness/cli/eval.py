"""``harness eval``: run suites without pytest, merge shard results, compare two runs.

    harness eval run FILE... [--models a,b] [--config models.yaml] [--mode replay]
                     [--cassette-dir cassettes/suites] [--concurrency 8] [--report DIR]
                     [--baseline FILE] [--update-baseline] [--shard K/N]
    harness eval merge OUT.json IN.json...
    harness eval compare OLD.json NEW.json

Exit status: ``run`` 1 on a regression or a failed model call (a case changed since it was
recorded, in replay mode), ``compare`` 1 on a regression, else 0; 2 on a usage error, a missing
or invalid file (the message names it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.config import ModelsConfig
from harness.errors import HarnessError
from harness.evals.baseline import Baseline
from harness.evals.cases import load_suites
from harness.evals.compare import compare, load_results, merge_files
from harness.evals.report import render_terminal, write_reports
from harness.evals.results import ItemResult, SuiteResult
from harness.evals.runner import (
    DEFAULT_CASSETTE_DIR,
    EvalItem,
    parse_shard,
    plan_items,
    run_items,
    shard_of,
)
from harness.replay import MODES
from harness.replay.cassette import atomic_write

__all__ = ["EvalCommandError", "add_eval_parser"]


class EvalCommandError(HarnessError):
    """A usage problem ``harness eval`` reports with exit status 2."""


def add_eval_parser(commands: Any) -> None:
    """Add ``eval run|merge|compare`` to the ``harness`` command's subparsers."""
    parser = commands.add_parser(
        "eval",
        help="run eval suites, merge and compare results",
        description="Run eval suites without pytest, join the results of shards and compare "
        "two runs.",
    )
    sub = parser.add_subparsers(dest="eval_command", required=True)

    run = sub.add_parser(
        "run",
        help="run suite files without pytest (exit 1 on a regression)",
        description="Run the cases of suite files against their models (from cassettes in "
        "replay mode), grade them and compare with the baseline. Exit status 1 on a "
        "regression or a failed model call, 2 on a usage error.",
    )
    run.add_argument("files", nargs="+", metavar="FILE", help="*.suite.yaml / *.suite.jsonl")
    run.add_argument("--models", help="comma-separated models, instead of the suites' lists")
    run.add_argument(
        "--config", help="models YAML (default: models.yaml beside the first suite file)"
    )
    run.add_argument("--mode", default="replay", choices=MODES, help="default: replay")
    run.add_argument(
        "--cassette-dir",
        default=DEFAULT_CASSETTE_DIR,
        help=f"default: {DEFAULT_CASSETTE_DIR}",
    )
    run.add_argument("--concurrency", type=int, default=8, help="model calls at once (8)")
    run.add_argument("--report", metavar="DIR", help="write results.json, summary.md, report.html")
    run.add_argument(
        "--baseline", metavar="FILE", help="default: baseline.json beside each suite file"
    )
    run.add_argument(
        "--update-baseline", action="store_true", help="rewrite the baseline from this run"
    )
    run.add_argument(
        "--shard",
        metavar="K/N",
        help="run shard K of N: a stable 1/N of the items, split as pytest --llm-shard splits them",
    )
    run.set_defaults(run=_run)

    merge = sub.add_parser(
        "merge",
        help="join results.json files of shards into one",
        description="Join the results.json files that the shards of one run wrote into a "
        "single results.json.",
    )
    merge.add_argument("out", metavar="OUT.json", help="where to write the merged results")
    merge.add_argument(
        "inputs", nargs="+", metavar="IN.json", help="results.json files of the shards to merge"
    )
    merge.set_defaults(run=_merge)

    diff = sub.add_parser(
        "compare",
        help="print the cases that changed between two runs (exit 1 on a regression)",
        description="Print the cases whose outcome changed between two results.json files. "
        "Exit status 1 when a case regressed.",
    )
    diff.add_argument("old", metavar="OLD.json", help="the earlier results.json")
    diff.add_argument("new", metavar="NEW.json", help="the later results.json")
    diff.set_defaults(run=_compare)


def _existing(path: str) -> Path:
    file = Path(path)
    if not file.is_file():
        raise EvalCommandError(f"{path}: no such file")
    return file


def _models_config(args: argparse.Namespace, files: Sequence[Path]) -> ModelsConfig:
    if args.config:
        return ModelsConfig.from_yaml_file(_existing(args.config))
    beside = files[0].parent / "models.yaml"
    if not beside.is_file():
        raise EvalCommandError(f"no models config: no {beside}; pass --config FILE")
    return ModelsConfig.from_yaml_file(beside)


def _baseline_path(args: argparse.Namespace, item: EvalItem) -> Path:
    if args.baseline:
        return Path(args.baseline)
    source = item.suite.path
    return (source.parent if source is not None else Path()) / "baseline.json"


def _rerecord_command(item: EvalItem) -> str:
    """What re-records an item from the command line: record mode adds what is new."""
    return f"harness eval run {item.suite.path or '<suite file>'} --mode record"


def item_id(item: EvalItem) -> str:
    """The item's pytest node id, ``<suite file>::<case>[<model>]``, relative to the cwd."""
    path = item.suite.path
    if path is None:
        return f"{item.suite.name}::{item.id}"
    if path.is_absolute():
        with contextlib.suppress(ValueError):  # outside the cwd: the absolute path
            path = path.relative_to(Path.cwd())
    return f"{path.as_posix()}::{item.id}"


def _load_baseline(path: Path, updating: bool) -> Baseline:
    try:
        return Baseline.load(path)
    except HarnessError:
        if not updating:
            raise
        return Baseline()  # unreadable (an old format, say): rewritten from this run


def _run(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        raise EvalCommandError(f"--concurrency {args.concurrency}: must be at least 1")
    files = [_existing(f) for f in args.files]
    suites = load_suites(files)
    names = [n.strip() for n in (args.models or "").split(",") if n.strip()] or None
    models = _models_config(args, files)
    items = plan_items(suites, names)
    if args.shard:
        try:
            k, n = parse_shard(args.shard, flag="--shard")
        except ValueError as error:
            raise EvalCommandError(str(error)) from None
        items = [item for item in items if shard_of(item_id(item), n) == k]
    paths = [_baseline_path(args, item) for item in items]
    baselines = {path: _load_baseline(path, args.update_baseline) for path in set(paths)}
    results = asyncio.run(
        run_items(
            items,
            models,
            mode=args.mode,
            cassette_dir=args.cassette_dir,
            concurrency=args.concurrency,
            rerecord=_rerecord_command,
        )
    )
    by_file: dict[Path, list[ItemResult]] = {}
    for path, result in zip(paths, results, strict=True):
        by_file.setdefault(path, []).append(result)
    for path, chosen in by_file.items():
        baselines[path].apply(chosen)
    data = SuiteResult(items=results, mode=args.mode).to_json()
    print(render_terminal(data))
    for result in results:
        if result.error:
            print(f"error: {result.suite}::{result.id}: {result.error}")
    if args.report:
        write_reports(data, args.report)
        print(f"reports: {args.report}")
    if args.update_baseline:
        for path, chosen in sorted(by_file.items()):
            baselines[path].updated(chosen).save(path)
            print(f"baseline updated: {path} ({len(chosen)} entries)")
    failed = any(r.status == "regression" or r.error for r in results)
    return 1 if failed else 0


def _merge(args: argparse.Namespace) -> int:
    inputs = [_existing(p) for p in args.inputs]
    data = merge_files(inputs)
    atomic_write(Path(args.out), json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    count = len(data.get("items") or [])
    print(f"merged {len(inputs)} files ({count} items) into {args.out}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    comparison = compare(load_results(args.old), load_results(args.new))
    print(comparison.render())
    return 1 if comparison.has_regressions else 0
