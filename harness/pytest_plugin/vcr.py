"""pytest-recording's interface, served by harness when pytest-recording is not installed.

A project written for pytest-recording runs unchanged: ``@pytest.mark.vcr`` (cassette names
as arguments, vcrpy options as keywords), ``@pytest.mark.block_network``, the ``vcr_config``,
``vcr_cassette_dir``, ``default_cassette_name``, ``record_mode`` and ``vcr`` fixtures, the
``--record-mode``, ``--block-network``, ``--allowed-hosts`` and ``--disable-recording`` flags,
and the default layout ``<test dir>/cassettes/<module>/<test>.yaml``. Cassettes are read as
vcrpy wrote them, and recording keeps a vcrpy cassette (and creates a new one) in vcrpy's
format, so the project can go back to pytest-recording at any time; the ini key
``llm_vcr_convert = true`` writes harness's format instead.

``vcr_config`` keys: ``match_on`` (vcrpy's matcher names), ``filter_headers``,
``filter_query_parameters``, ``filter_post_data_parameters``, ``record_mode``,
``before_record_request`` and ``before_record_response`` (callables on vcrpy-like objects:
see :class:`VcrRequest`), ``decode_compressed_response`` (harness always stores bodies
decoded), ``serializer`` (``"yaml"`` only), ``cassette_library_dir``, ``allow_playback_repeats``
(the last interaction recorded for a request answers it again once all were played) and
``ignore_localhost``/``ignore_hosts`` (requests to those hosts reach the real server, neither
replayed nor recorded). Any other key fails each vcr test with one line naming it. A miss
suggests pytest-recording's ``--record-mode``, and ``vcr.record_mode`` uses vcrpy's names.
The record mode: ``--record-mode`` > ``--llm-mode`` > marker keyword >
``vcr_config`` > ``none`` (replay only).

When pytest-recording is installed it keeps ``vcr``: harness registers none of this and
says so once, in the session header.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.pytest_plugin.network import NetworkGuard

if TYPE_CHECKING:  # replay is imported when a test uses vcr, not by every session
    from harness.pytest_plugin.cassettes import TestState
    from harness.pytest_plugin.vcr_cassette import (
        VcrCassette,
        VcrMatcher,
        VcrRequest,
        transport_options,
    )
    from harness.replay.models import Interaction

__all__ = [
    "RECORD_MODES",
    "VcrCassette",
    "VcrMatcher",
    "VcrRequest",
    "add_vcr_options",
    "recording_installed",
    "register_vcr_plugin",
    "transport_options",
]

RECORD_MODES: tuple[str, ...] = ("once", "new_episodes", "none", "all")
_FORBIDDEN_NAME_CHARS = "<>?%*:|\"'/\\"
_PLUGIN_NAME = "harness-llm-vcr"


def recording_installed() -> bool:
    """Whether pytest-recording is importable (then it serves ``vcr`` and harness stays out)."""
    return importlib.util.find_spec("pytest_recording") is not None


def add_vcr_options(parser: pytest.Parser) -> None:
    """pytest-recording's flags, unless pytest-recording itself is installed."""
    if recording_installed():
        return
    group = parser.getgroup("recording", "pytest-recording's interface, served by harness")
    group.addoption(
        "--record-mode",
        default=None,
        choices=RECORD_MODES,
        help="record mode of @pytest.mark.vcr tests: none (default: replay only), once "
        "(record a missing cassette), new_episodes (record what is new) or all (re-record)",
    )
    group.addoption(
        "--block-network",
        action="store_true",
        default=False,
        help="refuse network access in every test except while a vcr cassette records",
    )
    group.addoption(
        "--allowed-hosts",
        default=None,
        metavar="HOSTS",
        help="comma-separated hosts (or patterns) that blocked tests may still reach",
    )
    group.addoption(
        "--disable-recording",
        action="store_true",
        default=False,
        help="run @pytest.mark.vcr tests with no cassette at all (live)",
    )
    parser.addini(
        "llm_vcr_convert", "write @pytest.mark.vcr cassettes in harness's format", type="bool"
    )


def register_vcr_plugin(config: pytest.Config, guard: NetworkGuard | None) -> None:
    """Serve ``vcr`` (or, when pytest-recording is installed, say once that it does)."""
    if recording_installed():
        config.pluginmanager.register(_Deferring(), _PLUGIN_NAME)
        return
    config.addinivalue_line(
        "markers",
        "vcr(*cassette_names, **vcr_config): replay (or record) the test's HTTP traffic from "
        "<vcr_cassette_dir>/<default_cassette_name>.yaml (served by harness)",
    )
    config.addinivalue_line(
        "markers", "block_network: refuse network access except while a vcr cassette records"
    )
    hosts = _split(config.getoption("allowed_hosts"))
    if guard is not None:
        guard.allow.extend(h.lower() for h in hosts)
    config.stash[_SETTINGS] = _Settings(guard, hosts)
    config.pluginmanager.register(sys.modules[__name__], _PLUGIN_NAME)


def _split(value: str | None) -> list[str]:
    return [h.strip() for h in (value or "").split(",") if h.strip()]


class _Deferring:
    """Registered when pytest-recording is installed: one header line, nothing else."""

    def pytest_report_header(self) -> str:
        return (
            "harness: pytest-recording is installed and serves @pytest.mark.vcr; harness "
            "leaves it alone (uninstall pytest-recording to have harness serve it)"
        )


# -- the plugin ---------------------------------------------------------------------------------


def _marker_config(marks: list[pytest.Mark]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for mark in reversed(marks):  # the closest marker wins
        merged.update(mark.kwargs)
    return merged


@dataclass
class _Settings:
    """What the fixtures need from configuration time."""

    guard: NetworkGuard | None
    allowed_hosts: list[str]


_SETTINGS = pytest.StashKey[_Settings]()


@pytest.fixture(scope="session")
def record_mode(pytestconfig: pytest.Config) -> str:
    """The record mode given on the command line (``--record-mode``), default ``none``."""
    if pytestconfig.getoption("disable_recording"):
        return "none"
    return str(pytestconfig.getoption("record_mode") or "none")


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    """vcrpy options shared by a module's vcr tests (override it in a conftest)."""
    return {}


@pytest.fixture(scope="module")
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    """``<test dir>/cassettes/<module name>``, as pytest-recording lays cassettes out."""
    module = Path(str(request.node.path))
    return str(module.parent / "cassettes" / module.stem)


@pytest.fixture
def default_cassette_name(request: pytest.FixtureRequest) -> str:
    """``<Class>.<test name>`` or ``<test name>``, with characters unsafe in a file name
    replaced by ``-``."""
    name = str(request.node.name)
    if request.cls is not None:
        name = f"{request.cls.__name__}.{name}"
    for char in _FORBIDDEN_NAME_CHARS:
        name = name.replace(char, "-")
    return name


@pytest.fixture(autouse=True)
def block_network(request: pytest.FixtureRequest, record_mode: str) -> Iterator[None]:
    """Refuse the network under ``@pytest.mark.block_network`` or ``--block-network``,
    except in a vcr test that records."""
    wanted = request.node.get_closest_marker("block_network") or request.config.getoption(
        "block_network"
    )
    vcr = request.node.get_closest_marker("vcr") is not None
    settings = request.config.stash[_SETTINGS]
    guarded = settings.guard is not None  # harness's replay mode blocks everything already
    if not wanted or guarded or (vcr and record_mode != "none"):
        yield
        return
    guard = NetworkGuard(settings.allowed_hosts, mode="block_network")
    guard.install()
    try:
        yield
    finally:
        guard.uninstall()


@pytest.fixture(autouse=True)
def vcr(
    request: pytest.FixtureRequest, record_mode: str, block_network: None
) -> Iterator[VcrCassette | None]:
    """A test marked ``vcr`` runs on its cassette (every httpx/httpx2 client routed to it)."""
    node = request.node
    marks = list(node.iter_markers("vcr"))
    config = request.config
    if not marks or config.getoption("disable_recording"):
        with NetworkGuard.suspended() if marks else contextlib.nullcontext():
            yield None
        return
    failure: str | None = None
    try:
        yield from _vcr_cassette(request, marks, record_mode)
    except pytest.UsageError as error:
        failure = str(error)
    if failure is not None:  # one short error per test: no traceback, no chained copy
        pytest.fail(failure, pytrace=False)


def _miss_hint(path: Path) -> str:
    """How to record a request a vcr cassette missed, in pytest-recording's flags."""
    if path.exists():
        return (
            "re-run with --record-mode=new_episodes to add it (or --record-mode=all to re-record)"
        )
    return "re-run with --record-mode=once to record the cassette"


def _vcr_cassette(
    request: pytest.FixtureRequest, marks: list[pytest.Mark], record_mode: str
) -> Iterator[VcrCassette]:
    from harness.pytest_plugin.cassettes import LLMCassette
    from harness.pytest_plugin.fixtures import fail_repeated_misses
    from harness.pytest_plugin.vcr_cassette import VcrCassette, transport_options
    from harness.replay import resolve_mode
    from harness.replay.patching import use_cassette
    from harness.replay.vcr_format import is_vcr_cassette

    node = request.node
    config = request.config
    vcr_config = dict(request.getfixturevalue("vcr_config"))
    vcr_config.update(_marker_config(marks))
    directory = Path(
        vcr_config.pop("cassette_library_dir", None) or request.getfixturevalue("vcr_cassette_dir")
    )
    names = marks[0].args or (request.getfixturevalue("default_cassette_name"),)
    if len(names) > 1:
        raise pytest.UsageError(
            f"{node.nodeid}: @pytest.mark.vcr{names!r}: harness replays one cassette per "
            "test; merge the files (harness cassettes merge) or install pytest-recording"
        )
    name = str(names[0])
    path = Path(name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    if not path.is_absolute():
        path = directory / path
    given = config.getoption("record_mode") or config.getoption("llm_mode")
    raw_mode = str(given or vcr_config.pop("record_mode", None) or record_mode)
    vcr_config.pop("record_mode", None)
    try:
        mode = resolve_mode(raw_mode, path)
    except ValueError as error:
        raise pytest.UsageError(f"{node.nodeid}: record mode: {error}") from None
    options = transport_options(vcr_config)
    options.update(request.getfixturevalue("llm_cassette_options"))
    state: TestState = request.getfixturevalue("_llm_state")
    options.setdefault("on_miss", fail_repeated_misses(state))
    options.setdefault("miss_hint", _miss_hint(path))
    state.cassette = LLMCassette(path, mode, strict=False)
    convert = bool(config.getini("llm_vcr_convert"))
    holder: list[VcrCassette] = []

    def observe(req: Any, interaction: Interaction, replayed: bool) -> None:
        state.observe(req, interaction, replayed)
        if holder:
            holder[0].observe(req, interaction, replayed)

    context = use_cassette(path, mode, on_interaction=observe, **options)
    guard = config.stash[_SETTINGS].guard
    with contextlib.ExitStack() as stack:
        if mode != "replay":
            stack.enter_context(NetworkGuard.suspended())
        elif guard is not None and options["ignore_hosts"]:  # ignored hosts pass the cassette
            stack.enter_context(_allowing(guard, options["ignore_hosts"]))
        transport = stack.enter_context(context)
        # a vcrpy file stays vcrpy, a new one is made in vcrpy's format: pytest-recording
        # can read every cassette this writes, unless the project converts
        if convert:
            transport.cassette.vcr_format = False
        elif not path.exists() or is_vcr_cassette(path):
            transport.cassette.vcr_format = True
        state.cassette.transport = transport
        cassette = VcrCassette(path, raw_mode.lower(), transport)
        holder.append(cassette)
        yield cassette


@contextlib.contextmanager
def _allowing(guard: NetworkGuard, hosts: list[str]) -> Iterator[None]:
    """Let the replay guard pass ``hosts`` meanwhile (a vcr test's ``ignore_hosts``)."""
    added = [h for h in hosts if h not in guard.allow]
    guard.allow.extend(added)
    try:
        yield
    finally:
        for host in added:
            guard.allow.remove(host)


_MOVED = frozenset({"VcrCassette", "VcrMatcher", "VcrRequest", "transport_options"})


def __getattr__(name: str) -> Any:
    """The vcr_config matcher, redactor and cassette, from the module that holds them."""
    if name in _MOVED:
        return getattr(importlib.import_module("harness.pytest_plugin.vcr_cassette"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
