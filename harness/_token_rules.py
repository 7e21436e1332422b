"""OpenAI's rules for the tokens that are not plain text: images and tool definitions.

Images follow OpenAI's published tile rule (vision guide): ``detail: low`` costs a base
amount; otherwise the image is scaled to fit 2048x2048, then its shortest side to 768, and
each 512x512 tile costs a tile amount on top of the base. The size is read from the header of
inline (``data:``) PNG, JPEG, GIF and WebP images; a remote URL cannot be read offline and is
counted as a 1024x1024 image (4 tiles).

Tool definitions on OpenAI models are rendered the way the chat models see them (a
TypeScript-like ``namespace functions``), as reverse-engineered by the community
(hmarr/openai-chat-tokens), plus a framing fitted on the recorded requests (9 tokens on
cl100k_base, 8 on o200k_base): OpenAI publishes no rule, so :func:`tools_tokens` is an
estimate and counts that include tools say so (``estimated``).

Anthropic documents the one rule there is for Claude: with ``tools``, a tool-use system
prompt of a fixed size per model and tool choice is added (:func:`claude_tool_prompt_tokens`,
Anthropic's "tool use pricing and tokens" table); the definitions themselves are counted as
their JSON, an estimate since Claude's tokenizer is not public.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "CLAUDE_TOOL_PROMPT_TOKENS",
    "claude_tool_prompt_tokens",
    "format_tools",
    "image_size",
    "image_tokens",
    "tools_tokens",
]

DEFAULT_IMAGE_SIZE = (1024, 1024)


def image_size(url: str) -> tuple[int, int] | None:
    """Width and height of an inline ``data:`` image (PNG, JPEG, GIF, WebP), else None."""
    if not url.startswith("data:") or "," not in url:
        return None
    head = url.split(",", 1)[1][:64_000]  # JPEG's size marker may sit after EXIF data
    head = head[: len(head) - len(head) % 4]
    try:
        data = base64.b64decode(head)
    except (binascii.Error, ValueError):
        return None
    return _png_size(data) or _gif_size(data) or _webp_size(data) or _jpeg_size(data)


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return None


def _gif_size(data: bytes) -> tuple[int, int] | None:
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 30:
        return None
    kind = data[12:16]
    if kind == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    if kind == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    if data[:2] != b"\xff\xd8":
        return None
    offset = 2
    while offset + 9 < len(data):
        if data[offset] != 0xFF:
            return None
        marker = data[offset + 1]
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        # SOF0..SOF15 carry the size, except DHT (C4), JPG (C8) and DAC (CC).
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return int(width), int(height)
        offset += 2 + length
    return None


def image_tokens(
    part: Mapping[str, Any], *, base: int, tile: int, size: tuple[int, int] | None = None
) -> int:
    """Tokens of one ``image_url`` content part by OpenAI's tile rule."""
    image = part.get("image_url")
    url = image.get("url", "") if isinstance(image, Mapping) else str(image or "")
    detail = image.get("detail", "auto") if isinstance(image, Mapping) else "auto"
    if detail == "low":
        return base
    pixels = size or image_size(url) or DEFAULT_IMAGE_SIZE
    width, height = float(pixels[0]), float(pixels[1])
    if width <= 0 or height <= 0:
        return base
    if max(width, height) > 2048:
        scale = 2048 / max(width, height)
        width, height = width * scale, height * scale
    if min(width, height) > 768:
        scale = 768 / min(width, height)
        width, height = width * scale, height * scale
    tiles = math.ceil(width / 512) * math.ceil(height / 512)
    return base + tile * tiles


# -- tool definitions -------------------------------------------------------------------------


def format_tools(tools: Sequence[Mapping[str, Any]]) -> str:
    """Tool (function) definitions rendered as the model sees them."""
    lines = ["namespace functions {", ""]
    for tool in tools:
        function = tool.get("function", tool)
        name = function.get("name", "")
        if function.get("description"):
            lines.append(f"// {function['description']}")
        parameters = function.get("parameters") or {}
        if parameters.get("properties"):
            lines.append(f"type {name} = (_: {{")
            lines.append(_format_properties(parameters, 0))
            lines.append("}) => any;")
        else:
            lines.append(f"type {name} = () => any;")
        lines.append("")
    lines.append("} // namespace functions")
    return "\n".join(lines)


def _format_properties(schema: Mapping[str, Any], indent: int) -> str:
    lines = []
    required = schema.get("required") or []
    for name, prop in (schema.get("properties") or {}).items():
        if prop.get("description") and indent < 2:
            lines.append(f"// {prop['description']}")
        optional = "" if name in required else "?"
        lines.append(f"{name}{optional}: {_format_type(prop, indent)},")
    return "\n".join(" " * indent + line for line in lines)


def _format_type(prop: Mapping[str, Any], indent: int) -> str:
    kind = prop.get("type")
    if "enum" in prop and kind in ("string", None):
        return " | ".join(json.dumps(v) for v in prop["enum"])
    if kind in ("number", "integer"):
        return " | ".join(str(v) for v in prop["enum"]) if "enum" in prop else "number"
    if kind == "object":
        return "{\n" + _format_properties(prop, indent + 2) + "\n}"
    if kind == "array":
        items = prop.get("items")
        return f"{_format_type(items, indent)}[]" if isinstance(items, Mapping) else "any[]"
    if kind in ("string", "boolean", "null"):
        return str(kind)
    return "any"


def tools_tokens(
    tools: Sequence[Mapping[str, Any]],
    count: Callable[[str], int],
    *,
    framing: int = 9,
    has_system: bool,
) -> int:
    """Prompt tokens the tool definitions add (an approximation, see the module docstring)."""
    if not tools:
        return 0
    # The definitions travel in a system message of their own (``framing`` tokens around
    # them), or share the first system message when there is one (4 tokens fewer).
    return count(format_tools(tools)) + framing - (4 if has_system else 0)


# Anthropic's documented tool-use system prompt sizes: model prefix -> (tokens with tool
# choice auto or none, tokens with any or a named tool). Models the table does not list get
# no overhead (their counts are estimates anyway).
CLAUDE_TOOL_PROMPT_TOKENS: dict[str, tuple[int, int]] = {
    "claude-3-opus": (530, 281),
    "claude-3-sonnet": (159, 235),
    "claude-3-haiku": (264, 340),
}


def claude_tool_prompt_tokens(model: str | None, tool_choice: str | None) -> int:
    """The tool-use system prompt Anthropic adds to a request with tools, for ``model``
    (also a Bedrock id such as ``anthropic.claude-3-haiku-...``); 0 when not documented."""
    name = (model or "").lower().rsplit("/", 1)[-1]
    name = name.split("anthropic.", 1)[-1]
    for prefix, (auto, forced) in CLAUDE_TOOL_PROMPT_TOKENS.items():
        if name.startswith(prefix):
            return forced if tool_choice not in (None, "auto", "none") else auto
    return 0
