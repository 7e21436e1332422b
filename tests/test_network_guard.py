"""The replay-mode network guard: getnameinfo, and child processes through a closed proxy.

Children are real subprocesses. Each one wraps its own ``socket.connect`` so that a connection
to anything but loopback raises instead of leaving the machine: a broken guard fails the test
without sending a packet.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import NetworkBlockedError
from harness.pytest_plugin.network import CHILD_PROXY_VARIABLES, NetworkGuard

_CHILD_TIMEOUT = 30.0  # a bound for the test; a working guard answers in well under a second
_NAMES = (*CHILD_PROXY_VARIABLES, "NO_PROXY", "no_proxy")

# The child's own fuse: connections leave only for loopback, and each one is reported.
_FUSE = textwrap.dedent(
    """
    import ipaddress, json, socket, sys, time
    connects = []
    _real_connect = socket.socket.connect
    def _connect(sock, address):
        connects.append(list(address[:2]))
        if not ipaddress.ip_address(address[0]).is_loopback:
            raise OSError(f"the child tried to reach {address[0]}: the guard let it through")
        return _real_connect(sock, address)
    socket.socket.connect = _connect
    started = time.monotonic()
    """
)
_REPORT = textwrap.dedent(
    """
    print(json.dumps({"error": error, "connects": connects,
                      "elapsed": time.monotonic() - started}))
    """
)
_CLIENTS = {
    "httpx": """
import httpx
try:
    httpx.get(URL, timeout=10)
    error = None
except Exception as exc:
    error = f"{type(exc).__name__}: {exc}"
""",
    "requests": """
import requests
try:
    requests.get(URL, timeout=10)
    error = None
except Exception as exc:
    error = f"{type(exc).__name__}: {exc}"
""",
    "urllib": """
import urllib.request
try:
    urllib.request.urlopen(URL, timeout=10)
    error = None
except Exception as exc:
    error = f"{type(exc).__name__}: {exc}"
""",
}


@pytest.fixture
def guard() -> Iterator[NetworkGuard]:
    """A guard installed for the test (on top of the session's), uninstalled after it."""
    installed = NetworkGuard(["api.internal", "*.corp.example", "10.0.*"])
    installed.install()
    try:
        yield installed
    finally:
        installed.uninstall()


def _proxy_port(guard: NetworkGuard) -> int:
    return int(guard.child_env["HTTPS_PROXY"].rsplit(":", 1)[1])


def _child_env_seen(**popen: object) -> dict[str, str | None]:
    """The proxy variables a Python child process sees."""
    script = f"import json, os; print(json.dumps({{n: os.environ.get(n) for n in {_NAMES!r}}}))"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=_CHILD_TIMEOUT,
        check=True,
        **popen,  # type: ignore[call-overload]
    )
    seen: dict[str, str | None] = json.loads(done.stdout)
    return seen


def test_getnameinfo_of_a_public_address_is_refused_and_restored() -> None:
    real = socket.getnameinfo
    guard = NetworkGuard()
    guard.install()
    try:
        with pytest.raises(NetworkBlockedError, match=r"203\.0\.113\.9:443"):
            socket.getnameinfo(("203.0.113.9", 443), 0)
        numeric = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
        assert socket.getnameinfo(("127.0.0.1", 8080), numeric) == ("127.0.0.1", "8080")
        assert "203.0.113.9" in guard.blocked
    finally:
        guard.uninstall()
    assert socket.getnameinfo is real


@pytest.mark.parametrize(
    ("client", "url"),
    [
        ("httpx", "http://203.0.113.1/v1/models"),
        ("httpx", "https://203.0.113.1/v1/models"),
        ("requests", "https://203.0.113.1/v1/models"),
        ("urllib", "http://203.0.113.1/v1/models"),
    ],
)
def test_a_python_client_in_a_subprocess_fails_fast_at_the_closed_proxy(
    guard: NetworkGuard, client: str, url: str
) -> None:
    script = _FUSE + f"URL = {url!r}\n" + _CLIENTS[client] + _REPORT
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=_CHILD_TIMEOUT
    )
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["error"] is not None  # the request failed...
    assert "the guard let it through" not in report["error"]
    assert {tuple(c) for c in report["connects"]} == {("127.0.0.1", _proxy_port(guard))}
    assert report["elapsed"] < 5.0 and took < _CHILD_TIMEOUT  # ...at once: refused, no timeout


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_in_a_subprocess_fails_fast_at_the_closed_proxy(guard: NetworkGuard) -> None:
    # curl ignores Python's socket wrapper; it is sent to the closed port, which refuses it
    # (exit 7: could not connect to the proxy) instead of trying the address.
    started = time.monotonic()
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "http://203.0.113.1/"],
        capture_output=True,
        text=True,
        timeout=_CHILD_TIMEOUT,
    )
    assert done.returncode == 7, done.stderr
    assert f"127.0.0.1 port {_proxy_port(guard)}" in done.stderr
    assert time.monotonic() - started < 5.0


def test_children_get_the_closed_proxy_and_loopback_no_proxy(guard: NetworkGuard) -> None:
    seen = _child_env_seen()
    proxy = f"http://127.0.0.1:{_proxy_port(guard)}"
    assert {name: seen[name] for name in CHILD_PROXY_VARIABLES} == dict.fromkeys(
        CHILD_PROXY_VARIABLES, proxy
    )
    # allowed names and domains pass; an address pattern cannot be written in NO_PROXY
    expected = "localhost,127.0.0.1,::1,api.internal,.corp.example"
    assert seen["NO_PROXY"] == seen["no_proxy"] == expected


def test_this_process_keeps_its_environment(guard: NetworkGuard) -> None:
    # in-process clients meet the socket guard, whose error names the host they wanted
    for name in CHILD_PROXY_VARIABLES:
        assert os.environ.get(name) != guard.child_env[name]


def test_an_env_copied_from_os_environ_gets_the_proxy_and_a_chosen_one_is_kept(
    guard: NetworkGuard,
) -> None:
    copied = _child_env_seen(env={**os.environ, "EXTRA": "1"})
    assert copied["HTTPS_PROXY"] == guard.child_env["HTTPS_PROXY"]
    chosen = _child_env_seen(env={**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9"})
    assert chosen["HTTPS_PROXY"] == "http://127.0.0.1:9"
    assert chosen["HTTP_PROXY"] == guard.child_env["HTTP_PROXY"]


def test_os_system_children_inherit_the_proxy(guard: NetworkGuard, tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    script = f"import os; open({str(out)!r}, 'w').write(os.environ.get('ALL_PROXY', ''))"
    assert os.system(f'{sys.executable} -c "{script}"') == 0
    assert out.read_text() == guard.child_env["ALL_PROXY"]


def test_suspension_lifts_the_child_proxy_and_uninstall_restores_what_was_there() -> None:
    before = _child_env_seen()  # the session's own guard may already be in place
    guard = NetworkGuard()
    guard.install()
    try:
        assert _child_env_seen()["HTTP_PROXY"] == guard.child_env["HTTP_PROXY"]
        with NetworkGuard.suspended():
            lifted = _child_env_seen()
            assert {lifted[n] for n in _NAMES} <= {None, *(os.environ.get(n) for n in _NAMES)}
        assert _child_env_seen()["HTTP_PROXY"] == guard.child_env["HTTP_PROXY"]
    finally:
        guard.uninstall()
    assert _child_env_seen() == before


def test_the_reserved_port_refuses_connections(guard: NetworkGuard) -> None:
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", _proxy_port(guard)))


_NESTED = f"""
import json, os
from harness.pytest_plugin.network import NetworkGuard
names = {_NAMES!r}
seen = {{"inherited": {{n: os.environ.get(n) for n in names}}}}
guard = NetworkGuard()
guard.install()
seen["installed"] = {{n: os.environ.get(n) for n in names}}
seen["own"] = guard.child_env["HTTPS_PROXY"]
guard.uninstall()
seen["uninstalled"] = {{n: os.environ.get(n) for n in names}}
print(json.dumps(seen))
"""


def test_a_child_that_installs_its_own_guard_gives_its_environment_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # an xdist worker or a nested pytest: its own clients must not be sent to the parent's
    # closed port (a test it lifts the guard for could not reach its upstream)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.example:3128")
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    parent = NetworkGuard()
    parent.install()
    try:
        done = subprocess.run(
            [sys.executable, "-c", _NESTED],
            capture_output=True,
            text=True,
            timeout=_CHILD_TIMEOUT,
            check=True,
        )
    finally:
        parent.uninstall()
    seen = json.loads(done.stdout)
    assert seen["inherited"]["HTTP_PROXY"] == parent.child_env["HTTP_PROXY"]
    assert seen["installed"]["HTTPS_PROXY"] == "http://proxy.corp.example:3128"
    assert seen["installed"]["HTTP_PROXY"] is None
    assert seen["own"] != parent.child_env["HTTPS_PROXY"]
    assert seen["uninstalled"] == seen["inherited"]
