"""Model-name normalisation shared by the token and price tables.

Providers and users spell one model many ways: ``gpt-4o-mini-2024-07-18``, ``openai/gpt-4o``,
``models/gemini-2.0-flash``, ``us.anthropic.claude-3-5-sonnet-20241022-v2:0``,
``claude-3-5-sonnet@20241022``. :func:`name_candidates` lists the spellings to try, most
specific first, so a table can hold one row per model and still pin a dated variant whose price
differs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TypeVar

__all__ = ["longest_prefix_match", "name_candidates"]

_V = TypeVar("_V")

_BEDROCK_REGION = re.compile(r"^(?:us|eu|apac|us-gov|ca|jp|au|global)\.")
_BEDROCK_VENDOR = re.compile(
    r"^(?:anthropic|amazon|meta|mistral|cohere|ai21|deepseek|writer|qwen)\."
)
_BEDROCK_VERSION = re.compile(r"-v\d+:\d+$")
_DATE_SUFFIX = re.compile(r"(?:[-@](?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4}))$")
_LATEST_SUFFIX = re.compile(r"-latest$")


def _unique(names: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for name in names:
        if name:
            seen.setdefault(name, None)
    return list(seen)


def name_candidates(model: str) -> list[str]:
    """Spellings of ``model`` to look up, most specific first.

    The exact name, then lower-cased, without a ``provider/`` prefix, without a Bedrock
    region and vendor prefix and ``-v1:0`` version, and without a date (``-2024-07-18``,
    ``-20241022``, ``@20241022``, ``-0613``) or ``-latest`` suffix.
    """
    names = [model, model.strip().lower()]
    bare = names[-1].rsplit("/", 1)[-1]
    names.append(bare)
    no_region = _BEDROCK_REGION.sub("", bare)
    names.append(no_region)
    if _BEDROCK_VENDOR.match(no_region):
        no_vendor = _BEDROCK_VENDOR.sub("", no_region)
        names.append(_BEDROCK_VERSION.sub("", no_region))
        names.append(no_vendor)
        names.append(_BEDROCK_VERSION.sub("", no_vendor))
    for name in list(names[2:]):
        undated = _DATE_SUFFIX.sub("", name)
        names.append(undated)
        names.append(_LATEST_SUFFIX.sub("", undated))
    return _unique(names)


def longest_prefix_match(table: Mapping[str, _V], model: str) -> _V | None:
    """The row for ``model`` by exact name, else the row of the longest matching prefix.

    Prefixes match at a name boundary only (``-``, ``.``, ``:``, ``@``, ``_``): ``gpt-4``
    matches ``gpt-4-0613`` but not ``gpt-4o``, and ``gpt-4.1`` needs its own row to beat
    ``gpt-4``.
    """
    candidates = name_candidates(model)
    for name in candidates:
        if name in table:
            return table[name]
    best: str | None = None
    for name in candidates:
        for key in table:
            if (
                len(name) > len(key)
                and name.startswith(key)
                and name[len(key)] in "-.:@_"
                and (best is None or len(key) > len(best))
            ):
                best = key
    return table[best] if best is not None else None
