"""The one place that builds HTTP clients for providers (timeouts, proxy, transport)."""

from __future__ import annotations

import sys
from typing import Any, Protocol, runtime_checkable

import httpx2

__all__ = ["AsyncTransport", "build_async_client", "reaches_upstream"]


@runtime_checkable
class AsyncTransport(Protocol):
    """What a provider needs of an injected transport: httpx2's async transport interface.

    ``httpx2.AsyncBaseTransport`` subclasses fit, and so does any object with these two
    methods (harness's replay and fault transports, which also serve httpx).

    A transport may also have ``reaches_upstream: bool``: True when requests it is given may
    go on to the real provider (recording, rewriting, live), so a provider needs the real API
    key and raises MissingAPIKeyError without one. Without the attribute, see
    :func:`reaches_upstream`.
    """

    async def handle_async_request(self, request: Any) -> Any:
        """Send one request, return its response."""
        ...

    async def aclose(self) -> None:
        """Release the transport's resources."""
        ...


def _network_transports() -> tuple[type, ...]:
    """httpx2's and httpx's own network transports (httpx only when something imported it)."""
    kinds: list[type] = [httpx2.HTTPTransport, httpx2.AsyncHTTPTransport]
    legacy = sys.modules.get("httpx")
    if legacy is not None:
        kinds += [legacy.HTTPTransport, legacy.AsyncHTTPTransport]
    return tuple(kinds)


def reaches_upstream(transport: object) -> bool:
    """Whether ``transport`` may send requests on to the real provider.

    An explicit ``reaches_upstream`` attribute wins. Without one, httpx2's and httpx's
    ``HTTPTransport``/``AsyncHTTPTransport`` (the network) reach it; any other transport
    (``MockTransport``, a test double, a transport harness does not know) is taken not to,
    so a placeholder key is sent: a custom transport that forwards to the network should say
    ``reaches_upstream = True``.
    """
    explicit = getattr(transport, "reaches_upstream", None)
    if explicit is not None:
        return bool(explicit)
    return isinstance(transport, _network_transports())


# Connections are reused across requests; an idle one is dropped before most servers do.
_LIMITS = httpx2.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0)


class _Borrowed(httpx2.AsyncBaseTransport):
    """An injected transport, used but never closed: closing it is its owner's business."""

    def __init__(self, inner: AsyncTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response: httpx2.Response = await self.inner.handle_async_request(request)
        return response

    async def aclose(self) -> None:
        return None


def build_async_client(
    *,
    timeout: float,
    proxy: str | None = None,
    transport: AsyncTransport | None = None,
) -> httpx2.AsyncClient:
    """An ``httpx2.AsyncClient`` for a provider SDK.

    ``transport`` is the record/replay seam: when given, every request goes through it (and
    ``proxy`` is not used, since the transport decides where bytes go).
    """
    connect = min(timeout, 10.0)
    client_timeout = httpx2.Timeout(timeout, connect=connect)
    if transport is not None:
        borrowed = _Borrowed(transport)
        return httpx2.AsyncClient(transport=borrowed, timeout=client_timeout, follow_redirects=True)
    return httpx2.AsyncClient(
        proxy=proxy, timeout=client_timeout, limits=_LIMITS, follow_redirects=True
    )
