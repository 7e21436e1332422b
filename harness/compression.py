"""Cutting chat messages down to a token budget before a request.

:func:`compress` is a pure function of (messages, strategy, budget, counter); the providers
call :func:`compress_messages`, which derives the budget (``threshold`` x context window, the
seed's ``keep_token``) and the counter (the model's tokenizer) and calls it.

The strategies (the seed's five):

- ``no_compress``: the messages as they are.
- ``post_cut_by_msg`` / ``pre_cut_by_msg``: keep the newest (post) or oldest (pre) whole
  messages that fit; when not even one fits, the first one is truncated instead (as in the
  seed), so the model always gets something to answer.
- ``post_cut_by_token`` / ``pre_cut_by_token``: the same, and the message at the boundary is
  truncated to the tokens left: its last tokens (post) or its first tokens (pre), decoded from
  a token suffix or prefix of its content, never cut in the middle of a character.

System (and ``developer``) messages are always kept, all of them, in order. The result is an
order-preserving subsequence of the input, except the one truncated message.

An assistant message with ``tool_calls`` and the ``tool`` messages right after it (system
messages aside) are one unit, kept or dropped whole and never truncated: a tool result without
the call it answers, or a call without its results, is rejected by the APIs. The same holds for
provider-native blocks passed through in ``content``: an assistant message with Anthropic
``tool_use``, Bedrock Converse ``toolUse`` or Gemini ``functionCall`` parts, and the messages
right after it whose content holds ``tool_result`` / ``toolResult`` / ``functionResponse``
parts. A result message outside any unit (the input's own orphan) is never truncated. When
the unit at the boundary does not fit it is dropped, and compression stops there (even under
``*_by_msg`` with nothing else kept: no single message stands in for a tool exchange). Each
message is tokenized once (plus the one boundary message when it is truncated), so the cost is
linear in the size of the conversation. Multi-part content keeps its images; only its text is cut.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from harness.config import CompressType
from harness.errors import ConfigError
from harness.tokens import tokenizer_for_model

__all__ = ["MessageCounter", "compress", "compress_messages", "keep_tokens"]

logger = logging.getLogger("harness.compression")

_SYSTEM_ROLES = frozenset({"system", "developer"})


class MessageCounter(Protocol):
    """What compression needs from a tokenizer (``harness.tokens.Tokenizer`` is one)."""

    @property
    def reply_tokens(self) -> int:
        """Tokens every request adds to prime the reply."""
        ...

    def count(self, text: str) -> int:
        """Tokens of plain text."""
        ...

    def message_tokens(self, message: Mapping[str, Any]) -> int:
        """Tokens one message adds to a prompt, its overhead included."""
        ...

    def truncate(self, text: str, max_tokens: int, *, keep: Literal["head", "tail"]) -> str:
        """A prefix (head) or suffix (tail) of ``text`` of at most ``max_tokens`` tokens."""
        ...


def keep_tokens(context_window: int, threshold: float) -> int:
    """The token budget of the compressed messages: ``threshold`` x the context window."""
    if not 0 < threshold <= 1:
        raise ConfigError(f"threshold must be in (0, 1], got {threshold!r}", key="threshold")
    return int(context_window * threshold)


def compress(
    messages: Sequence[Mapping[str, Any]],
    strategy: CompressType | str,
    budget: int,
    counter: MessageCounter,
) -> list[dict[str, Any]]:
    """The messages that fit ``budget`` prompt tokens (reply priming included) by ``strategy``.

    Kept messages are returned as they are (not copied); a truncated one is a new dict.
    When the system messages alone pass the budget they are still returned, with a warning:
    harness never cuts instructions.
    """
    strategy = CompressType(strategy)
    if strategy is CompressType.NO_COMPRESS:
        return [_as_dict(m) for m in messages]
    counts = [counter.message_tokens(m) for m in messages]
    system = [m.get("role") in _SYSTEM_ROLES for m in messages]
    system_tokens = sum(c for c, s in zip(counts, system, strict=True) if s)
    available = budget - counter.reply_tokens - system_tokens
    if available < 0:
        logger.warning(
            "the system messages (%d tokens) and the reply priming (%d) pass the budget of %d "
            "tokens: sending the system messages only",
            system_tokens,
            counter.reply_tokens,
            budget,
        )
    newest_first = strategy in (CompressType.POST_CUT_BY_TOKEN, CompressType.POST_CUT_BY_MSG)
    by_token = strategy in (CompressType.POST_CUT_BY_TOKEN, CompressType.PRE_CUT_BY_TOKEN)
    units = _units(messages, system)
    if newest_first:
        units.reverse()
    kept: set[int] = set()
    replaced: dict[int, dict[str, Any]] = {}
    for unit in units:
        cost = sum(counts[i] for i in unit)
        if cost <= available:
            kept.update(unit)
            available -= cost
            continue
        first = messages[unit[0]]
        plain = len(unit) == 1 and not _answers_tool_call(first) and not _opens_tool_exchange(first)
        if plain and (by_token or not kept):
            index = unit[0]
            keep: Literal["head", "tail"] = "tail" if newest_first else "head"
            cut = _truncate_message(messages[index], available, counter, keep)
            if cut is not None:
                replaced[index] = cut
                kept.add(index)
        dropped = sum(len(u) for u in units) - len(kept)
        logger.info("compression (%s) dropped %d message(s)", strategy.value, dropped)
        break
    return [
        replaced.get(i) or _as_dict(m) for i, m in enumerate(messages) if system[i] or i in kept
    ]


# Provider-native parts of a call and of its result, as (Anthropic block type, Converse key,
# Gemini key): the providers send parts they do not convert on as they are.
_CALL_PARTS = ("tool_use", "toolUse", "functionCall")
_RESULT_PARTS = ("tool_result", "toolResult", "functionResponse")


def _has_part(message: Mapping[str, Any], kinds: tuple[str, str, str]) -> bool:
    content = message.get("content")
    if not isinstance(content, list):
        return False
    block_type, *keys = kinds
    return any(
        isinstance(part, Mapping)
        and (part.get("type") == block_type or any(key in part for key in keys))
        for part in content
    )


def _opens_tool_exchange(message: Mapping[str, Any]) -> bool:
    """An assistant message that calls tools: OpenAI ``tool_calls`` or native call parts."""
    if message.get("role") != "assistant":
        return False
    return bool(message.get("tool_calls")) or _has_part(message, _CALL_PARTS)


def _answers_tool_call(message: Mapping[str, Any]) -> bool:
    """A ``tool`` message, or one whose content holds native tool-result parts."""
    return message.get("role") == "tool" or _has_part(message, _RESULT_PARTS)


def _units(messages: Sequence[Mapping[str, Any]], system: list[bool]) -> list[list[int]]:
    """The non-system message indexes, oldest first, grouped into what is kept or dropped whole.

    A unit is one message, or an assistant message that calls tools followed by the messages
    after it that carry results (the system messages between them are kept anyway, so they
    are skipped).
    """
    units: list[list[int]] = []
    in_exchange = False
    for index, message in enumerate(messages):
        if system[index]:
            continue
        if in_exchange and _answers_tool_call(message):
            units[-1].append(index)
            continue
        units.append([index])
        in_exchange = _opens_tool_exchange(message)
    return units


def _as_dict(message: Mapping[str, Any]) -> dict[str, Any]:
    return message if isinstance(message, dict) else dict(message)


def _truncate_message(
    message: Mapping[str, Any],
    available: int,
    counter: MessageCounter,
    keep: Literal["head", "tail"],
) -> dict[str, Any] | None:
    """``message`` with its content cut to fit ``available`` tokens, or None if nothing fits."""
    content = message.get("content")
    if available <= 0 or not content:
        return None
    if isinstance(content, str):
        overhead = counter.message_tokens({**message, "content": ""})
        text = counter.truncate(content, available - overhead, keep=keep)
        cut: dict[str, Any] | None = {**message, "content": text} if text else None
    elif isinstance(content, list):
        cut = _truncate_parts(message, content, available, counter, keep)
    else:
        return None
    # A counter other than harness's may not keep its promise: check instead of trusting it.
    if cut is None or counter.message_tokens(cut) > available:
        return None
    return cut


def _truncate_parts(
    message: Mapping[str, Any],
    parts: list[Any],
    available: int,
    counter: MessageCounter,
    keep: Literal["head", "tail"],
) -> dict[str, Any] | None:
    """Multi-part content: images and other parts stay, text parts are cut from one end."""
    is_text = [isinstance(p, Mapping) and p.get("type") == "text" for p in parts]
    fixed = counter.message_tokens(
        {**message, "content": [p for p, t in zip(parts, is_text, strict=True) if not t]}
    )
    room = available - fixed
    if room <= 0:
        return None
    new_text: dict[int, str] = {}
    indexes = [i for i, t in enumerate(is_text) if t]
    if keep == "tail":
        indexes.reverse()
    for index in indexes:
        text = str(parts[index].get("text", ""))
        tokens = counter.count(text)
        if tokens <= room:
            new_text[index] = text
            room -= tokens
            continue
        piece = counter.truncate(text, room, keep=keep)
        if piece:
            new_text[index] = piece
        break
    if not any(new_text.values()):
        return None
    content = [
        ({**part, "text": new_text[i]} if i in new_text else part)
        for i, part in enumerate(parts)
        if not is_text[i] or i in new_text
    ]
    return {**message, "content": content}


def compress_messages(
    messages: Sequence[Mapping[str, Any]],
    compress_type: CompressType | str = CompressType.NO_COMPRESS,
    *,
    max_token: int = 128_000,
    threshold: float = 0.8,
    model: str | None = None,
    counter: MessageCounter | None = None,
) -> list[dict[str, Any]]:
    """Messages that fit ``threshold * max_token`` tokens by the chosen strategy.

    ``max_token`` is the model's context window; ``counter`` defaults to the tokenizer of
    ``model`` (an ``o200k_base`` estimate for models that are not OpenAI's).
    """
    strategy = CompressType(compress_type)
    if strategy is CompressType.NO_COMPRESS:
        return [_as_dict(m) for m in messages]
    if counter is None:
        counter = tokenizer_for_model(model)
    return compress(messages, strategy, keep_tokens(max_token, threshold), counter)
