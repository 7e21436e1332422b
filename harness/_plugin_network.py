"""The replay-mode network guard of the pytest plugin: only loopback and allowed hosts.

It replaces ``socket.socket.connect``, ``socket.socket.connect_ex`` and
``socket.getaddrinfo``, so a refused connection fails before any packet (or DNS query) is
sent, whatever library makes it. Guards nest: each restores exactly what it replaced, and
``suspended()`` lifts every guard for a test that records or runs live.
"""

from __future__ import annotations

import contextlib
import fnmatch
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from harness.errors import NetworkBlockedError

__all__ = ["NetworkGuard", "is_loopback"]

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
    _lock = threading.Lock()

    def __init__(self, allow: Iterable[str] = (), *, mode: str = "replay") -> None:
        self.allow = [h.strip().lower() for h in allow if h.strip()]
        self.mode = mode
        self._resolved: set[str] = set()
        self._saved: list[tuple[Any, str, Any]] = []
        self.blocked: list[str] = []  # every refused host, for reports

    def allowed(self, host: Any) -> bool:
        """Whether a connection to ``host`` may go ahead."""
        if NetworkGuard._suspended or is_loopback(host):
            return True
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if not isinstance(host, str):
            return True  # not an internet address (AF_UNIX paths and the like)
        name = host.lower().split("%", 1)[0]
        return name in self._resolved or any(fnmatch.fnmatch(name, p) for p in self.allow)

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
        real_getaddrinfo = socket.getaddrinfo
        guard = self

        def connect(sock: socket.socket, address: Any) -> None:
            if isinstance(address, tuple) and not guard.allowed(address[0]):
                raise guard.refuse(address[0], address[1] if len(address) > 1 else None)
            real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            if isinstance(address, tuple) and not guard.allowed(address[0]):
                raise guard.refuse(address[0], address[1] if len(address) > 1 else None)
            return real_connect_ex(sock, address)

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host is not None and not guard.allowed(host):
                raise guard.refuse(host, port)
            found = real_getaddrinfo(host, port, *args, **kwargs)
            if host is not None and not is_loopback(host):
                guard._resolved.update(str(entry[4][0]).lower() for entry in found)
            return found

        self._replace(socket.socket, "connect", connect)
        self._replace(socket.socket, "connect_ex", connect_ex)
        self._replace(socket, "getaddrinfo", getaddrinfo)

    def uninstall(self) -> None:
        """Restore what ``install`` replaced."""
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()

    def _replace(self, owner: Any, name: str, value: Callable[..., Any]) -> None:
        self._saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    @classmethod
    @contextlib.contextmanager
    def suspended(cls) -> Iterator[None]:
        """Let every connection through while active (a test that records or runs live)."""
        with cls._lock:
            cls._suspended += 1
        try:
            yield
        finally:
            with cls._lock:
                cls._suspended -= 1
