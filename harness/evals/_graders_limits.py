"""Graders of an attempt's cost, latency and prompt tokens.

:mod:`harness.evals.graders` re-exports them (and maps their suite-file names in GRADERS).
"""

from __future__ import annotations

from decimal import Decimal

from harness.evals._graders_common import _bool
from harness.evals._grading import Grade, GradeContext, Grader
from harness.evals._grading import NamedGrader as _Named

__all__ = ["max_cost", "max_latency", "max_prompt_tokens"]


def max_cost(usd: float | str | Decimal) -> Grader:
    """Passes when this attempt's model cost (USD, judge excluded) is at most ``usd``."""
    limit = Decimal(str(usd))

    def check(ctx: GradeContext) -> Grade:
        if ctx.cost is None:
            return _bool(False, "the cost is unknown (the model has no price)")
        ok = ctx.cost <= limit
        return _bool(ok, f"cost ${ctx.cost} {'<=' if ok else '>'} ${limit}")

    return _Named(f"max_cost({limit})", check)


def max_latency(seconds: float) -> Grader:
    """Passes when this attempt's latency (recorded one on replay) is at most ``seconds``."""

    def check(ctx: GradeContext) -> Grade:
        if ctx.latency is None:
            return _bool(False, "the latency is unknown")
        ok = ctx.latency <= seconds
        return _bool(ok, f"latency {ctx.latency:.3f}s {'<=' if ok else '>'} {seconds}s")

    return _Named(f"max_latency({seconds})", check)


def max_prompt_tokens(n: int) -> Grader:
    """Passes when the last request's prompt tokens (from usage) are at most ``n``."""

    def check(ctx: GradeContext) -> Grade:
        usage = ctx.response.usage if ctx.response is not None else None
        usage = usage or ctx.usage
        if usage is None:
            return _bool(False, "no usage was reported for the request")
        ok = usage.prompt_tokens <= n
        return _bool(ok, f"{usage.prompt_tokens} prompt tokens {'<=' if ok else '>'} {n}")

    return _Named(f"max_prompt_tokens({n})", check)
