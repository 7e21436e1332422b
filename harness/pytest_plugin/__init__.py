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

Fixtures (:mod:`harness.pytest_plugin.fixtures`): ``llm_cassette`` (the active
:class:`LLMCassette`), ``llm`` (an :class:`LLMFactory`: ``llm("name")`` is a provider from the
models config on the test's cassette), ``fake_llm`` (a :class:`harness.providers.fake.FakeLLM`),
``llm_costs`` (the test's :class:`harness.costs.CostManager`), and the configuration fixtures
a conftest may override: ``llm_mode``, ``llm_cassette_dir``, ``llm_strict``,
``llm_models_config``, ``llm_cassette_options`` (keyword arguments for
:class:`harness.replay.ReplayTransport`).

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
from typing import TYPE_CHECKING, Any

import pytest

from harness import _clock
from harness.pytest_plugin import fixtures, local_llm
from harness.pytest_plugin.async_tests import ASYNC_PLUGINS, run_coroutine_test, runs_coroutine
from harness.pytest_plugin.fixtures import CASSETTE_MARKER_HELP, FAULTS_MARKER_HELP
from harness.pytest_plugin.keyless import PlaceholderKeys
from harness.pytest_plugin.session import (
    CALL_FAILED,
    MODE_NAMES,
    PLACEHOLDER_KEYS,
    SESSION,
    STARTED_KEY,
    TEST_STATE,
    Session,
    cassette_dir,
)
from harness.pytest_plugin.suites import PLUGIN_KEY as SUITES
from harness.pytest_plugin.suites import SuitePlugin, add_suite_options
from harness.pytest_plugin.vcr import add_vcr_options, register_vcr_plugin

if TYPE_CHECKING:
    from harness.pytest_plugin.cassettes import LLMCassette, LLMFactory, TestState

__all__ = ["LLMCassette", "LLMFactory"]

_WORKER_KEY = "harness_llm_records"


# -- options, markers, session state -----------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """One ``llm`` group: flags and the ini keys of the same names."""
    group = parser.getgroup("llm", "harness: record, replay or fake LLM calls")
    group.addoption(
        "--llm-mode",
        choices=MODE_NAMES,
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


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers; in replay mode, block the network."""
    config.addinivalue_line("markers", CASSETTE_MARKER_HELP)
    config.addinivalue_line("markers", FAULTS_MARKER_HELP)
    session = config.stash[SESSION] = Session(config)
    config.pluginmanager.register(
        SuitePlugin(config, mode=session.mode, cassette_dir=cassette_dir(config)),
        "harness-llm-suites",
    )
    register_vcr_plugin(config, session.guard)
    config.pluginmanager.register(fixtures, "harness-llm-fixtures")
    config.pluginmanager.register(local_llm, "harness-llm-local")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Put the socket functions back."""
    session = config.stash.get(SESSION, None)
    if session is not None and session.guard is not None:
        session.guard.uninstall()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """Each test waits on its own clock (virtual unless --llm-real-time) and, in replay mode,
    has placeholder API keys for the key variables that are unset."""
    session = item.config.stash.get(SESSION, None)
    if session is None:
        return (yield)
    clock: _clock.RealClock | _clock.VirtualClock
    clock = _clock.RealClock() if session.real_time else _clock.VirtualClock()
    keys = item.stash[PLACEHOLDER_KEYS] = PlaceholderKeys()
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


def _note_wait(session: Session, nodeid: str, waited: float) -> None:
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
    """Remember whether the test body failed (strict mode only reports passing tests); a
    failed test whose cassette missed requests shows the misses in a section of its report."""
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    state = item.stash.get(TEST_STATE, None)
    if report.failed and state is not None:
        _show_misses(report, state)
    return report


def _show_misses(report: pytest.TestReport, state: TestState) -> None:
    """The misses an error hid (an SDK's ``APIConnectionError``), each once, in a section."""
    shown = report.longreprtext
    texts = list(dict.fromkeys(str(miss) for miss in state.misses))
    hidden = [text for text in texts if text.splitlines()[0] not in shown]
    if hidden:
        report.sections.append(("harness: cassette miss", "\n\n".join(hidden)))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Workers hand their records over; the controller enforces the budget."""
    config = session.config
    state = config.stash.get(SESSION, None)
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
    state = node.config.stash.get(SESSION, None)
    if state is not None:
        node.workerinput[STARTED_KEY] = state.started_at.isoformat()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist: merge a finished worker's records into the controller's."""
    text = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
    state = node.config.stash.get(SESSION, None)
    if text and state is not None:
        from harness.pytest_plugin.summary import decode_records

        state.records.extend(decode_records(text))


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """Requests, tokens and cost per test and in total; cassettes written; unplayed."""
    state = config.stash.get(SESSION, None)
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


def __getattr__(name: str) -> Any:
    """``LLMCassette`` and ``LLMFactory`` (for annotations), from the module that holds them."""
    if name in __all__:
        return getattr(importlib.import_module("harness.pytest_plugin.cassettes"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
