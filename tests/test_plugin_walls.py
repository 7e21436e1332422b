"""A newcomer's project under the plugin (``pytester``): models configs of suites and tests, ini
paths, the unplayed summary, cassette misses behind SDK retries, and the vcr interface's edges."""

from __future__ import annotations

import pytest

from tests.test_suite_plugin import INI, MODELS, SUITE

pytest_plugins = ["pytester"]

OTHER_MODELS = """
models:
  gpt:
    api_type: openai
    model: gpt-4o-mini
"""


# -- 1. eval suites and the ini llm_config ------------------------------------------------------


def test_a_suite_uses_the_models_yaml_beside_it_over_the_ini_llm_config(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(INI + "llm_config = models.yaml\n")
    pytester.makefile(".yaml", models=OTHER_MODELS)  # for the project's own llm fixture
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites/models.yaml").write_text(MODELS, encoding="utf-8")
    (pytester.path / "suites/qa.suite.yaml").write_text(SUITE, encoding="utf-8")
    result = pytester.runpytest("--collect-only", "-q", "suites")
    assert result.ret == 0, result.stdout.str()
    assert "suites/qa.suite.yaml::france[echo]" in result.stdout.str()
    # the flag still beats the file beside the suite
    flagged = pytester.runpytest("--collect-only", "-q", "suites", "--llm-config", "models.yaml")
    flagged.assert_outcomes(errors=1)
    shown = str(pytester.path / "models.yaml")
    flagged.stdout.fnmatch_lines([f"*'echo', which is not in {shown} (from --llm-config)*gpt*"])


def test_a_suite_without_models_yaml_beside_it_uses_the_ini_llm_config_and_names_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(INI + "llm_config = models.yaml\n")
    pytester.makefile(".yaml", models=OTHER_MODELS)
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites/qa.suite.yaml").write_text(SUITE, encoding="utf-8")
    result = pytester.runpytest("--collect-only", "-q", "suites")
    result.assert_outcomes(errors=1)
    shown = str(pytester.path / "models.yaml")
    result.stdout.fnmatch_lines(
        [f"*'echo', which is not in {shown} (from the ini key llm_config) (known: gpt)*"]
    )


def test_a_suite_with_models_yaml_beside_it_names_that_file_when_a_model_is_missing(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(INI)
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites/models.yaml").write_text(OTHER_MODELS, encoding="utf-8")
    (pytester.path / "suites/qa.suite.yaml").write_text(SUITE, encoding="utf-8")
    result = pytester.runpytest("--collect-only", "-q", "suites")
    shown = str(pytester.path / "suites/models.yaml")
    result.stdout.fnmatch_lines(
        [f"*which is not in {shown} (from the models.yaml beside the suite file)*"]
    )


# -- 2. ini paths are relative to the ini file's folder -----------------------------------------


def test_ini_paths_are_relative_to_the_ini_file_not_the_rootdir(
    pytester: pytest.Pytester,
) -> None:
    project = pytester.path / "project"
    (project / "suites").mkdir(parents=True)
    (project / "pytest.ini").write_text(
        INI + "llm_config = conf/models.yaml\nllm_cassette_dir = tapes\n"
        "llm_baseline = conf/baseline.json\n",
        encoding="utf-8",
    )
    (project / "conf").mkdir()
    (project / "conf/models.yaml").write_text(MODELS, encoding="utf-8")
    (project / "conf/baseline.json").write_text("{not json", encoding="utf-8")
    (project / "test_paths.py").write_text(
        "def test_paths(llm_cassette, llm, pytestconfig):\n"
        "    assert llm.models is not None and 'echo' in llm.models.models\n"
        "    print('CASSETTE', llm_cassette.path)\n",
        encoding="utf-8",
    )
    elsewhere = pytester.path / "elsewhere"
    elsewhere.mkdir()
    result = pytester.runpytest(
        "-s", f"--rootdir={elsewhere}", "-c", str(project / "pytest.ini"), str(project)
    )
    out = result.stdout.str()
    assert f"CASSETTE {project / 'tapes'}" in out, out
    result.assert_outcomes(passed=1)
    suites = pytester.runpytest(
        f"--rootdir={elsewhere}", "-c", str(project / "pytest.ini"), str(project / "suites")
    )
    assert "conf/models.yaml" not in suites.stdout.str()  # no suites there: nothing to read
    (project / "suites/qa.suite.yaml").write_text(SUITE, encoding="utf-8")
    collected = pytester.runpytest(
        "--collect-only",
        f"--rootdir={elsewhere}",
        "-c",
        str(project / "pytest.ini"),
        str(project / "suites"),
    )
    # the ini llm_baseline is found (and its bad JSON reported) beside the ini file
    collected.stdout.fnmatch_lines([f"*{project / 'conf/baseline.json'}*"])
