"""Cassette files: harness's YAML format, writing it safely, and the ``Cassette`` that records.

harness's own format (``format: harness``, ``version: 2``)::

    format: harness
    version: 2
    interactions:
    - request: {method: POST, uri: https://..., headers: {content-type: application/json},
                body: {json: {...}}}
      response: {status: 200, headers: {...}, body: {sse: ["data: {...}", ...]}}
      recorded_at: '2025-01-01T12:00:00+00:00'
      duration: 0.52
    interactions_count: 1

``interactions_count`` comes after the list, so a file cut short (at any line) lacks it or
disagrees with the list, and is refused instead of loading fewer interactions. Version 1 (the
same without ``interactions_count``) is still read; a version-1 file becomes version 2 at its
next write.

Bodies are stored decoded (no content-encoding) as ``json`` (parsed), ``sse`` / ``ndjson``
(a list of events or lines), ``text`` or ``base64``. Reading (this format and vcrpy's) is in
:mod:`harness.replay.reading`; locks and atomic writes in :mod:`harness.replay.files`.
"""

from __future__ import annotations

import io
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.representer import SafeRepresenter
from yaml.resolver import Resolver

from harness.replay.bodies import body_to_yaml
from harness.replay.errors import CassetteFormatError, SecretLeakError
from harness.replay.files import atomic_write, lock_path, remove_legacy_lock, remove_stale_temps
from harness.replay.models import Interaction
from harness.replay.reading import (
    FORMAT,
    FORMAT_VERSION,
    FRAMING_HEADERS,
    READABLE_VERSIONS,
    load_interactions,
    parse_cassette_text,
    read_cassette_bytes,
    read_cassette_text,
)
from harness.replay.redaction import SECRET_PATTERNS, Redactor, find_secrets, secret_matches
from harness.replay.vcr_format import dump_vcr, is_vcr_cassette
from harness.replay.writing import write_item

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "READABLE_VERSIONS",
    "Cassette",
    "atomic_write",
    "dump_interactions",
    "load_interactions",
    "parse_cassette_text",
    "read_cassette_text",
]


def _represent_str(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _no_aliases(dumper: Any, data: Any) -> bool:
    return True  # a node is built afresh per interaction: nothing in it is shared


_RESOLVED: dict[tuple[str, tuple[bool, bool]], str] = {}
_BASE_RESOLVE: Any = Resolver.resolve
_RESOLVED_MAX = 20_000  # short scalars (keys, header values, enums) recur in every item


def _resolve(dumper: Any, kind: Any, value: Any, implicit: Any) -> Any:
    """``Resolver.resolve``, remembered for short scalars: the emitter asks twice per scalar."""
    if kind is not ScalarNode or len(value) > 64:
        return _BASE_RESOLVE(dumper, kind, value, implicit)
    key = (value, implicit)
    tag = _RESOLVED.get(key)
    if tag is None:
        if len(_RESOLVED) >= _RESOLVED_MAX:
            _RESOLVED.clear()
        tag = _RESOLVED[key] = _BASE_RESOLVE(dumper, kind, value, implicit)
    return tag


def _dumper(base: Any) -> Any:
    """A safe dumper on ``base`` writing multi-line strings as literal blocks (line diffs)."""
    methods = {"ignore_aliases": _no_aliases, "resolve": _resolve}
    dumper: Any = type("_Dumper", (base,), methods)
    dumper.add_representer(str, _represent_str)
    return dumper


def _dumper_base(module: Any) -> Any:
    """libyaml's safe dumper where PyYAML was built with it, else the pure-Python one."""
    return getattr(module, "CSafeDumper", None) or module.SafeDumper


# the pure-Python emitter writes the same bytes as libyaml's (tests check it)
_Dumper = _dumper(_dumper_base(yaml))


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
    headers = [(k, v) for k, v in resp.headers if k.lower() not in FRAMING_HEADERS]
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
    node: dict[str, Any] | None  # dropped once scanned: the text is what gets written
    text: str
    scanned: bool = False  # already found free of secrets

    def passed(self) -> None:
        """Found free of secrets: its node is not needed any more (memory, collector work)."""
        self.scanned = True
        self.node = None

    @classmethod
    def of(cls, interaction: Interaction) -> _Item:
        node = _interaction_node(interaction)
        text = write_item(node)
        if text is None:
            text = _dump_item(node)
            # A last scalar kept with its trailing newlines (``|+``) makes PyYAML end the
            # document with ``...`` on a line of its own; items are joined into one document,
            # where that marker would end it. (A value ending in "..." is not the marker.)
            if text.endswith("\n...\n"):
                text = text[:-4]
        return cls(interaction, node, text)


_TAG = "tag:yaml.org,2002:"
_FLOATS = SafeRepresenter()  # its float spelling (.nan, .inf, 1.0e+20) is the one to match


class _Unlisted(Exception):
    """A value the direct node builder leaves to PyYAML's representer."""


def _yaml_node(value: Any) -> Node:
    """The YAML node PyYAML's safe representer (with ``_represent_str``) makes of ``value``.

    Built directly: a fraction of the representer's cost per value. JSON-shaped values only
    (str, int, float, bool, None, dict, list); anything else raises _Unlisted.
    """
    kind = type(value)
    if kind is str:
        return ScalarNode(_TAG + "str", value, style="|" if "\n" in value else None)
    if kind is dict:
        pairs = [(_yaml_node(k), _yaml_node(v)) for k, v in value.items()]
        return MappingNode(_TAG + "map", pairs, flow_style=False)
    if kind is list:
        return SequenceNode(_TAG + "seq", [_yaml_node(v) for v in value], flow_style=False)
    if kind is int:
        return ScalarNode(_TAG + "int", str(value))
    if kind is bool:
        return ScalarNode(_TAG + "bool", "true" if value else "false")
    if value is None:
        return ScalarNode(_TAG + "null", "null")
    if kind is float:
        node: Node = _FLOATS.represent_float(value)
        return node
    raise _Unlisted(kind.__name__)


def _dump_item(node: dict[str, Any]) -> str:
    """``yaml.dump([node], **_DUMP_OPTIONS)``, the same text, with the nodes built directly."""
    try:
        root = SequenceNode(_TAG + "seq", [_yaml_node(node)], flow_style=False)
    except _Unlisted:
        return str(yaml.dump([node], **_DUMP_OPTIONS))
    stream = io.StringIO()
    options = {k: v for k, v in _DUMP_OPTIONS.items() if k != "Dumper"}
    dumper = _DUMP_OPTIONS["Dumper"](stream, default_flow_style=False, **options)
    try:
        dumper.open()
        dumper.serialize(root)
        dumper.close()
    finally:
        dumper.dispose()
    return stream.getvalue()


_ITEM_START = re.compile(r"^- ", re.MULTILINE)
# an anchor, alias or tag outside quotes: an item's text may depend on another item's
_CROSS_ITEM = re.compile(r"(?:^|[:-] )[&*!]", re.MULTILINE)


def _item_texts(text: str, count: int) -> list[str] | None:
    """The text of each of the ``count`` items of a harness-format file, as written.

    Only for a file laid out as ``_document`` writes one (the current header, one block
    sequence item per interaction starting at a line's first column, the count last) without
    anchors, aliases or tags; None otherwise (then the items are written afresh).
    """
    head, tail = f"{_HEADER}interactions:\n", f"interactions_count: {count}\n"
    if count == 0 or not text.startswith(head) or not text.endswith(tail):
        return None
    body = text[len(head) : len(text) - len(tail)]
    if _CROSS_ITEM.search(body):
        return None
    starts = [match.start() for match in _ITEM_START.finditer(body)]
    if len(starts) != count or starts[0] != 0:
        return None
    ends = [*starts[1:], len(body)]
    return [body[start:end] for start, end in zip(starts, ends, strict=True)]


def _document(items: list[_Item]) -> str:
    count = f"interactions_count: {len(items)}\n"
    if not items:
        return f"{_HEADER}interactions: []\n{count}"
    return f"{_HEADER}interactions:\n" + "".join(item.text for item in items) + count


def dump_interactions(interactions: Iterable[Interaction]) -> tuple[dict[str, Any], str]:
    """The harness-format document for ``interactions`` and its YAML text."""
    items = [_Item.of(i) for i in interactions]
    data = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "interactions": [_node_of(item) for item in items],
        "interactions_count": len(items),
    }
    return data, _document(items)


# Text each key pattern cannot match without (checked by the pattern's exact source, so a
# changed or added pattern makes every interaction take the full scan).
_NEEDS: dict[str, tuple[str, ...]] = {
    r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{20,}": ("sk-",),
    r"AIza[0-9A-Za-z_-]{35}": ("AIza",),
    r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])": ("AKIA", "ASIA"),
    r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*": (),  # looked for case-blind below
    r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}": ("eyJ",),
    r"(?<![A-Za-z0-9_-])ya29\.[0-9A-Za-z_-]{20,}": ("ya29.",),
}
_BEARER = r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*"
# The same without the word boundary: the scan also reads raw bytes as latin-1, where a
# letter such as "é" before the word is no word character, so the file check must not ask for
# a boundary either (no false negatives).
_BEARER_ANYWHERE = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/-]{16,}=*")


def _may_hold_secret(item: _Item) -> bool:
    """Whether the detailed scan of ``item`` can find anything (cheap; no false negatives).

    Its YAML text holds every string of its node (escaped in double quotes where needed) and
    the raw bodies hold what base64 hides: the check of a whole file applies to the two.
    """
    parts = [item.text]
    for body in (item.interaction.request.body, item.interaction.response.body):
        if body:
            parts.append(body.decode("latin-1"))
    return _file_may_hold_secret("\n".join(parts))


def _file_may_hold_secret(text: str) -> bool:
    """Whether scanning the interactions of a cassette file's ``text`` can find anything.

    Cheap, and no false negatives (like ``_may_hold_secret``, for a whole file at once): a
    key's fixed text is visible in the file unless a body is stored as base64 (or
    ``!!binary``), or a string escape or URL encoding hides it; only the lines holding a
    backslash or a percent sign get the patterns run over them (with escapes undone). A YAML
    line continuation (a backslash ending a line) joins lines: then the answer is yes.
    """
    if "base64" in text or "!binary" in text:
        return True
    patterns = {pattern.pattern: pattern for pattern in SECRET_PATTERNS.values()}
    sources = list(patterns)
    if any(source not in _NEEDS for source in sources):
        return True
    # a bearer token has no fixed text but the word: the pattern itself is run (it spans line
    # breaks and indentation as a literal block writes them)
    if _BEARER in patterns and "bearer" in text.lower() and _BEARER_ANYWHERE.search(text):
        return True
    if any(needle in text for source in sources for needle in _NEEDS[source]):
        return True
    if "\\" not in text and "%" not in text:
        return False
    marked = [line for line in text.split("\n") if "\\" in line or "%" in line]
    if any(line.rstrip().endswith("\\") for line in marked):
        return True
    joined = "\n".join(marked)
    # the YAML escapes undone first (a JSON escape in a string is written as "\\u0073")
    return bool(secret_matches(joined) or secret_matches(_YAML_ESCAPE.sub(_yaml_char, joined)))


_YAML_ESCAPE = re.compile(r"\\(U[0-9a-fA-F]{8}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)")
_YAML_ESCAPED = {
    **{c: c for c in ' "/\\\t'},
    **dict(zip("0abtnvfreN_LP", "\0\a\b\t\n\v\f\r\x1b\x85\xa0\u2028\u2029", strict=True)),
}


def _yaml_char(match: re.Match[str]) -> str:
    """The character a YAML double-quoted escape stands for (unknown ones kept as written)."""
    code = match.group(1)
    if len(code) > 1:
        return chr(int(code[1:], 16)) if int(code[1:], 16) <= 0x10FFFF else match.group()
    return _YAML_ESCAPED.get(code, match.group())


def _node_of(item: _Item) -> dict[str, Any]:
    return item.node if item.node is not None else _interaction_node(item.interaction)


def _scan_item(i: int, item: _Item) -> list[str]:
    if not _may_hold_secret(item):
        return []
    where = f"interactions[{i}]"
    findings = find_secrets(_node_of(item), item.text, path=where)
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
    """Raise SecretLeakError naming every key-like string in ``items``; else mark them passed."""
    listed = list(items)
    findings = [finding for i, item in listed for finding in _scan_item(i, item)]
    if findings:
        raise SecretLeakError(path=str(path), findings=findings)
    for _, item in listed:
        item.passed()


def _success(interaction: Interaction) -> bool:
    return interaction.response.status < 400


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _redacted(interaction: Interaction, redactor: Redactor) -> Interaction:
    return replace(
        interaction,
        request=redactor.redact_request(interaction.request),
        response=redactor.redact_response(interaction.response),
    )


class Cassette:
    """The interactions of one cassette file, plus the ones recorded since it was read."""

    def __init__(self, path: str | os.PathLike[str], interactions: list[Interaction] | None = None):
        self.path = Path(path)
        self.interactions: list[Interaction] = list(interactions or [])
        self._pending: list[_Item] = []
        self._pending_bytes = 0
        self._lock = threading.Lock()
        # The bytes this object last wrote (or read), and the items they were made of (None:
        # not built yet; ``_unbuilt`` holds what they are made of when needed).
        self._written: tuple[bytes | None, list[_Item] | None] = (None, [])
        self._unbuilt: tuple[list[Interaction], Redactor] | None = None
        self._swept = False  # stale temp files of killed writers removed once per object
        # The format ``save`` writes: None keeps the file's (vcrpy stays vcrpy; harness when
        # new), True writes vcrpy's (harness.replay.vcr_format), False harness's (converts).
        self.vcr_format: bool | None = None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Cassette:
        """The cassette at ``path``; an absent file is an empty cassette."""
        try:
            raw = read_cassette_bytes(path)
        except FileNotFoundError:
            return cls(path)
        return cls(path, parse_cassette_text(raw, path))

    @classmethod
    def load_for_recording(cls, path: str | os.PathLike[str], redactor: Redactor) -> Cassette:
        """The cassette at ``path``, checked before any request is sent that it can be extended.

        Raises CassetteFormatError for an unreadable file and SecretLeakError when what is on
        disk still holds a key-like string after ``redactor``: the next write would have to
        refuse, after the upstream answer was paid for.
        """
        try:
            raw = read_cassette_bytes(path)
        except FileNotFoundError:
            return cls(path)
        interactions = parse_cassette_text(raw, path)
        cassette = cls(path, interactions)
        if not _file_may_hold_secret(raw.decode("utf-8")):
            # Nothing to refuse: the items (redacted, with their YAML text) are built by the
            # first write that keeps them, not for every interaction up front.
            cassette._written = (raw, None)
            cassette._unbuilt = (list(interactions), redactor)
            return cassette
        items = [_Item.of(_redacted(i, redactor)) for i in interactions]
        try:
            _scan(enumerate(items), cassette.path)
        except SecretLeakError as error:
            raise SecretLeakError(
                path=error.path,
                findings=error.findings,
                hint="it is already in the file on disk, and recording would have to write it "
                "back: remove it (or make the Redactor redact it), or re-record with mode rewrite",
            ) from None
        cassette._written = (raw, items)
        return cassette

    @property
    def pending(self) -> int:
        """How many recorded interactions the next ``save`` will write."""
        return len(self._pending)

    @property
    def pending_interactions(self) -> list[Interaction]:
        """The recorded interactions the next ``save`` will write, in order."""
        with self._lock:
            return [item.interaction for item in self._pending]

    def discard_pending(self) -> None:
        """Forget the recorded interactions not written yet (they stay out of the file)."""
        with self._lock:
            gone = {id(item.interaction) for item in self._pending}
            self.interactions = [i for i in self.interactions if id(i) not in gone]
            self._pending = []
            self._pending_bytes = 0

    @property
    def pending_bytes(self) -> int:
        """The size of their YAML text (characters), for deciding when to save."""
        return self._pending_bytes

    @property
    def lock_path(self) -> Path:
        """The lock file guarding writes (outside the project tree, keyed by the absolute path)."""
        return lock_path(self.path)

    def add(self, interaction: Interaction, *, check: bool = False) -> None:
        """Append a newly recorded interaction; it is written by the next ``save``.

        ``check``: scan it for key-like strings now, and raise SecretLeakError (keeping
        nothing) instead of at the next ``save``.
        """
        item = _Item.of(interaction)
        with self._lock:
            if check:
                _scan([(len(self.interactions), item)], self.path)
            self.interactions.append(interaction)
            self._pending.append(item)
            self._pending_bytes += len(item.text)

    def _drop_refused(self) -> list[str]:
        """Scan the pending interactions; drop those holding a key-like string, say why."""
        findings: list[str] = []
        refused: list[_Item] = []
        for item in self._pending:
            if item.scanned:
                continue
            index = next(
                (i for i, x in enumerate(self.interactions) if x is item.interaction),
                len(self.interactions),
            )
            found = _scan_item(index, item)
            if found:
                findings.extend(found)
                refused.append(item)
            if not found:
                item.passed()
        if refused:
            dropped = {id(item) for item in refused}
            self._pending = [item for item in self._pending if id(item) not in dropped]
            self._pending_bytes = sum(len(item.text) for item in self._pending)
            gone = {id(item.interaction) for item in refused}
            self.interactions = [i for i in self.interactions if id(i) not in gone]
        return findings

    def save(
        self,
        *,
        drop_recorded_before: datetime | None = None,
        redactor: Redactor | None = None,
        timeout: float = 60.0,
        replace_unreadable: bool = False,
        keep_successes: bool = False,
    ) -> bool:
        """Merge new interactions into the file on disk, atomically and under a file lock.

        Other writers (threads, processes) may have saved since this cassette was read; their
        interactions are kept. ``drop_recorded_before`` drops the on-disk interactions recorded
        before that time (or with no time), which is how ``rewrite`` replaces a cassette.
        ``redactor`` is applied to what was on disk too (e.g. a vcrpy cassette being extended).
        ``replace_unreadable``: a file on disk that is not a readable cassette is replaced
        instead of raising CassetteFormatError. ``keep_successes``: when the file would hold
        only error answers (status >= 400) and what it drops holds a success, leave the file as
        it is and keep the new interactions pending (so a wrong URL or an outage in ``rewrite``
        does not replace good recordings). Returns whether the file was written. Raises
        SecretLeakError if what is kept from disk contains a key-like string (then nothing is
        written), or if a new interaction does (then that one is dropped for good and the
        others are written); CassetteFormatError if the cassette's folder cannot be made.
        """
        with self._lock:
            # A refused interaction is dropped: it must not block the ones recorded after it.
            refused = self._drop_refused()
            pending = list(self._pending)
            if not pending and drop_recorded_before is None:
                if refused:
                    raise SecretLeakError(path=str(self.path), findings=refused)
                return False
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CassetteFormatError(
                    f"cannot be written: its folder cannot be made ({exc.strerror or exc})",
                    path=str(self.path),
                ) from exc
            with FileLock(self.lock_path, timeout=timeout):
                if not self._swept:
                    remove_stale_temps(self.path)
                    remove_legacy_lock(self.path)
                    self._swept = True
                keep = None
                if drop_recorded_before is not None:
                    cutoff = _aware(drop_recorded_before)

                    def keep(interaction: Interaction) -> bool:
                        at = interaction.recorded_at
                        return at is not None and _aware(at) >= cutoff

                on_disk, dropped = self._read_back(redactor, keep, replace_unreadable)
                items = [*on_disk, *pending]
                written = not (
                    keep_successes
                    and not any(_success(item.interaction) for item in items)
                    and any(_success(interaction) for interaction in dropped)
                )
                if written:
                    vcr = self.vcr_format
                    if vcr is None:
                        vcr = is_vcr_cassette(self.path)
                    text = dump_vcr(i.interaction for i in items) if vcr else _document(items)
                    data = text.encode("utf-8")
                    atomic_write(self.path, data)
                    self._written = (data, items)
            if written:
                del self._pending[: len(pending)]
                self._pending_bytes = sum(len(item.text) for item in self._pending)
            if refused:
                raise SecretLeakError(path=str(self.path), findings=refused)
            return written

    def _items_read(self, built: list[_Item] | None) -> list[_Item]:
        """The items of the interactions read from the file, built now if they were not."""
        if built is not None:
            return built
        interactions, redactor = self._unbuilt or ([], Redactor())
        raw = self._written[0]
        texts = _item_texts(raw.decode("utf-8"), len(interactions)) if raw else None
        items = []
        for k, interaction in enumerate(interactions):
            redacted = _redacted(interaction, redactor)
            if texts is not None and redacted == interaction:
                # what the redactor leaves as it is keeps its text from the file: no YAML work
                items.append(_Item(interaction, None, texts[k], scanned=True))
            else:
                item = _Item.of(redacted)
                item.passed()  # the file was found free of secrets when it was read
                items.append(item)
        self._written, self._unbuilt = (self._written[0], items), None
        return items

    def _read_back(
        self,
        redactor: Redactor | None,
        keep: Callable[[Interaction], bool] | None,
        replace_unreadable: bool,
    ) -> tuple[list[_Item], list[Interaction]]:
        """What is on disk now (our last write if nobody wrote since, else the file re-read):
        the items ``keep`` keeps, and the interactions it drops."""
        written, built = self._written
        try:
            current = read_cassette_bytes(self.path)
            if current != written:  # comparing text is far cheaper than parsing YAML
                interactions = parse_cassette_text(current, self.path)
        except FileNotFoundError:
            return [], []
        except CassetteFormatError:
            if replace_unreadable and not self.path.is_dir():
                return [], []
            raise
        if current == written:
            items = self._items_read(built)
            if keep is None:
                return list(items), []
            return (
                [item for item in items if keep(item.interaction)],
                [item.interaction for item in items if not keep(item.interaction)],
            )
        dropped: list[Interaction] = []
        if keep is not None:
            dropped = [i for i in interactions if not keep(i)]
            interactions = [i for i in interactions if keep(i)]
        if redactor is not None:
            interactions = [_redacted(i, redactor) for i in interactions]
        fresh = [_Item.of(i) for i in interactions]
        _scan(enumerate(fresh), self.path)
        return fresh, dropped
