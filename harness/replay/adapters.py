"""Thin adapters over httpx and httpx2: response streams and response objects per library.

Both libraries share the Request/Response API; only their classes differ, and a client checks
``isinstance(response.stream, SyncByteStream / AsyncByteStream)`` of its own library. So the
stream classes below are mixed into each library's base classes once, on first use.
"""

from __future__ import annotations

import functools
import importlib
import os
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

__all__ = ["Library", "library_for"]

OnDone = Callable[[bytes, bool], None]
"""Called once when a teed stream ends: the bytes the caller received, and whether complete."""


class _ChunkStreamMixin:
    """Yields recorded chunks one by one, to sync and async consumers alike."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk

    def close(self) -> None:
        """Nothing to release."""

    async def aclose(self) -> None:
        """Nothing to release."""


class _TeeBase:
    def __init__(self, upstream: Any, on_done: OnDone) -> None:
        self._upstream = upstream
        self._on_done = on_done
        self._chunks: list[bytes] = []
        self._finished = False

    def _finish(self, complete: bool) -> None:
        if not self._finished:
            self._finished = True
            self._on_done(b"".join(self._chunks), complete)

    def _fail(self) -> None:
        self._finished = True  # an upstream error is not a recording


class _SyncTeeMixin(_TeeBase):
    """Hands each upstream chunk to the caller as it arrives and keeps a copy for the cassette."""

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._upstream:
                self._chunks.append(chunk)
                yield chunk
        except GeneratorExit:
            raise  # the caller stopped reading: close() reports the stream incomplete
        except BaseException:
            self._fail()
            raise
        self._finish(complete=True)

    def close(self) -> None:
        """Close upstream; a stream cut short is reported incomplete (and not recorded)."""
        try:
            close = getattr(self._upstream, "close", None)
            if close is not None:
                close()
        finally:
            self._finish(complete=False)


class _AsyncTeeMixin(_TeeBase):
    """The async twin of the sync tee."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._upstream:
                self._chunks.append(chunk)
                yield chunk
        except GeneratorExit:
            raise
        except BaseException:
            self._fail()
            raise
        self._finish(complete=True)

    async def aclose(self) -> None:
        """Close upstream; a stream cut short is reported incomplete (and not recorded)."""
        try:
            aclose = getattr(self._upstream, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            self._finish(complete=False)


@dataclass(frozen=True)
class Library:
    """One HTTP library (httpx or httpx2) as the transport needs it."""

    module: ModuleType
    chunk_stream: type
    sync_tee: type
    async_tee: type

    def replay_response(
        self, status: int, headers: list[tuple[str, str]], chunks: list[bytes], request: Any
    ) -> Any:
        """A response of this library whose body streams ``chunks`` one by one."""
        return self.module.Response(
            status, headers=headers, stream=self.chunk_stream(chunks), request=request
        )

    def teed_response(self, upstream: Any, request: Any, on_done: OnDone, is_async: bool) -> Any:
        """``upstream`` with its body teed: chunks reach the caller and ``on_done`` at the end."""
        tee = (self.async_tee if is_async else self.sync_tee)(upstream.stream, on_done)
        return self.module.Response(
            upstream.status_code,
            headers=upstream.headers.multi_items(),
            stream=tee,
            request=request,
            extensions=upstream.extensions,
        )

    def default_upstream(self, is_async: bool) -> Any:
        """The library's own network transport, on the process's shared TLS context."""
        transport = self.module.AsyncHTTPTransport if is_async else self.module.HTTPTransport
        return transport(verify=shared_ssl_context(self.module))


_SSL_LOCK = threading.Lock()
_SSL_CONTEXTS: dict[tuple[str, str | None, str | None], ssl.SSLContext] = {}


def shared_ssl_context(module: ModuleType) -> ssl.SSLContext:
    """``module.create_ssl_context()`` (httpx or httpx2's default), built once per process.

    Loading the CA bundle takes tens of milliseconds: without sharing, the first request of
    every transport paid it. An SSLContext is safe to share between threads and connections
    (and survives a fork); a new one is made when SSL_CERT_FILE or SSL_CERT_DIR change.
    """
    # the variables the library reads when it builds its context (trust_env)
    key = (module.__name__, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    context = _SSL_CONTEXTS.get(key)
    if context is None:
        with _SSL_LOCK:
            context = _SSL_CONTEXTS.get(key)
            if context is None:
                context = module.create_ssl_context()
                _SSL_CONTEXTS[key] = context
    return context


@functools.cache
def _library(name: str) -> Library:
    module = importlib.import_module(name)
    sync_base, async_base = module.SyncByteStream, module.AsyncByteStream
    return Library(
        module=module,
        chunk_stream=type("ReplayStream", (_ChunkStreamMixin, sync_base, async_base), {}),
        sync_tee=type("RecordingStream", (_SyncTeeMixin, sync_base), {}),
        async_tee=type("AsyncRecordingStream", (_AsyncTeeMixin, async_base), {}),
    )


def library_for(request: Any) -> Library:
    """The adapter for the library whose ``Request`` this is (httpx or httpx2)."""
    name = type(request).__module__.split(".", 1)[0]
    if name not in ("httpx", "httpx2"):
        raise TypeError(f"expected an httpx or httpx2 Request, got {type(request).__qualname__}")
    return _library(name)
