"""Text graders: equality, substrings, regular expressions, prefixes, lengths, and negation.

:mod:`harness.evals.graders` re-exports them (and maps their suite-file names in GRADERS).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from typing import Any, Literal

from harness.evals._graders_common import _bool, _clip, _expected, _fmt
from harness.evals._grading import (
    Grade,
    GradeContext,
    Grader,
    as_grader,
    grader_models,
    grader_name,
)
from harness.evals._grading import NamedGrader as _Named

__all__ = [
    "contains",
    "equals",
    "length_between",
    "not_",
    "regex",
    "starts_with",
    "word_count_between",
]


def equals(value: Any = None, *, ignore_case: bool = False, strip: bool = True) -> Grader:
    """Passes when the reply equals ``value`` (default: the case's ``expected``)."""

    def check(ctx: GradeContext) -> Grade:
        want = str(_expected(value, ctx, "equals"))
        got = ctx.reply.strip() if strip else ctx.reply
        if strip:
            want = want.strip()
        same = got.lower() == want.lower() if ignore_case else got == want
        return _bool(same, f"reply {_clip(got)!r} {'==' if same else '!='} {want!r}")

    return _Named(f"equals({_fmt(value)})" if value is not None else "equals(expected)", check)


def contains(
    value: str | Sequence[str] | None = None,
    *,
    match: Literal["all", "any"] = "all",
    at_least: int | None = None,
    ignore_case: bool = True,
    whole_words: bool = False,
) -> Grader:
    """Passes when the reply contains the value(s): ``match`` all or any, or ``at_least`` n.

    Case-insensitive by default; ``whole_words`` only counts matches on word boundaries.
    The score is the share of values found (of ``at_least`` when given).
    """
    if match not in ("all", "any"):
        raise ValueError(f"match must be 'all' or 'any', got {match!r}")
    if at_least is not None and at_least < 1:
        raise ValueError(f"at_least must be >= 1, got {at_least}")
    fixed = None if value is None else _strings(value, "contains")
    flags = re.IGNORECASE if ignore_case else 0

    def found_in(reply: str, word: str) -> bool:
        if whole_words:
            return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", reply, flags) is not None
        return (word.lower() in reply.lower()) if ignore_case else (word in reply)

    def check(ctx: GradeContext) -> Grade:
        words = fixed if fixed is not None else _strings(_expected(None, ctx, "contains"), "")
        found = [w for w in words if found_in(ctx.reply, w)]
        missing = [w for w in words if w not in found]
        need = at_least if at_least is not None else (1 if match == "any" else len(words))
        passed = len(found) >= need
        score = min(len(found) / need, 1.0) if need else 1.0
        if passed:
            reason = f"found {found}"
        else:
            reason = f"found {found}, missing {missing} (needed {need}) in {_clip(ctx.reply)!r}"
        return Grade(passed, score, reason)

    opts = "" if match == "all" else f", match={match!r}"
    opts += f", at_least={at_least}" if at_least is not None else ""
    opts += ", whole_words=True" if whole_words else ""
    opts += ", ignore_case=False" if not ignore_case else ""
    shown = "expected" if value is None else _fmt(value)
    return _Named(f"contains({shown}{opts})", check)


def _strings(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [str(value)]
    if (
        isinstance(value, Sequence)
        and value
        and all(isinstance(v, (str, int, float)) for v in value)
    ):
        return [str(v) for v in value]
    raise ValueError(f"{what} needs a string or a non-empty list of strings, got {value!r}")


def regex(pattern: str, *, ignore_case: bool = False, fullmatch: bool = False) -> Grader:
    """Passes when the regular expression is found in the reply (or matches all of it)."""
    try:
        compiled = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc

    def check(ctx: GradeContext) -> Grade:
        text = ctx.reply.strip() if fullmatch else ctx.reply
        hit = compiled.fullmatch(text) if fullmatch else compiled.search(text)
        if hit:
            return _bool(True, f"matched {hit.group(0)!r}")
        return _bool(False, f"no match for /{pattern}/ in {_clip(ctx.reply)!r}")

    return _Named(f"regex({pattern!r})", check)


def starts_with(prefix: str, *, ignore_case: bool = False, strip: bool = True) -> Grader:
    """Passes when the reply starts with ``prefix`` (leading whitespace ignored by default)."""

    def check(ctx: GradeContext) -> Grade:
        text = ctx.reply.lstrip() if strip else ctx.reply
        ok = text.lower().startswith(prefix.lower()) if ignore_case else text.startswith(prefix)
        return _bool(
            ok, f"reply {'starts' if ok else 'does not start'} with {prefix!r}: {_clip(text, 60)!r}"
        )

    return _Named(f"starts_with({prefix!r})", check)


def not_(inner: Any) -> Grader:
    """Negates a grader: passes when it fails (score ``1 - score``)."""
    wrapped = as_grader(inner)

    async def check(ctx: GradeContext) -> Grade:
        result = wrapped(ctx)
        grade = await result if inspect.isawaitable(result) else result
        assert isinstance(grade, Grade)
        return Grade(not grade.passed, 1.0 - grade.score, f"not: {grade.reason}")

    return _Named(f"not({grader_name(wrapped)})", check, models=grader_models(wrapped))


def length_between(min: int = 0, max: int | None = None) -> Grader:
    """Passes when the stripped reply has between ``min`` and ``max`` characters."""
    _check_range(min, max)

    def check(ctx: GradeContext) -> Grade:
        n = len(ctx.reply.strip())
        ok = n >= min and (max is None or n <= max)
        return _bool(ok, f"{n} characters (wanted {min}..{'' if max is None else max})")

    return _Named(f"length_between({min}, {max})", check)


def word_count_between(min: int = 0, max: int | None = None) -> Grader:
    """Passes when the reply has between ``min`` and ``max`` words (split on whitespace)."""
    _check_range(min, max)

    def check(ctx: GradeContext) -> Grade:
        n = len(ctx.reply.split())
        ok = n >= min and (max is None or n <= max)
        return _bool(ok, f"{n} words (wanted {min}..{'' if max is None else max})")

    return _Named(f"word_count_between({min}, {max})", check)


def _check_range(low: Any, high: Any) -> None:
    if not isinstance(low, int) or low < 0:
        raise ValueError(f"min must be an integer >= 0, got {low!r}")
    if high is not None and (not isinstance(high, int) or high < low):
        raise ValueError(f"max must be an integer >= min ({low}), got {high!r}")
