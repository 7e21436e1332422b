"""Reading cassette files: harness's YAML format (versions 1 and 2) and vcrpy's variants.

A version-2 harness file ends with ``interactions_count``, after the list: a file cut short
lacks it or disagrees, and is refused with CassetteFormatError. A file without ``format`` is
read as a vcrpy cassette (``version: 1``, ``body.string`` or pydantic-ai's ``parsed_body``).
A path that is a directory or not UTF-8 text is a CassetteFormatError naming it.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import ScalarNode

from harness.replay.bodies import body_from_yaml, decode_content
from harness.replay.errors import CassetteFormatError, CassetteVersionError
from harness.replay.models import Interaction, RecordedRequest, RecordedResponse

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "FRAMING_HEADERS",
    "READABLE_VERSIONS",
    "gc_paused",
    "load_interactions",
    "load_yaml",
    "parse_cassette_text",
    "read_cassette_bytes",
    "read_cassette_text",
]

FORMAT = "harness"
FORMAT_VERSION = 2
READABLE_VERSIONS: tuple[int, ...] = (1, 2)
"""The harness-format versions this harness reads (it writes ``FORMAT_VERSION``)."""


def _loader_class(module: Any) -> Any:
    """libyaml's safe loader where PyYAML was built with it, else the pure-Python one."""
    return getattr(module, "CSafeLoader", None) or module.SafeLoader


_Loader: Any = _loader_class(yaml)
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


# header names recur in every interaction: one lowered string each, not one per interaction
_lower = functools.lru_cache(maxsize=1024)(str.lower)


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
            headers.append((_lower(str(name)), _text(value)))
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
    return [
        node if type(node) is Interaction else read(node, f"interactions[{i}]")
        for i, node in enumerate(interactions)
    ]


def _read_early(top: dict[Any, Any], index: int, item: Any) -> Any:
    """An ``interactions`` item read as soon as it is built (its YAML form is dropped then).

    Only when the header before the list says harness format in a readable version; an item
    that does not read is left as it is, for ``_parse`` to raise about in order.
    """
    version = top.get("version")
    if top.get("format") != FORMAT or isinstance(version, bool):
        return item
    if version not in READABLE_VERSIONS:
        return item
    try:
        return _harness_interaction(item, f"interactions[{index}]")
    except _Invalid:
        return item


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


_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAGS = frozenset({None, "!", "tag:yaml.org,2002:map"})
_SEQ_TAGS = frozenset({None, "!", "tag:yaml.org,2002:seq"})
_COLLECTION_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("map", "seq", "omap", "pairs", "set")
)
_CACHED_PLAIN = 64  # plain scalars up to this length are resolved once per load (keys, enums)

OnItem = Callable[[dict[Any, Any], int, Any], Any]
"""Called with (top-level mapping so far, index, item) for each ``interactions`` item built."""


class _Unusual(Exception):
    """YAML the fast builder leaves to PyYAML's constructor (merge keys, set/omap, bad aliases)."""


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No garbage collection while a cassette is built (each pass would rescan all of it).

    Nested and concurrent uses are counted: the collector's state before the first is
    restored when the last ends, on an error too.
    """
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


def _build(loader: Any, on_item: OnItem | None) -> Any:
    """The document ``loader`` parses, built from its events without a node graph.

    Gives what ``SafeConstructor`` gives for the YAML cassettes use (mappings, sequences,
    standard scalar tags, anchors and aliases); raises _Unusual for anything else. The items
    of a top-level ``interactions`` sequence go through ``on_item`` as soon as each is built,
    so their YAML form need not be kept all at once.
    """
    get = loader.get_event
    resolve = loader.resolve
    constructors = loader.yaml_constructors
    anchors: dict[str, Any] = {}
    plain: dict[str, Any] = {}

    def tagged(tag: str, event: Any) -> Any:
        if tag in _COLLECTION_TAGS or tag not in constructors:
            raise _Unusual(tag)  # e.g. a merge key: PyYAML's constructor knows what to do
        node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
        return constructors[tag](loader, node)

    def build(event: Any, top: bool = False) -> Any:
        kind = type(event)
        name = event.anchor
        if kind is ScalarEvent:
            tag = event.tag
            value = event.value
            if tag is None or tag == "!":
                if event.implicit[0]:  # plain: its tag depends on what it looks like
                    try:
                        value = plain[value]
                    except KeyError:
                        text = value
                        tag = resolve(ScalarNode, text, event.implicit)
                        if tag != _STR_TAG:
                            value = tagged(tag, event)
                        if len(text) <= _CACHED_PLAIN:
                            plain[text] = value  # str, int, float, bool, None or a date
            elif tag != _STR_TAG:
                value = tagged(tag, event)
        elif kind is AliasEvent:
            if name not in anchors:
                raise _Unusual(name)
            return anchors[name]
        elif kind is MappingStartEvent:
            if event.tag not in _MAP_TAGS:
                raise _Unusual(event.tag)
            value = {}
            if name is not None:
                if name in anchors:
                    raise _Unusual(name)
                anchors[name] = value
            while True:
                event = get()
                if type(event) is MappingEndEvent:
                    return value
                key = build(event)
                event = get()
                if (
                    top
                    and on_item is not None
                    and key == "interactions"
                    and type(event) is SequenceStartEvent
                    and event.anchor is None
                    and event.tag in _SEQ_TAGS
                ):
                    items: list[Any] = []
                    value[key] = items
                    while type(event := get()) is not SequenceEndEvent:
                        items.append(on_item(value, len(items), build(event)))
                    continue
                try:
                    value[key] = build(event)
                except TypeError as exc:  # an unhashable key
                    raise _Unusual(repr(key)) from exc
        elif kind is SequenceStartEvent:
            if event.tag not in _SEQ_TAGS:
                raise _Unusual(event.tag)
            value = []
            if name is not None:
                if name in anchors:
                    raise _Unusual(name)
                anchors[name] = value
            append = value.append
            while type(event := get()) is not SequenceEndEvent:
                append(build(event))
            return value
        else:  # pragma: no cover - the parser yields nodes only here
            raise _Unusual(kind.__name__)
        if name is not None:
            if name in anchors:
                raise _Unusual(name)
            anchors[name] = value
        return value

    if type(get()) is not StreamStartEvent:  # pragma: no cover - always first
        raise _Unusual("stream")
    event = get()
    if type(event) is StreamEndEvent:
        return None
    if type(event) is not DocumentStartEvent:  # pragma: no cover - the parser's order
        raise _Unusual("document")
    try:
        data = build(get(), top=True)
    except RecursionError as exc:
        raise _Unusual("depth") from exc
    if type(get()) is not DocumentEndEvent or type(get()) is not StreamEndEvent:
        raise _Unusual("several documents")  # PyYAML's composer says which
    return data


def load_yaml(text: str | bytes, on_item: OnItem | None = None) -> Any:
    """``yaml.safe_load(text)`` with libyaml's parser where available, faster and leaner.

    The document is built straight from the parser's events (no node graph) with garbage
    collection paused; YAML beyond what cassettes use (merge keys, ``!!set``, a second
    document, ...) is handed to PyYAML's own safe constructor, so the result and errors are
    the same. ``on_item`` sees each item of a top-level ``interactions`` list (see OnItem).
    """
    with gc_paused():
        loader = _Loader(text)
        try:
            return _build(loader, on_item)
        except _Unusual:
            pass
        finally:
            loader.dispose()
        return yaml.load(text, Loader=_Loader)  # a safe loader


def read_cassette_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a cassette file, checked to be UTF-8 text (CassetteFormatError names it).

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
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CassetteFormatError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}): a cassette "
            "is a UTF-8 YAML file; is this a binary or latin-1 file?",
            path=name,
        ) from None
    return raw


def read_cassette_text(path: str | os.PathLike[str]) -> str:
    """The text of a cassette file; CassetteFormatError names a path that is not UTF-8 text.

    A missing file raises FileNotFoundError as usual.
    """
    return read_cassette_bytes(path).decode("utf-8")


def load_interactions(path: str | os.PathLike[str]) -> list[Interaction]:
    """The interactions of a cassette file in any supported format."""
    return parse_cassette_text(read_cassette_bytes(path), path)


def parse_cassette_text(text: str | bytes, path: str | os.PathLike[str]) -> list[Interaction]:
    """The interactions in ``text`` (str, or UTF-8 bytes), the content of the file ``path``."""
    name = os.fspath(path)
    try:
        data = load_yaml(text, _read_early)
    except yaml.YAMLError as exc:
        raise CassetteFormatError(f"not valid YAML: {exc}", path=name) from exc
    try:
        return _parse(data)
    except _BadVersion as exc:
        raise CassetteVersionError(str(exc), path=name, key=exc.key) from None
    except _Invalid as exc:
        raise CassetteFormatError(str(exc), path=name, key=exc.key or None) from None
