"""Cutting chat messages down to a model's context window before a request.

The entry point is :func:`compress_messages`; the providers call it and nothing else.
This version knows ``no_compress``; the cutting strategies (``post_cut_by_token``,
``post_cut_by_msg``, ``pre_cut_by_token``, ``pre_cut_by_msg``) arrive with exact token counting.
"""

from __future__ import annotations

from typing import Any

from harness.config import CompressType
from harness.errors import ConfigError

__all__ = ["compress_messages"]


def compress_messages(
    messages: list[dict[str, Any]],
    compress_type: CompressType | str = CompressType.NO_COMPRESS,
    *,
    max_token: int = 128_000,
    threshold: float = 0.8,
) -> list[dict[str, Any]]:
    """Messages that fit ``threshold * max_token`` tokens by the chosen strategy.

    ``no_compress`` returns the messages unchanged (a new list).
    """
    strategy = CompressType(compress_type)
    if strategy is CompressType.NO_COMPRESS:
        return list(messages)
    raise ConfigError(
        f"compress_type {strategy.value!r} is not available in this version of harness; "
        "use 'no_compress'",
        key="compress_type",
    )
