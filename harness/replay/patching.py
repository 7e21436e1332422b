"""``use_cassette``: route every httpx and httpx2 client in the process through one cassette.

The one patched place, per library: the transport-selection method that every request of a
``Client`` and an ``AsyncClient`` goes through,

    httpx.Client._transport_for_url      httpx.AsyncClient._transport_for_url
    httpx2.Client._transport_for_url     httpx2.AsyncClient._transport_for_url

(``_send_single_request`` asks it which transport to use for each URL, after mounts and
proxies are resolved). While a cassette is active the patched method still asks the original
for the client's own transport, then hands back a small route that sends the request through
the cassette's :class:`ReplayTransport` with that transport as the upstream: recording and
live traffic keep the client's proxy, limits, mounts and any transport it was given. So a
client made before, inside or outside the block (an ``openai.AsyncOpenAI()`` or an
``anthropic.Anthropic()`` included) is routed while the block is active, and only then.

The patch is installed when the first cassette is entered and the original methods are put
back exactly when the last one exits (on an exception too). Nested blocks: the innermost wins
and the outer one is active again after it. The active cassette is looked up in the current
context first (so concurrent asyncio tasks and threads started with a copied context each see
their own), then falls back to the most recently entered one in the process (for threads that
did not inherit a context). Explicit injection (``Client(transport=ReplayTransport(...))``)
remains the way to go where it is possible; this is the opt-in "intercept any client" seam.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import inspect
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from harness.replay.faults import Faults, FaultTransport
from harness.replay.transport import ReplayTransport

__all__ = ["PATCHED", "CassetteContext", "use_cassette"]

PATCHED: tuple[str, ...] = (
    "httpx.Client._transport_for_url",
    "httpx.AsyncClient._transport_for_url",
    "httpx2.Client._transport_for_url",
    "httpx2.AsyncClient._transport_for_url",
)
"""The methods ``use_cassette`` replaces while a cassette is active (libraries that import)."""

_METHOD = "_transport_for_url"
_F = TypeVar("_F", bound=Callable[..., Any])


# The client's own transport for the request in flight, handed from a _Route through the fault
# schedule to the cassette (a context variable: concurrent requests each keep their own).
_UPSTREAM: contextvars.ContextVar[Any] = contextvars.ContextVar("harness_upstream", default=None)


class _Entry:
    """One active ``use_cassette`` block."""

    def __init__(
        self, replay: ReplayTransport, own_upstream: bool, faults: FaultTransport | None = None
    ) -> None:
        self.replay = replay
        self.own_upstream = own_upstream  # the caller passed upstream=...: it wins
        self.faults = faults  # in front of the cassette: faults replace even replayed answers
        self.active = True

    def route(self, transport: Any) -> Any:
        """What a client should use instead of ``transport`` while this block is active."""
        if isinstance(transport, _Route):
            return transport
        if transport is self.replay:
            return transport if self.faults is None else _Route(self, None)
        if self.replay.mode == "live" and not self.own_upstream and self.faults is None:
            return transport
        return _Route(self, None if self.own_upstream else transport)


class _Route:
    """A client's own transport seen through the active cassette (and its faults, if any)."""

    __slots__ = ("_entry", "_upstream")

    def __init__(self, entry: _Entry, upstream: Any) -> None:
        self._entry = entry
        self._upstream = upstream

    def handle_request(self, request: Any) -> Any:
        """Answer a sync client's request from the cassette, or through the client's transport."""
        faults = self._entry.faults
        if faults is None:
            return self._entry.replay.handle_request(request, upstream=self._upstream)
        token = _UPSTREAM.set(self._upstream)
        try:
            return faults.handle_request(request)
        finally:
            _UPSTREAM.reset(token)

    async def handle_async_request(self, request: Any) -> Any:
        """The async twin of ``handle_request``."""
        faults = self._entry.faults
        if faults is None:
            return await self._entry.replay.handle_async_request(request, upstream=self._upstream)
        token = _UPSTREAM.set(self._upstream)
        try:
            return await faults.handle_async_request(request)
        finally:
            _UPSTREAM.reset(token)


class _ToCassette:
    """The fault schedule's inner transport: the cassette, with the routed client's upstream."""

    __slots__ = ("_replay",)

    def __init__(self, replay: ReplayTransport) -> None:
        self._replay = replay

    def handle_request(self, request: Any) -> Any:
        """Send a request the schedule let through to the cassette."""
        return self._replay.handle_request(request, upstream=_UPSTREAM.get())

    async def handle_async_request(self, request: Any) -> Any:
        """The async twin of ``handle_request``."""
        return await self._replay.handle_async_request(request, upstream=_UPSTREAM.get())


class _Patcher:
    """Installs the patch for the first block, restores the originals after the last one."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._stack: list[_Entry] = []
        self._originals: list[tuple[type, bool, Any]] = []  # (class, own attribute?, value)
        self.current: contextvars.ContextVar[_Entry | None] = contextvars.ContextVar(
            "harness_replay_cassette", default=None
        )

    def active(self) -> _Entry | None:
        """The cassette that a request made here and now should go through, if any."""
        entry = self.current.get()
        if entry is not None and entry.active:
            return entry
        stack = self._stack  # a racy read is fine: entries are appended and removed whole
        return stack[-1] if stack else None

    def push(self, entry: _Entry) -> None:
        with self._lock:
            if not self._stack:
                self._install()
            self._stack.append(entry)

    def remove(self, entry: _Entry) -> None:
        with self._lock:
            entry.active = False
            # Blocks may close out of order across threads and tasks: remove this one only.
            self._stack = [e for e in self._stack if e is not entry]
            if not self._stack:
                self._restore()

    def _install(self) -> None:
        for name in ("httpx", "httpx2"):
            try:
                module = importlib.import_module(name)
            except ImportError:  # only patch the libraries that are installed
                continue
            for cls in (module.Client, module.AsyncClient):
                original = getattr(cls, _METHOD)
                self._originals.append((cls, _METHOD in vars(cls), original))
                setattr(cls, _METHOD, _routed(original, self))

    def _restore(self) -> None:
        for cls, owned, original in reversed(self._originals):
            if owned:
                setattr(cls, _METHOD, original)
            else:
                delattr(cls, _METHOD)
        self._originals.clear()


def _routed(original: Callable[[Any, Any], Any], patcher: _Patcher) -> Callable[[Any, Any], Any]:
    @functools.wraps(original)
    def _transport_for_url(self: Any, url: Any) -> Any:
        transport = original(self, url)
        entry = patcher.active()
        return transport if entry is None else entry.route(transport)

    return _transport_for_url


_PATCHER = _Patcher()


class CassetteContext:
    """A ``use_cassette`` block: ``with``, ``async with``, or a decorator of (async) functions."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        mode: str,
        transport_options: dict[str, Any],
        faults: Faults | None = None,
    ) -> None:
        self.path = path
        self.mode = mode
        self.transport_options = transport_options
        self.faults = faults
        self.fault_transport: FaultTransport | None = None
        self.transport: ReplayTransport | None = None
        self._entry: _Entry | None = None
        self._token: contextvars.Token[_Entry | None] | None = None

    def __enter__(self) -> ReplayTransport:
        if self._entry is not None:
            raise RuntimeError(f"use_cassette({str(self.path)!r}) is already active")
        transport = ReplayTransport(self.path, self.mode, **self.transport_options)
        faults = None
        if self.faults is not None:
            faults = FaultTransport(_ToCassette(transport), self.faults)
        self.fault_transport = faults
        own_upstream = self.transport_options.get("upstream") is not None
        entry = _Entry(transport, own_upstream=own_upstream, faults=faults)
        _PATCHER.push(entry)
        self._token = _PATCHER.current.set(entry)
        self.transport, self._entry = transport, entry
        return transport

    def __exit__(self, *exc_info: object) -> None:
        transport = self._leave()
        transport.close()

    async def __aenter__(self) -> ReplayTransport:
        return self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        transport = self._leave()
        await transport.aclose()

    def __call__(self, func: _F) -> _F:
        """Run each call of ``func`` inside a fresh block with the same arguments."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with self._fresh():
                    return await cast(Callable[..., Awaitable[Any]], func)(*args, **kwargs)

            return cast(_F, run_async)

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return func(*args, **kwargs)

        return cast(_F, run)

    def _fresh(self) -> CassetteContext:
        return CassetteContext(self.path, self.mode, dict(self.transport_options), self.faults)

    def _leave(self) -> ReplayTransport:
        entry, token, transport = self._entry, self._token, self.transport
        if entry is None or token is None or transport is None:
            raise RuntimeError("use_cassette block exited without being entered")
        self._entry = self._token = None
        # Exited in another context (an async fixture's teardown, say): nothing to reset there.
        with contextlib.suppress(ValueError):
            _PATCHER.current.reset(token)
        _PATCHER.remove(entry)
        return transport


def use_cassette(
    path: str | os.PathLike[str],
    mode: str = "replay",
    *,
    faults: Faults | None = None,
    **transport_options: Any,
) -> CassetteContext:
    """Route every httpx/httpx2 client through a ``ReplayTransport(path, mode, ...)`` while active.

    Usable as ``with use_cassette(...) as transport:``, ``async with``, or ``@use_cassette(...)``.
    ``transport_options`` go to :class:`ReplayTransport` (``matcher``, ``redactor``, ``upstream``:
    without one, each client's own transport is the upstream). ``faults`` (a :class:`Faults`
    schedule) sits in front of the cassette, so a scheduled fault replaces even a replayed
    answer (``CassetteContext.fault_transport.history`` says what each request got). See the
    module docstring for the one place patched per library.
    """
    return CassetteContext(path, mode, transport_options, faults)
