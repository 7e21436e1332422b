"""Eval suites under pytest: collection, scheduling, baseline outcomes, summary and reports.

Wired from :mod:`harness.pytest_plugin` (options in its ``llm`` group; a :class:`SuitePlugin`
registered per session; the collectors and items are in :mod:`harness.pytest_plugin.suite_items`).
The evals themselves live in :mod:`harness.evals`; this package only collects, schedules and
reports.

Collection. Files matching the ini key ``llm_suite_files`` (default ``*.suite.yaml
*.suite.jsonl``; a ``x.suite.yaml`` beside a ``x.suite.jsonl`` holds the JSONL file's settings
and is not a suite of its own) and module-level :class:`harness.evals.Suite` objects in test
modules become collectors; each (case x model) is one item, ``suites/qa.suite.yaml::
capital-of-france[local-smollm2]``. Models: ``--llm-models`` or the suite's list, looked up in
``--llm-config``, else a ``models.yaml`` beside the suite file, else the ini ``llm_config``.

Scheduling. An item does not call the model itself: the model calls of a *batch* of items run
ahead of them on one background event loop (:func:`harness.evals.run_items`, at most
``--llm-concurrency`` at a time, one batch after the other), and each item waits only for its
own result, so results show up as they arrive. Which batch an item's first run starts:

* without pytest-xdist: every suite item of the session, at once;
* on an xdist worker: the item's *group*, its suite and model (``suites/qa.suite.yaml::[m]``).
  No (case, model) may be called by two workers, and a worker cannot see which items it will
  be handed, so the group must go to one worker whole. For ``--dist load`` (what ``-n`` uses)
  this plugin makes the scheduler (``pytest_xdist_make_scheduler``): xdist's
  ``LoadScopeScheduling`` with a scope per group for suite items and a scope per test for
  everything else (:func:`xdist_scope`, computed from the node id alone, since the controller
  does not collect). ``loadscope`` and ``loadfile`` keep whole files or suites together, which
  keeps groups whole too; for ``loadgroup`` suite items carry an ``xdist_group`` mark of their
  group. ``each`` runs everything everywhere, so a worker batches everything. ``worksteal``
  may move single tests between workers: there a batch is the item alone (no concurrency, and
  still no call twice). (Another plugin that makes the ``load`` scheduler first would break
  the first rule: a worker would then call its whole group, some of it twice.)

Outcomes, against the baseline (``baseline.json`` beside the suite file, or ini
``llm_baseline``): a regression fails with the reason and the baseline entry; a known failure
is xfail; an improvement passes and is listed; a flaky case passes or is xfail by its pass
rate and is listed. A failed model call (a changed case in replay mode: a cassette miss) fails
the item whatever the baseline says, with the command that re-records it.

Results cross from xdist workers to the controller the way the plugin's per-test records do
(``workeroutput`` at the worker's session end, read in ``pytest_testnodedown``); the controller
alone writes ``--llm-update-baseline``, ``--llm-report DIR`` and the terminal summary.
``--llm-shard K/N`` keeps the items whose node id hashes to shard K of N (stable across
machines and runs, whatever the order).
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.errors import ConfigError
from harness.pytest_plugin.session import ini_path
from harness.pytest_plugin.suite_items import (
    PLUGIN_KEY,
    SuiteCollector,
    SuiteFile,
    SuiteItem,
)
from harness.pytest_plugin.suite_prefetch import Prefetcher

if TYPE_CHECKING:  # config and evals are imported where used: not by sessions without suites
    from harness.config import ModelsConfig
    from harness.evals.baseline import Baseline
    from harness.evals.results import ItemResult

__all__ = [
    "PLUGIN_KEY",
    "SuiteCollector",
    "SuiteFile",
    "SuiteItem",
    "SuitePlugin",
    "add_suite_options",
    "xdist_scope",
]

DEFAULT_SUITE_FILES = ("*.suite.yaml", "*.suite.jsonl")
_WORKER_KEY = "harness_llm_suite_results"
_SCHEMA = "harness.evals/1"


# -- options -------------------------------------------------------------------------------------


def add_suite_options(group: Any, parser: pytest.Parser) -> None:
    """The suite flags and ini keys, in the plugin's ``llm`` group."""
    group.addoption(
        "--llm-models",
        default=None,
        metavar="NAMES",
        help="comma-separated models to run every suite against, instead of the suites' lists",
    )
    group.addoption(
        "--llm-concurrency",
        type=int,
        default=None,
        metavar="N",
        help="model calls of eval suites in flight at once (default 8). ini: llm_concurrency",
    )
    group.addoption(
        "--llm-update-baseline",
        action="store_true",
        default=False,
        help="rewrite the eval baseline from this run's results",
    )
    group.addoption(
        "--llm-report",
        default=None,
        metavar="DIR",
        help="write results.json, summary.md and report.html of the eval suites to DIR",
    )
    group.addoption(
        "--llm-shard",
        default=None,
        metavar="K/N",
        help="run shard K of N: a stable 1/N of the collected items, by node id",
    )
    parser.addini(
        "llm_suite_files",
        "glob patterns of eval suite files",
        type="args",
        default=list(DEFAULT_SUITE_FILES),
    )
    parser.addini("llm_concurrency", "default --llm-concurrency", default="8")
    parser.addini(
        "llm_baseline", "eval baseline file (default: baseline.json beside each suite)", default=""
    )


def _concurrency(config: pytest.Config) -> int:
    raw = config.getoption("llm_concurrency")
    if raw is None:
        raw = str(config.getini("llm_concurrency") or "8")
    try:
        value = int(raw)
    except ValueError:
        raise pytest.UsageError(f"llm_concurrency = {raw!r}: expected a whole number") from None
    if value < 1:
        raise pytest.UsageError(f"--llm-concurrency {value}: must be at least 1")
    return value


def _model_names(config: pytest.Config) -> tuple[str, ...] | None:
    flag = config.getoption("llm_models")
    if not flag:
        return None
    names = tuple(n.strip() for n in str(flag).split(",") if n.strip())
    if not names:
        raise pytest.UsageError(f"--llm-models {flag!r}: expected comma-separated model names")
    return names


def _matches(path: Path, patterns: Iterable[str]) -> bool:
    return any(path.match(pattern) for pattern in patterns)


def xdist_scope(nodeid: str, patterns: Sequence[str]) -> str:
    """The xdist work unit of a node id: ``<suite>::[<model>]`` for suite items, else itself.

    Suite items are ``<file>::<case>[<model>]`` for suite files (the file matches
    ``patterns``) and ``<module>::<suite>::<case>[<model>]`` for ``Suite`` objects. Other
    tests of the latter shape (parametrized methods) are grouped by class and parameter too,
    which costs nothing but a little balance.
    """
    head, sep, last = nodeid.rpartition("::")
    if not sep or not last.endswith("]") or "[" not in last:
        return nodeid
    model = last[last.rindex("[") + 1 : -1]
    if "::" not in head and not _matches(Path(head), patterns):
        return nodeid
    return f"{head}::[{model}]"


# -- the session ---------------------------------------------------------------------------------


class SuitePlugin:
    """The suite side of one pytest session (controller or xdist worker)."""

    def __init__(self, config: pytest.Config, *, mode: str, cassette_dir: Path) -> None:
        self.config = config
        self.mode = mode
        self.cassette_dir = _near(cassette_dir / "suites")
        self.patterns = tuple(config.getini("llm_suite_files") or DEFAULT_SUITE_FILES)
        self.model_names = _model_names(config)
        self.concurrency = _concurrency(config)
        shard = config.getoption("llm_shard")
        self.shard: tuple[int, int] | None = None
        if shard:
            from harness.evals.runner import parse_shard

            try:
                self.shard = parse_shard(shard, flag="--llm-shard")
            except ValueError as error:
                raise pytest.UsageError(str(error)) from None
        self.update_baseline = bool(config.getoption("llm_update_baseline"))
        report = config.getoption("llm_report")
        self.report_dir = Path(report) if report else None
        self.results: list[dict[str, Any]] = []  # item JSON, with "baseline_file"
        self.written: list[str] = []
        self._models: dict[Path, tuple[ModelsConfig, str]] = {}
        self._baselines: dict[Path, Baseline] = {}
        self._prefetch = Prefetcher(
            mode=mode, cassette_dir=self.cassette_dir, concurrency=self.concurrency
        )
        self._lock = threading.Lock()
        config.stash[PLUGIN_KEY] = self

    # configuration lookups

    def models_for(self, source: Path) -> tuple[ModelsConfig, str]:
        """The models config for a suite from ``source`` and where it came from: ``--llm-config``
        > the ``models.yaml`` beside the suite > the ini ``llm_config`` > a ConfigError."""
        flag = self.config.getoption("llm_config")
        ini = str(self.config.getini("llm_config") or "")
        beside = (source.parent / "models.yaml").resolve()
        if flag:
            path, origin = Path(flag).resolve(), "--llm-config"
        elif beside.is_file():
            path, origin = beside, "the models.yaml beside the suite file"
        elif ini:
            path, origin = ini_path(self.config, ini).resolve(), "the ini key llm_config"
        else:
            raise ConfigError(
                f"no models config: no {beside}; pass --llm-config FILE or set llm_config in "
                "the ini file"
            )
        if path not in self._models:
            from harness.config import ModelsConfig

            try:
                loaded = ModelsConfig.from_yaml_file(path)
            except ConfigError as error:
                raise ConfigError(f"{error} (the models config, from {origin})") from None
            self._models[path] = (loaded, f"{path} (from {origin})")
        return self._models[path]

    def baseline_path_for(self, source: Path) -> Path:
        """``baseline.json`` beside the suite file, unless the ini ``llm_baseline`` says
        (relative to the ini file's folder)."""
        ini = str(self.config.getini("llm_baseline") or "")
        if ini:
            return ini_path(self.config, ini).resolve()
        return (source.parent / "baseline.json").resolve()

    def baseline(self, path: Path) -> Baseline:
        """The baseline in ``path`` (empty when the file does not exist), loaded once."""
        from harness.evals.baseline import Baseline

        with self._lock:
            if path not in self._baselines:
                try:
                    self._baselines[path] = Baseline.load(path)
                except ConfigError:
                    if not self.update_baseline:
                        raise
                    self._baselines[path] = Baseline()  # unreadable: rewritten at the end
            return self._baselines[path]

    def _shown(self, path: Path) -> str:
        with contextlib.suppress(ValueError):
            return str(path.resolve().relative_to(self.config.rootpath.resolve()))
        return str(path)

    # collection

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> Any:
        """Suite files become collectors (a JSONL suite's settings file does not)."""
        if not _matches(file_path, self.patterns):
            return None
        from harness.evals.cases import is_settings_file

        if is_settings_file(file_path):
            return None
        return SuiteFile.from_parent(parent, path=file_path)

    @pytest.hookimpl(tryfirst=True)
    def pytest_pycollect_makeitem(self, collector: pytest.Collector, name: str, obj: Any) -> Any:
        """A module-level ``Suite`` object in a test module is collected like a suite file."""
        cases = sys.modules.get("harness.evals.cases")  # not imported: obj is no Suite
        if cases is None or not isinstance(collector, pytest.Module):
            return None
        if isinstance(obj, cases.Suite):
            return SuiteCollector.from_parent(collector, name=name, suite=obj)
        return None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """Keep this shard's items; refuse one (suite, case, model) collected twice."""
        if self.shard is not None:
            from harness.evals.runner import shard_of

            k, n = self.shard
            kept = [item for item in items if shard_of(item.nodeid, n) == k]
            dropped = [item for item in items if shard_of(item.nodeid, n) != k]
            if dropped:
                config.hook.pytest_deselected(items=dropped)
            items[:] = kept
        seen: dict[tuple[str, str, str], str] = {}
        for item in items:
            if isinstance(item, SuiteItem):
                other = seen.setdefault(item.eval_item.key, item.nodeid)
                if other != item.nodeid:
                    suite, case, model = item.eval_item.key
                    raise pytest.UsageError(
                        f"suite {suite!r} case {case!r} on model {model!r} is collected twice "
                        f"({other} and {item.nodeid}): its results and cassette would clash"
                    )

    # running

    def _batch_for(self, item: SuiteItem) -> list[SuiteItem]:
        session_items = [i for i in item.session.items if isinstance(i, SuiteItem)]
        workerinput = getattr(self.config, "workerinput", None)
        if workerinput is None:
            return session_items
        dist = str(self.config.getoption("dist", "load") or "load")
        if dist == "each":
            return session_items
        if dist in ("load", "loadscope", "loadfile", "loadgroup"):
            return [i for i in session_items if i.group == item.group]
        return [item]

    def result_of(self, item: SuiteItem) -> ItemResult:
        """The item's result: start its batch if it is not running yet, then wait for it."""
        if not self._prefetch.submitted(item.eval_item):
            batch = self._batch_for(item)
            if item not in batch:
                batch = [item, *batch]
            by_models: dict[int, list[SuiteItem]] = {}
            for member in batch:
                by_models.setdefault(id(member.models), []).append(member)
            for members in by_models.values():
                self._prefetch.submit(
                    [m.eval_item for m in members],
                    members[0].models,
                    {m.eval_item.key: m.rerecord_command() for m in members},
                )
        return self._prefetch.result(item.eval_item)

    def add_result(self, item: SuiteItem, data: dict[str, Any]) -> None:
        """Keep an item's result (with its baseline file) for the summary and reports."""
        self.results.append({**data, "baseline_file": str(item.baseline_path)})

    # the end of the session

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Workers hand their results over; the controller writes the baseline and reports."""
        self._prefetch.close()
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[_WORKER_KEY] = json.dumps(self.results)
            return
        if not self.results:
            return
        if self.update_baseline:
            self._write_baselines()
        if self.report_dir is not None:
            from harness.evals.report import write_reports

            write_reports(self.merged(), self.report_dir)
            self.written.append(f"reports: {self.report_dir}")

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """pytest-xdist: take a finished worker's results."""
        text = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
        if text:
            self.results.extend(json.loads(text))

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """pytest-xdist ``--dist load``: keep each suite x model on one worker (see above)."""
        if config.getoption("dist") != "load":
            return None
        return _make_scheduler(config, log, self.patterns)

    def spent(self) -> Decimal:
        """What this run's eval items cost in USD, judges included (unpriced ones count 0)."""
        total = Decimal(0)
        for data in self.results:
            judge = data.get("judge") or {}
            for cost in (data.get("cost"), judge.get("cost")):
                if cost is not None:
                    total += Decimal(str(cost))
        return total

    def merged(self) -> dict[str, Any]:
        """Every item's result in this run (all workers), as one ``harness.evals/1`` dict."""
        items = [
            {k: v for k, v in data.items() if k != "baseline_file"}
            for data in sorted(self.results, key=lambda d: (d["suite"], d["case"], d["model"]))
        ]
        raw = {
            "schema": _SCHEMA,
            "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "mode": self.mode,
            "items": items,
        }
        from harness.evals.results import SuiteResult

        return SuiteResult.from_json(raw).to_json()

    def _write_baselines(self) -> None:
        by_file: dict[str, list[dict[str, Any]]] = {}
        for data in self.results:
            by_file.setdefault(data["baseline_file"], []).append(data)
        for name, rows in sorted(by_file.items()):
            path = Path(name)
            from harness.evals.results import ItemResult

            results = [ItemResult.from_json(row) for row in rows]
            self.baseline(path).updated(results).save(path)
            self.written.append(f"baseline updated: {self._shown(path)} ({len(rows)} entries)")

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """The suite x model table and the closing line, over every worker's results."""
        if hasattr(self.config, "workerinput") or not self.results:
            return
        terminalreporter.section(f"harness evals (--llm-mode={self.mode})")
        from harness.evals.report import render_terminal

        for line in render_terminal(self.merged()).splitlines():
            terminalreporter.write_line(line)
        for line in self.written:
            terminalreporter.write_line(line)


def _near(path: Path) -> Path:
    """``path`` relative to the working directory when it is under it (shorter messages)."""
    with contextlib.suppress(ValueError):
        return path.resolve().relative_to(Path.cwd())
    return path


def _make_scheduler(config: pytest.Config, log: Any, patterns: Sequence[str]) -> Any:
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class SuiteScheduling(LoadScopeScheduling):  # type: ignore[misc]
        """xdist's load scheduling, with each suite x model kept on one worker."""

        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid, patterns)

    return SuiteScheduling(config, log)
