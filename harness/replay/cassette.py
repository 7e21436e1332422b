"""Cassette files: harness's YAML format, vcrpy/pytest-recording/pydantic-ai reading, safe writes.

harness's own format (``format: harness``, ``version: 1``)::

    format: harness
    version: 1
    interactions:
    - request: {method: POST, uri: https://..., headers: {content-type: application/json},
                body: {json: {...}}}
      response: {status: 200, headers: {...}, body: {sse: ["data: {...}", ...]}}
      recorded_at: '2025-01-01T12:00:00+00:00'
      duration: 0.52

Bodies are stored decoded (no content-encoding) as ``json`` (parsed), ``sse`` / ``ndjson``
(a list of events or lines), ``text`` or ``base64``. A file without ``format`` is read as a
vcrpy cassette (``version: 1``, ``body.string`` or pydantic-ai's ``parsed_body``).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock

from harness.replay.bodies import body_from_yaml, body_to_yaml, decode_content
from harness.replay.errors import CassetteFormatError, CassetteVersionError, SecretLeakError
from harness.replay.models import Interaction, RecordedRequest, RecordedResponse
from harness.replay.redaction import Redactor, find_secrets

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Cassette",
    "atomic_write",
    "dump_interactions",
    "load_interactions",
]

FORMAT = "harness"
FORMAT_VERSION = 1

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
# Response headers that describe the wire framing, not the stored (decoded) body.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})


class _Dumper(_BaseDumper):  # type: ignore[misc]
    """Multi-line strings as literal blocks, so stored bodies diff line by line."""


def _represent_str(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


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
            headers=[(k, v) for k, v in resp_headers if k not in _FRAMING_HEADERS],
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
        if version != FORMAT_VERSION:
            raise _BadVersion(
                "version",
                f"harness cassette version {version!r} is not supported (this harness reads "
                f"version {FORMAT_VERSION}); upgrade harness or re-record the cassette",
            )
        _only(data, ("format", "version", "interactions"), "")
        read = _harness_interaction
    else:
        raise _Invalid("format", f"unknown cassette format {kind!r} (expected {FORMAT!r})")
    interactions = data.get("interactions") or []
    if not isinstance(interactions, list):
        raise _Invalid("interactions", "expected a list")
    return [read(node, f"interactions[{i}]") for i, node in enumerate(interactions)]


def load_interactions(path: str | os.PathLike[str]) -> list[Interaction]:
    """The interactions of a cassette file in any supported format."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=_Loader)  # a safe loader
    except yaml.YAMLError as exc:
        raise CassetteFormatError(f"not valid YAML: {exc}", path=name) from exc
    try:
        return _parse(data)
    except _BadVersion as exc:
        raise CassetteVersionError(str(exc), path=name, key=exc.key) from None
    except _Invalid as exc:
        raise CassetteFormatError(str(exc), path=name, key=exc.key or None) from None


def _headers_node(headers: list[tuple[str, str]]) -> dict[str, Any]:
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        grouped.setdefault(name.lower(), []).append(value)
    return {name: v[0] if len(v) == 1 else v for name, v in sorted(grouped.items())}


def _interaction_node(interaction: Interaction) -> dict[str, Any]:
    req, resp = interaction.request, interaction.response
    request: dict[str, Any] = {"method": req.method, "uri": req.uri}
    if req.headers:
        request["headers"] = _headers_node(req.headers)
    if (body := body_to_yaml(req.headers, req.body)) is not None:
        request["body"] = body
    response: dict[str, Any] = {"status": resp.status}
    headers = [(k, v) for k, v in resp.headers if k.lower() not in _FRAMING_HEADERS]
    if headers:
        response["headers"] = _headers_node(headers)
    if (body := body_to_yaml(resp.headers, resp.body)) is not None:
        response["body"] = body
    node: dict[str, Any] = {"request": request, "response": response}
    if interaction.recorded_at is not None:
        node["recorded_at"] = interaction.recorded_at.isoformat()
    if interaction.duration is not None:
        node["duration"] = round(interaction.duration, 6)
    return node


_DUMP_OPTIONS: dict[str, Any] = {
    "Dumper": _Dumper,
    "sort_keys": False,
    "allow_unicode": True,
    "width": 1_000_000,  # never fold long lines: a folded JSON line diffs badly
    "indent": 2,
}
_HEADER = f"format: {FORMAT}\nversion: {FORMAT_VERSION}\n"


@dataclass
class _Item:
    """One interaction with its YAML text (a one-item block sequence) and its secret scan."""

    interaction: Interaction
    node: dict[str, Any]
    text: str

    @classmethod
    def of(cls, interaction: Interaction) -> _Item:
        node = _interaction_node(interaction)
        return cls(interaction, node, yaml.dump([node], **_DUMP_OPTIONS))


def _document(items: list[_Item]) -> str:
    if not items:
        return f"{_HEADER}interactions: []\n"
    return f"{_HEADER}interactions:\n" + "".join(item.text for item in items)


def dump_interactions(interactions: Iterable[Interaction]) -> tuple[dict[str, Any], str]:
    """The harness-format document for ``interactions`` and its YAML text."""
    items = [_Item.of(i) for i in interactions]
    data = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "interactions": [item.node for item in items],
    }
    return data, _document(items)


def _scan_item(i: int, item: _Item) -> list[str]:
    where = f"interactions[{i}]"
    findings = find_secrets(item.node, item.text, path=where)
    # The YAML holds binary bodies as base64, which hides a key from the scan above: also
    # look at the raw bytes (latin-1 maps every byte to one character).
    for side, body in (
        ("request", item.interaction.request.body),
        ("response", item.interaction.response.body),
    ):
        prefix = f"{where}.{side}.body"
        if body and not any(f.startswith(prefix) for f in findings):
            findings.extend(find_secrets(body.decode("latin-1"), path=f"{prefix} (raw bytes)"))
    return findings


def _scan(items: Iterable[tuple[int, _Item]], path: Path) -> None:
    findings = [finding for i, item in items for finding in _scan_item(i, item)]
    if findings:
        raise SecretLeakError(path=str(path), findings=findings)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _redacted(interaction: Interaction, redactor: Redactor) -> Interaction:
    return replace(
        interaction,
        request=redactor.redact_request(interaction.request),
        response=redactor.redact_response(interaction.response),
    )


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` all at once: a crash leaves the old file or the new one."""
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


class Cassette:
    """The interactions of one cassette file, plus the ones recorded since it was read."""

    def __init__(self, path: str | os.PathLike[str], interactions: list[Interaction] | None = None):
        self.path = Path(path)
        self.interactions: list[Interaction] = list(interactions or [])
        self._pending: list[Interaction] = []
        self._lock = threading.Lock()
        # The text this object last wrote, and the items it was made of.
        self._written: tuple[str | None, list[_Item]] = (None, [])

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Cassette:
        """The cassette at ``path``; an absent file is an empty cassette."""
        if not os.path.exists(path):
            return cls(path)
        return cls(path, load_interactions(path))

    @property
    def lock_path(self) -> Path:
        """The lock file guarding writes (hidden, next to the cassette)."""
        return self.path.with_name(f".{self.path.name}.lock")

    def add(self, interaction: Interaction) -> None:
        """Append a newly recorded interaction; it is written by the next ``save``."""
        with self._lock:
            self.interactions.append(interaction)
            self._pending.append(interaction)

    def save(
        self,
        *,
        drop_recorded_before: datetime | None = None,
        redactor: Redactor | None = None,
        timeout: float = 60.0,
    ) -> None:
        """Merge new interactions into the file on disk, atomically and under a file lock.

        Other writers (threads, processes) may have saved since this cassette was read; their
        interactions are kept. ``drop_recorded_before`` drops the on-disk interactions recorded
        before that time (or with no time), which is how ``rewrite`` replaces a cassette.
        ``redactor`` is applied to what was on disk too (e.g. a vcrpy cassette being extended).
        Raises SecretLeakError, and writes nothing, if the result contains a key-like string.
        """
        with self._lock:
            pending = list(self._pending)
            if not pending and drop_recorded_before is None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(self.lock_path, timeout=timeout):
                on_disk = self._read_back(redactor)
                if drop_recorded_before is not None:
                    cutoff = _aware(drop_recorded_before)
                    on_disk = [
                        item
                        for item in on_disk
                        if item.interaction.recorded_at is not None
                        and _aware(item.interaction.recorded_at) >= cutoff
                    ]
                new = [_Item.of(i) for i in pending]
                _scan(enumerate(new, start=len(on_disk)), self.path)
                items = [*on_disk, *new]
                text = _document(items)
                atomic_write(self.path, text)
                self._written = (text, items)
            del self._pending[: len(pending)]

    def _read_back(self, redactor: Redactor | None) -> list[_Item]:
        """What is on disk now: our last write if nobody wrote since, else the file re-read."""
        written, items = self._written
        try:
            current = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        if current == written:  # comparing text is far cheaper than parsing YAML
            return items
        interactions = load_interactions(self.path)
        if redactor is not None:
            interactions = [_redacted(i, redactor) for i in interactions]
        fresh = [_Item.of(i) for i in interactions]
        _scan(enumerate(fresh), self.path)
        return fresh
