"""Helpers the grader modules share: how a grader shows its value, finds the case's
``expected``, clips a reply for a reason, makes a pass/fail Grade, and imports a dotted path."""

from __future__ import annotations

import importlib
from typing import Any

from harness.evals._grading import Grade, GradeContext


def _fmt(value: Any) -> str:
    return repr(value)


def _expected(value: Any, ctx: GradeContext, grader: str) -> Any:
    if value is not None:
        return value
    if ctx.case.expected is None:
        raise ValueError(f"{grader} has no value and the case has no 'expected'")
    return ctx.case.expected


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bool(passed: bool, reason: str) -> Grade:
    return Grade(passed, 1.0 if passed else 0.0, reason)


def _import(path: str) -> Any:
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"expected an import path like 'package.module:Name', got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r} (for {path!r}): {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"{module_name!r} has no attribute {attr!r}") from None
    return obj
