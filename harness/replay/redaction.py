"""Keep secrets off disk: drop auth headers and key params, redact known values, scan writes.

What a :class:`Redactor` removes by default before a cassette is written:

- headers (requests and responses) in ``SECRET_HEADERS``, and any header whose name contains
  one of ``SECRET_HEADER_WORDS`` (key, token, secret, auth, password, signature) unless it is
  a harmless counter or challenge (``HARMLESS_HEADERS``: ``*ratelimit*``, ``*-tokens``...);
- query parameters in ``SECRET_QUERY_PARAMS`` and the user-info of a URL
  (``https://user:pw@host`` becomes ``https://REDACTED@host``);
- the values of ``SECRET_BODY_FIELDS`` at any depth of a JSON body (whatever its media type,
  ``text/plain`` included), of each JSON event of an SSE or NDJSON stream, and of a form;
- every configured secret value (``Redactor.from_env``: the provider key variables).

``find_secrets`` is the scan that refuses a write still holding a key-shaped string; it also
looks through JSON string escapes (``\\n``) and URL encoding (``%3A``, ``%2F``, ``%0A``).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from harness.replay.bodies import content_type, header_value, split_text_events
from harness.replay.models import RecordedRequest, RecordedResponse

__all__ = [
    "DEFAULT_SECRET_ENV_VARS",
    "HARMLESS_HEADERS",
    "REDACTED",
    "SECRET_BODY_FIELDS",
    "SECRET_FIELD_SUFFIXES",
    "SECRET_HEADERS",
    "SECRET_HEADER_WORDS",
    "SECRET_PATTERNS",
    "SECRET_QUERY_PARAMS",
    "SECRET_TOKEN_PREFIXES",
    "Redactor",
    "find_interaction_secrets",
    "find_secrets",
    "normalise_name",
    "secret_matches",
]

REDACTED = "REDACTED"

SECRET_HEADERS: frozenset[str] = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "x-auth-token",
        "x-access-token",
        "ocp-apim-subscription-key",
        "helicone-auth",
        "x-portkey-api-key",
        "openai-organization",
        "openai-project",
        "anthropic-organization-id",
        "cookie",
        "set-cookie",
        "x-amz-security-token",
        "x-session-token",
    }
)
"""Headers never written to a cassette (matched case-insensitively)."""

SECRET_HEADER_WORDS: tuple[str, ...] = (
    "key",
    "token",
    "secret",
    "auth",
    "password",
    "signature",
    "credential",
)
"""A header whose name contains one of these is dropped too, unless it is harmless."""

HARMLESS_HEADERS: tuple[str, ...] = (
    "*ratelimit*",
    "*-tokens",
    "*-tokens-*",
    "*-token-count",
    "www-authenticate",
    "proxy-authenticate",
    "access-control-allow-credentials",
)
"""Name patterns kept despite a secret word: rate-limit and token counters, auth challenges.

Apart from the listed exact names, a name that also contains ``key``, ``secret``,
``password``, ``signature``, ``session``, ``auth``, ``credential`` or ``api`` is never
harmless (``X-Api-Tokens`` is dropped although it ends in ``-tokens``).
"""

_NEVER_HARMLESS = ("key", "secret", "password", "signature", "session", "auth", "credential", "api")

SECRET_QUERY_PARAMS: frozenset[str] = frozenset(
    {
        "key",
        "api_key",
        "api-key",
        "apikey",
        "access_token",
        "token",
        "auth",
        "auth_token",
        "secret",
        "password",
        "subscription-key",
        "client_secret",
        "sig",
        "signature",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "refresh_token",
        "id_token",
        "client_assertion",
        "code",  # an OAuth authorization code
    }
)
"""Query parameters dropped from recorded URLs (and ignored when matching); names are
compared case-insensitively and ignoring ``_`` and ``-`` (``accessToken`` is ``access_token``)."""

SECRET_BODY_FIELDS: frozenset[str] = frozenset(
    {
        "api_key",
        "api-key",
        "apikey",
        "x-api-key",
        "access_token",
        "auth_token",
        "refresh_token",
        "id_token",
        "session_token",
        "authorization",
        "secret",
        "client_secret",
        "secret_key",
        "aws_secret_access_key",
        "private_key",
        "password",
        "client_assertion",
        "subscription-key",
        "x-amz-credential",
        "x-amz-signature",
        "x-amz-security-token",
    }
)
"""Fields whose values are redacted in JSON, multipart and form bodies.

Names are compared case-insensitively and ignoring ``_`` and ``-`` (``accessToken``,
``clientSecret`` and ``client-secret`` are ``client_secret``); beyond the listed names, a
name ending in ``apikey``, ``secret``, ``secretkey``, ``secretaccesskey``, ``password`` or
``privatekey``, or in ``token`` after a credential word (``SECRET_TOKEN_PREFIXES``: ``api_token``,
``bearer_token``...), is secret too. Generic names such as ``token``, ``tokens``,
``max_tokens``, ``key``, ``auth`` and ``signature`` are left out: in bodies they are ordinary
data (a logprobs or usage ``token``, a thinking block's ``signature``).
"""

SECRET_FIELD_SUFFIXES: tuple[str, ...] = (
    "apikey",
    "secret",
    "secretkey",
    "secretaccesskey",
    "password",
    "privatekey",
)
"""Normalised field-name endings that make a field secret (see ``SECRET_BODY_FIELDS``)."""

SECRET_TOKEN_PREFIXES: tuple[str, ...] = (
    "access",
    "auth",
    "refresh",
    "id",
    "session",
    "api",
    "bearer",
    "security",
    "oauth",
    "secret",
    "client",
    "personalaccess",
)
"""A normalised field name ending in one of these followed by ``token`` is secret."""


_JUDGED_MAX = 10_000
_JSON_SPACE = "\ufeff \t\r\n"  # what may come before a JSON document (a byte order mark too)


def normalise_name(name: str) -> str:
    """A field or parameter name lower-cased, without ``_`` and ``-``, for matching."""
    return name.lower().replace("_", "").replace("-", "")


DEFAULT_SECRET_ENV_VARS: tuple[str, ...] = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "DEEPSEEK_API_KEY",
    "OPENROUTER_API_KEY",
    "GROQ_API_KEY",
    "MISTRAL_API_KEY",
    "ZHIPUAI_API_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
"""Environment variables whose values ``Redactor.from_env`` treats as secrets."""

SECRET_PATTERNS: dict[str, re.Pattern[str]] = {
    "OpenAI/Anthropic-style key (sk-...)": re.compile(r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{20,}"),
    "Google API key (AIza...)": re.compile(r"AIza[0-9A-Za-z_-]{35}"),
    "AWS access key id (AKIA...)": re.compile(
        r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])"
    ),
    "bearer token": re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*"),
    "JSON Web Token (eyJ...)": re.compile(
        r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    ),
    "Google OAuth access token (ya29.)": re.compile(r"(?<![A-Za-z0-9_-])ya29\.[0-9A-Za-z_-]{20,}"),
}
"""Patterns that a cassette about to be written must not contain."""

_BOUNDARY = re.compile(r'(?i)\bboundary=(?:"([^"]+)"|([^\s;]+))')
_PART_NAME = re.compile(r'(?i)content-disposition:[^\r\n]*?(?<![\w*])name="([^"]*)"')
# Values shorter than this are too likely to occur by chance to be replaced everywhere.
_MIN_SECRET_LENGTH = 8
_LINE_BREAK = re.compile(r"(\r\n|\n|\r)")


@dataclass(frozen=True)
class Redactor:
    """Removes secrets from recorded requests and responses before they are stored."""

    secrets: tuple[str, ...] = ()
    drop_headers: frozenset[str] = SECRET_HEADERS
    drop_query: frozenset[str] = SECRET_QUERY_PARAMS
    placeholder: str = REDACTED
    body_fields: frozenset[str] = SECRET_BODY_FIELDS
    header_words: tuple[str, ...] = SECRET_HEADER_WORDS
    harmless_headers: tuple[str, ...] = HARMLESS_HEADERS
    _ordered: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _query_names: frozenset[str] = field(init=False, repr=False, compare=False)
    _field_names: frozenset[str] = field(init=False, repr=False, compare=False)
    # field names recur in every body (role, content, index, ...): each is judged once
    _judged_fields: dict[str, bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_judged_fields", {})
        values = {s for s in self.secrets if len(s) >= _MIN_SECRET_LENGTH}
        # Longest first, so a secret that contains another is replaced whole.
        object.__setattr__(self, "_ordered", tuple(sorted(values, key=len, reverse=True)))
        lowered = frozenset(name.lower() for name in self.drop_headers)
        object.__setattr__(self, "drop_headers", lowered)
        object.__setattr__(self, "drop_query", frozenset(p.lower() for p in self.drop_query))
        object.__setattr__(self, "body_fields", frozenset(f.lower() for f in self.body_fields))
        object.__setattr__(self, "_query_names", frozenset(map(normalise_name, self.drop_query)))
        object.__setattr__(self, "_field_names", frozenset(map(normalise_name, self.body_fields)))
        object.__setattr__(self, "header_words", tuple(w.lower() for w in self.header_words))
        harmless = tuple(p.lower() for p in self.harmless_headers)
        object.__setattr__(self, "harmless_headers", harmless)

    @classmethod
    def from_env(
        cls,
        names: Iterable[str] = DEFAULT_SECRET_ENV_VARS,
        *,
        environ: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
    ) -> Redactor:
        """A redactor for the values of the provider key variables set in ``environ``."""
        env = os.environ if environ is None else environ
        found = [env[name] for name in names if env.get(name)]
        return cls(secrets=(*found, *secrets))

    # -- names -------------------------------------------------------------------------------

    def is_secret_header(self, name: str) -> bool:
        """Whether header ``name`` is dropped: a listed one, or one named like a credential."""
        lowered = name.lower()
        if lowered in self.drop_headers:
            return True
        if not any(word in lowered for word in self.header_words):
            return False
        if lowered in self.harmless_headers:
            return False
        if any(word in lowered for word in _NEVER_HARMLESS):
            return True
        return not any(fnmatch.fnmatchcase(lowered, p) for p in self.harmless_headers)

    def is_secret_param(self, name: str) -> bool:
        """Whether query parameter ``name`` is dropped from recorded URLs."""
        return normalise_name(name) in self._query_names

    def is_secret_field(self, name: str) -> bool:
        """Whether a JSON, multipart or form field called ``name`` has its value redacted."""
        judged = self._judged_fields.get(name)
        if judged is None:
            if len(self._judged_fields) >= _JUDGED_MAX:
                self._judged_fields.clear()
            judged = self._judged_fields[name] = self._judge_field(name)
        return judged

    def _judge_field(self, name: str) -> bool:
        normal = normalise_name(name)
        if normal in self._field_names or normal.endswith(SECRET_FIELD_SUFFIXES):
            return True
        if normal.endswith("token"):
            return normal[: -len("token")].endswith(SECRET_TOKEN_PREFIXES)
        return False

    # -- values ------------------------------------------------------------------------------

    def redact_text(self, text: str) -> str:
        """``text`` with every configured secret value replaced by the placeholder."""
        for secret in self._ordered:
            if secret in text:
                text = text.replace(secret, self.placeholder)
        return text

    def redact_bytes(self, body: bytes) -> bytes:
        """``body`` with every configured secret value replaced by the placeholder."""
        for secret in self._ordered:
            raw = secret.encode("utf-8")
            if raw in body:
                body = body.replace(raw, self.placeholder.encode("utf-8"))
        return body

    # -- bodies ------------------------------------------------------------------------------

    def _secret_value(self, key: Any, value: Any) -> bool:
        return (
            isinstance(key, str)
            and self.is_secret_field(key)
            and value not in (None, "", self.placeholder)
            and not isinstance(value, bool)
        )

    def _redact_fields(self, node: Any, path: str, found: list[tuple[str, str]]) -> Any:
        """``node`` with the values of secret-named fields replaced, at any depth; each
        replaced field's path and value are added to ``found``."""
        if isinstance(node, dict):
            out: dict[Any, Any] = {}
            for key, value in node.items():
                if self._secret_value(key, value):
                    shown = value if isinstance(value, str) else json.dumps(value)
                    found.append((f"{path}.{key}", shown))
                    out[key] = self.placeholder
                elif type(value) is str and value.lstrip(_JSON_SPACE)[:1] not in ("{", "["):
                    out[key] = value  # not JSON in a string: nothing to look into
                elif isinstance(value, (dict, list, str)):  # the path is only made for these
                    out[key] = self._redact_fields(value, f"{path}.{key}", found)
                else:
                    out[key] = value
            return out
        if isinstance(node, list):
            return [self._redact_fields(item, f"{path}[{i}]", found) for i, item in enumerate(node)]
        if isinstance(node, str):
            # JSON held in a JSON string (a tool call's ``arguments``): redacted inside, and
            # written back as a string of JSON.
            return self._redact_json_text(node, path, found)
        return node

    def _redact_json_text(self, text: str, path: str, found: list[tuple[str, str]]) -> str:
        """``text`` (a JSON document, or anything else) with secret-named fields redacted."""
        document = text.lstrip(_JSON_SPACE)
        if document[:1] not in ("{", "["):
            return text
        try:
            parsed = json.loads(document)
        except ValueError:
            return text
        before = len(found)
        redacted = self._redact_fields(parsed, path, found)
        if len(found) == before:
            return text
        return json.dumps(redacted, ensure_ascii=False)

    def _redact_sse_event(self, event: str, path: str, found: list[tuple[str, str]]) -> str:
        """One SSE event with the JSON of its ``data`` redacted (one line, or several joined)."""
        pieces = _LINE_BREAK.split(event)  # line, break, line, break, ..., line
        data = [i for i in range(0, len(pieces), 2) if pieces[i].startswith("data:")]
        if not data:
            return event
        payloads = [pieces[i][5:].removeprefix(" ") for i in data]
        if len(data) == 1:
            redacted = self._redact_json_text(payloads[0], path, found)
            if redacted is not payloads[0]:
                pieces[data[0]] = f"data: {redacted}"
            return "".join(pieces)
        before = len(found)
        joined = self._redact_json_text("\n".join(payloads), path, found)
        if len(found) > before:  # one JSON document over several data lines: now one line
            pieces[data[0]] = f"data: {joined}"
            for i in reversed(data[1:]):
                del pieces[i - 1 : i + 1]
            return "".join(pieces)
        for i, payload in zip(data, payloads, strict=True):
            redacted = self._redact_json_text(payload, path, found)
            if redacted is not payload:
                pieces[i] = f"data: {redacted}"
        return "".join(pieces)

    def _redact_body_fields(
        self, headers: Iterable[tuple[str, str]], body: bytes
    ) -> tuple[bytes, list[tuple[str, str]]]:
        found: list[tuple[str, str]] = []
        media_type = content_type(headers)
        if media_type == "application/x-www-form-urlencoded":
            return self._redact_form(body, found), found
        if media_type.startswith("multipart/"):
            return self._redact_multipart(headers, body, found), found
        if not body.lstrip()[:1] and media_type != "text/event-stream":
            return body, found
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return body, found
        split = split_text_events(media_type, text)
        if split is not None:
            pieces, separator = split
            kind = "sse" if media_type == "text/event-stream" else "ndjson"
            redact = self._redact_sse_event if kind == "sse" else self._redact_json_text
            redacted = [redact(p, f"{kind}[{i}]", found) for i, p in enumerate(pieces)]
            return (separator.join(redacted).encode("utf-8") if found else body), found
        kind = "json" if "json" in media_type else "text"  # the body's key in the YAML form
        redacted_text = self._redact_json_text(text, kind, found)
        return (redacted_text.encode("utf-8") if found else body), found

    def secret_fields(
        self, headers: Iterable[tuple[str, str]], body: bytes
    ) -> list[tuple[str, str]]:
        """``(path, value)`` of every secret-named field ``redact_body`` would redact."""
        return self._redact_body_fields(headers, body)[1]

    def redact_body(self, headers: Iterable[tuple[str, str]], body: bytes) -> bytes:
        """``body`` with secret-named fields redacted (JSON at any depth, whatever the media
        type; each JSON event of an SSE or NDJSON stream; a form), then every configured secret
        value replaced."""
        return self.redact_bytes(self._redact_body_fields(headers, body)[0])

    def _redact_form(self, body: bytes, found: list[tuple[str, str]]) -> bytes:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return body
        pairs = parse_qsl(text, keep_blank_values=True)
        secret = [(k, v) for k, v in pairs if self._secret_value(k, v)]
        if not secret:
            return body
        found.extend((f"form.{k}", v) for k, v in secret)
        redacted = [(k, self.placeholder if self._secret_value(k, v) else v) for k, v in pairs]
        return urlencode(redacted).encode("utf-8")

    def _redact_multipart(
        self, headers: Iterable[tuple[str, str]], body: bytes, found: list[tuple[str, str]]
    ) -> bytes:
        """A multipart body whose parts named like a secret (``name="api_key"``) have their
        content replaced."""
        match = _BOUNDARY.search(header_value(headers, "content-type") or "")
        if match is None:
            return body
        delimiter = b"--" + (match.group(1) or match.group(2)).encode("latin-1")
        parts = body.split(delimiter)
        changed = False
        for index, part in enumerate(parts[1:], start=1):
            head, blank, content = part.partition(b"\r\n\r\n")
            if not blank:
                head, blank, content = part.partition(b"\n\n")
            named = _PART_NAME.search(head.decode("latin-1")) if blank else None
            if named is None or not self.is_secret_field(named.group(1)):
                continue
            ending = (
                b"\r\n" if content.endswith(b"\r\n") else b"\n" if content.endswith(b"\n") else b""
            )
            value = content[: len(content) - len(ending)]
            if not value or value == self.placeholder.encode():
                continue
            found.append((f"multipart.{named.group(1)}", value.decode("utf-8", "replace")))
            parts[index] = head + blank + self.placeholder.encode() + ending
            changed = True
        return delimiter.join(parts) if changed else body

    # -- URLs and headers --------------------------------------------------------------------

    def redact_url(self, url: str) -> str:
        """``url`` without key-like query parameters or user-info, secret values replaced."""
        parts = urlsplit(url)
        if "@" in parts.netloc:
            host = parts.netloc.rpartition("@")[2]
            parts = parts._replace(netloc=f"{self.placeholder}@{host}")
        if parts.query:
            pairs = parse_qsl(parts.query, keep_blank_values=True)
            kept = [(k, v) for k, v in pairs if not self.is_secret_param(k)]
            if len(kept) != len(pairs):
                parts = parts._replace(query=urlencode(kept))
        return self.redact_text(urlunsplit(parts))

    def redact_headers(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Headers without the secret ones, secret values replaced in the rest."""
        return [
            (name, self.redact_text(value))
            for name, value in headers
            if not self.is_secret_header(name)
        ]

    def redact_request(self, request: RecordedRequest) -> RecordedRequest:
        """A copy of ``request`` that is safe to write."""
        return replace(
            request,
            uri=self.redact_url(request.uri),
            headers=self.redact_headers(request.headers),
            body=self.redact_body(request.headers, request.body),
        )

    def redact_response(self, response: RecordedResponse) -> RecordedResponse:
        """A copy of ``response`` that is safe to write."""
        return replace(
            response,
            headers=self.redact_headers(response.headers),
            body=self.redact_body(response.headers, response.body),
        )


# -- the key-pattern scan ----------------------------------------------------------------------

_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|[\"\\/bfnrt0 ])")
_ESCAPED = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "0": "\0"}


def _unescape_one(match: re.Match[str]) -> str:
    code = match.group(1)
    if code[0] in "ux":
        return chr(int(code[1:], 16))
    return _ESCAPED.get(code, code)


def _views(text: str) -> set[str]:
    """``text`` as written, with JSON/YAML string escapes undone, and URL-decoded."""
    views = {text}
    if "\\" in text:
        views.add(_ESCAPE.sub(_unescape_one, text))
    for view in list(views):
        if "%" in view or "+" in view:
            views.add(unquote_plus(view))
    return views


def secret_matches(text: str) -> list[tuple[str, str]]:
    """``(kind, match)`` for each key-shaped string in ``text``, also behind a JSON escape
    (``\\n``) or URL encoding (``%3A``, ``%2F``, ``%0A``, ``+``)."""
    found: dict[tuple[str, str], None] = {}
    for view in _views(text):
        for kind, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(view):
                found[(kind, match.group())] = None
    return list(found)


def _mask(found: str) -> str:
    return f"{found[:6]}...({len(found)} chars)"


def _walk(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from _walk(key, f"{path} (key)")
            child = f"{path}.{key}" if path else str(key)
            yield from _walk(value, child)
    elif isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            yield from _walk(item, f"{path}[{i}]")


def find_secrets(data: Any, text: str | None = None, *, path: str = "") -> list[str]:
    """Where key-like strings occur: key paths in ``data``, else line numbers in ``text``.

    ``path`` is the key path of ``data`` in its document (e.g. ``interactions[3]``).
    """
    findings = [
        f"{where}: {kind} {_mask(match)}"
        for where, value in _walk(data, path)
        for kind, match in secret_matches(value)
    ]
    if findings or text is None:
        return findings
    for number, line in enumerate(text.splitlines(), start=1):
        for kind, match in secret_matches(line):
            where = f"{path}, " if path else ""
            findings.append(f"{where}line {number}: {kind} {_mask(match)}")
    return findings


def find_interaction_secrets(
    node: Any, text: str, bodies: Iterable[tuple[str, bytes]], *, path: str
) -> list[str]:
    """The write-time scan of one interaction: its YAML ``node`` and ``text``, then the raw
    bytes of each ``(side, body)`` whose YAML form hides them (base64)."""
    findings = find_secrets(node, text, path=path)
    for side, body in bodies:
        prefix = f"{path}.{side}.body"
        if body and not any(f.startswith(prefix) for f in findings):
            # latin-1 maps every byte to one character, so a key in binary bytes shows
            findings.extend(find_secrets(body.decode("latin-1"), path=f"{prefix} (raw bytes)"))
    return findings
