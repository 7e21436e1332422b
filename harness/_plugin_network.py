"""The replay-mode network guard of the pytest plugin: only loopback and allowed hosts.

It replaces ``socket.socket.connect``, ``connect_ex``, ``sendto`` and ``sendmsg`` (UDP to an
address) and ``socket.getaddrinfo``, ``gethostbyname``, ``gethostbyname_ex`` and
``gethostbyaddr``, so a refused connection fails before any packet (or DNS query) is sent,
whatever library makes it. Guards nest: each restores exactly what it replaced, and
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
    _lock = threading.Lock()

    def __init__(self, allow: Iterable[str] = (), *, mode: str = "replay") -> None:
        self.allow = [h.strip().lower() for h in allow if h.strip()]
        self.mode = mode
        self._resolved: set[str] = set()
        self._saved: list[tuple[Any, str, Any]] = []
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

        self._replace(socket.socket, "connect", connect)
        self._replace(socket.socket, "connect_ex", connect_ex)
        self._replace(socket.socket, "sendto", sendto)
        self._replace(socket.socket, "sendmsg", sendmsg)
        self._replace(socket, "getaddrinfo", getaddrinfo)
        self._replace(socket, "gethostbyname", gethostbyname)
        self._replace(socket, "gethostbyname_ex", gethostbyname_ex)
        self._replace(socket, "gethostbyaddr", gethostbyaddr)

    def uninstall(self) -> None:
        """Restore what ``install`` replaced."""
        for owner, name, original in reversed(self._saved):
            if original is _INHERITED:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._saved.clear()

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
        try:
            yield
        finally:
            with cls._lock:
                cls._suspended -= 1
