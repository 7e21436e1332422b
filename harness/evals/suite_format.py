"""The suite file format, checked: a suite's settings, its cases, graders, tools and params.

Every check raises a :class:`SuiteFormatError` naming the file and the key path
(``cases[2].expect[0].contains``); the format itself is described in :mod:`harness.evals.cases`,
which builds the :class:`~harness.evals.cases.Case` and :class:`~harness.evals.cases.Suite`
objects from what these functions return.
"""

from __future__ import annotations

import difflib
import inspect
import json
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from pydantic import ValidationError

from harness.config import LLMConfig
from harness.errors import ConfigError
from harness.evals.graders import GRADERS, Grader
from harness.tools import Tool, normalize_tool_choice

__all__ = [
    "DEFAULT_MAX_STEPS",
    "SuiteFormatError",
    "case_fields",
    "check_tools",
    "parse_grader",
    "suite_settings",
    "validate_params",
]

_CASE_KEYS = (
    "id",
    "prompt",
    "messages",
    "system",
    "images",
    "expected",
    "expect",
    "tags",
    "params",
    "description",
    "tools",
    "tool_results",
    "tool_choice",
    "max_steps",
)
DEFAULT_MAX_STEPS = 5
_SUITE_KEYS = (
    "suite",
    "description",
    "models",
    "params",
    "repeats",
    "pass_threshold",
    "expect",
    "cases",
)


class SuiteFormatError(ConfigError):
    """A suite file (or a Suite built in Python) is invalid; names the file and the key path."""


def _unknown_keys(data: Mapping[str, Any], known: Sequence[str], source: str, prefix: str) -> None:
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SuiteFormatError(
                f"unknown key{hint}; expected one of: {', '.join(known)}",
                source=source,
                key=f"{prefix}{key}",
            )


def suite_settings(data: Mapping[str, Any], source: str, default_name: str) -> dict[str, Any]:
    """The :class:`~harness.evals.cases.Suite` settings of a suite file (everything but cases)."""
    _unknown_keys(data, _SUITE_KEYS, source, "")
    name = data.get("suite", default_name)
    if not isinstance(name, str) or not name.strip():
        raise SuiteFormatError(
            f"must be a non-empty string, got {name!r}", source=source, key="suite"
        )
    models = data.get("models", [])
    if isinstance(models, str):
        models = [models]
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise SuiteFormatError(
            f"must be a list of model names, got {models!r}", source=source, key="models"
        )
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise SuiteFormatError(f"must be a mapping, got {params!r}", source=source, key="params")
    validate_params(params, source=source, key="params")
    settings: dict[str, Any] = {
        "name": name,
        "models": tuple(models),
        "params": params,
        "graders": _graders(data.get("expect"), source, "expect"),
        "description": data.get("description"),
    }
    for key in ("repeats", "pass_threshold"):
        if key in data:
            settings[key] = data[key]
    return settings


def case_fields(entry: Any, source: str, prefix: str) -> dict[str, Any]:
    """The :class:`~harness.evals.cases.Case` keyword arguments of one suite-file case entry."""
    dot = f"{prefix}." if prefix else ""
    if not isinstance(entry, dict):
        raise SuiteFormatError(
            f"a case is a mapping, got {type(entry).__name__}", source=source, key=prefix or None
        )
    _unknown_keys(entry, _CASE_KEYS, source, dot)
    case_id = entry.get("id")
    if not isinstance(case_id, (str, int)) or isinstance(case_id, bool) or not str(case_id).strip():
        raise SuiteFormatError(
            f"a case needs an 'id' (a string), got {case_id!r}", source=source, key=f"{dot}id"
        )
    where = f"{dot}" if prefix else ""
    prompt = entry.get("prompt")
    messages = entry.get("messages")
    if (prompt is None) == (messages is None):
        raise SuiteFormatError(
            "a case needs exactly one of 'prompt' or 'messages'",
            source=source,
            key=prefix or f"id {case_id}",
        )
    if prompt is not None and not (
        isinstance(prompt, str)
        or (isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt))
    ):
        raise SuiteFormatError(
            "must be a string, or a non-empty list of strings (turns)",
            source=source,
            key=f"{where}prompt",
        )
    if messages is not None:
        _check_messages(messages, source, f"{where}messages")
    system = entry.get("system")
    if system is not None and not isinstance(system, str):
        raise SuiteFormatError("must be a string", source=source, key=f"{where}system")
    images = entry.get("images") or []
    if isinstance(images, str):
        images = [images]
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise SuiteFormatError(
            "must be a list of image URLs or paths", source=source, key=f"{where}images"
        )
    tags = entry.get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list):
        raise SuiteFormatError("must be a list of strings", source=source, key=f"{where}tags")
    params = entry.get("params") or {}
    if not isinstance(params, dict):
        raise SuiteFormatError(
            f"must be a mapping, got {params!r}", source=source, key=f"{where}params"
        )
    validate_params(params, source=source, key=f"{where}params")
    tools = entry.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise SuiteFormatError(
            "must be a list of tool definitions (mappings)", source=source, key=f"{where}tools"
        )
    fields = {
        "tools": tuple(tools),
        "tool_results": entry.get("tool_results") or {},
        "tool_choice": entry.get("tool_choice"),
        "max_steps": entry.get("max_steps", DEFAULT_MAX_STEPS),
    }
    check_tools(SimpleNamespace(prompt=prompt, **fields), source=source, prefix=where)
    return dict(
        id=str(case_id),
        prompt=prompt,
        messages=messages,
        system=system,
        images=tuple(images),
        expected=entry.get("expected"),
        graders=_graders(entry.get("expect"), source, f"{where}expect"),
        tags=tuple(str(t) for t in tags),
        params=params,
        **fields,
    )


def check_tools(case: Any, *, source: str | None, prefix: str) -> tuple[Tool, ...]:
    """A case's tools as Tools, after checking its tool fields (results for every tool, a
    valid tool choice, max_steps >= 1); SuiteFormatErrors name ``prefix`` + the field."""
    try:
        tools = tuple(Tool.of(t) for t in case.tools)
    except (TypeError, ValueError) as exc:
        raise SuiteFormatError(str(exc), source=source, key=f"{prefix}tools") from exc
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise SuiteFormatError(
            f"two tools share a name: {names}", source=source, key=f"{prefix}tools"
        )
    if not tools:
        if case.tool_results or case.tool_choice is not None:
            raise SuiteFormatError(
                "tool_results and tool_choice need 'tools'", source=source, key=f"{prefix}tools"
            )
        return tools
    if isinstance(case.prompt, list):
        raise SuiteFormatError(
            "a case with tools has one prompt or 'messages', not a list of turns",
            source=source,
            key=f"{prefix}prompt",
        )
    if not isinstance(case.tool_results, Mapping):
        raise SuiteFormatError(
            "must be a mapping from tool name to its result",
            source=source,
            key=f"{prefix}tool_results",
        )
    for name, result in case.tool_results.items():
        key = f"{prefix}tool_results.{name}"
        if name not in names:
            close = difflib.get_close_matches(str(name), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SuiteFormatError(
                f"no tool named {name!r}{hint}; tools: {', '.join(names)}", source=source, key=key
            )
        _check_result(result, source, key)
    missing = [n for n in names if n not in case.tool_results]
    if missing:
        raise SuiteFormatError(
            f"no scripted result for {', '.join(missing)}",
            source=source,
            key=f"{prefix}tool_results",
        )
    try:
        normalize_tool_choice(case.tool_choice, list(tools))
    except ValueError as exc:
        raise SuiteFormatError(str(exc), source=source, key=f"{prefix}tool_choice") from exc
    steps = case.max_steps
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise SuiteFormatError(
            f"must be an integer >= 1, got {steps!r}", source=source, key=f"{prefix}max_steps"
        )
    return tools


def _check_result(result: Any, source: str | None, key: str) -> None:
    """A tool's scripted result: a text, a callable, or a mapping from argument JSON to text."""
    if isinstance(result, str) or callable(result):
        return
    if not isinstance(result, Mapping) or not result:
        raise SuiteFormatError(
            "a tool result is a text or a mapping from arguments (JSON) to texts",
            source=source,
            key=key,
        )
    for pattern in result:
        if pattern == "*":
            continue
        try:
            parsed = json.loads(pattern) if isinstance(pattern, str) else None
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise SuiteFormatError(
                f"{pattern!r} is not a JSON object of arguments (or '*')",
                source=source,
                key=f"{key}[{pattern!r}]",
            )


def _check_messages(messages: Any, source: str, key: str) -> None:
    if not isinstance(messages, list) or not messages:
        raise SuiteFormatError("must be a non-empty list of messages", source=source, key=key)
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message:
            raise SuiteFormatError(
                "a message is a mapping with 'role' and 'content'", source=source, key=f"{key}[{i}]"
            )
        if message["role"] not in ("system", "user", "assistant", "tool", "developer"):
            raise SuiteFormatError(
                f"unknown role {message['role']!r}", source=source, key=f"{key}[{i}].role"
            )


def _graders(spec: Any, source: str, key: str) -> tuple[Grader, ...]:
    if spec is None:
        return ()
    if not isinstance(spec, list):
        spec = [spec]
    return tuple(
        parse_grader(item, source=source, key=f"{key}[{i}]") for i, item in enumerate(spec)
    )


def parse_grader(spec: Any, *, source: str | None = None, key: str = "expect") -> Grader:
    """A grader from its suite-file form: ``name``, ``{name: arg}`` or ``{name: {kw: ...}}``."""
    if isinstance(spec, str):
        name, arg, has_arg = spec, None, False
    elif isinstance(spec, dict) and len(spec) == 1:
        ((name, arg),) = spec.items()
        has_arg = True
    else:
        raise SuiteFormatError(
            "a grader is a name (- json_valid) or a single-key mapping (- contains: Paris)",
            source=source,
            key=key,
        )
    factory = GRADERS.get(str(name))
    if factory is None:
        close = difflib.get_close_matches(str(name), list(GRADERS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SuiteFormatError(
            f"unknown grader {name!r}{hint}; known: {', '.join(sorted(GRADERS))}",
            source=source,
            key=key,
        )
    where = f"{key}.{name}"
    try:
        if name in ("not", "not_"):
            if not has_arg:
                raise ValueError("'not' needs a grader to negate: - not: {contains: x}")
            return factory(parse_grader(arg, source=source, key=where))
        if not has_arg:
            return factory()
        if isinstance(arg, dict) and arg:
            named = _keywords(factory)
            if any(k in named for k in arg):  # keyword arguments, else one mapping argument
                for k in arg:
                    if k not in named:
                        close = difflib.get_close_matches(str(k), sorted(named), n=1)
                        hint = f" (did you mean {close[0]!r}?)" if close else ""
                        raise ValueError(
                            f"unknown argument {k!r}{hint}; {name} takes: {', '.join(named)}"
                        )
                return factory(**arg)
        return factory(arg)
    except SuiteFormatError:
        raise
    except (TypeError, ValueError) as exc:
        raise SuiteFormatError(str(exc), source=source, key=where) from exc


def _keywords(factory: Any) -> list[str]:
    """The keyword parameters of a grader factory, in order."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [n for n, p in params.items() if p.kind in kinds]


def validate_params(params: Mapping[str, Any], *, source: str | None, key: str) -> None:
    """Check LLMConfig overrides (names and values); a SuiteFormatError names the bad one."""
    fields = LLMConfig.model_fields
    for name in params:
        if name not in fields:
            close = difflib.get_close_matches(str(name), list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SuiteFormatError(
                f"unknown model parameter{hint}", source=source, key=f"{key}.{name}"
            )
    try:
        LLMConfig.model_validate(dict(params))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise SuiteFormatError(first["msg"], source=source, key=f"{key}.{loc}") from exc
    except ConfigError as exc:
        # LLMConfig raises ConfigError carrying pydantic's details: name the first bad field.
        if exc.errors:
            detail = exc.errors[0]
            loc = ".".join(str(p) for p in detail.get("loc", ()))
            where = f"{key}.{loc}" if loc else key
            raise SuiteFormatError(str(detail.get("msg", exc)), source=source, key=where) from exc
        raise SuiteFormatError(str(exc), source=source, key=key) from exc
