"""The grading protocol: Grade, GradeContext, and turning any callable into a grader.

:mod:`harness.evals.graders` re-exports these names next to the grader factories.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from harness.costs import Usage

if TYPE_CHECKING:
    from harness.evals.cases import Case
    from harness.providers.base import BaseLLM, ChatResponse, ToolCall

__all__ = [
    "Grade",
    "GradeContext",
    "Grader",
    "JudgeFactory",
    "NamedGrader",
    "as_grader",
    "grader",
    "grader_models",
    "grader_name",
    "run_grader",
]


@dataclass(frozen=True)
class Grade:
    """One grader's verdict: ``score`` is 0.0 .. 1.0 (1.0 for a pass of a boolean grader)."""

    passed: bool
    score: float
    reason: str
    name: str = ""

    def to_json(self) -> dict[str, Any]:
        """The grade as it appears in results JSON."""
        return {
            "name": self.name,
            "passed": self.passed,
            "score": self.score,
            "reason": self.reason,
        }


JudgeFactory = Callable[[str], "BaseLLM"]
"""A model name from the models config -> a provider on this case's cassette, billed apart."""


@dataclass
class GradeContext:
    """What a grader is called with."""

    reply: str  # the text graded (the last turn for a multi-turn case)
    case: Case
    model: str  # the model's name in the models config
    usage: Usage | None = None  # this attempt's usage (model calls only, judge excluded)
    cost: Decimal | None = None
    latency: float | None = None  # seconds (recorded latency on replay)
    messages: list[dict[str, Any]] = field(default_factory=list)  # the last request's, as sent
    response: ChatResponse | None = None
    judge: JudgeFactory | None = None
    turns: list[str] = field(default_factory=list)  # every turn's reply (one for single-turn)
    attempt: int = 0  # the repeat number, from 0

    @property
    def tool_calls(self) -> list[ToolCall]:
        """Every tool call of the attempt, in order (``response.tool_calls``; for a case with
        tools, the calls of every step of its loop)."""
        return list(self.response.tool_calls) if self.response is not None else []


Grader = Callable[[GradeContext], "Grade | Awaitable[Grade]"]
"""A callable of a GradeContext returning a Grade (or an awaitable of one)."""

_MARK = "__harness_grader__"


class NamedGrader:
    """A grader with a display name (what reports show, e.g. ``contains('Paris')``)."""

    def __init__(
        self, name: str, fn: Callable[[GradeContext], Any], *, models: tuple[str, ...] = ()
    ) -> None:
        self.name = name
        self._fn = fn
        self.models = models  # names in the models config this grader calls (the judge's)
        setattr(self, _MARK, True)

    def __call__(self, ctx: GradeContext) -> Any:
        return self._fn(ctx)

    def __repr__(self) -> str:
        return self.name


def grader_models(obj: Any) -> tuple[str, ...]:
    """The model names (from the models config) a grader calls, e.g. an llm_judge's."""
    models = getattr(obj, "models", ())
    return tuple(models) if isinstance(models, (tuple, list)) else ()


def grader_name(obj: Any) -> str:
    """The display name of a grader (its ``name``, else its function name)."""
    name = getattr(obj, "name", None)
    if isinstance(name, str) and name:
        return name
    return str(getattr(obj, "__name__", None) or type(obj).__name__)


def grader(fn: Callable[[GradeContext], Any] | None = None, *, name: str | None = None) -> Any:
    """Decorator: mark a function of a :class:`GradeContext` as a grader (optionally named)."""

    def wrap(f: Callable[[GradeContext], Any]) -> Grader:
        return NamedGrader(name or grader_name(f), _normalising(f, name))

    return wrap(fn) if fn is not None else wrap


def _takes_context(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` wants the GradeContext (annotated so, or its parameter is ``ctx``)."""
    if getattr(fn, _MARK, False):
        return True
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    if not params:
        return False
    first = params[0]
    annotation = first.annotation
    if annotation is GradeContext or (
        isinstance(annotation, str) and annotation.split(".")[-1] == "GradeContext"
    ):
        return True
    return first.name in ("ctx", "context")


def _to_grade(value: Any, name: str, threshold: float = 0.5) -> Grade:
    """A grader's raw result as a Grade: Grade, bool, (bool, reason), score, (score, reason)."""
    reason = ""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str):
        value, reason = value
    if isinstance(value, Grade):
        return value if value.name else Grade(value.passed, value.score, value.reason, name)
    if isinstance(value, bool):
        return Grade(value, 1.0 if value else 0.0, reason or ("ok" if value else "failed"), name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        score = float(value)
        passed = score >= threshold
        return Grade(passed, score, reason or f"score {score:g} (pass >= {threshold:g})", name)
    raise TypeError(
        f"grader {name!r} returned {type(value).__name__}; expected a Grade, a bool, "
        "(bool, reason) or a float score"
    )


def _normalising(fn: Callable[..., Any], name: str | None, *, text: bool = False) -> Grader:
    label = name or grader_name(fn)

    def call(ctx: GradeContext) -> Grade | Awaitable[Grade]:
        result = fn(ctx.reply) if text else fn(ctx)
        if inspect.isawaitable(result):

            async def finish(pending: Awaitable[Any]) -> Grade:
                return _to_grade(await pending, label)

            return finish(result)
        return _to_grade(result, label)

    return call


def as_grader(obj: Any, *, name: str | None = None) -> Grader:
    """Any grader-like object as a Grader.

    A harness grader is returned as is. A callable whose first parameter is ``ctx``/``context``
    or annotated ``GradeContext`` gets the context; any other callable gets the reply text. It
    may return a Grade, a bool, ``(bool, reason)``, or a float score (a pass at >= 0.5).
    """
    if getattr(obj, _MARK, False) and name is None:
        return obj  # type: ignore[no-any-return]
    if not callable(obj):
        raise TypeError(f"a grader must be callable, got {type(obj).__name__}: {obj!r}")
    label = name or grader_name(obj)
    return NamedGrader(label, _normalising(obj, label, text=not _takes_context(obj)))


async def run_grader(grader_: Grader, ctx: GradeContext) -> Grade:
    """Run one grader; an exception becomes a failed Grade whose reason names it."""
    name = grader_name(grader_)
    try:
        result = as_grader(grader_)(ctx)
        if inspect.isawaitable(result):
            result = await result
        grade = _to_grade(result, name)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return Grade(False, 0.0, f"grader raised {type(exc).__name__}: {exc}", name)
    return grade if grade.name else Grade(grade.passed, grade.score, grade.reason, name)
