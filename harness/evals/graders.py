"""Graders: small callables that judge one reply and return a :class:`Grade`.

A grader is called with a :class:`GradeContext` (the reply, the case, usage, cost, latency, the
messages sent, and a ``judge`` factory for model-graded checks) and returns a ``Grade`` or an
awaitable of one. The factories here build the usual ones (each kind lives in its own module:
``_graders_text``, ``_graders_structured``, ``_graders_limits``, ``_graders_judge``,
``_graders_tools``; import them from here); :data:`GRADERS` maps the names used under
``expect:`` in suite files to them. Any plain callable works too (see :func:`as_grader`):
a function of the reply text returning ``bool``, ``(bool, reason)``, a float score or a Grade.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from harness.evals._graders_common import _import
from harness.evals._graders_judge import judge_prompt, llm_judge, parse_verdict
from harness.evals._graders_limits import max_cost, max_latency, max_prompt_tokens
from harness.evals._graders_structured import json_schema, json_valid, numeric_close, pydantic_model
from harness.evals._graders_text import (
    contains,
    equals,
    length_between,
    not_,
    regex,
    starts_with,
    word_count_between,
)
from harness.evals._graders_tools import called_tool, tool_sequence
from harness.evals._grading import (
    Grade,
    GradeContext,
    Grader,
    JudgeFactory,
    as_grader,
    grader,
    grader_models,
    grader_name,
    run_grader,
)

__all__ = [
    "GRADERS",
    "Grade",
    "GradeContext",
    "Grader",
    "JudgeFactory",
    "as_grader",
    "call",
    "called_tool",
    "contains",
    "equals",
    "grader",
    "grader_models",
    "grader_name",
    "json_schema",
    "json_valid",
    "judge_prompt",
    "length_between",
    "llm_judge",
    "max_cost",
    "max_latency",
    "max_prompt_tokens",
    "not_",
    "numeric_close",
    "parse_verdict",
    "pydantic_model",
    "regex",
    "run_grader",
    "starts_with",
    "tool_sequence",
    "word_count_between",
]


def call(target: str | Callable[..., Any]) -> Grader:
    """Any plain callable (or its import path ``package.module:function``) as a grader."""
    obj = _import(target) if isinstance(target, str) else target
    return as_grader(obj, name=target if isinstance(target, str) else None)


GRADERS: Mapping[str, Callable[..., Grader]] = MappingProxyType(
    {
        "equals": equals,
        "contains": contains,
        "regex": regex,
        "starts_with": starts_with,
        "not": not_,
        "not_": not_,
        "json_valid": json_valid,
        "json_schema": json_schema,
        "pydantic_model": pydantic_model,
        "numeric_close": numeric_close,
        "length_between": length_between,
        "word_count_between": word_count_between,
        "max_cost": max_cost,
        "max_latency": max_latency,
        "max_prompt_tokens": max_prompt_tokens,
        "llm_judge": llm_judge,
        "called_tool": called_tool,
        "tool_sequence": tool_sequence,
        "call": call,
    }
)
"""Suite-file grader names (``expect:``) -> factories; ``not`` negates another grader."""
