"""The agent loop of a case with tools: ask with the tools offered, answer each call with the
case's scripted result, ask again, until the model answers without a call or ``max_steps``
requests were made."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from harness.messages import assistant_msg, tool_result

if TYPE_CHECKING:
    from harness.evals.cases import Case
    from harness.providers.base import BaseLLM, ChatResponse, ToolCall

__all__ = ["LoopResult", "run_tool_loop", "scripted_result"]


@dataclass
class LoopResult:
    """What the loop ends with: the last answer's text, the last request's messages as sent,
    and the last response whose ``tool_calls`` are every call of the loop, in order."""

    text: str
    messages: list[dict[str, Any]]
    response: ChatResponse
    steps: int


async def run_tool_loop(
    llm: BaseLLM,
    case: Case,
    messages: list[dict[str, Any]],
    *,
    stream: bool,
    calls: list[ToolCall] | None = None,
) -> LoopResult:
    """Run ``case``'s loop from ``messages`` (extended in place with the calls and results).

    ``calls``, when given, receives each step's calls as they come, so a caller still has the
    calls made before a step that failed.
    """
    calls = [] if calls is None else calls
    response: ChatResponse | None = None
    sent: list[dict[str, Any]] = []
    steps = 0
    while steps < case.max_steps:
        steps += 1
        sent = llm.compress_messages(list(messages))
        response = await llm.acompletion(
            list(messages), stream=stream, tools=list(case.tools), tool_choice=case.tool_choice
        )
        calls.extend(response.tool_calls)
        if not response.tool_calls:
            break
        messages.append(assistant_msg(response.text or None, response.tool_calls))
        for call in response.tool_calls:
            messages.append(tool_result(call.id or call.name, scripted_result(case, call)))
    assert response is not None  # max_steps >= 1
    text = response.text or ""
    return LoopResult(text, sent, replace(response, tool_calls=calls), steps)


def scripted_result(case: Case, call: ToolCall) -> str:
    """The case's result for one call: its text, the text of the first argument pattern the
    call's arguments contain (``"*"``: any), or an ``error: ...`` text the model gets back
    (an unknown tool, arguments no pattern matches, arguments that are not JSON)."""
    script = case.tool_results.get(call.name)
    if script is None:
        offered = ", ".join(t.name for t in case.tools)
        return f"error: there is no tool named {call.name!r}; tools: {offered}"
    if isinstance(script, str):
        return script
    try:
        arguments = json.loads(call.arguments or "{}")
    except json.JSONDecodeError as exc:
        return f"error: the arguments are not valid JSON ({exc.msg})"
    if callable(script):
        return _text(script(arguments))
    fallback = None
    for pattern, result in script.items():
        if pattern == "*":
            fallback = result
        elif _contains(arguments, json.loads(pattern)):
            return _text(result)
    if fallback is not None:
        return _text(fallback)
    return f"error: no result for {call.name} with arguments {call.arguments}"


def _contains(arguments: Any, subset: Mapping[str, Any]) -> bool:
    return isinstance(arguments, Mapping) and all(
        key in arguments and arguments[key] == value for key, value in subset.items()
    )


def _text(result: Any) -> str:
    return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
