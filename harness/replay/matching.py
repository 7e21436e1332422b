"""Which recorded interaction answers a request: request keys, an index, and miss diagnostics."""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from harness.replay.errors import ClosestRequest
from harness.replay.models import Interaction, RecordedRequest
from harness.replay.redaction import SECRET_QUERY_PARAMS

__all__ = [
    "VOLATILE_HEADERS",
    "VOLATILE_HEADER_PREFIXES",
    "InteractionIndex",
    "Matcher",
    "RequestKey",
    "canonical_body",
    "is_volatile_header",
    "normalize_url",
    "request_fingerprint",
]

VOLATILE_HEADERS: frozenset[str] = frozenset(
    {
        "accept-encoding",
        "amz-sdk-invocation-id",
        "amz-sdk-request",
        "connection",
        "content-length",
        "date",
        "host",
        "user-agent",
        "x-amz-date",
        "x-request-id",
        "idempotency-key",
        "retry-count",
        "x-retry-count",
    }
)
"""Request headers that change from run to run; they never take part in matching."""

VOLATILE_HEADER_PREFIXES: tuple[str, ...] = ("x-stainless-",)
"""Header name prefixes treated as volatile (the OpenAI/Anthropic SDK telemetry headers)."""

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters left unescaped in a normalised path: RFC 3986 unreserved, sub-delims, ':' and '@'.
_PATH_SAFE = "/:@!$&'()*+,;=~"


def is_volatile_header(name: str) -> bool:
    """Whether a request header changes from run to run (and so is ignored)."""
    lowered = name.lower()
    return lowered in VOLATILE_HEADERS or lowered.startswith(VOLATILE_HEADER_PREFIXES)


def normalize_url(url: str, ignore_query: Iterable[str] = SECRET_QUERY_PARAMS) -> str:
    """``url`` in a canonical form: default port and fragment gone, query sorted and filtered."""
    ignored = ignore_query if isinstance(ignore_query, frozenset) else frozenset(ignore_query)
    return _normalize_url(url, ignored)


@functools.lru_cache(maxsize=4096)  # a suite sends the same few URLs over and over
def _normalize_url(url: str, ignore_query: frozenset[str]) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{parts.port}"
    path = quote(unquote(parts.path), safe=_PATH_SAFE) or "/"
    ignored = {name.lower() for name in ignore_query}
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode(sorted((k, v) for k, v in pairs if k.lower() not in ignored))
    return urlunsplit((scheme, host, path, query, ""))


def _drop_path(value: Any, path: list[str]) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        if not rest:
            return {k: v for k, v in value.items() if k != head}
        if head == "*":
            return {k: _drop_path(v, rest) for k, v in value.items()}
        return {k: _drop_path(v, rest) if k == head else v for k, v in value.items()}
    if isinstance(value, list):
        if head == "*":
            return [_drop_path(item, rest) for item in value] if rest else []
        if head.isdigit() and int(head) < len(value):
            i = int(head)
            if not rest:
                return value[:i] + value[i + 1 :]
            return [*value[:i], _drop_path(value[i], rest), *value[i + 1 :]]
    return value


def _parsed_json(body: bytes) -> Any:
    if not body or body[:1] not in b"{[":
        return _NOT_JSON
    try:
        return json.loads(body)
    except ValueError:
        return _NOT_JSON


_NOT_JSON: Any = object()


def canonical_body(body: bytes, ignore_paths: Iterable[str] = ()) -> str | bytes:
    """A JSON body as sorted, compact JSON without the ignored paths; other bodies as bytes.

    ``ignore_paths`` are dotted paths such as ``metadata.user_id`` or ``messages.*.id``.
    """
    parsed = _parsed_json(body)
    if parsed is _NOT_JSON:
        return body
    for path in ignore_paths:
        parsed = _drop_path(parsed, path.split("."))
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_fingerprint(request: RecordedRequest) -> str:
    """A short stable hash of method, normalised URL and canonical body (for reports)."""
    body = canonical_body(request.body)
    raw = body.encode("utf-8") if isinstance(body, str) else body
    head = f"{request.method.upper()} {normalize_url(request.uri)}\n".encode()
    return hashlib.sha256(head + raw).hexdigest()[:16]


class RequestKey(NamedTuple):
    """What identifies a request for replay."""

    method: str
    url: str
    body: str | bytes
    extra: tuple[Hashable, ...] = ()


@dataclass(frozen=True)
class Matcher:
    """Builds request keys: method, normalised URL, canonical body, plus custom parts.

    ``custom`` functions each map a request to a hashable value that must also be equal
    (e.g. ``lambda r: dict(r.headers).get("anthropic-beta")``).
    """

    ignore_query: frozenset[str] = SECRET_QUERY_PARAMS
    ignore_body_paths: tuple[str, ...] = ()
    custom: tuple[Callable[[RecordedRequest], Hashable], ...] = field(default=())

    def key(self, request: RecordedRequest) -> RequestKey:
        """The key of ``request``; equal keys replay each other."""
        return RequestKey(
            method=request.method.upper(),
            url=normalize_url(request.uri, self.ignore_query),
            body=canonical_body(request.body, self.ignore_body_paths),
            extra=tuple(fn(request) for fn in self.custom),
        )

    def describe(self, request: RecordedRequest) -> list[str]:
        """Readable lines for a diff: the request line, then the body (pretty JSON if JSON)."""
        key = self.key(request)
        lines = [f"{key.method} {key.url}"]
        lines.extend(
            f"[{fn.__name__}] {value!r}" for fn, value in zip(self.custom, key.extra, strict=True)
        )
        parsed = _parsed_json(request.body)
        if parsed is not _NOT_JSON:
            for path in self.ignore_body_paths:
                parsed = _drop_path(parsed, path.split("."))
            text = json.dumps(parsed, sort_keys=True, indent=2, ensure_ascii=False)
        else:
            text = request.body.decode("utf-8", errors="replace")
        lines.extend(text.splitlines())
        return lines


_DIFF_LINES = 40


class InteractionIndex:
    """Recorded interactions by request key; identical requests replay in recorded order.

    ``allow_repeats``: once every interaction recorded for a request was played, the last of
    them answers it again (vcrpy's ``allow_playback_repeats``).
    """

    def __init__(
        self, interactions: Iterable[Interaction], matcher: Matcher, *, allow_repeats: bool = False
    ) -> None:
        self.matcher = matcher
        self.allow_repeats = allow_repeats
        self._last: dict[RequestKey, int] = {}  # with allow_repeats: the last played, per key
        self.interactions: list[Interaction] = list(interactions)
        # per key, the unplayed indexes last-to-first (a list is a tenth of a deque's size)
        self._queues: dict[RequestKey, list[int]] = {}
        self._played: set[int] = set()
        for i, interaction in enumerate(self.interactions):
            self._queues.setdefault(matcher.key(interaction.request), []).append(i)
        for queue in self._queues.values():
            if len(queue) > 1:
                queue.reverse()

    def take(self, request: RecordedRequest) -> tuple[int, Interaction] | None:
        """The next unplayed interaction recorded for ``request``, marked as played."""
        key = self.matcher.key(request)
        queue = self._queues.get(key)
        if not queue:
            last = self._last.get(key) if self.allow_repeats else None
            return None if last is None else (last, self.interactions[last])
        i = queue.pop()
        self._played.add(i)
        if self.allow_repeats:
            self._last[key] = i
        return i, self.interactions[i]

    def unplayed(self) -> list[int]:
        """Indexes of the interactions that no request has used yet."""
        return [i for i in range(len(self.interactions)) if i not in self._played]

    def closest(self, request: RecordedRequest, limit: int = 3) -> list[ClosestRequest]:
        """The recorded requests most like ``request``, each with a diff (recorded -> sent)."""
        if not self.interactions:
            return []
        wanted = self.matcher.key(request)
        sent = self.matcher.describe(request)
        sent_text = "\n".join(sent)
        scored = []
        for i, interaction in enumerate(self.interactions):
            key = self.matcher.key(interaction.request)
            text = "\n".join(self.matcher.describe(interaction.request))
            ratio = difflib.SequenceMatcher(None, text, sent_text, autojunk=False).quick_ratio()
            scored.append((key.method == wanted.method, key.url == wanted.url, ratio, -i, i))
        scored.sort(reverse=True)
        result = []
        for *_, i in scored[:limit]:
            recorded = self.interactions[i].request
            diff = list(
                difflib.unified_diff(
                    self.matcher.describe(recorded),
                    sent,
                    fromfile=f"recorded interactions[{i}]",
                    tofile="this request",
                    n=2,
                    lineterm="",
                )
            )
            if not diff:
                diff = ["(identical request: every recorded interaction for it was already played)"]
            elif len(diff) > _DIFF_LINES:
                diff = [*diff[:_DIFF_LINES], f"... ({len(diff) - _DIFF_LINES} more diff lines)"]
            key = self.matcher.key(recorded)
            result.append(
                ClosestRequest(index=i, method=key.method, url=key.url, diff="\n".join(diff))
            )
        return result
