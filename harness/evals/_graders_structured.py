"""Structured-output graders: JSON (valid, against a schema, as a pydantic model) and numbers.

:mod:`harness.evals.graders` re-exports them (and maps their suite-file names in GRADERS).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from harness.evals._graders_common import _bool, _clip, _expected, _fmt, _import
from harness.evals._grading import Grade, GradeContext, Grader
from harness.evals._grading import NamedGrader as _Named

__all__ = ["json_schema", "json_valid", "numeric_close", "pydantic_model"]

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


def _json_text(reply: str) -> str:
    """The reply without a Markdown code fence around it, if it is one fenced block."""
    fenced = _FENCE.match(reply)
    return fenced.group(1) if fenced else reply.strip()


def _parse_json(reply: str, extract: bool = False) -> tuple[Any, str | None]:
    text = _json_text(reply)
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        error = f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    if extract:  # the first JSON object or array in the text, prose around it ignored
        decoder = json.JSONDecoder()
        for start, char in enumerate(text):
            if char in "{[":
                try:
                    return decoder.raw_decode(text, start)[0], None
                except json.JSONDecodeError:
                    continue
        error = f"no JSON object or array in {_clip(reply)!r}"
    return None, error


def json_valid(extract: bool = False) -> Grader:
    """Passes when the reply is JSON (one Markdown code fence around it is allowed).

    With ``extract``, the first JSON object or array in the reply counts (prose around it
    is ignored).
    """

    def check(ctx: GradeContext) -> Grade:
        _, error = _parse_json(ctx.reply, extract)
        return _bool(error is None, error or "valid JSON")

    return _Named("json_valid(extract=True)" if extract else "json_valid", check)


def json_schema(schema: Mapping[str, Any], *, extract: bool = False) -> Grader:
    """Passes when the reply is JSON valid against a JSON Schema (``extract`` as json_valid)."""
    import jsonschema

    if not isinstance(schema, Mapping):
        raise ValueError(f"a JSON schema is a mapping, got {schema!r}")
    try:
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(dict(schema))
    except jsonschema.SchemaError as exc:
        raise ValueError(f"invalid JSON schema: {exc.message}") from exc
    validator = validator_class(dict(schema))

    def check(ctx: GradeContext) -> Grade:
        data, error = _parse_json(ctx.reply, extract)
        if error is not None:
            return _bool(False, error)
        errors = sorted(
            validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]
        )
        if not errors:
            return _bool(True, "valid against the schema")
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(root)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return _bool(False, f"at {where}: {first.message}{more}")

    shown = _clip(json.dumps(schema, sort_keys=True), 60)
    return _Named(f"json_schema({shown}{', extract=True' if extract else ''})", check)


def pydantic_model(model: type[Any] | str) -> Grader:
    """Passes when the reply is JSON that validates as the pydantic model (or its import path)."""
    from pydantic import BaseModel, ValidationError

    cls = _import(model) if isinstance(model, str) else model
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
        raise ValueError(f"{model!r} is not a pydantic BaseModel class")

    def check(ctx: GradeContext) -> Grade:
        try:
            cls.model_validate_json(_json_text(ctx.reply))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(root)"
            return _bool(False, f"{exc.error_count()} error(s); {where}: {first['msg']}")
        return _bool(True, f"valid {cls.__name__}")

    return _Named(f"pydantic_model({cls.__name__})", check)


# A sign counts only where it cannot be an operator: "5-3" is 5 and 3, "x = -3" is -3.
_NUMBER = re.compile(
    r"(?:(?<![\w)])[-+])?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?"
)


def numeric_close(
    expected: float | int | str | None = None,
    *,
    tolerance: float = 1e-6,
    relative: float = 0.0,
    pick: Literal["last", "first", "only", "any"] = "last",
) -> Grader:
    """Passes when a number in the reply is within ``tolerance`` (or ``relative``) of expected.

    ``pick`` chooses which number of the reply counts: the last (default), the first, the
    only one (a reply with several fails), or any of them.
    """
    if pick not in ("last", "first", "only", "any"):
        raise ValueError(f"pick must be one of last, first, only, any; got {pick!r}")
    if expected is not None:
        float(expected)

    def check(ctx: GradeContext) -> Grade:
        want = float(_expected(expected, ctx, "numeric_close"))
        numbers = [float(n.replace(",", "")) for n in _NUMBER.findall(ctx.reply)]
        if not numbers:
            return _bool(False, f"no number in {_clip(ctx.reply)!r}")
        if pick == "only" and len(numbers) > 1:
            return _bool(False, f"several numbers {numbers} in the reply, wanted one")
        chosen = {"last": numbers[-1:], "first": numbers[:1]}.get(pick, numbers)

        def close(n: float) -> bool:
            return math.isclose(n, want, abs_tol=tolerance, rel_tol=relative)

        hit = next((n for n in chosen if close(n)), None)
        if hit is not None:
            return _bool(True, f"{hit:g} is close to {want:g}")
        return _bool(
            False, f"{', '.join(f'{n:g}' for n in chosen)} not within tolerance of {want:g}"
        )

    shown = "expected" if expected is None else _fmt(expected)
    return _Named(f"numeric_close({shown})", check)
