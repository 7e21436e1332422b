"""Issue #13 item 5: a ``--llm-config`` (or ini ``llm_config``) that is missing or has a typo
stops the run at start-up with one usage error, as ``--llm-budget abc`` does, instead of an
ERROR per test."""

from __future__ import annotations

import pytest

from tests.test_pytest_plugin import INI

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _quiet_inner_sessions(pytester: pytest.Pytester) -> None:
    """Inner sessions set pytest-asyncio's loop scope, so they warn about nothing."""
    pytester.makeini(INI)


TESTS = """
def test_one(llm):
    pass

def test_two(llm):
    pass
"""


def _one_usage_error(result: pytest.RunResult, *expected: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str()
    assert text.count("ERROR:") == 1, text
    for part in expected:
        assert part in text, text
    assert "Traceback" not in text + result.stdout.str()
    assert "test_one" not in result.stdout.str()  # nothing ran


def test_a_missing_config_file_is_one_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TESTS)
    result = pytester.runpytest("--llm-config", "nope.yaml")
    _one_usage_error(result, "--llm-config nope.yaml", "cannot read config file")


def test_a_typo_in_the_config_is_one_usage_error_naming_the_key(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_x=TESTS)
    pytester.makefile(".yaml", models="models:\n  gpt:\n    api_type: openai\n    modle: gpt-4o\n")
    result = pytester.runpytest("--llm-config", "models.yaml")
    _one_usage_error(result, "models.yaml", "models.gpt.modle", "did you mean 'model'")


def test_an_unknown_api_type_is_one_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TESTS)
    pytester.makefile(".yaml", models="llm:\n  api_type: opena\n  model: m\n")
    result = pytester.runpytest("--llm-config", "models.yaml")
    _one_usage_error(result, "unknown api_type 'opena'", "did you mean 'openai'")


def test_the_ini_config_is_checked_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TESTS)
    pytester.makeini(INI + "llm_config = missing.yaml\n")
    result = pytester.runpytest()
    _one_usage_error(result, "llm_config (ini) missing.yaml", "cannot read config file")


def test_a_good_config_runs_the_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TESTS)
    pytester.makefile(".yaml", models="llm:\n  api_type: fake\n  model: m\n")
    pytester.runpytest("--llm-config", "models.yaml").assert_outcomes(passed=2)
