"""The LLM judge: the prompt a judge model gets, reading its verdict, and the grader.

:mod:`harness.evals.graders` re-exports these names (and maps ``llm_judge`` in GRADERS).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from harness.evals._graders_common import _clip
from harness.evals._grading import Grade, GradeContext, Grader
from harness.evals._grading import NamedGrader as _Named

if TYPE_CHECKING:
    from harness.evals.cases import Case

__all__ = ["judge_prompt", "llm_judge", "parse_verdict"]

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
