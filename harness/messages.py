"""Chat message builders (OpenAI's dict shape), images, and base64 masking for logs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias, runtime_checkable

__all__ = [
    "Message",
    "MessageLike",
    "assistant_msg",
    "content_text",
    "format_msgs",
    "image_url",
    "mask_base64_data",
    "system_msg",
    "tool_result",
    "user_msg",
]

Message: TypeAlias = dict[str, Any]

IMAGE_OMITTED = "<Image base64 data has been omitted>"
MESSAGE_OMITTED = "<Messages containing image base64 data have been omitted>"
_BASE64_IMAGE_PREFIX = "data:image/"


@runtime_checkable
class _HasContent(Protocol):
    content: Any
    role: str


MessageLike: TypeAlias = "str | Mapping[str, Any] | _HasContent"


def image_url(image: str) -> str:
    """An http(s)/data URL as is; anything else is taken as base64 JPEG data."""
    if image.startswith(("http://", "https://", "data:")):
        return image
    return f"data:image/jpeg;base64,{image}"


def user_msg(text: str, images: str | Sequence[str] | None = None) -> Message:
    """A user message; with images, OpenAI multi-part content (text part first)."""
    if not images:
        return {"role": "user", "content": text}
    if isinstance(images, str):
        images = [images]
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    content.extend({"type": "image_url", "image_url": {"url": image_url(i)}} for i in images)
    return {"role": "user", "content": content}


def assistant_msg(text: str | None = None, tool_calls: Iterable[Any] | None = None) -> Message:
    """An assistant message: its text, and the tool calls it made (``ToolCall`` objects or
    OpenAI-shaped ``tool_calls`` entries), in OpenAI's shape."""
    msg: Message = {"role": "assistant", "content": text}
    calls = [_call_entry(call, index) for index, call in enumerate(tool_calls or ())]
    if calls:
        msg["tool_calls"] = calls
    elif text is None:
        raise ValueError("an assistant message needs text or tool calls")
    return msg


def _call_entry(call: Any, index: int) -> dict[str, Any]:
    to_message = getattr(call, "to_message", None)
    entry = to_message() if callable(to_message) else call
    if not isinstance(entry, Mapping) or not isinstance(entry.get("function"), Mapping):
        raise TypeError(
            f"tool call {index}: expected a ToolCall or an OpenAI tool_calls entry, "
            f"got {entry!r:.200}"
        )
    return dict(entry)


def tool_result(call_id: str, content: Any, *, is_error: bool | None = None) -> Message:
    """The result of the tool call ``call_id``, as a ``tool`` message; content that is not a
    string is sent as JSON. (A call without an id, as Gemini may send, is answered by its
    tool's name.) ``is_error`` marks a failed call for the wire formats that say so
    (Anthropic's ``is_error``, Bedrock's ``status``); OpenAI-family requests leave it out."""
    if not call_id:
        raise ValueError("tool_result needs the call's id")
    if not isinstance(content, str):
        content = json.dumps(content, ensure_ascii=False)
    msg: Message = {"role": "tool", "tool_call_id": call_id, "content": content}
    if is_error is not None:
        msg["is_error"] = is_error
    return msg


def system_msg(text: str) -> Message:
    """A system message."""
    return {"role": "system", "content": text}


def format_msgs(messages: MessageLike | Iterable[MessageLike]) -> list[Message]:
    """Normalise a string, a dict, an object with ``role``/``content``, or a list of them.

    Strings become user messages; dicts must have ``role`` and ``content``.
    """
    if isinstance(messages, (str, Mapping, _HasContent)):
        items: Iterable[Any] = [messages]
    else:
        items = messages
    result: list[Message] = []
    for index, msg in enumerate(items):
        if isinstance(msg, str):
            result.append({"role": "user", "content": msg})
        elif isinstance(msg, Mapping):
            missing = {"role", "content"} - set(msg)
            if missing:
                raise ValueError(
                    f"message {index} lacks {', '.join(sorted(missing))}: {dict(msg)!r:.200}"
                )
            result.append(dict(msg))
        elif isinstance(msg, _HasContent):
            result.append({"role": msg.role, "content": msg.content})
        else:
            raise TypeError(
                f"message {index}: expected str, dict or an object with role/content, "
                f"got {type(msg).__name__}"
            )
    return result


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of multi-part content."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return str(content)


def mask_base64_data(msg: Any) -> Any:
    """A copy of a message with base64 image data replaced by a placeholder, for logging."""
    if not isinstance(msg, dict):
        return msg
    masked = dict(msg)
    content = masked.get("content")
    if isinstance(content, list):
        parts = []
        for part in content:
            if (
                isinstance(part, dict)
                and part.get("type") == "image_url"
                and str((part.get("image_url") or {}).get("url", "")).startswith(
                    _BASE64_IMAGE_PREFIX
                )
            ):
                part = {**part, "image_url": {**part["image_url"], "url": IMAGE_OMITTED}}
            parts.append(part)
        masked["content"] = parts
    elif isinstance(content, str) and _BASE64_IMAGE_PREFIX in content:
        masked["content"] = MESSAGE_OMITTED
    return masked
