"""Keep secrets off disk: drop auth headers and key params, redact known values, scan writes."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from harness.replay.models import RecordedRequest, RecordedResponse

__all__ = [
    "DEFAULT_SECRET_ENV_VARS",
    "REDACTED",
    "SECRET_BODY_FIELDS",
    "SECRET_HEADERS",
    "SECRET_PATTERNS",
    "SECRET_QUERY_PARAMS",
    "Redactor",
    "find_secrets",
]

REDACTED = "REDACTED"

SECRET_HEADERS: frozenset[str] = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "openai-organization",
        "openai-project",
        "cookie",
        "set-cookie",
        "x-amz-security-token",
    }
)
"""Headers never written to a cassette (matched case-insensitively)."""

SECRET_QUERY_PARAMS: frozenset[str] = frozenset(
    {
        "key",
        "api_key",
        "api-key",
        "apikey",
        "access_token",
        "token",
        "client_secret",
        "sig",
        "signature",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
    }
)
"""Query parameters dropped from recorded URLs (and ignored when matching)."""

SECRET_BODY_FIELDS: frozenset[str] = (
    SECRET_QUERY_PARAMS - {"key", "token", "sig", "signature"}
) | {"refresh_token", "id_token", "password", "client_assertion", "private_key"}
"""Fields whose values are redacted in JSON and form bodies (matched case-insensitively).

The generic query names ``key``, ``token``, ``sig`` and ``signature`` are left out: in bodies
they are ordinary data (a logprobs ``token``, a thinking block's ``signature``).
"""

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

# Values shorter than this are too likely to occur by chance to be replaced everywhere.
_MIN_SECRET_LENGTH = 8


@dataclass(frozen=True)
class Redactor:
    """Removes secrets from recorded requests and responses before they are stored."""

    secrets: tuple[str, ...] = ()
    drop_headers: frozenset[str] = SECRET_HEADERS
    drop_query: frozenset[str] = SECRET_QUERY_PARAMS
    placeholder: str = REDACTED
    body_fields: frozenset[str] = SECRET_BODY_FIELDS
    _ordered: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        values = {s for s in self.secrets if len(s) >= _MIN_SECRET_LENGTH}
        # Longest first, so a secret that contains another is replaced whole.
        object.__setattr__(self, "_ordered", tuple(sorted(values, key=len, reverse=True)))
        lowered = frozenset(name.lower() for name in self.drop_headers)
        object.__setattr__(self, "drop_headers", lowered)
        object.__setattr__(self, "drop_query", frozenset(p.lower() for p in self.drop_query))
        object.__setattr__(self, "body_fields", frozenset(f.lower() for f in self.body_fields))

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

    def _redact_fields(self, node: Any) -> tuple[Any, bool]:
        """``node`` with the values of secret-named fields replaced, at any depth."""
        if isinstance(node, dict):
            changed = False
            out: dict[Any, Any] = {}
            for key, value in node.items():
                if (
                    isinstance(key, str)
                    and key.lower() in self.body_fields
                    and value not in (None, "", self.placeholder)
                    and not isinstance(value, bool)
                ):
                    out[key], changed = self.placeholder, True
                else:
                    out[key], inner = self._redact_fields(value)
                    changed = changed or inner
            return out, changed
        if isinstance(node, list):
            pairs = [self._redact_fields(item) for item in node]
            return [item for item, _ in pairs], any(c for _, c in pairs)
        return node, False

    def redact_body(self, headers: Iterable[tuple[str, str]], body: bytes) -> bytes:
        """``body`` with secret-named fields redacted (JSON at any depth, or a form), then
        every configured secret value replaced. Other bodies only get the latter."""
        media_type = ""
        for name, value in headers:
            if name.lower() == "content-type":
                media_type = value.split(";", 1)[0].strip().lower()
        stripped = body.lstrip()
        if media_type == "application/x-www-form-urlencoded":
            body = self._redact_form(body)
        elif stripped[:1] in (b"{", b"[") and ("json" in media_type or not media_type):
            try:
                parsed = json.loads(body)
            except ValueError:
                pass
            else:
                redacted, changed = self._redact_fields(parsed)
                if changed:
                    body = json.dumps(redacted, ensure_ascii=False).encode("utf-8")
        return self.redact_bytes(body)

    def _redact_form(self, body: bytes) -> bytes:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return body
        pairs = parse_qsl(text, keep_blank_values=True)
        if not any(k.lower() in self.body_fields and v for k, v in pairs):
            return body
        redacted = [
            (k, self.placeholder if k.lower() in self.body_fields and v else v) for k, v in pairs
        ]
        return urlencode(redacted).encode("utf-8")

    def redact_url(self, url: str) -> str:
        """``url`` without key-like query parameters and with secret values replaced."""
        parts = urlsplit(url)
        if parts.query:
            pairs = parse_qsl(parts.query, keep_blank_values=True)
            kept = [(k, v) for k, v in pairs if k.lower() not in self.drop_query]
            if len(kept) != len(pairs):
                parts = parts._replace(query=urlencode(kept))
        return self.redact_text(urlunsplit(parts))

    def redact_headers(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Headers without the secret ones, secret values replaced in the rest."""
        return [
            (name, self.redact_text(value))
            for name, value in headers
            if name.lower() not in self.drop_headers
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
    findings = []
    for where, value in _walk(data, path):
        for kind, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(value):
                findings.append(f"{where}: {kind} {_mask(match.group())}")
    if findings or text is None:
        return findings
    for number, line in enumerate(text.splitlines(), start=1):
        for kind, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(line):
                where = f"{path}, " if path else ""
                findings.append(f"{where}line {number}: {kind} {_mask(match.group())}")
    return findings
