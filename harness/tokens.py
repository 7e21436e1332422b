"""Token counting: exact and offline for OpenAI's encodings, an honest estimate otherwise.

The BPE ranks of ``cl100k_base`` and ``o200k_base`` ship inside the package
(``harness/data``, see its README for their origin); they are checked against the SHA-256
that tiktoken itself pins and turned into a ``tiktoken.Encoding`` here, so nothing is ever
downloaded. Models are mapped to an encoding by name (dated and ``provider/`` prefixed names
included); any other model is counted with ``o200k_base`` and the count says it is an
estimate (:attr:`TokenCount.estimated`).

Chat messages are counted by OpenAI's published rule (the "How to count tokens with
tiktoken" cookbook): 3 tokens per message, the tokens of each string field, 1 more for a
``name``, and 3 to prime the reply. Reasoning models (o1, o3, o4, gpt-5) prime the reply with
2 tokens; that matches what OpenAI billed for the recorded o3-mini request.

Context windows are data too (``harness/data/context_windows.yaml``); a config's
``context_length`` overrides them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import lzma
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import tiktoken
import yaml

from harness._model_names import longest_prefix_match
from harness._token_rules import claude_tool_prompt_tokens, image_tokens, tools_tokens
from harness.errors import ConfigError, TokenizerDataError
from harness.messages import content_text

__all__ = [
    "DEFAULT_CONTEXT_WINDOW",
    "ENCODING_SHA256",
    "TokenCount",
    "Tokenizer",
    "context_window",
    "count_message_tokens",
    "count_output_tokens",
    "count_text_tokens",
    "count_tool_tokens",
    "encoding_for_model",
    "estimate_message_tokens",
    "estimate_text_tokens",
    "get_encoding",
    "tokenizer_for_model",
]

# The hashes tiktoken pins for these files (tiktoken_ext/openai_public.py).
ENCODING_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}

# Split patterns and special tokens, as in tiktoken_ext/openai_public.py (MIT, OpenAI).
_PATTERNS = {
    "cl100k_base": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
    "o200k_base": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}
_SPECIAL_TOKENS = {
    "cl100k_base": {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    },
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
}

# Longest prefix wins: gpt-4o-mini-2024-07-18 -> gpt-4o, gpt-4-0613 -> gpt-4.
_MODEL_ENCODINGS = {
    "gpt-5": "o200k_base",
    "gpt-4.5": "o200k_base",
    "gpt-4.1": "o200k_base",
    "gpt-4o": "o200k_base",
    "chatgpt-4o": "o200k_base",
    "o1": "o200k_base",
    "o3": "o200k_base",
    "o4": "o200k_base",
    "gpt-oss": "o200k_base",
    "codex-mini": "o200k_base",
    "gpt-4": "cl100k_base",
    "gpt-3.5": "cl100k_base",
    "gpt-35": "cl100k_base",  # Azure's spelling
    "text-embedding-3": "cl100k_base",
    "text-embedding-ada": "cl100k_base",
    "davinci-002": "cl100k_base",
    "babbage-002": "cl100k_base",
}
_REASONING_PREFIXES = {"o1": True, "o3": True, "o4": True, "gpt-5": True, "codex-mini": True}
# Image token prices (base, per 512px tile) where a model differs from gpt-4o's (85, 170).
_IMAGE_COSTS = {"gpt-4o-mini": (2833, 5667), "o1": (75, 150), "o3": (75, 150)}
ESTIMATE_ENCODING = "o200k_base"

DEFAULT_CONTEXT_WINDOW = 128_000

_lock = threading.Lock()
_encodings: dict[str, tiktoken.Encoding] = {}


def get_encoding(name: str) -> tiktoken.Encoding:
    """The ``cl100k_base`` or ``o200k_base`` encoding, built from the shipped, hash-checked data."""
    if name not in ENCODING_SHA256:
        raise ConfigError(
            f"unknown encoding {name!r}; harness ships: {', '.join(sorted(ENCODING_SHA256))}"
        )
    with _lock:
        encoding = _encodings.get(name)
        if encoding is None:
            encoding = _encodings[name] = _load_encoding(name)
    return encoding


def _load_encoding(name: str) -> tiktoken.Encoding:
    resource = resources.files("harness.data").joinpath(f"{name}.tiktoken.xz")
    try:
        data = lzma.decompress(resource.read_bytes())
    except (OSError, lzma.LZMAError) as exc:
        raise TokenizerDataError(
            f"cannot read the {name} data shipped with harness: {exc}"
        ) from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != ENCODING_SHA256[name]:
        raise TokenizerDataError(
            f"the {name} data shipped with harness is corrupt (SHA-256 {digest}, expected "
            f"{ENCODING_SHA256[name]}); reinstall harness"
        )
    ranks = {
        base64.b64decode(token): int(rank) for token, rank in map(bytes.split, data.splitlines())
    }
    return tiktoken.Encoding(
        name=name,
        pat_str=_PATTERNS[name],
        mergeable_ranks=ranks,
        special_tokens=_SPECIAL_TOKENS[name],
    )


def encoding_for_model(model: str | None) -> str | None:
    """The OpenAI encoding ``model`` uses, or None for a model that is not OpenAI's."""
    if not model:
        return None
    return longest_prefix_match(_MODEL_ENCODINGS, model)


class TokenCount(int):
    """A token count (an ``int``) that says whether it is exact or an estimate."""

    estimated: bool
    encoding: str

    def __new__(cls, value: int, *, estimated: bool, encoding: str) -> TokenCount:
        count = super().__new__(cls, value)
        count.estimated = estimated
        count.encoding = encoding
        return count

    def __repr__(self) -> str:
        kind = "estimated" if self.estimated else "exact"
        return f"TokenCount({int(self)}, {kind}, {self.encoding})"


@dataclass(frozen=True, eq=False)
class Tokenizer:
    """Counts, encodes and truncates text and chat messages for one model.

    ``exact`` is False when the model is not OpenAI's: counts are then ``o200k_base``
    estimates.
    """

    encoding: tiktoken.Encoding
    exact: bool = True
    tokens_per_message: int = 3
    tokens_per_name: int = 1
    reply_tokens: int = 3
    image_base_tokens: int = 85
    image_tile_tokens: int = 170
    tool_framing_tokens: int = 9

    def encode(self, text: str) -> list[int]:
        """The tokens of ``text``; special-token text (``<|endoftext|>``) is plain text here."""
        return self.encoding.encode_ordinary(text)

    def decode(self, tokens: Sequence[int]) -> str:
        """The text of ``tokens``."""
        return self.encoding.decode(list(tokens))

    def count(self, text: str) -> int:
        """How many tokens ``text`` is."""
        return len(self.encoding.encode_ordinary(text)) if text else 0

    def truncate(self, text: str, max_tokens: int, *, keep: Literal["head", "tail"]) -> str:
        """The longest token prefix (``head``) or suffix (``tail``) of ``text`` that re-encodes
        to at most ``max_tokens`` tokens; always a prefix or suffix of ``text`` itself."""
        if max_tokens <= 0 or not text:
            return ""
        tokens = self.encode(text)
        if len(tokens) <= max_tokens:
            return text
        limit = max_tokens
        while limit > 0:
            cut = tokens[:limit] if keep == "head" else tokens[len(tokens) - limit :]
            piece = self._decode_whole_chars(cut, keep)
            # A cut string can split into tokens differently; re-count to keep the promise.
            if len(self.encode(piece)) <= max_tokens:
                return piece
            limit -= 1
        return ""

    def _decode_whole_chars(self, tokens: Sequence[int], keep: str) -> str:
        raw = self.encoding.decode_bytes(list(tokens))
        if keep == "tail":
            # Drop the tail of a character cut in two at the start (UTF-8 continuation bytes).
            start = 0
            while start < len(raw) and raw[start] & 0xC0 == 0x80:
                start += 1
            raw = raw[start:]
        # At the end (head), an incomplete character is dropped by "ignore".
        return raw.decode("utf-8", errors="ignore")

    def content_tokens(self, content: Any) -> int:
        """Tokens of a message's ``content``: a string or multi-part text and images."""
        if content is None:
            return 0
        if isinstance(content, str):
            return self.count(content)
        if isinstance(content, list):
            return sum(self.part_tokens(part) for part in content)
        return self.count(str(content))

    def part_tokens(self, part: Any) -> int:
        """Tokens of one part of multi-part content."""
        if isinstance(part, str):
            return self.count(part)
        if not isinstance(part, Mapping):
            return self.count(str(part))
        kind = part.get("type")
        if kind == "text":
            return self.count(str(part.get("text", "")))
        if kind == "image_url":
            return image_tokens(part, base=self.image_base_tokens, tile=self.image_tile_tokens)
        return self.count(json.dumps(part, ensure_ascii=False, sort_keys=True))

    def message_tokens(self, message: Mapping[str, Any]) -> int:
        """Tokens one chat message adds to a prompt (its overhead included)."""
        total = self.tokens_per_message
        for key, value in message.items():
            if key == "content":
                total += self.content_tokens(value)
            elif key == "tool_call_id":
                continue  # the model never sees call ids
            elif key == "tool_calls" and isinstance(value, list):
                # Not published; each call's function as compact JSON matches what OpenAI
                # billed for the recorded tool-call conversation.
                total += sum(
                    self.count(_compact_json(call.get("function", call))) for call in value
                )
            elif isinstance(value, str):
                total += self.count(value)
                if key == "name":
                    total += self.tokens_per_name
            elif value is not None:
                total += self.count(_compact_json(value))
        return total

    def prompt_tokens(
        self,
        messages: Iterable[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> int:
        """Prompt tokens of a whole chat request: the messages, tools and the reply priming."""
        messages = list(messages)
        has_system = any(m.get("role") in ("system", "developer") for m in messages)
        total = self.reply_tokens + sum(self.message_tokens(m) for m in messages)
        if tools:
            total += tools_tokens(
                tools, self.count, framing=self.tool_framing_tokens, has_system=has_system
            )
            if has_system:
                total += 1  # the shared system message gains a newline before the tools
        return total


@functools.lru_cache(maxsize=256)
def tokenizer_for_model(model: str | None) -> Tokenizer:
    """The tokenizer of ``model``; an estimating ``o200k_base`` one for non-OpenAI models."""
    name = encoding_for_model(model)
    reasoning = bool(model) and bool(longest_prefix_match(_REASONING_PREFIXES, model or ""))
    base, tile = longest_prefix_match(_IMAGE_COSTS, model or "") or (85, 170)
    return Tokenizer(
        encoding=get_encoding(name or ESTIMATE_ENCODING),
        exact=name is not None,
        reply_tokens=2 if reasoning else 3,
        image_base_tokens=base,
        image_tile_tokens=tile,
        # Calibrated on the recorded requests with tools: 9 on cl100k_base, 8 on o200k_base.
        tool_framing_tokens=9 if name == "cl100k_base" else 8,
    )


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _result(tokenizer: Tokenizer, value: int) -> TokenCount:
    return TokenCount(value, estimated=not tokenizer.exact, encoding=tokenizer.encoding.name)


def count_text_tokens(text: str, model: str | None = None) -> TokenCount:
    """Tokens of plain ``text`` for ``model`` (an estimate for non-OpenAI models)."""
    tokenizer = tokenizer_for_model(model)
    return _result(tokenizer, tokenizer.count(text))


def count_output_tokens(text: str, model: str | None = None) -> TokenCount:
    """Completion tokens of a model's answer ``text`` (visible text; reasoning is extra)."""
    return count_text_tokens(text, model)


def count_message_tokens(
    messages: Iterable[Mapping[str, Any]],
    model: str | None = None,
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: str | None = None,
) -> TokenCount:
    """Prompt tokens of chat ``messages`` (and the ``tools`` offered) for ``model``.

    Exact for text, names and inline images on OpenAI models, by OpenAI's chat counting rule.
    With ``tools`` the count is an estimate (``estimated``): OpenAI does not publish how tool
    definitions are rendered (harness uses the community's reverse-engineered rendering,
    which equals what OpenAI billed for every recorded request in tests/wire_corpus); for
    Claude models Anthropic's documented tool-use system prompt is added (see
    :func:`count_tool_tokens`).
    """
    tokenizer = tokenizer_for_model(model)
    if tools and _is_claude(model):
        value = tokenizer.prompt_tokens(messages) + _claude_tools_tokens(
            tokenizer, tools, model, tool_choice
        )
    else:
        value = tokenizer.prompt_tokens(messages, tools)
    count = _result(tokenizer, value)
    if tools:
        count.estimated = True
    return count


def count_tool_tokens(
    tools: Sequence[Mapping[str, Any]],
    model: str | None = None,
    *,
    tool_choice: str | None = None,
) -> TokenCount:
    """Prompt tokens that tool definitions (OpenAI-style function dicts) add to a request
    without a system message; always an estimate (no provider publishes the whole rule).

    OpenAI models: the definitions rendered as the models see them, plus the fitted framing.
    Claude models: the definitions' JSON plus Anthropic's documented tool-use system prompt
    for the model and ``tool_choice``. Others: the OpenAI rendering, counted by estimate.
    """
    tokenizer = tokenizer_for_model(model)
    if not tools:
        return TokenCount(0, estimated=not tokenizer.exact, encoding=tokenizer.encoding.name)
    if _is_claude(model):
        value = _claude_tools_tokens(tokenizer, tools, model, tool_choice)
    else:
        value = tools_tokens(
            tools, tokenizer.count, framing=tokenizer.tool_framing_tokens, has_system=False
        )
    return TokenCount(value, estimated=True, encoding=tokenizer.encoding.name)


def _is_claude(model: str | None) -> bool:
    return "claude" in (model or "").lower()


def _claude_tools_tokens(
    tokenizer: Tokenizer,
    tools: Sequence[Mapping[str, Any]],
    model: str | None,
    tool_choice: str | None,
) -> int:
    total = claude_tool_prompt_tokens(model, tool_choice)
    for tool in tools:
        function = tool.get("function", tool)
        definition = {
            "name": function.get("name", ""),
            "description": function.get("description", ""),
            "input_schema": function.get("parameters") or function.get("input_schema") or {},
        }
        total += tokenizer.count(_compact_json(definition))
    return total


@functools.cache
def _context_windows() -> dict[str, int]:
    text = resources.files("harness.data").joinpath("context_windows.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    return {str(name): int(row["tokens"]) for name, row in data["models"].items()}


def context_window(
    model: str | None, *, override: int | None = None, default: int = DEFAULT_CONTEXT_WINDOW
) -> int:
    """The context window of ``model`` in tokens: ``override`` (a config's ``context_length``),
    else the shipped table, else ``default``."""
    if override:
        return override
    if not model:
        return default
    found = longest_prefix_match(_context_windows(), model)
    return found if found is not None else default


# -- estimates without a tokenizer (kept for callers that want no table lookup) ------------------

_BYTES_PER_TOKEN = 4


def estimate_text_tokens(text: str) -> int:
    """A quick estimate of the tokens in ``text`` (UTF-8 bytes / 4, rounded up)."""
    return math.ceil(len(text.encode("utf-8")) / _BYTES_PER_TOKEN)


def estimate_message_tokens(messages: Iterable[dict[str, Any]]) -> int:
    """A quick estimate of the prompt tokens of chat messages, with per-message overhead."""
    total = 3
    for message in messages:
        total += 3 + estimate_text_tokens(content_text(message.get("content")))
        total += estimate_text_tokens(str(message.get("role", "")))
    return total
