"""harness's pytest plugin (entry point ``pytest11: llm``): record, replay or fake LLM calls.

Options (one group, ``llm``; each flag has an ini key of the same name with underscores):

    --llm-mode {replay,record,rewrite,live}   default replay: nothing leaves the machine
                                              (vcrpy's none, new_episodes, all, once too)
    --llm-cassette-dir DIR                    default cassettes/ at the rootdir
    --llm-config FILE                         models YAML for the ``llm`` fixture
    --llm-budget USD                          fail the session once this much is spent
    --llm-strict                              fail a test that leaves interactions unplayed
    --llm-allow-hosts HOST,...                hosts replay mode may still reach (patterns ok)
    --llm-real-time                           retry, latency and fault waits sleep for real
    --llm-unplayed-report FILE                write what no test played, for cassettes prune

Eval suites (:mod:`harness.pytest_plugin.suites`): suite files matching the ini ``llm_suite_files``
(default ``*.suite.yaml *.suite.jsonl``) and module-level ``Suite`` objects are collected, one
item per (case x model); their model calls run ahead of the items, concurrently:

    --llm-models NAME,...                     run every suite on these models
    --llm-concurrency N                       model calls in flight at once (default 8)
    --llm-update-baseline                     rewrite the baseline (ini llm_baseline) from this run
    --llm-report DIR                          write results.json, summary.md, report.html
    --llm-shard K/N                           run a stable 1/N of the items, by node id

Markers: ``llm_cassette(path=None, *, mode=None, match=None, strict=None)`` routes every
httpx/httpx2 client in the test through ``<cassette dir>/<test module path>/<test name>.yaml``;
``llm_faults(*faults)`` puts a :class:`harness.replay.Faults` schedule in front of
it. Both work on a function, a class or a module (``pytestmark``).

Fixtures: ``llm_cassette`` (the active :class:`LLMCassette`), ``llm`` (an :class:`LLMFactory`:
``llm("name")`` is a provider from the models config on the test's cassette), ``fake_llm`` (a
:class:`harness.providers.fake.FakeLLM`), ``llm_costs`` (the test's
:class:`harness.costs.CostManager`), and the configuration fixtures a conftest may override:
``llm_mode``, ``llm_cassette_dir``, ``llm_strict``, ``llm_models_config``,
``llm_cassette_options`` (keyword arguments for :class:`harness.replay.ReplayTransport`).

Precedence, for every setting: **flag > marker > fixture > ini > default**. The default
configuration fixtures return the ini value (or the default), so overriding a fixture beats
the ini file, a marker beats the fixture, and an explicit flag beats everything.

Waits (retry backoff, ``Retry-After``, FakeLLM ``latency=``, slow-first-byte faults) advance a
virtual clock per test (:mod:`harness._clock`) and are reported in the summary, unless
``--llm-real-time``. In replay mode the usual API-key variables that are unset hold
placeholders for each test (:mod:`harness.pytest_plugin.keyless`), so SDK clients start keyless.
``async def`` tests run in a fresh event loop when no async plugin takes them
(:mod:`harness.pytest_plugin.async_tests`).

In replay mode (the session's mode: flag > ini > default; vcrpy's ``none`` and ``once`` count
as replay here) every non-loopback connection and
name lookup fails at the socket, naming the host and ``--llm-allow-hosts``; a test whose own
mode records or runs live lifts that for its duration.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness import _clock
from harness.errors import HarnessError
from harness.pytest_plugin import local_llm
from harness.pytest_plugin.async_tests import ASYNC_PLUGINS, run_coroutine_test, runs_coroutine
from harness.pytest_plugin.keyless import PlaceholderKeys
from harness.pytest_plugin.network import NetworkGuard
from harness.pytest_plugin.suites import PLUGIN_KEY as SUITES
from harness.pytest_plugin.suites import SuitePlugin, add_suite_options
from harness.pytest_plugin.vcr import add_vcr_options, register_vcr_plugin

if TYPE_CHECKING:  # config, providers and replay load when a test uses them (issue #14)
    from harness.config import ModelsConfig
    from harness.costs import CostManager
    from harness.providers import FakeLLM
    from harness.pytest_plugin.cassettes import LLMCassette, LLMFactory, TestState
    from harness.pytest_plugin.summary import TestRecord
    from harness.replay import CassetteContext, Faults

__all__ = ["LLMCassette", "LLMFactory"]

_WORKER_KEY = "harness_llm_records"
_STARTED_KEY = "harness_llm_run_started_at"  # the controller's start, handed to xdist workers
# harness.replay.MODES, then vcrpy's (spelled out: importing replay is what start-up avoids)
_MODE_NAMES: tuple[str, ...] = ("replay", "record", "rewrite", "live")
_MODE_NAMES += ("none", "new_episodes", "all", "once")
_SESSION = pytest.StashKey["_Session"]()
_CALL_FAILED = pytest.StashKey[bool]()
_KEYS = pytest.StashKey[PlaceholderKeys]()

_CASSETTE_HELP = (
    "llm_cassette(path=None, *, mode=None, match=None, strict=None): route every httpx/httpx2 "
    "client in the test through a cassette at <llm-cassette-dir>/<module path>/<test name>.yaml "
    "(path: another file, relative to the cassette dir); mode: replay|record|rewrite|live; "
    "match: a harness.replay.Matcher or a dict of its fields; strict: fail the test on "
    "unplayed interactions."
)
_FAULTS_HELP = (
    "llm_faults(*faults): inject harness.replay faults in front of the test's cassette (or "
    "of its clients' own transports when it has none): Faults schedules, e.g. "
    "llm_faults(Faults().status(429).then_ok()), or Fault objects, one request each."
)


# -- options, markers, session state -----------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """One ``llm`` group: flags and the ini keys of the same names."""
    group = parser.getgroup("llm", "harness: record, replay or fake LLM calls")
    group.addoption(
        "--llm-mode",
        choices=_MODE_NAMES,
        default=None,
        help="replay (default; nothing leaves the machine), record (add what is new), "
        "rewrite (record afresh) or live (no cassette); or vcrpy's none, new_episodes, all, "
        "once. ini: llm_mode",
    )
    group.addoption(
        "--llm-cassette-dir",
        default=None,
        metavar="DIR",
        help="where cassettes live (default: cassettes/ at the rootdir). ini: llm_cassette_dir",
    )
    group.addoption(
        "--llm-config", default=None, metavar="FILE", help="models YAML. ini: llm_config"
    )
    group.addoption(
        "--llm-budget",
        default=None,
        metavar="USD",
        help="fail the session once LLM calls cost this much. ini: llm_budget",
    )
    group.addoption(
        "--llm-strict",
        action="store_true",
        default=None,
        help="fail tests that leave recorded interactions unplayed. ini: llm_strict",
    )
    group.addoption(
        "--llm-allow-hosts",
        default=None,
        metavar="HOSTS",
        help="comma-separated hosts (or patterns) replay mode may reach. ini: llm_allow_hosts",
    )
    group.addoption(
        "--llm-real-time",
        action="store_true",
        default=None,
        help="retry backoff, Retry-After, FakeLLM latency and slow faults sleep for real "
        "(default: a virtual clock, waits reported in the summary). ini: llm_real_time",
    )
    group.addoption(
        "--llm-unplayed-report",
        default=None,
        metavar="FILE",
        help="write the interactions no test played (JSON) for "
        "'harness cassettes prune --unplayed FILE'",
    )
    add_suite_options(group, parser)
    add_vcr_options(parser)  # pytest-recording's flags, unless it is installed
    parser.addini("llm_mode", "default --llm-mode", default="replay")
    parser.addini("llm_cassette_dir", "default --llm-cassette-dir", default="cassettes")
    parser.addini("llm_config", "default --llm-config", default="")
    parser.addini("llm_budget", "default --llm-budget (USD)", default="")
    parser.addini("llm_strict", "default --llm-strict", type="bool", default=False)
    parser.addini("llm_allow_hosts", "default --llm-allow-hosts", type="args", default=[])
    parser.addini("llm_real_time", "default --llm-real-time", type="bool", default=False)


class _Session:
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
        if self.budget is None:
            return None
        from harness.pytest_plugin.summary import total_cost

        return max(self.budget - total_cost(self.records), Decimal(0))


def _session_mode(config: pytest.Config) -> str:
    mode = config.getoption("llm_mode") or str(config.getini("llm_mode") or "replay")
    if mode.lower() not in _MODE_NAMES:
        raise pytest.UsageError(f"llm_mode = {mode!r}: expected one of {', '.join(_MODE_NAMES)}")
    return mode


def _guarded(mode: str) -> bool:
    """Whether the session's mode blocks the network: replay, or one that may resolve to it."""
    if mode.lower() in ("replay", "once"):  # the default: no need to load replay
        return True
    from harness.replay import resolve_mode

    return resolve_mode(mode, "") == "replay"


def _run_started_at(config: pytest.Config) -> datetime:
    """When the run started: the xdist controller's start on a worker, else now."""
    given = getattr(config, "workerinput", {}).get(_STARTED_KEY)
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
    path = Path(given) if flag else config.rootpath / given
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


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers; in replay mode, block the network."""
    config.addinivalue_line("markers", _CASSETTE_HELP)
    config.addinivalue_line("markers", _FAULTS_HELP)
    session = config.stash[_SESSION] = _Session(config)
    config.pluginmanager.register(
        SuitePlugin(config, mode=session.mode, cassette_dir=_cassette_dir(config)),
        "harness-llm-suites",
    )
    register_vcr_plugin(config, session.guard)
    config.pluginmanager.register(local_llm, "harness-llm-local")


def _cassette_dir(config: pytest.Config) -> Path:
    """The session's cassette directory: flag > ini > ``cassettes``, at the rootdir."""
    given = config.getoption("llm_cassette_dir") or str(
        config.getini("llm_cassette_dir") or "cassettes"
    )
    directory = Path(given)
    return directory if directory.is_absolute() else config.rootpath / directory


def pytest_unconfigure(config: pytest.Config) -> None:
    """Put the socket functions back."""
    session = config.stash.get(_SESSION, None)
    if session is not None and session.guard is not None:
        session.guard.uninstall()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """Each test waits on its own clock (virtual unless --llm-real-time) and, in replay mode,
    has placeholder API keys for the key variables that are unset."""
    session = item.config.stash.get(_SESSION, None)
    if session is None:
        return (yield)
    clock: _clock.RealClock | _clock.VirtualClock
    clock = _clock.RealClock() if session.real_time else _clock.VirtualClock()
    keys = item.stash[_KEYS] = PlaceholderKeys()
    if session.guard is not None and _marker_mode(item) in (None, "replay"):
        keys.install()
    try:
        with _clock.use(clock):
            return (yield)
    finally:
        keys.remove()
        _note_wait(session, item.nodeid, clock.waited)


def _marker_mode(item: pytest.Item) -> str | None:
    """The mode an ``llm_cassette`` marker gives the test, if it gives one."""
    mark = item.get_closest_marker("llm_cassette")
    mode = item.config.getoption("llm_mode") or (mark.kwargs.get("mode") if mark else None)
    if not mode:
        return None
    from harness.replay import resolve_mode

    with contextlib.suppress(ValueError):
        return resolve_mode(str(mode), "")
    return None


def _note_wait(session: _Session, nodeid: str, waited: float) -> None:
    if waited <= 0:
        return
    record = next((r for r in reversed(session.records) if r.nodeid == nodeid), None)
    if record is None:
        from harness.pytest_plugin.summary import TestRecord

        session.records.append(TestRecord(nodeid=nodeid, waited=waited))
    else:
        record.waited += waited


@pytest.hookimpl
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an ``async def`` test that no async plugin takes, in a fresh event loop."""
    manager = pyfuncitem.config.pluginmanager
    if any(manager.has_plugin(name) for name in ASYNC_PLUGINS):
        return None
    markers = {mark.name for mark in pyfuncitem.iter_markers()}
    if not runs_coroutine(pyfuncitem.obj, markers):
        return None
    run_coroutine_test(pyfuncitem.obj, pyfuncitem.funcargs, pyfuncitem._fixtureinfo.argnames)
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember whether the test body failed (strict mode only reports passing tests)."""
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Workers hand their records over; the controller enforces the budget."""
    config = session.config
    state = config.stash.get(_SESSION, None)
    if state is None:
        return
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        if state.records:  # none: nothing to hand over (and no report code to load)
            from harness.pytest_plugin.summary import encode_records

            workeroutput[_WORKER_KEY] = encode_records(state.records)
        return
    if state.unplayed_report:
        from harness.pytest_plugin.unplayed import write_report

        entries = [r.unplayed_report for r in state.records if r.unplayed_report]
        count = write_report(state.unplayed_report, entries)
        state.notes.append(
            f"unplayed report: {state.unplayed_report} ({count} interaction(s) in "
            f"{len(entries)} cassette use(s)); prune with: harness cassettes prune --unplayed "
            f"{state.unplayed_report}"
        )
    if state.budget is not None:
        from harness.pytest_plugin.summary import total_cost

        spent = total_cost(state.records) + config.stash[SUITES].spent()
        if spent > state.budget:
            state.failure = (
                f"--llm-budget exceeded: LLM calls cost ${spent:.6f}, over the budget of "
                f"${state.budget}"
            )
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: workers share the controller's start, so rewrite keeps the whole run."""
    state = node.config.stash.get(_SESSION, None)
    if state is not None:
        node.workerinput[_STARTED_KEY] = state.started_at.isoformat()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist: merge a finished worker's records into the controller's."""
    text = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
    state = node.config.stash.get(_SESSION, None)
    if text and state is not None:
        from harness.pytest_plugin.summary import decode_records

        state.records.extend(decode_records(text))


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """Requests, tokens and cost per test and in total; cassettes written; unplayed."""
    state = config.stash.get(_SESSION, None)
    if state is None or hasattr(config, "workerinput"):
        return
    if state.records or state.notes:
        terminalreporter.section(f"harness LLM calls (--llm-mode={state.mode})")
        from harness.pytest_plugin.summary import summary_lines

        lines = summary_lines(state.records, budget=state.budget, real_time=state.real_time)
        for line in [*lines, *state.notes] if state.records else state.notes:
            terminalreporter.write_line(line)
    if state.failure:
        terminalreporter.write_line(state.failure, red=True, bold=True)


# -- per-test state ------------------------------------------------------------------------------


@pytest.fixture
def _llm_state(request: pytest.FixtureRequest) -> Iterator[TestState]:
    from harness.pytest_plugin.cassettes import TestState

    session = request.config.stash[_SESSION]
    state = TestState(request.node.nodeid, session.remaining_budget())
    yield state
    failed = request.node.stash.get(_CALL_FAILED, True)  # no call report: setup failed
    record = state.finish(
        request.config.rootpath, unplayed_report=bool(session.unplayed_report), failed=failed
    )
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
    """Where cassettes live when no flag says (default: the ini value, at the rootdir)."""
    return pytestconfig.rootpath / str(pytestconfig.getini("llm_cassette_dir") or "cassettes")


@pytest.fixture(scope="session")
def llm_strict(pytestconfig: pytest.Config) -> bool:
    """Whether unplayed interactions fail a test, when neither flag nor marker says."""
    return bool(pytestconfig.getini("llm_strict"))


@pytest.fixture(scope="session")
def llm_models_config(pytestconfig: pytest.Config) -> ModelsConfig | None:
    """The models the ``llm`` factory knows (default: the ini ``llm_config`` file, if any)."""
    path = str(pytestconfig.getini("llm_config") or "")
    from harness.config import ModelsConfig

    return ModelsConfig.from_yaml_file(pytestconfig.rootpath / path) if path else None


@pytest.fixture(scope="session")
def llm_cassette_options() -> dict[str, Any]:
    """Keyword arguments for every test's ReplayTransport (``matcher``, ``redactor``...)."""
    return {}


# -- the cassette --------------------------------------------------------------------------------


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
        raise pytest.UsageError(f"bad marker: {_CASSETTE_HELP.split(':')[0]}; got {mark}")
    args = dict(mark.kwargs)
    if mark.args:
        args["path"] = mark.args[0]
    return args


def _faults_of(mark: pytest.Mark | None) -> Faults | None:
    if mark is None:
        return None
    if mark.kwargs:
        raise pytest.UsageError(f"bad marker: {_FAULTS_HELP.split(':')[0]}; got {mark}")
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

    session = config.stash[_SESSION]
    options = dict(llm_cassette_options)
    options.setdefault("run_started_at", session.started_at)
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
    if mode != "replay" and _KEYS in node.stash:  # recording or live: no placeholder keys
        node.stash[_KEYS].remove()
    lifted = mode != "replay" and session.guard is not None and path is not None
    with contextlib.ExitStack() as stack:
        if lifted:
            stack.enter_context(NetworkGuard.suspended())
        cassette.transport = stack.enter_context(context)
        cassette.fault_transport = context.fault_transport
        yield cassette
    if strict and path is not None and not node.stash.get(_CALL_FAILED, False):
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
    models = pytestconfig.stash[_SESSION].models_config if flag else llm_models_config
    from harness.pytest_plugin.cassettes import LLMFactory

    factory = LLMFactory(models, llm_cassette, llm_costs)
    yield factory
    factory.close()


def __getattr__(name: str) -> Any:
    """``LLMCassette`` and ``LLMFactory`` (for annotations), from the module that holds them."""
    if name in __all__:
        return getattr(importlib.import_module("harness.pytest_plugin.cassettes"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
