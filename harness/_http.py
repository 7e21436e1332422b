"""The one place that builds HTTP clients for providers (timeouts, proxy, transport)."""

from __future__ import annotations

import httpx2

__all__ = ["build_async_client"]

# Connections are reused across requests; an idle one is dropped before most servers do.
_LIMITS = httpx2.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0)


def build_async_client(
    *,
    timeout: float,
    proxy: str | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> httpx2.AsyncClient:
    """An ``httpx2.AsyncClient`` for a provider SDK.

    ``transport`` is the record/replay seam: when given, every request goes through it (and
    ``proxy`` is not used, since the transport decides where bytes go).
    """
    connect = min(timeout, 10.0)
    client_timeout = httpx2.Timeout(timeout, connect=connect)
    if transport is not None:
        return httpx2.AsyncClient(
            transport=transport, timeout=client_timeout, follow_redirects=True
        )
    return httpx2.AsyncClient(
        proxy=proxy, timeout=client_timeout, limits=_LIMITS, follow_redirects=True
    )
