"""Repository-wide pytest settings.

No test in this repository may reach a network: name resolution and connections are
allowed only for loopback addresses, for the whole session. A test that tries anything else
fails with an OSError naming the host.

Tests marked ``live`` need the real local LLM server (``scripts/local-llm``, on loopback).
They are deselected unless ``--run-live`` is given or ``HARNESS_RUN_LIVE=1`` is set.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
_RUN_LIVE_ENV = "HARNESS_RUN_LIVE"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-live",
        action="store_true",
        default=False,
        help=f"run tests marked 'live' (real local LLM server); or set {_RUN_LIVE_ENV}=1",
    )
    parser.addoption(
        "--interop-python",
        default=None,
        metavar="PYTHON",
        help="run tests marked 'interop' with this interpreter of an environment holding "
        "harness without extras and an old SDK (.ci/run builds one)",
    )


def _run_live(config: pytest.Config) -> bool:
    return bool(config.getoption("--run-live")) or os.environ.get(_RUN_LIVE_ENV, "") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (not skip) the ``live`` and ``interop`` tiers unless they were asked for."""
    tiers = []
    if not _run_live(config):
        tiers.append("live")
    if not config.getoption("--interop-python"):
        tiers.append("interop")
    dropped = [item for item in items if any(item.get_closest_marker(t) for t in tiers)]
    if not dropped:
        return
    config.hook.pytest_deselected(items=dropped)
    items[:] = [item for item in items if item not in dropped]


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return False
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> Iterator[None]:
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def refuse(host: Any) -> OSError:
        return OSError(f"tests may not reach the network: connection to {host!r} refused")

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            raise refuse(address[0])
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            raise refuse(address[0])
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback(host):
            raise socket.gaierror(socket.EAI_NONAME, f"tests may not resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    patches = pytest.MonkeyPatch()
    patches.setattr(socket.socket, "connect", connect)
    patches.setattr(socket.socket, "connect_ex", connect_ex)
    patches.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    patches.undo()
