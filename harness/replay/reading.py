"""Reading cassette files: harness's YAML format (versions 1 and 2) and vcrpy's variants.

A version-2 harness file ends with ``interactions_count``, after the list: a file cut short
lacks it or disagrees, and is refused with CassetteFormatError. A file without ``format`` is
read as a vcrpy cassette (``version: 1``, ``body.string`` or pydantic-ai's ``parsed_body``).
A path that is a directory or not UTF-8 text is a CassetteFormatError naming it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import yaml

from harness.replay.bodies import body_from_yaml, decode_content
from harness.replay.errors import CassetteFormatError, CassetteVersionError
from harness.replay.models import Interaction, RecordedRequest, RecordedResponse

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "FRAMING_HEADERS",
    "READABLE_VERSIONS",
    "load_interactions",
    "parse_cassette_text",
    "read_cassette_text",
]

FORMAT = "harness"
FORMAT_VERSION = 2
READABLE_VERSIONS: tuple[int, ...] = (1, 2)
"""The harness-format versions this harness reads (it writes ``FORMAT_VERSION``)."""

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})
"""Response headers that describe the wire framing, not the stored (decoded) body."""


class _Invalid(ValueError):
    """A malformed value at ``key`` (internal; becomes CassetteFormatError)."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


class _BadVersion(_Invalid):
    """An unsupported ``version`` (internal; becomes CassetteVersionError)."""


def _need(node: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(node, dict) or key not in node:
        raise _Invalid(f"{where}.{key}" if where else key, "missing")
    value = node[key]
    if not isinstance(value, kind):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _Invalid(f"{where}.{key}", f"expected {name}, got {type(value).__name__}")
    return value


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")
    return str(value)


def _read_headers(node: Any, where: str) -> list[tuple[str, str]]:
    if node is None:
        return []
    if not isinstance(node, dict):
        raise _Invalid(where, "expected a mapping of header names to values")
    headers = []
    for name, values in node.items():
        items = values if isinstance(values, list) else [values]
        for value in items:
            if value is None or isinstance(value, (dict, list)):
                raise _Invalid(f"{where}.{name}", "expected a string or a list of strings")
            headers.append((str(name).lower(), _text(value)))
    return headers


def _vcr_body(node: dict[str, Any], where: str) -> bytes:
    if "parsed_body" in node:  # pydantic-ai's JSON-body serializer
        return json.dumps(node["parsed_body"]).encode("utf-8")
    body = node.get("body")
    if isinstance(body, dict):
        body = body.get("string")
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    raise _Invalid(f"{where}.body", f"expected a string or bytes, got {type(body).__name__}")


def _vcr_interaction(node: Any, where: str) -> Interaction:
    if not isinstance(node, dict):
        raise _Invalid(where, "expected a mapping")
    req = _need(node, "request", dict, where)
    resp = _need(node, "response", dict, where)
    status = _need(resp, "status", dict, f"{where}.response")
    code = _need(status, "code", int, f"{where}.response.status")
    req_headers = _read_headers(req.get("headers"), f"{where}.request.headers")
    resp_headers = _read_headers(resp.get("headers"), f"{where}.response.headers")
    resp_body = _vcr_body(resp, f"{where}.response")
    if "parsed_body" in resp:  # stored decoded, but the header was left behind
        resp_headers = [(k, v) for k, v in resp_headers if k != "content-encoding"]
    req_headers, req_body = decode_content(req_headers, _vcr_body(req, f"{where}.request"))
    resp_headers, resp_body = decode_content(resp_headers, resp_body)
    return Interaction(
        request=RecordedRequest(
            method=_need(req, "method", str, f"{where}.request").upper(),
            uri=_need(req, "uri", str, f"{where}.request"),
            headers=req_headers,
            body=req_body,
        ),
        response=RecordedResponse(
            status=code,
            headers=[(k, v) for k, v in resp_headers if k not in FRAMING_HEADERS],
            body=resp_body,
        ),
    )


def _only(node: dict[str, Any], allowed: Iterable[str], where: str) -> None:
    for key in node:
        if key not in allowed:
            raise _Invalid(f"{where}.{key}" if where else str(key), "unknown key")


def _body(node: Any, where: str) -> bytes:
    try:
        return body_from_yaml(node, where)
    except ValueError as exc:
        key, _, message = str(exc).partition(": ")
        raise _Invalid(key, message) from exc


def _harness_interaction(node: Any, where: str) -> Interaction:
    if not isinstance(node, dict):
        raise _Invalid(where, "expected a mapping")
    _only(node, ("request", "response", "recorded_at", "duration"), where)
    req = _need(node, "request", dict, where)
    resp = _need(node, "response", dict, where)
    _only(req, ("method", "uri", "headers", "body"), f"{where}.request")
    _only(resp, ("status", "headers", "body"), f"{where}.response")
    status = _need(resp, "status", int, f"{where}.response")
    if isinstance(status, bool) or not 100 <= status <= 599:
        raise _Invalid(f"{where}.response.status", f"not an HTTP status: {status!r}")
    recorded_at = node.get("recorded_at")
    if isinstance(recorded_at, str):
        try:
            recorded_at = datetime.fromisoformat(recorded_at)
        except ValueError as exc:
            raise _Invalid(f"{where}.recorded_at", str(exc)) from exc
    elif recorded_at is not None and not isinstance(recorded_at, datetime):
        raise _Invalid(f"{where}.recorded_at", "expected an ISO 8601 timestamp")
    duration = node.get("duration")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, (int, float))
    ):
        raise _Invalid(f"{where}.duration", "expected a number of seconds")
    return Interaction(
        request=RecordedRequest(
            method=_need(req, "method", str, f"{where}.request").upper(),
            uri=_need(req, "uri", str, f"{where}.request"),
            headers=_read_headers(req.get("headers"), f"{where}.request.headers"),
            body=_body(req.get("body"), f"{where}.request.body"),
        ),
        response=RecordedResponse(
            status=status,
            headers=_read_headers(resp.get("headers"), f"{where}.response.headers"),
            body=_body(resp.get("body"), f"{where}.response.body"),
        ),
        recorded_at=recorded_at,
        duration=None if duration is None else float(duration),
    )


def _parse(data: Any) -> list[Interaction]:
    if data is None:
        return []
    if not isinstance(data, dict):
        raise _Invalid("", "expected a mapping at the top level")
    kind = data.get("format")
    version = data.get("version")
    if kind is None:  # vcrpy / pytest-recording / pydantic-ai
        if version != 1:
            raise _BadVersion("version", f"vcrpy cassette version {version!r} is not supported")
        read = _vcr_interaction
    elif kind == FORMAT:
        if isinstance(version, bool) or version not in READABLE_VERSIONS:
            readable = " and ".join(str(v) for v in READABLE_VERSIONS)
            raise _BadVersion(
                "version",
                f"harness cassette version {version!r} is not supported (this harness reads "
                f"versions {readable}); upgrade harness or re-record the cassette",
            )
        if version == 1:
            _only(data, ("format", "version", "interactions"), "")
        else:
            _only(data, ("format", "version", "interactions", "interactions_count"), "")
        read = _harness_interaction
    else:
        raise _Invalid("format", f"unknown cassette format {kind!r} (expected {FORMAT!r})")
    interactions = data.get("interactions") or []
    if not isinstance(interactions, list):
        raise _Invalid("interactions", "expected a list")
    if kind == FORMAT and version != 1:
        _check_count(data, len(interactions))
    return [read(node, f"interactions[{i}]") for i, node in enumerate(interactions)]


def _check_count(data: dict[str, Any], found: int) -> None:
    """A version-2 file ends with the number of its interactions: a cut file lacks or breaks it."""
    if "interactions_count" not in data:
        raise _Invalid(
            "interactions_count",
            f"missing (the list has {found} interaction(s)): the file looks cut short; "
            "restore it from version control or re-record it",
        )
    count = data["interactions_count"]
    if isinstance(count, bool) or not isinstance(count, int):
        raise _Invalid("interactions_count", f"expected an integer, got {count!r}")
    if count != found:
        raise _Invalid(
            "interactions_count",
            f"says {count} interaction(s) but the list has {found}: the file looks cut short "
            "or was edited by hand; restore it, re-record it, or correct the count",
        )


def read_cassette_text(path: str | os.PathLike[str]) -> str:
    """The text of a cassette file; CassetteFormatError names a path that is not UTF-8 text.

    A missing file raises FileNotFoundError as usual.
    """
    name = os.fspath(path)
    if os.path.isdir(name):
        raise CassetteFormatError("is a directory, not a cassette file", path=name)
    try:
        with open(name, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise CassetteFormatError(f"cannot be read: {exc.strerror or exc}", path=name) from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CassetteFormatError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}): a cassette "
            "is a UTF-8 YAML file; is this a binary or latin-1 file?",
            path=name,
        ) from None


def load_interactions(path: str | os.PathLike[str]) -> list[Interaction]:
    """The interactions of a cassette file in any supported format."""
    return parse_cassette_text(read_cassette_text(path), path)


def parse_cassette_text(text: str, path: str | os.PathLike[str]) -> list[Interaction]:
    """The interactions in ``text``, the content of the cassette file ``path``."""
    name = os.fspath(path)
    try:
        data = yaml.load(text, Loader=_Loader)  # a safe loader
    except yaml.YAMLError as exc:
        raise CassetteFormatError(f"not valid YAML: {exc}", path=name) from exc
    try:
        return _parse(data)
    except _BadVersion as exc:
        raise CassetteVersionError(str(exc), path=name, key=exc.key) from None
    except _Invalid as exc:
        raise CassetteFormatError(str(exc), path=name, key=exc.key or None) from None
