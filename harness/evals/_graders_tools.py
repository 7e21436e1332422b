"""Tool graders: whether an attempt called a tool (with some arguments), and in what order.

:mod:`harness.evals.graders` re-exports them (and maps their suite-file names in GRADERS).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from harness.evals._graders_common import _bool, _clip
from harness.evals._grading import Grade, GradeContext, Grader
from harness.evals._grading import NamedGrader as _Named

__all__ = ["called_tool", "tool_sequence"]


def _arguments(call: Any) -> Any:
    try:
        return json.loads(call.arguments or "{}")
    except json.JSONDecodeError:
        return call.arguments  # not JSON: kept as the text, matched by no args subset


def _has_args(call: Any, args: Mapping[str, Any] | None) -> bool:
    if args is None:
        return True
    made = _arguments(call)
    return isinstance(made, dict) and all(k in made and made[k] == v for k, v in args.items())


def _show_calls(calls: Sequence[Any]) -> str:
    shown = ", ".join(f"{c.name}({_clip(c.arguments or '', 60)})" for c in calls)
    return f"calls: {shown}" if calls else "no tool was called"


def called_tool(name: str, args: Mapping[str, Any] | None = None) -> Grader:
    """Passes when the attempt called the tool ``name`` (with arguments that contain
    ``args``, when given: each key present with an equal value)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"called_tool needs a tool name, got {name!r}")
    if args is not None and not isinstance(args, Mapping):
        raise ValueError(f"called_tool args must be a mapping of arguments, got {args!r}")

    def check(ctx: GradeContext) -> Grade:
        calls = ctx.tool_calls
        named = [c for c in calls if c.name == name]
        passed = any(_has_args(c, args) for c in named)
        if passed:
            return _bool(True, f"called {name}; {_show_calls(calls)}")
        what = f"{name} with {dict(args)!r}" if args is not None and named else name
        return _bool(False, f"{what} was not called; {_show_calls(calls)}")

    shown = f"called_tool({name!r}" + (f", args={dict(args)!r})" if args is not None else ")")
    return _Named(shown, check)


def _step(item: Any) -> tuple[str, Mapping[str, Any] | None]:
    if isinstance(item, str) and item:
        return item, None
    if isinstance(item, Mapping) and len(item) == 1:
        ((name, args),) = item.items()
        if isinstance(name, str) and (args is None or isinstance(args, Mapping)):
            return name, args
    raise ValueError(
        f"a tool_sequence step is a tool name or {{name: {{argument: value}}}}, got {item!r}"
    )


def tool_sequence(names: Sequence[Any], *, exact: bool = False) -> Grader:
    """Passes when the attempt called these tools in this order (other calls may come in
    between, unless ``exact``: then the calls are exactly these). A step is a name or
    ``{name: {argument: value}}`` (arguments matched as in :func:`called_tool`); the score is
    the share of steps matched in order."""
    if isinstance(names, (str, Mapping)) or not isinstance(names, Sequence) or not names:
        raise ValueError(f"tool_sequence needs a non-empty list of tool names, got {names!r}")
    steps = [_step(item) for item in names]

    def check(ctx: GradeContext) -> Grade:
        calls = ctx.tool_calls
        if exact:
            matched = 0
            for (name, args), call in zip(steps, calls, strict=False):
                if call.name != name or not _has_args(call, args):
                    break
                matched += 1
            passed = matched == len(steps) == len(calls)
        else:
            matched = 0
            for call in calls:
                if matched < len(steps):
                    name, args = steps[matched]
                    if call.name == name and _has_args(call, args):
                        matched += 1
            passed = matched == len(steps)
        want = " -> ".join(name for name, _ in steps)
        verdict = "called" if passed else f"{matched}/{len(steps)} steps of"
        return Grade(passed, matched / len(steps), f"{verdict} {want}; {_show_calls(calls)}")

    shown = ", ".join(repr(n) for n in names)
    return _Named(f"tool_sequence([{shown}]{', exact=True' if exact else ''})", check)
