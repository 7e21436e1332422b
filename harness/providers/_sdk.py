"""Translating the official SDKs' exceptions into harness's error tree.

The openai and anthropic SDKs share one exception layout (``APIStatusError`` with
``status_code``/``response``/``body``, ``APITimeoutError`` under ``APIConnectionError``, and
a bare ``APIError`` for errors sent inside a stream), so one function serves both.
"""

from __future__ import annotations

import email.utils
import importlib.metadata
import importlib.util
import re
import sys
import time
from types import ModuleType
from typing import Any, NoReturn

import httpx2

from harness.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ConfigError,
    HarnessError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    StreamError,
    status_error_class,
)

__all__ = [
    "NOTE_EXTENSION",
    "SDK_EXTRAS",
    "error_message",
    "in_stream_error",
    "map_sdk_error",
    "parse_retry_after",
    "raise_mapped",
    "require_sdk",
    "transport_error",
    "with_transport_note",
]

# The response extension where a transport leaves a hint for the error raised from it (the
# replay transport's "not recorded, check the key"); the string, since providers never
# import harness.replay.
NOTE_EXTENSION = "harness.note"
_CREDENTIAL_STATUSES = frozenset({401, 403, 407})

SDK_EXTRAS: dict[str, tuple[str, tuple[int, int]]] = {
    "openai": ("harness-llm[openai]", (3, 0)),  # openai >= 3 runs on httpx2
    "anthropic": ("harness-llm[anthropic]", (2, 0)),  # anthropic >= 2 takes an httpx2 client
}
"""Per vendor SDK: the extra that installs it, and the oldest version the providers drive."""


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


def require_sdk(name: str, api_type: str) -> None:
    """Check, when a provider is made, that SDK ``name`` is installed and new enough for it.

    Raises ConfigError naming the extra to install. The SDK itself is not imported here (it is
    slow to import); replay, the plugin and FakeLLM never need it.
    """
    extra, oldest = SDK_EXTRAS[name]
    wanted = ".".join(str(n) for n in oldest)
    try:
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ConfigError(
            f"api_type {api_type!r} runs on the {name} SDK, which is not installed: "
            f"pip install '{extra}' (or {name}>={wanted})",
            key="api_type",
        )
    try:
        installed = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return  # importable without metadata (vendored, a source tree): trust it
    if _version(installed) < oldest:
        raise ConfigError(
            f"api_type {api_type!r} needs {name}>={wanted} (it runs on httpx2), but {name} "
            f"{installed} is installed: pip install -U '{extra}'. The rest of harness (replay, "
            "cassettes, the pytest plugin, FakeLLM) works with any version",
            key="api_type",
        )


# Error types that Anthropic may send as a stream event, and the status they stand for.
_IN_STREAM_STATUS = {
    "overloaded_error": 529,
    "api_error": 500,
    "timeout_error": 504,
    "rate_limit_error": 429,
}


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return max(email.utils.mktime_tz(parsed) - time.time(), 0.0)


def error_message(body: Any, fallback: str) -> str:
    """The provider's own error message from a decoded error body."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            message = error.get("message")
            if isinstance(message, str) and message:
                raw = (
                    (error.get("metadata") or {}).get("raw")
                    if isinstance(error.get("metadata"), dict)
                    else None
                )
                return f"{message} ({raw})" if isinstance(raw, str) and raw else message
        elif isinstance(error, str) and error:
            return error
        message = body.get("message")
        if isinstance(message, str) and message:
            return message
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return fallback


def _field(body: Any, name: str) -> str | None:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get(name) is not None:
            return str(error[name])
        if body.get(name) is not None and not isinstance(body.get(name), dict):
            return str(body[name])
    return None


def _in_stream_status(code: str | None) -> int | None:
    """An in-stream error code that is a retryable HTTP status (429, 5xx), else None."""
    if code is None or not code.isdigit():
        return None
    status = int(code)
    return status if status == 429 or 500 <= status <= 599 else None


def transport_error(exc: BaseException, *, provider: str, model: str | None) -> Exception | None:
    """The harness error for an HTTP library or socket failure (httpx2, httpx, OSError),
    else None.

    Timeouts (connect, read, write, pool) become APITimeoutError; every other request
    failure (refused, reset, a peer that closed mid-body, a protocol error...) becomes
    APIConnectionError. Both are retried by the one policy. A body that cannot be decoded
    (it does not match its Content-Encoding) is a ResponseFormatError, not retried.
    """
    if isinstance(exc, HarnessError):  # a replay miss, a blocked connection: not the network's
        return None
    decoding: list[type[BaseException]] = [httpx2.DecodingError]
    legacy = sys.modules.get("httpx")  # a transport serving both libraries may raise its errors
    if legacy is not None:
        decoding.append(legacy.DecodingError)
    if isinstance(exc, tuple(decoding)):
        # The answer arrived, but its body does not match its Content-Encoding (a corrupt
        # gzip...): asking again would not help.
        return ResponseFormatError(
            f"the answer's body could not be decoded: {exc}", provider=provider, model=model
        )
    # A custom transport may raise the socket layer's own errors (OSError, TimeoutError).
    timeouts: list[type[BaseException]] = [httpx2.TimeoutException, TimeoutError]
    failures: list[type[BaseException]] = [httpx2.RequestError, OSError]
    if legacy is not None:
        timeouts.append(legacy.TimeoutException)
        failures.append(legacy.RequestError)
    if isinstance(exc, tuple(timeouts)):
        return APITimeoutError(f"request timed out: {exc!r}", provider=provider, model=model)
    if isinstance(exc, tuple(failures)):
        return APIConnectionError(f"connection failed: {exc!r}", provider=provider, model=model)
    return None


def with_transport_note(error: Exception, response: Any) -> Exception:
    """``error``, its message ending with the note a transport left on ``response`` when it
    is a refusal of the credentials (401/403/407)."""
    extensions = getattr(response, "extensions", None)
    note = extensions.get(NOTE_EXTENSION) if isinstance(extensions, dict) else None
    if not isinstance(note, str) or not note or not isinstance(error, APIStatusError):
        return error
    if error.status_code not in _CREDENTIAL_STATUSES or note in str(error):
        return error
    error.message = f"{error.message}\n{note}"
    error.args = (f"{error.args[0]}\n{note}", *error.args[1:])
    return error


def in_stream_error(
    body: Any, *, provider: str, model: str | None, headers: Any = None, fallback: str = ""
) -> Exception:
    """The harness error for an error object sent in a 2xx answer (inside a stream, mostly).

    A transient failure (Anthropic's ``overloaded_error``/``api_error``, or an OpenAI-style
    ``code`` of 429 or 5xx, as OpenRouter sends) becomes its HTTP twin, retryable; anything
    else is a StreamError.
    """
    message = error_message(body, fallback or "error inside the answer")
    status = _in_stream_status(_field(body, "code")) or _IN_STREAM_STATUS.get(
        _field(body, "type") or ""
    )
    if status is None:
        return StreamError(
            message,
            provider=provider,
            model=model,
            code=_field(body, "code") or _field(body, "type"),
            body=body,
        )
    request_id = _field(body, "request_id")
    if headers is not None:
        request_id = headers.get("request-id") or headers.get("x-request-id") or request_id
    return status_error_class(status)(
        message,
        provider=provider,
        model=model,
        status_code=status,
        body=body,
        request_id=request_id,
        error_type=_field(body, "type"),
        error_code=_field(body, "code"),
    )


def map_sdk_error(
    exc: Exception, sdk: ModuleType, *, provider: str, model: str | None
) -> Exception:
    """The harness error for an SDK exception (or ``exc`` itself when it is not an SDK error).

    The SDKs wrap whatever a transport raises in their connection error; a harness error
    raised by an injected transport (a replay miss, say) is returned as it is, so it is
    neither disguised as a network failure nor retried. A raw HTTP library error (which the
    SDKs let through from some paths) is mapped by :func:`transport_error`.
    """
    if isinstance(exc.__cause__, HarnessError):
        raised = exc.__cause__
        exc.__cause__ = None  # the caller raises ``raised from exc``: no cycle in the chain
        return raised
    mapped = transport_error(exc, provider=provider, model=model)
    if mapped is not None:
        return mapped
    if exc.__cause__ is not None and isinstance(exc, sdk.APIConnectionError):
        # The SDK reads a body (a corrupt gzip, say) and wraps the failure as a connection error.
        unreadable = transport_error(exc.__cause__, provider=provider, model=model)
        if isinstance(unreadable, ResponseFormatError):
            return unreadable
    if isinstance(exc, sdk.APITimeoutError):
        return APITimeoutError(f"request timed out: {exc}", provider=provider, model=model)
    if isinstance(exc, sdk.APIConnectionError):
        cause = exc.__cause__ or exc
        return APIConnectionError(f"connection failed: {cause!r}", provider=provider, model=model)
    if isinstance(exc, sdk.APIStatusError):
        response = exc.response
        body = exc.body
        if body is None or (isinstance(body, str) and not body):
            try:
                body = response.text
            except Exception:  # a streamed response whose body was never read
                body = None
        status = exc.status_code
        if status < 400:
            # An error event inside a 200 stream (Anthropic): its type says what happened.
            return in_stream_error(
                body, provider=provider, model=model, headers=response.headers, fallback=str(exc)
            )
        cls = status_error_class(status)
        kwargs: dict[str, Any] = {
            "provider": provider,
            "model": model,
            "status_code": status,
            "body": body,
            "request_id": getattr(exc, "request_id", None)
            or response.headers.get("request-id")
            or response.headers.get("x-request-id")
            or response.headers.get("apim-request-id")  # Azure API Management
            or _field(body, "request_id"),  # Anthropic also puts it in the error body
            "error_type": _field(body, "type"),
            "error_code": _field(body, "code"),
        }
        if issubclass(cls, (RateLimitError, ServerError)):
            kwargs["retry_after"] = parse_retry_after(response.headers)
        return with_transport_note(cls(error_message(body, str(exc)), **kwargs), response)
    if isinstance(exc, sdk.APIError):
        # An error object inside an HTTP 200 stream (OpenRouter, Anthropic "error" events).
        return in_stream_error(exc.body, provider=provider, model=model, fallback=str(exc))
    return exc


def raise_mapped(exc: Exception, sdk: ModuleType, *, provider: str, model: str | None) -> NoReturn:
    """Raise the harness error for ``exc`` (from it), or ``exc`` itself when it has none."""
    mapped = map_sdk_error(exc, sdk, provider=provider, model=model)
    if mapped is exc:
        raise exc
    raise mapped from exc
