"""A small regression suite: each (case x model) is one test, replayed from cassettes/suites/.

Graders are plain functions of the reply returning (passed, reason).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from suites.support import SuiteRun

Grader = Callable[[str], tuple[bool, str]]


def contains(*words: str) -> Grader:
    """Passes when the reply mentions every word (case-insensitive, whole words)."""

    def grade(reply: str) -> tuple[bool, str]:
        missing = [w for w in words if not re.search(rf"\b{re.escape(w)}\b", reply, re.I)]
        return (not missing, f"missing {missing} in {reply!r}" if missing else "ok")

    return grade


def any_of(*words: str, at_least: int = 1) -> Grader:
    """Passes when the reply mentions at least ``at_least`` of the words."""

    def grade(reply: str) -> tuple[bool, str]:
        found = [w for w in words if re.search(rf"\b{re.escape(w)}\b", reply, re.I)]
        ok = len(found) >= at_least
        return (ok, "ok" if ok else f"found {found}, wanted {at_least} of {words} in {reply!r}")

    return grade


@dataclass(frozen=True)
class Case:
    """A prompt, how to ask it, and how to grade the reply."""

    id: str
    prompt: str
    grader: Grader
    stream: bool = False
    system: str | None = None


CASES = [
    Case(
        "capital-of-france", "What is the capital of France? Answer in one word.", contains("Paris")
    ),
    Case("two-plus-two", "What is 2 + 2? Answer with a number only.", contains("4")),
    Case("greeting", "Say hello to me.", any_of("hello", "hi", "hey", "greetings")),
    Case(
        "three-colors-streamed",
        "Name three colors.",
        any_of("red", "blue", "green", "yellow", "orange", "purple", "black", "white", at_least=2),
        stream=True,
    ),
    Case(
        "pirate-system-prompt",
        "Greet me.",
        any_of("ahoy", "matey", "arr", "arrr", "ye"),
        system="You are a pirate. Always talk like a pirate.",
    ),
]
MODELS = ["local-smollm2", "local-smollm2-anthropic"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_case(case: Case, model: str, suite_run: Callable[[str, str], SuiteRun]) -> None:
    run = suite_run(model, case.id)
    system = [case.system] if case.system else None
    reply = await run.llm.aask(case.prompt, system_msgs=system, stream=case.stream)
    passed, reason = case.grader(reply)
    run.record(passed, reason)
