"""Serve wire-corpus cassettes (vcrpy / pydantic-ai YAML) to SDK clients through httpx2.

A small, test-only reader: it replays a file's interactions in order and checks that each
request goes to the recorded method and path. The record/replay engine proper lives in
``harness.replay``; this keeps provider tests independent of it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import yaml

CORPUS = Path(__file__).parent / "wire_corpus"

_DROP_RESPONSE_HEADERS = {"content-length", "transfer-encoding"}


@dataclass
class Recorded:
    """One recorded interaction."""

    method: str
    uri: str
    request_body: Any
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _header_value(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _request_body(request: dict[str, Any]) -> Any:
    if "parsed_body" in request:
        return request["parsed_body"]
    body = request.get("body")
    if isinstance(body, dict):
        body = body.get("string")
    if isinstance(body, bytes):
        body = body.decode()
    if isinstance(body, str) and body:
        try:
            return json.loads(body)
        except ValueError:
            return body
    return body


def load(path: str | Path) -> list[Recorded]:
    """The interactions of a corpus file (``path`` relative to the corpus, or absolute)."""
    full = Path(path) if Path(path).is_absolute() else CORPUS / path
    data = yaml.safe_load(full.read_text(encoding="utf-8"))
    recorded = []
    for interaction in data["interactions"]:
        request, response = interaction["request"], interaction["response"]
        headers: list[tuple[str, str]] = []
        parsed = "parsed_body" in response
        for name, values in (response.get("headers") or {}).items():
            lowered = name.lower()
            if lowered in _DROP_RESPONSE_HEADERS:
                continue
            if parsed and lowered == "content-encoding":
                continue  # parsed_body is stored decoded
            headers.extend((name, _header_value(v)) for v in values)
        if parsed:
            body = json.dumps(response["parsed_body"]).encode()
        else:
            raw = (response.get("body") or {}).get("string", b"")
            body = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        recorded.append(
            Recorded(
                method=request["method"].upper(),
                uri=request["uri"],
                request_body=_request_body(request),
                status=int(response["status"]["code"]),
                headers=headers,
                body=body,
            )
        )
    return recorded


class _EventStream(httpx2.AsyncByteStream):
    """Yields a body in pieces cut after each blank line (event by event for SSE)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        body = self._body
        if body[:2] == b"\x1f\x8b":  # gzip: no boundaries to keep
            yield body
            return
        start = 0
        while start < len(body):
            cut = body.find(b"\n\n", start)
            end = len(body) if cut == -1 else cut + 2
            yield body[start:end]
            start = end


@dataclass
class CorpusTransport(httpx2.AsyncBaseTransport):
    """Answers requests with a corpus file's responses, in recorded order."""

    interactions: list[Recorded]
    requests: list[httpx2.Request] = field(default_factory=list)
    strict_path: bool = True

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> CorpusTransport:
        return cls(load(path), **kwargs)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        await request.aread()
        index = len(self.requests)
        self.requests.append(request)
        if index >= len(self.interactions):
            raise AssertionError(
                f"request {index} ({request.method} {request.url}) was not recorded"
            )
        recorded = self.interactions[index]
        expected = httpx2.URL(recorded.uri)
        if self.strict_path:
            assert request.method == recorded.method, (request.method, recorded.method)
            assert request.url.path == expected.path, (str(request.url), recorded.uri)
        return httpx2.Response(
            recorded.status,
            headers=recorded.headers,
            stream=_EventStream(recorded.body),
            request=request,
        )

    def sent_json(self, index: int = -1) -> Any:
        """The JSON body of a request the client sent."""
        return json.loads(self.requests[index].content)
