"""Cases and suites: YAML and JSONL loading, grader specs, and errors that name file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.evals import Case, GradeContext, Suite, SuiteFormatError, load_suites
from harness.evals.cases import is_settings_file, parse_grader
from harness.evals.graders import grader_name, run_grader

QA = """\
suite: factual-qa
models: [local-smollm2, local-smollm2-anthropic]
params: {max_token: 64, temperature: 0}
repeats: 3
pass_threshold: 0.6
expect: [{length_between: {min: 1}}]
cases:
  - id: capital-of-france
    prompt: What is the capital of France? Answer in one word.
    expect: [{contains: Paris}]
    tags: [geo]
  - id: person-json
    system: Reply with JSON only.
    prompt: "Extract: Ada Lovelace, born 1815."
    expect: [{json_schema: {type: object, required: [name]}}]
    params: {max_token: 128, compress_type: post_cut_by_msg}
  - id: chat
    prompt: [Hi, "What did I just say?"]
    expect: [json_valid, {not: {contains: x}}, {word_count_between: {min: 1, max: 5}}]
  - id: explicit
    messages: [{role: user, content: Hello}]
    expected: Hello
    expect: [equals]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_suite_loads_every_field(tmp_path: Path) -> None:
    suite = Suite.from_file(write(tmp_path, "qa.suite.yaml", QA))
    assert suite.name == "factual-qa"
    assert suite.models == ("local-smollm2", "local-smollm2-anthropic")
    assert dict(suite.params) == {"max_token": 64, "temperature": 0}
    assert (suite.repeats, suite.pass_threshold) == (3, 0.6)
    assert [grader_name(g) for g in suite.graders] == ["length_between(1, None)"]
    assert suite.path == tmp_path / "qa.suite.yaml"
    capital, person, chat, explicit = suite.cases
    assert capital.prompt.startswith("What is") and capital.tags == ("geo",)
    assert [grader_name(g) for g in capital.graders] == ["contains('Paris')"]
    assert person.system == "Reply with JSON only." and person.params["max_token"] == 128
    assert chat.prompt == ["Hi", "What did I just say?"]
    assert [grader_name(g) for g in chat.graders] == [
        "json_valid",
        "not(contains('x'))",
        "word_count_between(1, 5)",
    ]
    assert explicit.messages == [{"role": "user", "content": "Hello"}]
    assert explicit.expected == "Hello"


async def test_yaml_graders_grade(tmp_path: Path) -> None:
    suite = Suite.from_file(write(tmp_path, "qa.suite.yaml", QA))
    person = suite.case("person-json")
    (schema,) = person.graders
    ok = await run_grader(schema, GradeContext(reply='{"name": "Ada"}', case=person, model="m"))
    bad = await run_grader(schema, GradeContext(reply='{"born": 1}', case=person, model="m"))
    assert ok.passed and not bad.passed


def test_the_suite_name_defaults_to_the_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "arith.suite.yaml", "cases: [{id: a, prompt: '1+1?'}]\n")
    assert Suite.from_file(path).name == "arith"


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("cases:\n  - id: a\n    promt: hi\n", "cases[0].promt", "did you mean 'prompt'"),
        (
            "cases:\n  - id: a\n    prompt: hi\n  - id: b\n    prompt: x\n    expect: "
            "[json_valid, {contians: x}]\n",
            "cases[1].expect[1]",
            "did you mean 'contains'",
        ),
        (
            "cases:\n  - id: a\n    prompt: hi\n    expect: [{contains: {value: a, mtch: any}}]\n",
            "cases[0].expect[0].contains",
            "unknown argument 'mtch' (did you mean 'match'?)",
        ),
        (
            "cases:\n  - id: a\n    prompt: hi\n    expect: [{regex: '('}]\n",
            "cases[0].expect[0].regex",
            "invalid regular expression",
        ),
        (
            "cases:\n  - id: a\n    prompt: hi\n    params: {max_tokens: 5}\n",
            "cases[0].params.max_tokens",
            "did you mean 'max_token'",
        ),
        (
            "cases:\n  - id: a\n    prompt: hi\n    params: {max_token: -1}\n",
            "cases[0].params.max_token",
            "greater than 0",
        ),
        (
            "params: {temperature: hot}\ncases: [{id: a, prompt: hi}]\n",
            "params.temperature",
            "valid number",
        ),
        (
            "cases:\n  - id: a\n    prompt: hi\n  - id: a\n    prompt: again\n",
            "cases[1].id",
            "duplicate case id 'a'",
        ),
        ("cases:\n  - id: a\n", "cases[0]", "exactly one of 'prompt' or 'messages'"),
        ("cases:\n  - id: a\n    messages: [{content: x}]\n", "cases[0].messages[0]", "role"),
        ("repeats: 0\ncases: [{id: a, prompt: hi}]\n", "repeats", ">= 1"),
        ("sute: x\ncases: [{id: a, prompt: hi}]\n", "sute", "did you mean 'suite'"),
        ("suite: x\n", "cases", "non-empty list"),
        (
            "cases:\n  - id: a\n    prompt: hi\n    expect: [{not: json_valid, x: 1}]\n",
            "cases[0].expect[0]",
            "single-key mapping",
        ),
    ],
)
def test_loading_errors_name_the_file_and_key(
    tmp_path: Path, text: str, key: str, message: str
) -> None:
    path = write(tmp_path, "bad.suite.yaml", text)
    with pytest.raises(SuiteFormatError) as info:
        Suite.from_file(path)
    assert info.value.source == str(path)
    assert info.value.key == key
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_invalid_yaml_gives_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.suite.yaml", "cases: [\n  - id: a\n")
    with pytest.raises(SuiteFormatError, match="invalid YAML at line"):
        Suite.from_file(path)


JSONL = (
    '{"id": "one", "prompt": "1+1?", "expect": [{"numeric_close": 2}]}\n'
    "\n"
    '{"id": "two", "prompt": "2+2?", "expected": 4, "expect": ["numeric_close"]}\n'
)


def test_jsonl_suite_takes_its_settings_from_the_yaml_beside_it(tmp_path: Path) -> None:
    jsonl = write(tmp_path, "arith.suite.jsonl", JSONL)
    settings = write(tmp_path, "arith.suite.yaml", "suite: arithmetic\nmodels: [m1]\nrepeats: 2\n")
    suite = Suite.from_file(jsonl)
    assert (suite.name, suite.models, suite.repeats) == ("arithmetic", ("m1",), 2)
    assert [c.id for c in suite.cases] == ["one", "two"]
    assert suite.path == jsonl
    # the settings file names the same suite, and is not a suite of its own
    assert is_settings_file(settings) and not is_settings_file(jsonl)
    assert [c.id for c in Suite.from_file(settings).cases] == ["one", "two"]
    assert [s.name for s in load_suites([jsonl, settings])] == ["arithmetic"]


def test_jsonl_settings_as_arguments(tmp_path: Path) -> None:
    jsonl = write(tmp_path, "arith.jsonl", JSONL)
    suite = Suite.from_file(jsonl, models=["a", "b"], repeats=4)
    assert (suite.name, suite.models, suite.repeats) == ("arith", ("a", "b"), 4)
    with pytest.raises(SuiteFormatError, match="unknown suite setting 'modles'"):
        Suite.from_file(jsonl, modles=["a"])


def test_jsonl_errors_name_the_line(tmp_path: Path) -> None:
    jsonl = write(
        tmp_path,
        "bad.suite.jsonl",
        '{"id": "a", "prompt": "x"}\n{"id": "b", '
        '"prompt": "y", "expect": [{"word_count_between": {"min": 5, "max": 1}}]}\n',
    )
    with pytest.raises(SuiteFormatError) as info:
        Suite.from_file(jsonl)
    assert info.value.source == f"{jsonl}, line 2"
    assert info.value.key == "expect[0].word_count_between"
    broken = write(tmp_path, "broken.suite.jsonl", '{"id": "a", "prompt": "x"}\n{"id": \n')
    with pytest.raises(SuiteFormatError, match=r"line 2.*invalid JSON"):
        Suite.from_file(broken)


def test_suites_built_in_python_are_checked() -> None:
    case = Case(id="a", prompt="hi", graders=[lambda text: True], tags=["x"])
    assert case.tags == ("x",) and len(case.graders) == 1
    with pytest.raises(SuiteFormatError, match="exactly one of"):
        Case(id="a")
    with pytest.raises(SuiteFormatError, match="duplicate case id"):
        Suite(name="s", cases=(case, Case(id="a", prompt="x")))
    with pytest.raises(SuiteFormatError, match=r"params\.temprature"):
        Suite(name="s", cases=(Case(id="b", prompt="x", params={"temprature": 1}),))
    with pytest.raises(SuiteFormatError, match="pass_threshold"):
        Suite(name="s", cases=(case,), pass_threshold=2)


def test_parse_grader_forms() -> None:
    assert grader_name(parse_grader("json_valid")) == "json_valid"
    assert grader_name(parse_grader({"contains": ["a", "b"]})) == "contains(['a', 'b'])"
    judge = parse_grader({"llm_judge": {"rubric": "Is polite.", "votes": 3}})
    assert "votes=3" in grader_name(judge)
    assert grader_name(parse_grader({"not": {"not": "json_valid"}})) == "not(not(json_valid))"
    with pytest.raises(SuiteFormatError, match="'not' needs a grader"):
        parse_grader("not")
    call = parse_grader({"call": "tests.evals.test_cases:_short"})
    assert grader_name(call) == "tests.evals.test_cases:_short"


def _short(text: str) -> bool:
    return len(text) < 5


def test_suite_case_lookup_lists_the_ids_on_a_miss(tmp_path: Path) -> None:
    suite = Suite.from_file(write(tmp_path, "qa.suite.yaml", QA))
    assert suite.case("chat").prompt == ["Hi", "What did I just say?"]
    with pytest.raises(KeyError, match="capital-of-france, person-json, chat, explicit"):
        suite.case("nope")
