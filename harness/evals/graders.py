"""Graders: small callables that judge one reply and return a :class:`Grade`.

A grader is called with a :class:`GradeContext` (the reply, the case, usage, cost, latency, the
messages sent, and a ``judge`` factory for model-graded checks) and returns a ``Grade`` or an
awaitable of one. The factories here build the usual ones; :data:`GRADERS` maps the names used
under ``expect:`` in suite files to them. Any plain callable works too (see :func:`as_grader`):
a function of the reply text returning ``bool``, ``(bool, reason)``, a float score or a Grade.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

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
from harness.evals._grading import NamedGrader as _Named

if TYPE_CHECKING:
    from harness.evals.cases import Case

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


# -- text graders -----------------------------------------------------------------------------


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


def _bool(passed: bool, reason: str) -> Grade:
    return Grade(passed, 1.0 if passed else 0.0, reason)


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


# -- structured output --------------------------------------------------------------------------

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


# -- cost, latency, tokens --------------------------------------------------------------------


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


# -- the LLM judge ------------------------------------------------------------------------------

_JUDGE_SYSTEM = (
    "You are a strict, impartial grader. You judge whether an answer meets a rubric. "
    "Think briefly, then end with exactly two lines:\n"
    "REASON: <one sentence>\n"
    "VERDICT: PASS or VERDICT: FAIL"
)
_VERDICT = re.compile(r"^\W*verdict\W*[:=\-]?\W*(pass|fail)\b(.*)$", re.IGNORECASE | re.MULTILINE)
_REASON = re.compile(r"^\W*reason\W*[:=\-]\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_BOTH = re.compile(r"\b(pass|fail)\b", re.IGNORECASE)
_FIRST_WORD = re.compile(r"^\W*(pass|fail)\b", re.IGNORECASE)
_MEETS = re.compile(r"\b(?:meets|does meet)\s+the\s+rubric\b", re.IGNORECASE)
_MISSES = re.compile(
    r"\b(?:does\s+not|doesn't|did\s+not|didn't|fails?\s+to)\s+meet\s+the\s+rubric\b",
    re.IGNORECASE,
)


def judge_prompt(rubric: str, question: str, reply: str, expected: Any = None) -> str:
    """The user message the judge model gets."""
    parts = [f"RUBRIC:\n{rubric.strip()}", f"QUESTION:\n{question.strip()}"]
    if expected is not None:
        parts.append(f"REFERENCE ANSWER:\n{expected}")
    parts.append(f"ANSWER TO GRADE:\n{reply.strip()}")
    parts.append(
        "Does the answer meet the rubric? End with 'REASON: ...' and "
        "'VERDICT: PASS' or 'VERDICT: FAIL'."
    )
    return "\n\n".join(parts)


def parse_verdict(text: str) -> tuple[bool | None, str]:
    """``(passed, reason)`` from a judge's answer; ``passed`` is None when there is no verdict.

    The last ``VERDICT: PASS|FAIL`` line counts, unless it names both (an echo of the
    instructions); the reason is the last ``REASON:`` line. With no such line, an answer that
    starts with PASS or FAIL, or says it does (not) meet the rubric, and only one of them,
    counts too.
    """
    verdicts = [v for v, rest in _VERDICT.findall(text) if not _BOTH.search(rest)]
    reasons = _REASON.findall(text)
    reason = reasons[-1].strip() if reasons else ""
    if verdicts:
        return verdicts[-1].lower() == "pass", reason or "(no reason given)"
    first_line = text.strip().split("\n", 1)[0]
    first = _FIRST_WORD.match(first_line)
    if first and len(_BOTH.findall(first_line)) == 1:
        return first.group(1).lower() == "pass", reason or _clip(first_line.strip())
    meets, misses = bool(_MEETS.search(text)), bool(_MISSES.search(text))
    if meets != misses:
        return meets, reason or _clip(text.strip())
    return None, f"unparseable verdict (no 'VERDICT: PASS|FAIL' line) in {_clip(text)!r}"


def _question(case: Case) -> str:
    if isinstance(case.prompt, str):
        return case.prompt
    if isinstance(case.prompt, list):
        return "\n".join(f"[turn {i + 1}] {p}" for i, p in enumerate(case.prompt))
    from harness.messages import content_text

    return "\n".join(
        f"{m.get('role', '?')}: {content_text(m.get('content'))}" for m in case.messages or []
    )


def llm_judge(rubric: str, model: str = "judge", votes: int = 1) -> Grader:
    """Ask a model from the models config (temperature 0) whether the reply meets ``rubric``.

    The judge sees the rubric, the question (and the case's ``expected`` as a reference) and
    the reply, and must end with ``VERDICT: PASS`` or ``VERDICT: FAIL``; the majority of
    ``votes`` decides (a tie fails) and the score is the share of PASS votes. An answer
    :func:`parse_verdict` cannot read counts as a FAIL vote, with "unparseable verdict" as
    the reason. Its calls use the case's cassette and are billed apart.
    """
    if not isinstance(rubric, str) or not rubric.strip():
        raise ValueError("llm_judge needs a non-empty rubric")
    if not isinstance(votes, int) or votes < 1:
        raise ValueError(f"votes must be an integer >= 1, got {votes!r}")

    async def check(ctx: GradeContext) -> Grade:
        if ctx.judge is None:
            raise RuntimeError("llm_judge needs a judge model: run it through harness.evals")
        llm = ctx.judge(model)
        prompt = judge_prompt(rubric, _question(ctx.case), ctx.reply, ctx.case.expected)
        results: list[tuple[bool | None, str]] = []
        for _ in range(votes):  # one after another: identical requests replay in order
            answer = await llm.aask(prompt, system_msgs=[_JUDGE_SYSTEM])
            results.append(parse_verdict(answer))
        passes = sum(1 for ok, _ in results if ok)
        passed = passes * 2 > votes
        majority = [reason for ok, reason in results if bool(ok) == passed]
        tally = f"{passes}/{votes} PASS" if votes > 1 else ("PASS" if passed else "FAIL")
        return Grade(passed, passes / votes, f"{tally}: {majority[0] if majority else ''}")

    shown = _clip(rubric.strip(), 40)
    extra = f", votes={votes}" if votes != 1 else ""
    return _Named(f"llm_judge({shown!r}, model={model!r}{extra})", check, models=(model,))


# -- tool graders -----------------------------------------------------------------------------


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
