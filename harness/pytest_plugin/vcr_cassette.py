"""The heavy half of harness's pytest-recording interface: vcr_config as a matcher and a
redactor, and the object the ``vcr`` fixture gives a test.

Imported by :mod:`harness.pytest_plugin.vcr` only when a test uses ``vcr``, so a session that never
does loads no replay code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from harness.replay import Matcher, RecordedRequest, Redactor, RequestKey
from harness.replay.matching import canonical_body, is_volatile_header, normalize_url
from harness.replay.models import Interaction, RecordedResponse
from harness.replay.transport import ReplayTransport

__all__ = ["VcrCassette", "VcrMatcher", "VcrRequest", "transport_options"]

_DEFAULT_MATCH_ON: tuple[str, ...] = ("method", "scheme", "host", "port", "path", "query")
_MATCHERS = frozenset({"method", "uri", "scheme", "host", "port", "path", "query", "body"})
_MATCHERS_ALIASES = {"raw_body": "body"}
_IGNORED_KEYS = frozenset({"decode_compressed_response"})  # harness always decodes
_KNOWN_KEYS = frozenset(
    {
        "match_on",
        "filter_headers",
        "filter_query_parameters",
        "filter_post_data_parameters",
        "record_mode",
        "before_record_request",
        "before_record_response",
        "serializer",
        "cassette_library_dir",
        "allow_playback_repeats",
        "ignore_localhost",
        "ignore_hosts",
        *_IGNORED_KEYS,
    }
)
LOCALHOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})  # vcrpy's ignore_localhost


# -- matching and redaction from vcr_config ------------------------------------------------------


@dataclass(frozen=True)
class VcrMatcher(Matcher):
    """A Matcher comparing only the parts vcrpy's ``match_on`` names."""

    match_on: tuple[str, ...] = _DEFAULT_MATCH_ON

    def key(self, request: RecordedRequest) -> RequestKey:
        """The key of ``request`` over the ``match_on`` parts (volatile headers never count)."""
        on = set(self.match_on)
        url = normalize_url(request.uri, self.ignore_query)
        if "uri" not in on:
            parts = urlsplit(url)
            wanted = {
                "scheme": parts.scheme,
                "host": parts.hostname or "",
                "port": str(parts.port or ""),
                "path": parts.path,
                "query": parts.query,
            }
            url = " ".join(f"{k}={v}" for k, v in wanted.items() if k in on)
        extra: tuple[Hashable, ...] = tuple(fn(request) for fn in self.custom)
        if "headers" in on:
            redactor = Redactor()
            extra += (
                tuple(
                    sorted(
                        (name.lower(), value)
                        for name, value in request.headers
                        if not is_volatile_header(name) and not redactor.is_secret_header(name)
                    )
                ),
            )
        return RequestKey(
            method=request.method.upper() if "method" in on else "",
            url=url,
            body=canonical_body(request.body, self.ignore_body_paths) if "body" in on else b"",
            extra=extra,
        )


@dataclass
class VcrRequest:
    """What ``before_record_request`` gets and returns (vcrpy's Request, in brief)."""

    method: str
    uri: str
    body: bytes | None
    headers: dict[str, str]

    @property
    def url(self) -> str:
        """vcrpy's other name for ``uri``."""
        return self.uri


def _names(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise pytest.UsageError(f"vcr_config[{key!r}]: expected a list, got {value!r}")
    names = []
    for item in value:
        name = item[0] if isinstance(item, (tuple, list)) and item else item
        if not isinstance(name, str):
            raise pytest.UsageError(f"vcr_config[{key!r}]: expected names, got {item!r}")
        names.append(name)
    return names


class _CallbackRedactor(Redactor):
    """harness's redaction, then the project's ``before_record_*`` callbacks."""

    def __init__(self, base: Redactor, on_request: Any, on_response: Any) -> None:
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init}
        super().__init__(**fields)
        object.__setattr__(self, "_on_request", on_request)
        object.__setattr__(self, "_on_response", on_response)

    def redact_request(self, request: RecordedRequest) -> RecordedRequest:
        redacted = super().redact_request(request)
        callback: Callable[[VcrRequest], Any] | None = getattr(self, "_on_request", None)
        if callback is None:
            return redacted
        given = VcrRequest(
            redacted.method, redacted.uri, redacted.body or None, dict(redacted.headers)
        )
        changed = callback(given)
        if changed is None:  # vcrpy: None means "do not record"; harness keeps the redaction
            return redacted
        body = changed.body or b""
        return RecordedRequest(
            method=changed.method,
            uri=changed.uri,
            headers=list(dict(changed.headers).items()),
            body=body.encode() if isinstance(body, str) else body,
        )

    def redact_response(self, response: RecordedResponse) -> RecordedResponse:
        redacted = super().redact_response(response)
        callback: Callable[[dict[str, Any]], Any] | None = getattr(self, "_on_response", None)
        if callback is None:
            return redacted
        headers: dict[str, list[str]] = {}
        for name, value in redacted.headers:
            headers.setdefault(name, []).append(value)
        given = {
            "status": {"code": redacted.status, "message": ""},
            "headers": headers,
            "body": {"string": redacted.body},
        }
        changed = callback(given)
        if changed is None:
            return redacted
        body = changed.get("body", {}).get("string", b"")
        return RecordedResponse(
            status=int(changed.get("status", {}).get("code", redacted.status)),
            headers=[(k, v) for k, vs in changed.get("headers", {}).items() for v in vs],
            body=body.encode() if isinstance(body, str) else (body or b""),
        )


def transport_options(vcr_config: Mapping[str, Any]) -> dict[str, Any]:
    """ReplayTransport keyword arguments (``matcher``, ``redactor``, ``allow_repeats``,
    ``ignore_hosts``) for a vcr_config."""
    unknown = sorted(set(vcr_config) - _KNOWN_KEYS)
    if unknown:
        raise pytest.UsageError(
            f"vcr_config key {unknown[0]!r} is not supported by harness's pytest-recording "
            f"interface (supported: {', '.join(sorted(_KNOWN_KEYS))}); install "
            "pytest-recording, or use harness's llm_cassette marker and llm_cassette_options"
        )
    serializer = vcr_config.get("serializer", "yaml")
    if serializer != "yaml":
        raise pytest.UsageError(f"vcr_config['serializer'] = {serializer!r}: only 'yaml' is read")
    match_on = []
    for name in vcr_config.get("match_on", _DEFAULT_MATCH_ON):
        if not isinstance(name, str) or _MATCHERS_ALIASES.get(name, name) not in (
            _MATCHERS | {"headers"}
        ):
            raise pytest.UsageError(
                f"vcr_config['match_on']: unknown matcher {name!r} (harness knows "
                f"{', '.join(sorted(_MATCHERS | {'headers', 'raw_body'}))})"
            )
        match_on.append(_MATCHERS_ALIASES.get(name, name))
    query = _names(vcr_config.get("filter_query_parameters"), "filter_query_parameters")
    headers = _names(vcr_config.get("filter_headers"), "filter_headers")
    fields = _names(vcr_config.get("filter_post_data_parameters"), "filter_post_data_parameters")
    base = Redactor.from_env()
    redactor = dataclasses.replace(
        base,
        drop_headers=base.drop_headers | {h.lower() for h in headers},
        drop_query=base.drop_query | {q.lower() for q in query},
        body_fields=base.body_fields | {f.lower() for f in fields},
    )
    on_request = vcr_config.get("before_record_request")
    on_response = vcr_config.get("before_record_response")
    for key, value in (
        ("before_record_request", on_request),
        ("before_record_response", on_response),
    ):
        if value is not None and not callable(value):
            raise pytest.UsageError(f"vcr_config[{key!r}]: expected a callable, got {value!r}")
    if on_request is not None or on_response is not None:
        redactor = _CallbackRedactor(redactor, on_request, on_response)
    matcher = VcrMatcher(
        ignore_query=Matcher().ignore_query | {q.lower() for q in query},
        match_on=tuple(match_on),
    )
    for key in ("allow_playback_repeats", "ignore_localhost"):
        if not isinstance(vcr_config.get(key, False), bool):
            raise pytest.UsageError(f"vcr_config[{key!r}]: expected True or False")
    ignored = set(_names(vcr_config.get("ignore_hosts"), "ignore_hosts"))
    if vcr_config.get("ignore_localhost"):
        ignored |= LOCALHOSTS
    return {
        "matcher": matcher,
        "redactor": redactor,
        "allow_repeats": bool(vcr_config.get("allow_playback_repeats", False)),
        "ignore_hosts": sorted(h.lower() for h in ignored),
    }


VCR_MODE_NAMES = {"replay": "none", "record": "new_episodes", "rewrite": "all"}


class VcrCassette:
    """What the ``vcr`` fixture gives a test: the cassette's file, mode and play counts."""

    def __init__(self, path: Path, mode: str, transport: ReplayTransport) -> None:
        self.path = path
        self.record_mode = VCR_MODE_NAMES.get(mode, mode)  # vcrpy's name: none, once, ...
        self.transport = transport
        self.play_count = 0
        self.requests: list[RecordedRequest] = []

    def observe(self, request: Any, interaction: Interaction, replayed: bool) -> None:
        """Count an interaction replayed or recorded."""
        self.requests.append(interaction.request)
        if replayed:
            self.play_count += 1

    @property
    def all_played(self) -> bool:
        """Whether every recorded interaction was used."""
        return not self.transport.unplayed()
