"""Chat message builders (OpenAI's dict shape), images, and base64 masking for logs."""

from __future__ import annotations

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


def assistant_msg(text: str) -> Message:
    """An assistant message."""
    return {"role": "assistant", "content": text}


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
