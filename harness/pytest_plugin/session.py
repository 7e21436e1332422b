"""What the pytest plugin keeps for one session: its mode, budget, models, clock and records.

The session-wide settings are read once here (flag > ini > default) and checked at start-up, so
a bad ``--llm-budget`` or ``--llm-config`` stops the run before any test.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.errors import HarnessError
from harness.pytest_plugin.keyless import PlaceholderKeys
from harness.pytest_plugin.network import NetworkGuard

if TYPE_CHECKING:  # config and replay load when a session uses them (issue #14)
    from harness.config import ModelsConfig
    from harness.pytest_plugin.cassettes import TestState
    from harness.pytest_plugin.summary import TestRecord

__all__ = [
    "CALL_FAILED",
    "MODE_NAMES",
    "PLACEHOLDER_KEYS",
    "SESSION",
    "STARTED_KEY",
    "TEST_STATE",
    "Session",
    "cassette_dir",
    "ini_path",
]

STARTED_KEY = "harness_llm_run_started_at"  # the controller's start, handed to xdist workers
# harness.replay.MODES, then vcrpy's (spelled out: importing replay is what start-up avoids)
MODE_NAMES: tuple[str, ...] = ("replay", "record", "rewrite", "live")
MODE_NAMES += ("none", "new_episodes", "all", "once")
SESSION = pytest.StashKey["Session"]()
CALL_FAILED = pytest.StashKey[bool]()  # on a test item: whether its call phase failed
PLACEHOLDER_KEYS = pytest.StashKey[PlaceholderKeys]()  # on a test item: its placeholder keys
TEST_STATE: pytest.StashKey[TestState] = pytest.StashKey()  # on a test item: its ledger, cassette


class Session:
    """What the plugin keeps for one pytest session (one per worker under xdist)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.mode = _session_mode(config)
        self.started_at = _run_started_at(config)  # rewrite keeps what this run recorded
        self.budget = _budget(config)
        self.models_config = _models_config(config)
        self.real_time = bool(config.getoption("llm_real_time") or config.getini("llm_real_time"))
        self.unplayed_report: str | None = config.getoption("llm_unplayed_report")
        self.records: list[TestRecord] = []
        self.failure: str | None = None
        self.notes: list[str] = []
        self.guard: NetworkGuard | None = None
        if _guarded(self.mode):
            self.guard = NetworkGuard(_allowed_hosts(config), mode=self.mode)
            self.guard.install()

    def remaining_budget(self) -> Decimal | None:
        """What is left of ``--llm-budget`` after the tests so far (None: no budget)."""
        if self.budget is None:
            return None
        from harness.pytest_plugin.summary import total_cost

        return max(self.budget - total_cost(self.records), Decimal(0))


def _session_mode(config: pytest.Config) -> str:
    mode = config.getoption("llm_mode") or str(config.getini("llm_mode") or "replay")
    if mode.lower() not in MODE_NAMES:
        raise pytest.UsageError(f"llm_mode = {mode!r}: expected one of {', '.join(MODE_NAMES)}")
    return mode


def _guarded(mode: str) -> bool:
    """Whether the session's mode blocks the network: replay, or one that may resolve to it."""
    if mode.lower() in ("replay", "once"):  # the default: no need to load replay
        return True
    from harness.replay import resolve_mode

    return resolve_mode(mode, "") == "replay"


def _run_started_at(config: pytest.Config) -> datetime:
    """When the run started: the xdist controller's start on a worker, else now."""
    given = getattr(config, "workerinput", {}).get(STARTED_KEY)
    if given:
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(str(given))
    return datetime.now(timezone.utc)


def _budget(config: pytest.Config) -> Decimal | None:
    raw = config.getoption("llm_budget") or str(config.getini("llm_budget") or "")
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise pytest.UsageError(f"--llm-budget {raw!r}: expected an amount in USD") from None
    if value < 0:
        raise pytest.UsageError(f"--llm-budget {raw!r}: must not be negative")
    return value


def _models_config(config: pytest.Config) -> ModelsConfig | None:
    """The ``--llm-config`` (or ini ``llm_config``) file, checked once at start-up."""
    flag = config.getoption("llm_config")
    given = flag or str(config.getini("llm_config") or "")
    if not given:
        return None
    path = Path(given) if flag else ini_path(config, given)
    from harness.config import ModelsConfig

    try:
        return ModelsConfig.from_yaml_file(path)
    except HarnessError as error:
        option = "--llm-config" if flag else "llm_config (ini)"
        raise pytest.UsageError(f"{option} {given}: {error}") from None


def _allowed_hosts(config: pytest.Config) -> list[str]:
    flag = config.getoption("llm_allow_hosts")
    hosts = flag.split(",") if flag else list(config.getini("llm_allow_hosts"))
    return [h for item in hosts for h in item.split(",") if h.strip()]


def ini_path(config: pytest.Config, value: str) -> Path:
    """A path-valued ini key, relative to the ini file's folder (the rootdir without one)."""
    base = config.inipath.parent if config.inipath is not None else config.rootpath
    return base / value


def cassette_dir(config: pytest.Config) -> Path:
    """The session's cassette directory: flag (at the rootdir) > ini > ``cassettes``."""
    flag = config.getoption("llm_cassette_dir")
    if flag:
        directory = Path(flag)
        return directory if directory.is_absolute() else config.rootpath / directory
    return ini_path(config, str(config.getini("llm_cassette_dir") or "cassettes"))
