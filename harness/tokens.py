"""Token counting.

Until exact offline tokenizers land, counts here are estimates and say so: they are used only
where a provider did not report usage, and the resulting ``Usage`` is flagged ``estimated``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from harness.messages import content_text

__all__ = ["estimate_message_tokens", "estimate_text_tokens"]

# OpenAI's rule of thumb: about 4 bytes of English per token; every message costs ~3 more.
_BYTES_PER_TOKEN = 4
_TOKENS_PER_MESSAGE = 3
_TOKENS_PER_REPLY = 3


def estimate_text_tokens(text: str) -> int:
    """An estimate of the tokens in ``text`` (UTF-8 bytes / 4, rounded up)."""
    return math.ceil(len(text.encode("utf-8")) / _BYTES_PER_TOKEN)


def estimate_message_tokens(messages: Iterable[dict[str, Any]]) -> int:
    """An estimate of the prompt tokens of chat messages, with per-message overhead."""
    total = _TOKENS_PER_REPLY
    for message in messages:
        total += _TOKENS_PER_MESSAGE + estimate_text_tokens(content_text(message.get("content")))
        total += estimate_text_tokens(str(message.get("role", "")))
    return total
