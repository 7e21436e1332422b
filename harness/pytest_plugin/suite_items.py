"""Eval suites as pytest nodes: suite files and ``Suite`` objects collect one item per
(case x model); an item reports the result its batch brought, against the baseline.

The items never call a model themselves: :class:`harness.pytest_plugin.suites.SuitePlugin`
(found in the config's stash under :data:`PLUGIN_KEY`) runs their batches and hands each
item its result.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.errors import ConfigError, HarnessError

if TYPE_CHECKING:  # config and evals are imported where used: not by sessions without suites
    from harness.config import ModelsConfig
    from harness.evals.cases import Suite
    from harness.evals.runner import EvalItem
    from harness.pytest_plugin.suites import SuitePlugin

__all__ = ["PLUGIN_KEY", "SuiteCollector", "SuiteFile", "SuiteItem", "SuiteItemFailure"]

PLUGIN_KEY = pytest.StashKey["SuitePlugin"]()


# -- collection ----------------------------------------------------------------------------------


class _SuiteNode(pytest.Collector):
    """What suite files and suite objects share: making one item per (case x model)."""

    def _items(self, suite: Suite, source: Path) -> Iterator[SuiteItem]:
        plugin: SuitePlugin = self.config.stash[PLUGIN_KEY]
        names = plugin.model_names or suite.models
        if not names:
            raise self.CollectError(
                f"{self._where()}: suite {suite.name!r} lists no models; add 'models:' or "
                "pass --llm-models"
            )
        try:
            models, models_source = plugin.models_for(source)
        except ConfigError as error:
            raise self.CollectError(f"{self._where()}: {error}") from None
        known = sorted(models.models)
        for name in names:
            if models.find(name) is None:
                raise self.CollectError(
                    f"{self._where()}: suite {suite.name!r} uses model {name!r}, which is not "
                    f"in {models_source} (known: {', '.join(known) or 'none'})"
                )
        baseline = plugin.baseline_path_for(source)
        try:
            plugin.baseline(baseline)
        except ConfigError as error:
            raise self.CollectError(str(error)) from None
        from harness.evals.runner import item_config, plan_items

        planned = plan_items([suite], list(names))
        try:  # a bad model or params value: a collection error, before any call
            for eval_item in planned:
                item_config(eval_item, models)
        except ConfigError as error:
            raise self.CollectError(f"{self._where()}: {error}") from None
        for eval_item in planned:
            yield SuiteItem.from_parent(
                self,
                name=eval_item.id,
                eval_item=eval_item,
                models=models,
                baseline=baseline,
            )

    def _where(self) -> str:
        return self.nodeid.split("::")[0]


class SuiteFile(pytest.File, _SuiteNode):
    """A ``*.suite.yaml`` or ``*.suite.jsonl`` file."""

    def collect(self) -> Iterable[pytest.Item | pytest.Collector]:
        """One item per (case x model) of the file's suite."""
        try:
            from harness.evals.cases import Suite

            suite = Suite.from_file(self.path)
        except ConfigError as error:
            raise self.CollectError(str(error)) from None
        return list(self._items(suite, self.path))


class SuiteCollector(_SuiteNode):
    """A module-level :class:`Suite` object in a test module."""

    def __init__(self, *, suite: Suite, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite

    def collect(self) -> Iterable[pytest.Item | pytest.Collector]:
        """One item per (case x model) of the suite."""
        return list(self._items(self.suite, self.path))


class SuiteItemFailure(Exception):
    """A suite item's failure: shown as its message, without a traceback."""


class SuiteItem(pytest.Item):
    """One (case x model) of a suite; its result comes from the session's prefetched batch."""

    def __init__(
        self,
        *,
        eval_item: EvalItem,
        models: ModelsConfig,
        baseline: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.eval_item = eval_item
        self.models = models
        self.baseline_path = baseline
        self.result: dict[str, Any] | None = None
        if self.config.pluginmanager.hasplugin("xdist"):  # whole groups for --dist loadgroup
            self.add_marker(pytest.mark.xdist_group(self.group))
        self.extra_keyword_matches.update(eval_item.case.tags)  # -k geography: by tag too

    @property
    def group(self) -> str:
        """The suite and model (a worker's batch; an ``xdist_group`` name, so no brackets)."""
        return f"{self.parent.nodeid if self.parent else ''}::{self.eval_item.model}"

    def runtest(self) -> None:
        """Report this item's result: fail a regression, xfail a known failure."""
        plugin: SuitePlugin = self.config.stash[PLUGIN_KEY]
        try:
            result = plugin.result_of(self)
        except HarnessError as error:  # the batch could not run (a judge not configured...)
            raise SuiteItemFailure(f"{self._where()}: {error}") from error
        plugin.baseline(self.baseline_path).apply([result])
        if result.cassette:
            result.cassette = self._shown(Path(result.cassette))
        data = result.to_json()
        status = result.status
        self.result = data
        plugin.add_result(self, data)
        self.user_properties.append(("llm_status", status))
        self.user_properties.append(("llm_score", data.get("score")))
        if data.get("error"):
            raise SuiteItemFailure(self._error_message(data))
        if status == "regression":
            raise SuiteItemFailure(self._regression_message(data))
        if status == "known_failure" or (status == "flaky" and not data.get("passed")):
            pytest.xfail(self._known_message(data, status))

    def _where(self) -> str:
        return f"{self.eval_item.suite.name}::{self.eval_item.id}"

    def _reasons(self, data: Mapping[str, Any]) -> str:
        failed = [g for g in data.get("grades") or () if not g.get("passed")]
        lines = [f"{g.get('name') or 'grader'}: {g.get('reason')}" for g in failed]
        reply = data.get("reply")
        text = "; ".join(lines) or "no grader passed"
        return f"{text}\nreply: {reply!r}" if reply is not None else text

    def _regression_message(self, data: Mapping[str, Any]) -> str:
        entry = data.get("baseline") or {}
        return (
            f"regression: {self._where()} passed in the baseline "
            f"({self._shown(self.baseline_path)}: passed={entry.get('passed')}, "
            f"score={entry.get('score')}) and fails now (score={data.get('score')}, "
            f"pass rate={data.get('pass_rate')}):\n{self._reasons(data)}"
        )

    def _known_message(self, data: Mapping[str, Any], status: str) -> str:
        if status == "flaky":
            return f"flaky, under the pass threshold: {self._reasons(data)}"
        new = " (new: no baseline entry)" if data.get("new") else ""
        return f"known failure{new}: {self._reasons(data)}"

    def _error_message(self, data: Mapping[str, Any]) -> str:
        error = str(data.get("error"))
        if "re-record" in error:  # a replay miss: the runner says what changed and what to run
            return error
        return f"{self._where()}: a model call failed: {error}"

    def rerecord_command(self) -> str:
        """The command that records this item's cassette again."""
        path = self.nodeid.split("::")[0]
        return f"pytest {path} --llm-mode=record -k '{self.name}'"

    def _shown(self, path: Path) -> str:
        with contextlib.suppress(ValueError):
            return str(path.resolve().relative_to(self.config.rootpath.resolve()))
        return str(path)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | Any:
        """A suite failure is its message; anything else, pytest's usual report."""
        if isinstance(excinfo.value, (SuiteItemFailure, pytest.xfail.Exception)):
            return str(excinfo.value)  # no traceback: it would only show this module
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the item comes from: its file and ``suite::case[model]``."""
        return self.path, None, self._where()
