"""The replay-mode network guard of the pytest plugin: only loopback and allowed hosts.

In this process it replaces ``socket.socket.connect``, ``connect_ex``, ``sendto`` and
``sendmsg`` (UDP to an address) and ``socket.getaddrinfo``, ``gethostbyname``,
``gethostbyname_ex``, ``gethostbyaddr`` and ``getnameinfo``, so a refused connection fails
before any packet (or DNS query) is sent, whatever library makes it.

Child processes get the proxy variables (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and
their lower-case forms) pointing at a loopback port that is reserved but never listens, and
``NO_PROXY`` set to loopback (and the allowed host names): curl, requests, httpx and pip in a
subprocess fail at once with "connection refused" instead of reaching the network. They are
set in the environment children inherit (``os.putenv``: ``os.system``, ``exec*``,
``multiprocessing``) and added to an ``env=`` given to ``subprocess.Popen`` unless the caller
chose its own value; ``os.environ`` itself is left alone, so this process's own clients keep
meeting the socket guard, whose error names the host.

What it cannot stop: code that calls ``_socket`` (the C module) or a C extension's own sockets
directly, a child process that ignores proxy variables (or was given its own), a child started
with an explicit environment by ``os.execve``/``os.posix_spawn``, and traffic through a proxy
or tunnel that itself listens on loopback.

Guards nest: each restores exactly what it replaced, and ``suspended()`` lifts every guard
(children included) for a test that records or runs live.
"""

from __future__ import annotations

import contextlib
import fnmatch
import ipaddress
import json
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar

from harness.errors import NetworkBlockedError

__all__ = ["CHILD_PROXY_VARIABLES", "NetworkGuard", "is_loopback"]

CHILD_PROXY_VARIABLES: tuple[str, ...] = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)
"""Proxy variables a guarded session points at a closed loopback port for child processes."""

_NO_PROXY_VARIABLES = ("NO_PROXY", "no_proxy")
# Set for children with the proxy they were given and what the variables were before, so a
# child that installs a guard of its own (an xdist worker, a nested pytest) undoes them in its
# os.environ: its own clients then meet its socket guard, or the network while it is lifted.
_INHERITED_MARK = "HARNESS_NETWORK_GUARD_PROXY"
_CHILD_VARIABLES = (*CHILD_PROXY_VARIABLES, *_NO_PROXY_VARIABLES, _INHERITED_MARK)
_LOOPBACK_NO_PROXY = ("localhost", "127.0.0.1", "::1")
_ENV_POSITION = 9  # env's position in subprocess.Popen(args, bufsize, ..., cwd, env, ...)

_INHERITED = object()  # what was replaced lived on a base class: uninstall deletes the override
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def is_loopback(host: Any) -> bool:
    """Whether ``host`` (a name or an address, str or bytes) is this machine."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower().rstrip(".") in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class NetworkGuard:
    """Refuses connections and name lookups for hosts that are neither loopback nor allowed.

    ``allow`` holds host names, addresses or shell patterns (``*.internal``); an allowed name
    also allows the addresses it resolves to.
    """

    _suspended = 0  # shared by every guard: tests that record or run live lift them all
    _lock = threading.RLock()
    _child_guards: ClassVar[list[NetworkGuard]] = []  # installed; the last one's env applies

    def __init__(self, allow: Iterable[str] = (), *, mode: str = "replay") -> None:
        self.allow = [h.strip().lower() for h in allow if h.strip()]
        self.mode = mode
        self._resolved: set[str] = set()
        self._saved: list[tuple[Any, str, Any]] = []
        self._closed_port: socket.socket | None = None
        self._inherited: dict[str, str | None] = {}  # os.environ before undoing a parent's
        self.child_env: dict[str, str] = {}  # what child processes get while installed
        self.blocked: list[str] = []  # every refused host, for reports

    def allowed(self, host: Any) -> bool:
        """Whether a connection to ``host`` may go ahead."""
        return bool(NetworkGuard._suspended) or self._permitted(host)

    def _permitted(self, host: Any) -> bool:
        """Whether ``host`` is loopback or allowed, whether or not the guard is suspended."""
        if is_loopback(host):
            return True
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if not isinstance(host, str):
            return True  # not an internet address (AF_UNIX paths and the like)
        name = host.lower().split("%", 1)[0]
        return name in self._resolved or any(fnmatch.fnmatch(name, p) for p in self.allow)

    def _remember(self, host: Any, addresses: Iterable[Any]) -> None:
        """Allow the addresses an allowed (non-loopback) name resolved to; nothing else."""
        if host is None or is_loopback(host) or not self._permitted(host):
            return  # a lookup made while suspended must not outlive the suspension
        self._resolved.update(str(address).lower() for address in addresses)

    def refuse(self, host: Any, port: Any = None) -> NetworkBlockedError:
        """The error for a refused ``host``: names it and the flag that allows it."""
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.blocked.append(name)
        where = f"{name}:{port}" if port is not None else name
        return NetworkBlockedError(
            f"harness blocked a connection to {where}: in --llm-mode={self.mode} nothing leaves "
            f"the machine. Allow the host with --llm-allow-hosts={name} (or the llm_allow_hosts "
            "ini key), or record with --llm-mode=record",
            host=name,
        )

    def install(self) -> None:
        """Put the guard in place (undo with ``uninstall``)."""
        if self._saved:
            return
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        real_sendto = socket.socket.sendto
        real_sendmsg = socket.socket.sendmsg
        real_getaddrinfo = socket.getaddrinfo
        real_gethostbyname = socket.gethostbyname
        real_gethostbyname_ex = socket.gethostbyname_ex
        real_gethostbyaddr = socket.gethostbyaddr
        real_getnameinfo = socket.getnameinfo
        real_popen_init = subprocess.Popen.__init__
        guard = self

        def check(address: Any) -> None:
            if isinstance(address, tuple) and address and not guard.allowed(address[0]):
                raise guard.refuse(address[0], address[1] if len(address) > 1 else None)

        def connect(sock: socket.socket, address: Any) -> None:
            check(address)
            real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            check(address)
            return real_connect_ex(sock, address)

        def sendto(sock: socket.socket, data: Any, *args: Any) -> int:
            check(args[-1] if args else None)  # sendto(data, address) or (data, flags, address)
            return real_sendto(sock, data, *args)

        def sendmsg(sock: socket.socket, buffers: Any, *args: Any) -> int:
            check(args[2] if len(args) > 2 else None)  # (buffers, ancdata, flags, address)
            return real_sendmsg(sock, buffers, *args)

        def lookup(host: Any, port: Any = None) -> None:
            if host is not None and not guard.allowed(host):
                raise guard.refuse(host, port)

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            lookup(host, port)
            found = real_getaddrinfo(host, port, *args, **kwargs)
            guard._remember(host, (entry[4][0] for entry in found))
            return found

        def gethostbyname(host: Any) -> str:
            lookup(host)
            found = real_gethostbyname(host)
            guard._remember(host, [found])
            return found

        def gethostbyname_ex(host: Any) -> tuple[str, list[str], list[str]]:
            lookup(host)
            found = real_gethostbyname_ex(host)
            guard._remember(host, found[2])
            return found

        def gethostbyaddr(host: Any) -> tuple[str, list[str], list[str]]:
            lookup(host)
            return real_gethostbyaddr(host)

        def getnameinfo(address: Any, flags: int) -> tuple[str, str]:
            if isinstance(address, tuple) and address:
                lookup(address[0], address[1] if len(address) > 1 else None)
            return real_getnameinfo(address, flags)

        def popen_init(popen: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
            if len(rest) > _ENV_POSITION:
                env = guard._env_for_child(rest[_ENV_POSITION])
                rest = (*rest[:_ENV_POSITION], env, *rest[_ENV_POSITION + 1 :])
            else:
                kwargs["env"] = guard._env_for_child(kwargs.get("env"))
            real_popen_init(popen, args, *rest, **kwargs)

        self._replace(socket.socket, "connect", connect)
        self._replace(socket.socket, "connect_ex", connect_ex)
        self._replace(socket.socket, "sendto", sendto)
        self._replace(socket.socket, "sendmsg", sendmsg)
        self._replace(socket, "getaddrinfo", getaddrinfo)
        self._replace(socket, "gethostbyname", gethostbyname)
        self._replace(socket, "gethostbyname_ex", gethostbyname_ex)
        self._replace(socket, "gethostbyaddr", gethostbyaddr)
        self._replace(socket, "getnameinfo", getnameinfo)
        self._replace(subprocess.Popen, "__init__", popen_init)
        self._undo_inherited_env()
        self._start_child_env()

    def uninstall(self) -> None:
        """Restore what ``install`` replaced."""
        self._stop_child_env()
        for owner, name, original in reversed(self._saved):
            if original is _INHERITED:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._saved.clear()

    # -- child processes ---------------------------------------------------------------------

    def _start_child_env(self) -> None:
        """Reserve a loopback port that never listens and point children's proxies at it."""
        reserved = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        reserved.bind(("127.0.0.1", 0))  # bound, never listening: a connect is refused
        self._closed_port = reserved
        proxy = f"http://127.0.0.1:{reserved.getsockname()[1]}"
        # NO_PROXY takes names and domain suffixes: an allowed "*.internal" is ".internal";
        # address patterns ("10.0.*") cannot be written there, so children do not get them.
        allowed = [
            host[1:] if host.startswith("*.") else host
            for host in self.allow
            if not any(c in host.lstrip("*") for c in "*?[")
        ]
        no_proxy = ",".join(dict.fromkeys([*_LOOPBACK_NO_PROXY, *allowed]))
        self.child_env = {
            **dict.fromkeys(CHILD_PROXY_VARIABLES, proxy),
            **dict.fromkeys(_NO_PROXY_VARIABLES, no_proxy),
        }
        before = {name: os.environ.get(name) for name in self.child_env}
        mark = {"proxy": proxy, "no_proxy": no_proxy, "before": before}
        self.child_env[_INHERITED_MARK] = json.dumps(mark, sort_keys=True)
        with NetworkGuard._lock:
            NetworkGuard._child_guards.append(self)
            if not NetworkGuard._suspended:
                _put_child_env(self.child_env)

    def _stop_child_env(self) -> None:
        with NetworkGuard._lock:
            if self in NetworkGuard._child_guards:
                NetworkGuard._child_guards.remove(self)
                _put_child_env(_current_child_env())
        if self._closed_port is not None:
            self._closed_port.close()
            self._closed_port = None
        for name, value in self._inherited.items():
            _set_environ(name, value)
        self._inherited = {}

    def _undo_inherited_env(self) -> None:
        """Give back os.environ the proxy settings a guarded parent process replaced."""
        try:
            mark = json.loads(os.environ.get(_INHERITED_MARK, ""))
            before: dict[str, str | None] = mark["before"]
            ours = {
                **dict.fromkeys(CHILD_PROXY_VARIABLES, mark["proxy"]),
                **dict.fromkeys(_NO_PROXY_VARIABLES, mark["no_proxy"]),
            }
        except (ValueError, KeyError, TypeError):
            return
        undo = [name for name, value in ours.items() if os.environ.get(name) == value]
        self._inherited = {name: os.environ.get(name) for name in [*undo, _INHERITED_MARK]}
        for name in undo:
            _set_environ(name, before.get(name))
        _set_environ(_INHERITED_MARK, None)

    def _env_for_child(self, env: Any) -> Any:
        """The ``env`` a new subprocess gets: the caller's, with the guard's proxy settings
        wherever the caller kept what this process has (an ``os.environ`` copy)."""
        ours = _current_child_env()
        if not ours:
            return env
        if env is None:
            env = os.environ
        elif not isinstance(env, Mapping) or any(isinstance(k, bytes) for k in env):
            return env  # an environment of bytes is the caller's own business
        merged = dict(env)
        for name, value in ours.items():
            if merged.get(name) == os.environ.get(name):  # not chosen by the caller
                merged[name] = value
        return merged

    def _replace(self, owner: Any, name: str, value: Callable[..., Any]) -> None:
        original = vars(owner).get(name, _INHERITED) if isinstance(owner, type) else None
        if original is None:
            original = getattr(owner, name)
        self._saved.append((owner, name, original))
        setattr(owner, name, value)

    @classmethod
    @contextlib.contextmanager
    def suspended(cls) -> Iterator[None]:
        """Let every connection through while active (a test that records or runs live)."""
        with cls._lock:
            cls._suspended += 1
            if cls._suspended == 1:
                _put_child_env({})
        try:
            yield
        finally:
            with cls._lock:
                cls._suspended -= 1
                if cls._suspended == 0:
                    _put_child_env(_current_child_env())


def _current_child_env() -> dict[str, str]:
    """What children get now: the last installed guard's settings, none while suspended."""
    if NetworkGuard._suspended or not NetworkGuard._child_guards:
        return {}
    return NetworkGuard._child_guards[-1].child_env


def _put_child_env(values: Mapping[str, str]) -> None:
    """Set the environment children inherit (not ``os.environ``): ``values`` for the proxy
    variables, and for the others what ``os.environ`` says."""
    for name in _CHILD_VARIABLES:
        value = values.get(name, os.environ.get(name))
        if value is None:
            os.unsetenv(name)
        else:
            os.putenv(name, value)


def _set_environ(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
