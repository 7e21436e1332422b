"""Graders: each factory's pass and fail, plain callables, errors, and the LLM judge."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from harness import FakeLLM, Usage
from harness.evals import Case, Grade, GradeContext, graders
from harness.evals.graders import as_grader, parse_verdict, run_grader
from harness.providers.base import ChatResponse


def ctx(reply: str, **kw: Any) -> GradeContext:
    case = kw.pop("case", None) or Case(
        id="c", prompt="What is the capital of France?", expected=kw.pop("expected", None)
    )
    return GradeContext(reply=reply, case=case, model="m", **kw)


async def grade(g: Any, reply: str, **kw: Any) -> Grade:
    return await run_grader(g, ctx(reply, **kw))


async def test_equals_strips_and_uses_expected_by_default() -> None:
    assert (await grade(graders.equals("Paris"), "  Paris\n")).passed
    assert not (await grade(graders.equals("Paris"), "paris")).passed
    assert (await grade(graders.equals("Paris", ignore_case=True), "paris")).passed
    assert (await grade(graders.equals(), "4", expected=4)).passed
    failed = await grade(graders.equals(), "5", expected=4)
    assert not failed.passed and "'5' != '4'" in failed.reason


async def test_contains_all_any_at_least_case_and_whole_words() -> None:
    assert (await grade(graders.contains("paris"), "It is PARIS.")).passed
    assert not (await grade(graders.contains("paris", ignore_case=False), "PARIS")).passed
    both = graders.contains(["red", "blue"])
    half = await grade(both, "red only")
    assert not half.passed and half.score == 0.5 and "blue" in half.reason
    assert (await grade(graders.contains(["red", "blue"], match="any"), "red only")).passed
    two = graders.contains(["red", "blue", "green"], at_least=2)
    assert (await grade(two, "green and blue")).passed
    assert not (await grade(two, "green")).passed
    # whole words: "hi" is not in "this"
    assert (await grade(graders.contains("hi"), "this")).passed
    assert not (await grade(graders.contains("hi", whole_words=True), "this")).passed
    assert (await grade(graders.contains("hi", whole_words=True), "Hi, there")).passed


async def test_regex_and_starts_with() -> None:
    assert (await grade(graders.regex(r"\b4\b"), "it is 4.")).passed
    assert not (await grade(graders.regex(r"^\d+$", fullmatch=True), "4 apples")).passed
    assert (await grade(graders.regex(r"\d+", fullmatch=True), " 42\n")).passed
    assert (await grade(graders.starts_with("Yes"), "  Yes, sure")).passed
    assert not (await grade(graders.starts_with("Yes"), "yes")).passed
    assert (await grade(graders.starts_with("Yes", ignore_case=True), "yes")).passed
    with pytest.raises(ValueError, match="invalid regular expression"):
        graders.regex("(")


async def test_not_inverts_pass_and_score() -> None:
    g = graders.not_(graders.contains("London"))
    assert (await grade(g, "Paris")).passed
    failed = await grade(g, "London")
    assert not failed.passed and failed.score == 0.0 and failed.reason.startswith("not: ")
    assert g.name == "not(contains('London'))"  # type: ignore[attr-defined]


async def test_json_valid_accepts_a_fenced_block() -> None:
    assert (await grade(graders.json_valid(), '{"a": 1}')).passed
    assert (await grade(graders.json_valid(), '```json\n{"a": 1}\n```')).passed
    bad = await grade(graders.json_valid(), "{a: 1}")
    assert not bad.passed and "not valid JSON" in bad.reason
    prose = 'Sure! Here it is: {"a": [1, 2]} Hope that helps {not json}'
    assert not (await grade(graders.json_valid(), prose)).passed
    assert (await grade(graders.json_valid(extract=True), prose)).passed
    none = await grade(graders.json_valid(extract=True), "no data {here")
    assert not none.passed and "no JSON object or array" in none.reason


async def test_json_schema_names_the_failing_path() -> None:
    schema = {"type": "object", "required": ["name"], "properties": {"born": {"type": "integer"}}}
    g = graders.json_schema(schema)
    assert (await grade(g, '{"name": "Ada", "born": 1815}')).passed
    wrong = await grade(g, '{"name": "Ada", "born": "1815"}')
    assert not wrong.passed and "at born" in wrong.reason
    assert "'name' is a required property" in (await grade(g, "{}")).reason
    with pytest.raises(ValueError, match="invalid JSON schema"):
        graders.json_schema({"type": "nonsense"})
    with pytest.raises(ValueError, match="a JSON schema is a mapping"):
        graders.json_schema("object")  # type: ignore[arg-type]
    extracted = graders.json_schema(schema, extract=True)
    assert (await grade(extracted, 'Result: {"name": "Ada"}.')).passed
    both = await grade(g, '{"born": "x"}')
    assert both.reason == "at (root): 'name' is a required property (and 1 more)"


class Person(BaseModel):
    name: str
    born: int


async def test_pydantic_model_by_class_and_by_import_path() -> None:
    g = graders.pydantic_model(Person)
    assert (await grade(g, '{"name": "Ada", "born": 1815}')).passed
    failed = await grade(g, '{"name": "Ada"}')
    assert not failed.passed and "born" in failed.reason
    by_path = graders.pydantic_model("tests.evals.test_graders:Person")
    assert (await grade(by_path, '{"name": "Ada", "born": 1815}')).passed
    with pytest.raises(ValueError, match="cannot import"):
        graders.pydantic_model("no_such_module_xyz:Thing")


async def test_numeric_close_picks_numbers() -> None:
    assert (await grade(graders.numeric_close(4), "2 + 2 = 4")).passed
    assert not (await grade(graders.numeric_close(4), "4, no wait, 5")).passed
    assert (await grade(graders.numeric_close(4, pick="any"), "4, no wait, 5")).passed
    assert (await grade(graders.numeric_close(1000), "It is 1,000.")).passed
    assert (await grade(graders.numeric_close(3.14, tolerance=0.01), "pi is 3.1416")).passed
    assert not (await grade(graders.numeric_close(4, pick="only"), "2 + 2 = 4")).passed
    assert (await grade(graders.numeric_close(), "7", expected="7")).passed
    assert "no number" in (await grade(graders.numeric_close(1), "none")).reason
    # a minus between numbers is an operator, not a sign
    assert (await grade(graders.numeric_close(5), "You asked for 10-5")).passed
    assert (await grade(graders.numeric_close(-3, pick="only"), "x = -3")).passed
    assert (await grade(graders.numeric_close(5, pick="first"), "5-3 = 2")).passed
    assert (await grade(graders.numeric_close(4), "答案是４。")).passed


async def test_length_and_word_count() -> None:
    assert (await grade(graders.length_between(1, 5), " Paris ")).passed
    assert not (await grade(graders.length_between(1, 4), "Paris")).passed
    assert (await grade(graders.word_count_between(1, 1), "Paris")).passed
    failed = await grade(graders.word_count_between(1, 2), "the city of Paris")
    assert not failed.passed and "4 words" in failed.reason
    with pytest.raises(ValueError, match="max must be"):
        graders.word_count_between(3, 1)


async def test_cost_latency_and_prompt_tokens() -> None:
    assert (await grade(graders.max_cost(0.01), "x", cost=Decimal("0.001"))).passed
    assert not (await grade(graders.max_cost("0.0001"), "x", cost=Decimal("0.001"))).passed
    unpriced = await grade(graders.max_cost(1), "x", cost=None)
    assert not unpriced.passed and "unknown" in unpriced.reason
    assert (await grade(graders.max_latency(1.0), "x", latency=0.5)).passed
    assert not (await grade(graders.max_latency(1.0), "x", latency=1.5)).passed
    last = ChatResponse(text="x", usage=Usage(prompt_tokens=90, completion_tokens=1))
    total = Usage(prompt_tokens=300, completion_tokens=5)  # several turns together
    assert (await grade(graders.max_prompt_tokens(100), "x", usage=total, response=last)).passed
    assert not (await grade(graders.max_prompt_tokens(80), "x", response=last)).passed
    assert not (await grade(graders.max_prompt_tokens(80), "x")).passed  # no usage at all


async def test_plain_callables_of_the_text_or_the_context() -> None:
    assert (await grade(lambda text: "Paris" in text, "Paris")).passed
    pair = await grade(lambda text: (False, "too short"), "x")
    assert not pair.passed and pair.reason == "too short"
    scored = await grade(lambda text: 0.75, "x")
    assert scored.passed and scored.score == 0.75
    assert not (await grade(lambda text: 0.25, "x")).passed

    def by_context(ctx: GradeContext) -> bool:
        return ctx.model == "m" and ctx.case.id == "c"

    assert (await grade(by_context, "x")).passed

    async def slow(ctx: GradeContext) -> Grade:
        return Grade(True, 1.0, "async ok")

    result = await grade(slow, "x")
    assert result.reason == "async ok" and result.name == "slow"

    @graders.grader(name="short")
    def short(c: GradeContext) -> bool:
        return len(c.reply) < 3

    assert (await grade(short, "ab")).name == "short"
    with pytest.raises(TypeError, match="callable"):
        as_grader("not a grader")


async def test_a_grader_that_raises_fails_with_the_exception_in_the_reason() -> None:
    def broken(text: str) -> bool:
        raise KeyError("boom")

    result = await grade(broken, "x")
    assert not result.passed and result.score == 0.0
    assert "grader raised KeyError" in result.reason and "boom" in result.reason
    bad_type = await grade(lambda text: "yes", "x")
    assert not bad_type.passed and "returned str" in bad_type.reason


def test_parse_verdict() -> None:
    assert parse_verdict("Looks fine.\nREASON: names Paris\nVERDICT: PASS") == (True, "names Paris")
    assert parse_verdict("verdict: fail") == (False, "(no reason given)")
    assert parse_verdict("**Verdict:** PASS")[0] is True
    # the last verdict counts (a judge quoting the format first)
    assert parse_verdict("Answer with VERDICT: PASS or...\nVERDICT: FAIL")[0] is False
    none, reason = parse_verdict("I think it is good")
    assert none is None and "unparseable" in reason


def test_parse_verdict_ignores_an_echo_of_the_instructions() -> None:
    echo = "REASON: <one sentence>\nVERDICT: PASS or VERDICT: FAIL"
    assert parse_verdict(echo)[0] is None
    assert parse_verdict(echo + "\nREASON: wrong city\nVERDICT: FAIL") == (False, "wrong city")
    assert parse_verdict("Verdict: pass - the answer names Paris")[0] is True


def test_parse_verdict_reads_a_bare_or_worded_verdict() -> None:
    assert parse_verdict("PASS. The answer is right.") == (True, "PASS. The answer is right.")
    assert parse_verdict("**Fail**: it names Lyon")[0] is False
    assert parse_verdict("PASS or FAIL?")[0] is None  # names both
    assert parse_verdict("The answer does not meet the rubric.")[0] is False
    assert parse_verdict("The answer doesn't meet the rubric at all")[0] is False
    assert parse_verdict("The answer meets the rubric.")[0] is True
    both = "It meets the rubric in part but does not meet the rubric overall."
    assert parse_verdict(both)[0] is None
    assert parse_verdict("The answer is not a valid answer to the question.")[0] is None


def _judge_with(replies: list[str]) -> tuple[FakeLLM, Any]:
    fake = FakeLLM(replies)
    names: list[str] = []

    def factory(name: str) -> FakeLLM:
        names.append(name)
        return fake

    factory.names = names  # type: ignore[attr-defined]
    return fake, factory


async def test_llm_judge_prompt_and_majority() -> None:
    fake, factory = _judge_with(
        ["REASON: right\nVERDICT: PASS", "REASON: wrong\nVERDICT: FAIL", "VERDICT: PASS"]
    )
    case = Case(id="c", prompt="Capital of France?", expected="Paris")
    g = graders.llm_judge("Names the capital correctly.", model="grader-model", votes=3)
    result = await run_grader(g, GradeContext(reply="Paris.", case=case, model="m", judge=factory))
    assert result.passed and result.score == pytest.approx(2 / 3)
    assert result.reason.startswith("2/3 PASS: right")
    assert factory.names == ["grader-model"]
    assert fake.call_count == 3
    prompt = fake.calls[0].prompt
    for part in ("Names the capital correctly.", "Capital of France?", "Paris", "Paris."):
        assert part in prompt
    assert "VERDICT: PASS" in fake.calls[0].system[0]


async def test_llm_judge_tie_and_unparseable_fail() -> None:
    _, factory = _judge_with(["VERDICT: PASS", "no idea"])
    case = Case(id="c", prompt="q")
    g = graders.llm_judge("rubric", votes=2)
    result = await run_grader(g, GradeContext(reply="r", case=case, model="m", judge=factory))
    assert not result.passed and result.score == 0.5
    assert "unparseable verdict" in result.reason
    without = await run_grader(g, GradeContext(reply="r", case=case, model="m"))
    assert not without.passed and "needs a judge model" in without.reason
    with pytest.raises(ValueError, match="votes"):
        graders.llm_judge("rubric", votes=0)
