"""The plugin's fixtures: per-test state, the configuration fixtures a conftest may override,
the ``llm_cassette`` (with its markers), ``llm_costs``, ``fake_llm`` and the ``llm`` factory.

Registered by :func:`harness.pytest_plugin.pytest_configure`; the precedence of every setting
(flag > marker > fixture > ini > default) is resolved in :func:`llm_cassette`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.pytest_plugin.network import NetworkGuard
from harness.pytest_plugin.session import (
    CALL_FAILED,
    PLACEHOLDER_KEYS,
    SESSION,
    TEST_STATE,
    ini_path,
)

if TYPE_CHECKING:  # config, providers and replay load when a test uses them (issue #14)
    from harness.config import ModelsConfig
    from harness.costs import CostManager
    from harness.providers import FakeLLM
    from harness.pytest_plugin.cassettes import LLMCassette, LLMFactory, TestState
    from harness.replay import CassetteContext, CassetteMiss, Faults

__all__ = [
    "CASSETTE_MARKER_HELP",
    "FAULTS_MARKER_HELP",
    "fail_repeated_misses",
    "fake_llm",
    "llm",
    "llm_cassette",
    "llm_cassette_dir",
    "llm_cassette_options",
    "llm_costs",
    "llm_mode",
    "llm_models_config",
    "llm_strict",
]

CASSETTE_MARKER_HELP = (
    "llm_cassette(path=None, *, mode=None, match=None, strict=None): route every httpx/httpx2 "
    "client in the test through a cassette at <llm-cassette-dir>/<module path>/<test name>.yaml "
    "(path: another file, relative to the cassette dir); mode: replay|record|rewrite|live; "
    "match: a harness.replay.Matcher or a dict of its fields; strict: fail the test on "
    "unplayed interactions."
)
FAULTS_MARKER_HELP = (
    "llm_faults(*faults): inject harness.replay faults in front of the test's cassette (or "
    "of its clients' own transports when it has none): Faults schedules, e.g. "
    "llm_faults(Faults().status(429).then_ok()), or Fault objects, one request each."
)


# -- per-test state ------------------------------------------------------------------------------


@pytest.fixture
def _llm_state(request: pytest.FixtureRequest) -> Iterator[TestState]:
    from harness.pytest_plugin.cassettes import TestState

    session = request.config.stash[SESSION]
    state = TestState(request.node.nodeid, session.remaining_budget())
    request.node.stash[TEST_STATE] = state
    yield state
    failed = request.node.stash.get(CALL_FAILED, True)  # no call report: setup failed
    record = state.finish(request.config.rootpath, failed=failed)
    session.records.append(record)


@pytest.fixture(autouse=True)
def _llm_markers(request: pytest.FixtureRequest) -> None:
    """Give a test marked ``llm_cassette`` or ``llm_faults`` its cassette (inert otherwise)."""
    node = request.node
    if node.get_closest_marker("llm_cassette") or node.get_closest_marker("llm_faults"):
        request.getfixturevalue("llm_cassette")


# -- configuration fixtures (override them in a conftest) ----------------------------------------


@pytest.fixture(scope="session")
def llm_mode(pytestconfig: pytest.Config) -> str:
    """The cassette mode when neither flag nor marker says (default: the ini value)."""
    return str(pytestconfig.getini("llm_mode") or "replay")


@pytest.fixture(scope="session")
def llm_cassette_dir(pytestconfig: pytest.Config) -> Path:
    """Where cassettes live when no flag says (default: the ini value, beside the ini file)."""
    return ini_path(pytestconfig, str(pytestconfig.getini("llm_cassette_dir") or "cassettes"))


@pytest.fixture(scope="session")
def llm_strict(pytestconfig: pytest.Config) -> bool:
    """Whether unplayed interactions fail a test, when neither flag nor marker says."""
    return bool(pytestconfig.getini("llm_strict"))


@pytest.fixture(scope="session")
def llm_models_config(pytestconfig: pytest.Config) -> ModelsConfig | None:
    """The models the ``llm`` factory knows (default: the ini ``llm_config`` file, if any)."""
    path = str(pytestconfig.getini("llm_config") or "")
    from harness.config import ModelsConfig

    return ModelsConfig.from_yaml_file(ini_path(pytestconfig, path)) if path else None


@pytest.fixture(scope="session")
def llm_cassette_options() -> dict[str, Any]:
    """Keyword arguments for every test's ReplayTransport (``matcher``, ``redactor``...)."""
    return {}


# -- the cassette --------------------------------------------------------------------------------


def fail_repeated_misses(state: TestState) -> Callable[[Any, CassetteMiss], None]:
    """A transport's ``on_miss``: a request that already missed in this test (an SDK's retry
    of it) fails the test at once. pytest's failure is no ``Exception``, so SDKs that retry
    any exception (anthropic's) neither wrap nor retry it: no more backoff waits for it."""

    def on_miss(request: Any, miss: CassetteMiss) -> None:
        if state.repeats_a_miss(request, miss):
            pytest.fail(
                f"CassetteMiss, sent again (a client retried it; replay mode misses it every "
                f"time):\n{miss}",
                pytrace=False,
            )

    return on_miss


def _default_cassette_path(item: pytest.Item, directory: Path) -> Path:
    from harness.pytest_plugin.summary import cassette_file_name

    path = Path(str(getattr(item, "path", item.nodeid.split("::")[0])))
    try:
        module = path.with_suffix("").resolve().relative_to(item.config.rootpath.resolve())
    except ValueError:
        module = Path(path.stem)
    parts = item.nodeid.split("::")[1:]  # classes, then the test name with its parameters
    return directory / module / f"{cassette_file_name('.'.join(parts) or item.name)}.yaml"


def _marker_args(mark: pytest.Mark | None) -> dict[str, Any]:
    if mark is None:
        return {}
    allowed = {"path", "mode", "match", "strict"}
    unknown = set(mark.kwargs) - allowed
    if unknown or len(mark.args) > 1:
        raise pytest.UsageError(f"bad marker: {CASSETTE_MARKER_HELP.split(':')[0]}; got {mark}")
    args = dict(mark.kwargs)
    if mark.args:
        args["path"] = mark.args[0]
    return args


def _faults_of(mark: pytest.Mark | None) -> Faults | None:
    if mark is None:
        return None
    if mark.kwargs:
        raise pytest.UsageError(f"bad marker: {FAULTS_MARKER_HELP.split(':')[0]}; got {mark}")
    from harness.replay import Fault, Faults

    schedule = Faults()
    for fault in mark.args:
        if isinstance(fault, Faults):
            schedule = Faults((*schedule.steps, *fault.steps))
        elif isinstance(fault, Fault) or fault is None:
            schedule = schedule.then(fault)
        else:
            raise pytest.UsageError(f"llm_faults takes Faults or Fault objects, got {fault!r}")
    return schedule


@pytest.fixture
def llm_cassette(
    request: pytest.FixtureRequest,
    _llm_state: TestState,
    llm_mode: str,
    llm_cassette_dir: Path,
    llm_strict: bool,
    llm_cassette_options: dict[str, Any],
) -> Iterator[LLMCassette]:
    """The test's active cassette; every httpx/httpx2 client is routed through it meanwhile."""
    from harness.pytest_plugin.cassettes import LLMCassette
    from harness.replay import Matcher, resolve_mode, use_cassette

    node = request.node
    config = request.config
    marker = _marker_args(node.get_closest_marker("llm_cassette"))
    faults = _faults_of(node.get_closest_marker("llm_faults"))
    wants_cassette = bool(marker) or node.get_closest_marker("llm_cassette") is not None
    wants_cassette = wants_cassette or "llm_cassette" in getattr(node, "fixturenames", ())

    flag_dir = config.getoption("llm_cassette_dir")
    directory = Path(flag_dir) if flag_dir else Path(llm_cassette_dir)
    if not directory.is_absolute():
        directory = config.rootpath / directory
    raw_mode = str(config.getoption("llm_mode") or marker.get("mode") or llm_mode)
    flag_strict = config.getoption("llm_strict")
    marker_strict = marker.get("strict")
    strict = bool(flag_strict or (llm_strict if marker_strict is None else marker_strict))
    path: Path | None
    if wants_cassette:
        given = marker.get("path")
        path = directory / given if given else _default_cassette_path(node, directory)
    else:  # llm_faults alone: no cassette, requests go where they were going, through faults
        path, raw_mode = None, "live"
    try:  # once, here: vcrpy's aliases (and "once", which looks at the file) become a mode
        mode = resolve_mode(raw_mode, path if path is not None else "")
    except ValueError as error:
        raise pytest.UsageError(f"llm_cassette mode: {error}") from None

    session = config.stash[SESSION]
    options = dict(llm_cassette_options)
    options.setdefault("run_started_at", session.started_at)
    options.setdefault("on_miss", fail_repeated_misses(_llm_state))
    match = marker.get("match")
    if match is not None:
        options["matcher"] = match if isinstance(match, Matcher) else Matcher(**dict(match))
    cassette = LLMCassette(path, mode, strict)
    _llm_state.cassette = cassette
    context: CassetteContext = use_cassette(
        path or config.rootpath / ".harness-no-cassette.yaml",
        mode,
        faults=faults,
        on_interaction=_llm_state.observe,
        **options,
    )
    if mode != "replay" and PLACEHOLDER_KEYS in node.stash:  # recording or live: real keys
        node.stash[PLACEHOLDER_KEYS].remove()
    lifted = mode != "replay" and session.guard is not None and path is not None
    with contextlib.ExitStack() as stack:
        if lifted:
            stack.enter_context(NetworkGuard.suspended())
        cassette.transport = stack.enter_context(context)
        cassette.fault_transport = context.fault_transport
        yield cassette
    if strict and path is not None and not node.stash.get(CALL_FAILED, False):
        cassette.transport.assert_all_played()


# -- fakes, providers, costs ----------------------------------------------------------------------


@pytest.fixture
def llm_costs(_llm_state: TestState) -> CostManager:
    """The test's cost ledger: every call of ``llm``/``fake_llm`` providers and every metered
    cassette request; under ``--llm-budget`` its ``max_budget`` is what is left."""
    return _llm_state.costs


@pytest.fixture
def fake_llm(_llm_state: TestState) -> FakeLLM:
    """A :class:`FakeLLM` billing the test's ledger; set ``fake_llm.replies`` to script it."""
    from harness.providers import FakeLLM

    return FakeLLM(cost_manager=_llm_state.costs)


@pytest.fixture
def llm(
    llm_cassette: LLMCassette,
    llm_costs: CostManager,
    llm_models_config: ModelsConfig | None,
    pytestconfig: pytest.Config,
) -> Iterator[LLMFactory]:
    """A factory of configured providers wired to the test's cassette and cost ledger."""
    flag = pytestconfig.getoption("llm_config")
    models = pytestconfig.stash[SESSION].models_config if flag else llm_models_config
    from harness.pytest_plugin.cassettes import LLMFactory

    factory = LLMFactory(models, llm_cassette, llm_costs)
    yield factory
    factory.close()
