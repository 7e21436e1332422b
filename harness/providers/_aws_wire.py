"""Bedrock's wire formats, apart from the provider: Converse messages and usage, error
types, and the reader of AWS event-stream answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from harness.costs import Usage
from harness.errors import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ServerError,
    StreamError,
    status_error_class,
)
from harness.messages import content_text
from harness.providers._eventstream import EventStreamDecoder, EventStreamError, EventStreamMessage
from harness.providers._sdk import error_message, parse_retry_after
from harness.providers._wire import EXCERPT_CHARS, StreamReader

__all__ = [
    "EVENT_STREAM",
    "FrameStream",
    "bedrock_error",
    "converse_latency",
    "error_type_name",
    "invocation_metrics",
    "parse_converse_usage",
    "to_converse_messages",
]

EVENT_STREAM = "application/vnd.amazon.eventstream"
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg",
                  "image/gif": "gif", "image/webp": "webp"}  # fmt: skip

# Bedrock's error types (x-amzn-errortype, or a stream's :exception-type) and harness's class.
_ERROR_CLASSES: dict[str, tuple[type[ProviderError], int]] = {
    "throttlingexception": (RateLimitError, 429),
    "modelnotreadyexception": (RateLimitError, 429),  # AWS: retry after a while
    "serviceunavailableexception": (ServerError, 503),
    "internalserverexception": (ServerError, 500),
    "modeltimeoutexception": (ServerError, 408),
    "modelstreamerrorexception": (ServerError, 424),
    "validationexception": (BadRequestError, 400),
    "modelerrorexception": (BadRequestError, 424),
    "servicequotaexceededexception": (BadRequestError, 400),
    "accessdeniedexception": (PermissionDeniedError, 403),
    "unrecognizedclientexception": (AuthenticationError, 403),
    "invalidsignatureexception": (AuthenticationError, 403),
    "expiredtokenexception": (AuthenticationError, 403),
    "resourcenotfoundexception": (NotFoundError, 404),
}


def error_type_name(value: str | None) -> str | None:
    """``ThrottlingException`` from ``ThrottlingException:http://...`` or ``ns#Throttling...``."""
    if not value:
        return None
    return value.split(":", 1)[0].rsplit("#", 1)[-1] or None


def bedrock_error(
    error_type: str | None,
    body: Any,
    *,
    status: int,
    provider: str,
    model: str | None,
    headers: Any = None,
) -> ProviderError:
    """The harness error for a Bedrock error (an HTTP error, or an exception frame)."""
    message = error_message(body, error_type or f"HTTP {status}")
    if error_type:
        message = f"{error_type}: {message}"
    known = _ERROR_CLASSES.get((error_type or "").lower())
    cls: type[ProviderError]
    if known is not None:
        cls, default_status = known
        status = status if status >= 400 else default_status
    else:
        cls = status_error_class(status) if status >= 400 else StreamError
    if cls is StreamError:
        return StreamError(message, provider=provider, model=model, code=error_type, body=body)
    kwargs: dict[str, Any] = {
        "provider": provider,
        "model": model,
        "status_code": status,
        "body": body,
        "request_id": headers.get("x-amzn-requestid") if headers is not None else None,
        "error_type": error_type,
    }
    if cls in (RateLimitError, ServerError):
        kwargs["retry_after"] = parse_retry_after(headers)
    return cls(message, **kwargs)


# -- Converse request --------------------------------------------------------------------------


def _image_block(url: str, index: int) -> dict[str, Any]:
    if not url.startswith("data:"):
        raise ValueError(
            f"message {index}: Bedrock takes images as inline data, not URLs ({url[:80]!r})"
        )
    header, _, data = url.partition(",")
    media = header[len("data:") :].split(";", 1)[0].lower()
    fmt = _IMAGE_FORMATS.get(media)
    if fmt is None:
        raise ValueError(
            f"message {index}: Bedrock takes png, jpeg, gif or webp images, not {media!r}"
        )
    # Converse's JSON form carries the image bytes base64-encoded.
    return {"image": {"format": fmt, "source": {"bytes": data}}}


def _content_blocks(content: Any, index: int) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        text = content_text(content)
        return [{"text": text}] if text else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") == "text":
            if part.get("text"):
                blocks.append({"text": part["text"]})
        elif part.get("type") == "image_url":
            blocks.append(_image_block(str((part.get("image_url") or {}).get("url", "")), index))
        elif "type" not in part:  # already a Converse block
            blocks.append(dict(part))
    return blocks


def _tool_use_blocks(message: Mapping[str, Any], index: int) -> list[dict[str, Any]]:
    blocks = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        arguments = function.get("arguments") or "{}"
        try:
            value = json.loads(arguments) if isinstance(arguments, str) else arguments
        except ValueError as exc:
            raise ValueError(
                f"message {index}: tool call {call.get('id')!r} has arguments that are not "
                f"valid JSON ({exc}): {arguments!r}"
            ) from exc
        blocks.append(
            {
                "toolUse": {
                    "toolUseId": call.get("id"),
                    "name": function.get("name", ""),
                    "input": value,
                }
            }
        )
    return blocks


def to_converse_messages(
    messages: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """OpenAI-shaped messages as Converse's ``system`` blocks and ``messages``.

    Every message is kept, in order; tool calls become ``toolUse`` blocks and tool results
    ``toolResult`` blocks of a user message; consecutive messages of one role are merged
    (Converse wants the roles to alternate).
    """
    system: list[dict[str, Any]] = []
    chat: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "system":
            text = content_text(message.get("content"))
            if text:
                system.append({"text": text})
            continue
        if role == "tool":
            role = "user"
            result = content_text(message.get("content"))
            tool_result: dict[str, Any] = {
                "toolUseId": message.get("tool_call_id"),
                "content": [{"text": result}],
            }
            if message.get("is_error") is not None:
                tool_result["status"] = "error" if message["is_error"] else "success"
            blocks = [{"toolResult": tool_result}]
        else:
            role = "assistant" if role == "assistant" else "user"
            blocks = _content_blocks(message.get("content"), index)
            blocks += _tool_use_blocks(message, index)
        if chat and chat[-1]["role"] == role:
            chat[-1]["content"].extend(blocks)
        else:
            chat.append({"role": role, "content": blocks})
    return system, chat


def parse_converse_usage(usage: Any) -> Usage | None:
    """Converse's camelCase usage; ``prompt_tokens`` includes cache reads and writes."""
    if not isinstance(usage, Mapping):
        return None
    cache_read = int(usage.get("cacheReadInputTokens") or 0)
    cache_write = int(usage.get("cacheWriteInputTokens") or 0)
    return Usage(
        prompt_tokens=int(usage.get("inputTokens") or 0) + cache_read + cache_write,
        completion_tokens=int(usage.get("outputTokens") or 0),
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def converse_latency(metrics: Any) -> dict[str, float]:
    """Converse's ``metrics.latencyMs`` as ``{"latency": seconds}``."""
    if isinstance(metrics, Mapping) and isinstance(metrics.get("latencyMs"), (int, float)):
        return {"latency": metrics["latencyMs"] / 1000.0}
    return {}


class FrameStream(StreamReader):
    """A streamed 2xx answer read as AWS event-stream frames; every failure a harness error."""

    format_name = "AWS event-stream"
    expected = "an AWS event stream"
    item = "frame"
    item_article = "a"
    media_types = frozenset({EVENT_STREAM})
    untyped_ok = False

    async def events(self) -> AsyncIterator[tuple[str | None, dict[str, Any]]]:
        """(event type, JSON payload) of each event frame; exception frames are raised."""
        decoder = EventStreamDecoder()
        async for chunk in self.chunks():
            try:
                frames = decoder.feed(chunk)
            except EventStreamError as exc:
                raise self.format_error(f"frame {self.count + 1}: {exc}", chunk) from exc
            for frame in frames:
                self.count += 1
                yield frame.event_type, self._payload(frame)
        if decoder.pending:
            raise self.cut(f"the stream ended inside a frame ({decoder.pending} bytes)")

    def _payload(self, frame: EventStreamMessage) -> dict[str, Any]:
        try:
            data = json.loads(frame.payload or b"{}")
        except ValueError:
            data = frame.payload.decode("utf-8", errors="replace")
        if frame.message_type != "event":
            raise bedrock_error(
                frame.event_type or frame.headers.get(":error-code"),
                data if data else frame.headers.get(":error-message"),
                status=0,
                provider=self.provider,
                model=self.model,
                headers=self.response.headers,
            )
        if not isinstance(data, dict):
            raise self.format_error(
                f"frame {self.count} is not a JSON object: {str(data)[:EXCERPT_CHARS]!r}",
                frame.payload,
            )
        return data


def invocation_metrics(data: Mapping[str, Any]) -> dict[str, float]:
    """InvokeModelWithResponseStream's ``amazon-bedrock-invocationMetrics``, in seconds."""
    metrics = data.get("amazon-bedrock-invocationMetrics")
    if not isinstance(metrics, Mapping):
        return {}
    out = {}
    for name, key in (("latency", "invocationLatency"), ("first_byte_latency", "firstByteLatency")):
        if isinstance(metrics.get(key), (int, float)):
            out[name] = metrics[key] / 1000.0
    return out
