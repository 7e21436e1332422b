"""Every exception harness raises, in one tree.

    HarnessError
    ├── ConfigError                 bad configuration: names the file and the key (``errors``:
    │   │                           pydantic's details when validation failed)
    │   ├── UnknownLLMTypeError     an ``api_type`` that is not an LLMType (lists the valid ones)
    │   ├── MissingAPIKeyError      a live request without a key (names the env var and file)
    │   └── ProviderNotRegisteredError   no provider registered for an LLMType
    ├── ProviderError               a call to a model provider failed (carries provider, model)
    │   ├── APIConnectionError      the request never got an HTTP answer
    │   │   └── APITimeoutError     ... because it timed out
    │   ├── APIStatusError          the provider answered with an HTTP error status
    │   │   ├── BadRequestError         400 (and 422)
    │   │   ├── AuthenticationError     401
    │   │   ├── PermissionDeniedError   403
    │   │   ├── NotFoundError           404
    │   │   ├── RateLimitError          429 (``retry_after`` in seconds when the provider said)
    │   │   └── ServerError             5xx, including Anthropic's 529 "overloaded"
    │   ├── StreamError             an error object inside a 200 stream (e.g. OpenRouter), or a
    │   │                           stream that ended without its wire format's end marker
    │   ├── ContentFilterError      the provider's safety filter blocked the prompt or the answer
    │   │                           (``reason``: e.g. SAFETY; ``body``: what it said)
    │   ├── NotSupportedError       the provider has no such API (embeddings on Anthropic...)
    │   └── ResponseFormatError     a 2xx answer that is not what the wire format says (names
    │                               status, content-type and the body's first 200 characters)
    ├── StructuredOutputError       an answer asked for with ``response_format`` is not valid
    │                               JSON or not valid against the schema (``raw``: the text)
    ├── BatchError                  some prompts of ``aask_batch_parallel`` failed; keeps the rest
    ├── NoMoneyException            a request would pass the budget, or has no price while a
    │                               budget is set (alias BudgetExceeded)
    ├── NetworkBlockedError         replay mode refused a non-loopback connection (also OSError)
    ├── TokenizerDataError          the tokenizer data shipped with harness is missing or corrupt
    └── ReplayError                 cassettes and the replay transport: CassetteMiss,
                                    CassetteFormatError, SecretLeakError... (their tree, and
                                    ReplayWarning's cases, are in ``harness.replay.errors``)

Retryable: APIConnectionError (and APITimeoutError), RateLimitError, ServerError, and a
StreamError with ``code="incomplete_stream"`` (a stream that ended before its end marker).
Every transport failure, before or during a stream, is an APIConnectionError or
APITimeoutError.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BatchError",
    "BudgetExceeded",
    "ConfigError",
    "ContentFilterError",
    "HarnessError",
    "MissingAPIKeyError",
    "NetworkBlockedError",
    "NoMoneyException",
    "NotFoundError",
    "NotSupportedError",
    "PermissionDeniedError",
    "ProviderError",
    "ProviderNotRegisteredError",
    "RateLimitError",
    "ResponseFormatError",
    "ServerError",
    "StreamError",
    "StructuredOutputError",
    "TokenizerDataError",
    "UnknownLLMTypeError",
    "status_error_class",
]


class HarnessError(Exception):
    """Root of every exception harness raises."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors defeat Exception's default pickling; errors must cross
        # processes (pytest-xdist workers), so rebuild from the message and the fields.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[HarnessError], args: tuple[Any, ...], state: dict[str, Any]) -> HarnessError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ConfigError(HarnessError, ValueError):
    """A configuration value is invalid; ``source`` and ``key`` say where it came from.

    ``errors`` keeps pydantic's error details (``loc``, ``msg``, ``type``, ``input``) when the
    error comes from validation, else it is empty.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        key: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        self.source = source
        self.key = key
        self.errors = list(errors or [])
        where = ", ".join(part for part in (source, f"key {key!r}" if key else None) if part)
        super().__init__(f"{where}: {message}" if where else message)


class UnknownLLMTypeError(ConfigError):
    """An ``api_type`` value that harness does not know."""


class MissingAPIKeyError(ConfigError):
    """A live request was about to be made with no API key configured."""

    def __init__(self, message: str, *, env_var: str | None = None) -> None:
        self.env_var = env_var
        super().__init__(message)


class ProviderNotRegisteredError(ConfigError):
    """No provider class is registered for the requested LLMType."""


class ProviderError(HarnessError):
    """A call to a model provider failed."""

    def __init__(self, message: str, *, provider: str, model: str | None) -> None:
        self.provider = provider
        self.model = model
        self.message = message
        super().__init__(f"{provider} ({model or 'no model'}): {message}")


class APIConnectionError(ProviderError):
    """The request did not get an HTTP response (DNS, refused, reset, TLS...)."""


class APITimeoutError(APIConnectionError):
    """The request timed out before a complete response arrived."""


class APIStatusError(ProviderError):
    """The provider answered with an HTTP error status."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str | None,
        status_code: int,
        body: Any = None,
        request_id: str | None = None,
        error_type: str | None = None,
        error_code: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.request_id = request_id
        self.error_type = error_type
        self.error_code = error_code
        super().__init__(f"HTTP {status_code}: {message}", provider=provider, model=model)
        self.message = message


class BadRequestError(APIStatusError):
    """HTTP 400 or 422: the request itself is wrong; retrying will not help."""


class AuthenticationError(APIStatusError):
    """HTTP 401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403: the key may not use this model or resource."""


class NotFoundError(APIStatusError):
    """HTTP 404: unknown model, deployment or endpoint."""


class RateLimitError(APIStatusError):
    """HTTP 429: slow down; ``retry_after`` is the provider's hint in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ServerError(APIStatusError):
    """HTTP 5xx (including 529 overloaded): the provider failed; retrying may help."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class StreamError(ProviderError):
    """The provider reported an error inside an HTTP 200 stream, or the stream ended without
    its wire format's end marker (OpenAI-compatible: a ``finish_reason`` or ``[DONE]``;
    Anthropic: ``message_stop``), so the answer may be cut short."""

    def __init__(
        self, message: str, *, provider: str, model: str | None, code: Any = None, body: Any = None
    ) -> None:
        self.code = code
        self.body = body
        super().__init__(message, provider=provider, model=model)


class ContentFilterError(ProviderError):
    """The provider's safety filter blocked the prompt or the answer; retrying will not help.

    ``reason`` is the provider's word for it (Gemini's ``blockReason`` or ``finishReason``:
    ``SAFETY``, ``PROHIBITED_CONTENT``...), ``body`` the decoded answer that said so.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str | None,
        reason: str | None = None,
        body: Any = None,
    ) -> None:
        self.reason = reason
        self.body = body
        super().__init__(message, provider=provider, model=model)


class NotSupportedError(ProviderError):
    """The provider (or this wire format) has no such API, e.g. embeddings on Anthropic."""


class ResponseFormatError(ProviderError):
    """A 2xx answer that is not what the wire format says (HTML from a gateway, invalid JSON,
    JSON where a stream was asked for, no ``choices``...).

    ``status_code``, ``content_type`` and ``body_excerpt`` (the body's first 200 characters)
    say what came back, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str | None,
        status_code: int | None = None,
        content_type: str | None = None,
        body_excerpt: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.content_type = content_type
        self.body_excerpt = body_excerpt
        if status_code is not None:
            message = (
                f"{message} (HTTP {status_code}, content-type {content_type or '(none)'}, "
                f"body starts {body_excerpt or ''!r})"
            )
        super().__init__(message, provider=provider, model=model)


class StructuredOutputError(HarnessError):
    """The answer to a request with a ``response_format`` is not valid JSON, or not valid
    against the schema: ``raw`` is the text the model answered, ``reason`` what is wrong."""

    def __init__(self, reason: str, *, raw: str, provider: str, model: str | None) -> None:
        self.reason = reason
        self.raw = raw
        self.provider = provider
        self.model = model
        super().__init__(
            f"{provider} ({model or 'no model'}): the structured answer is invalid: {reason}; "
            f"the answer was {raw!r:.300}"
        )


class BatchError(HarnessError):
    """Some prompts of a parallel batch failed.

    ``results[i]`` is the reply to prompt ``i`` or None where it failed; ``errors`` maps the
    failed indexes to their exceptions, so no successful reply is lost.
    """

    def __init__(self, results: list[str | None], errors: dict[int, BaseException]) -> None:
        self.results = results
        self.errors = errors
        first = min(errors)
        super().__init__(
            f"{len(errors)} of {len(results)} prompts failed; first failure at index {first}: "
            f"{errors[first]!r}"
        )


class NoMoneyException(HarnessError):
    """A request was refused before it was sent: its projected cost would pass the budget,
    or its model has no price while a budget is set (``unpriced``).

    ``spent`` is what was already spent (and reserved by requests in flight), ``projected``
    what this request may cost at most (its prompt plus ``n`` x ``max_token`` of output),
    ``limit`` the budget, all in USD.
    """

    def __init__(
        self,
        *,
        spent: Decimal,
        limit: Decimal,
        projected: Decimal | None = Decimal(0),
        model: str | None = None,
        unpriced: bool = False,
    ) -> None:
        self.spent = spent
        self.limit = limit
        self.projected = projected
        self.model = model
        self.unpriced = unpriced
        on_model = f" on {model}" if model else ""
        if unpriced:
            message = (
                f"budget set (${_usd(spent)} spent of ${_usd(limit)}) but model "
                f"{model or '(none)'!r} has no price, so its cost cannot be checked: give it a "
                "price with LLMConfig(price={'input': ..., 'output': ...}) or "
                "CostManager(prices=...), or allow it with CostManager(allow_unpriced=True)"
            )
        else:
            message = (
                f"budget exceeded: ${_usd(spent)} spent, this request{on_model} may cost "
                f"up to ${_usd(projected or Decimal(0))}, which would pass the limit of "
                f"${_usd(limit)}; raise max_budget, lower max_token or shorten the prompt"
            )
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments: rebuild from fields so the error crosses processes (xdist).
        kwargs = {
            "spent": self.spent,
            "limit": self.limit,
            "projected": self.projected,
            "model": self.model,
            "unpriced": self.unpriced,
        }
        return (_rebuild_no_money, (kwargs,))


def _rebuild_no_money(kwargs: dict[str, Any]) -> NoMoneyException:
    return NoMoneyException(**kwargs)


def _usd(amount: Decimal) -> str:
    # Plain digits, up to 6 significant ones: "$0.00044", never "$0" or "4.4E-4".
    if not amount.is_finite():
        return str(amount)
    if amount == 0:
        return "0"
    with localcontext() as context:
        context.prec = 6
        rounded = +amount
    text = format(rounded, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


BudgetExceeded = NoMoneyException


class NetworkBlockedError(HarnessError, OSError):
    """A connection (or name lookup) refused because tests run in replay mode.

    An ``OSError`` too, so code that handles connection failures sees one; ``host`` is the
    address that was refused.
    """

    def __init__(self, message: str, *, host: str) -> None:
        self.host = host
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_blocked, (self.args[0] if self.args else "", self.host))


def _rebuild_blocked(message: str, host: str) -> NetworkBlockedError:
    return NetworkBlockedError(message, host=host)


class TokenizerDataError(HarnessError):
    """The BPE data shipped with harness cannot be read or fails its SHA-256 check."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: BadRequestError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The harness error class for an HTTP error status."""
    if status_code >= 500:
        return ServerError
    return _STATUS_CLASSES.get(status_code, APIStatusError)
