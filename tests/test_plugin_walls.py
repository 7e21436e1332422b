"""A newcomer's project under the plugin (``pytester``): models configs of suites and tests, ini
paths, the unplayed summary, cassette misses behind SDK retries, and the vcr interface's edges."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_plugin_vcr import echo_url
from tests.test_suite_plugin import INI, MODELS, SUITE

__all__ = ["echo_url"]  # a fixture shared with the vcr tests

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


# -- 3. the summary's unplayed interactions: the run's merged view ------------------------------

SHARED_CASSETTE = """
import openai
from pathlib import Path

import pytest


def ask(prompt):
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": prompt}]
    )
    return reply.choices[0].message.content


@pytest.mark.llm_cassette("shared.yaml")
def test_first():
    assert ask("one") == "re: one"


@pytest.mark.llm_cassette("shared.yaml")
def test_second():
    assert ask("two") == "re: two"


@pytest.mark.llm_cassette("own.yaml")
def test_own():
    assert ask("one") == "re: one"
"""


@pytest.mark.parametrize("workers", [None, "2"])
def test_the_summary_counts_unplayed_like_the_report_across_tests_sharing_a_cassette(
    pytester: pytest.Pytester, workers: str | None
) -> None:
    from tests.test_pytest_plugin import _chat_cassette

    pytester.makeini(INI)
    _chat_cassette(pytester.path / "cassettes/shared.yaml", ("one", 1, 1), ("two", 1, 1))
    _chat_cassette(pytester.path / "cassettes/own.yaml", ("one", 1, 1), ("two", 1, 1))
    pytester.makepyfile(test_shared=SHARED_CASSETTE)
    report = pytester.path / "unplayed.json"
    args = ["--llm-unplayed-report", str(report)]
    if workers is None:
        result = pytester.runpytest(*args)
    else:
        result = pytester.runpytest_subprocess("-n", workers, *args, timeout=120)
    result.assert_outcomes(passed=3)
    # test_first left "two" unplayed and test_second "one": together they played both
    result.stdout.fnmatch_lines(
        [
            "*unplayed interactions (1; prune or run with --llm-strict):",
            "  cassettes/own.yaml: 1 (test_shared.py::test_own)",
            "*unplayed report: * (1 interaction(s) in 3 cassette use(s))*",
        ]
    )
    assert "shared.yaml: 1" not in result.stdout.str()


# -- 4. a cassette miss behind an SDK's retries ---------------------------------------------------

ANTHROPIC_MISS = """
import time

import anthropic
from pathlib import Path

import pytest

SLEEPS = []


@pytest.fixture(autouse=True)
def no_real_sleep(monkeypatch):
    monkeypatch.setattr(time, "sleep", SLEEPS.append)  # the SDK's backoff, counted, not slept


def ask(client):
    return client.messages.create(
        model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )


@pytest.mark.llm_cassette("chat.yaml")
def test_retried():
    try:
        ask(anthropic.Anthropic(base_url="http://127.0.0.1:9"))  # SDK retries on (2)
    finally:
        print("SDK SLEEPS:", len(SLEEPS))


@pytest.mark.llm_cassette("chat.yaml")
def test_fallback():
    try:
        answer = ask(anthropic.Anthropic(base_url="http://127.0.0.1:9", max_retries=0))
    except anthropic.APIConnectionError:
        answer = None  # the app's fallback hides the miss
    assert answer is not None
"""


def test_a_miss_behind_sdk_retries_fails_plainly_after_one_backoff(
    pytester: pytest.Pytester,
) -> None:
    from tests.test_pytest_plugin import _chat_cassette

    pytest.importorskip("anthropic")
    pytester.makeini(INI)
    _chat_cassette(pytester.path / "cassettes/chat.yaml", ("one", 1, 1))
    pytester.makepyfile(test_miss=ANTHROPIC_MISS)
    result = pytester.runpytest("-s", "-k", "retried")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    # the retry of the missed request fails the test: one backoff, not max_retries of them
    assert "SDK SLEEPS: 1" in out, out
    result.stdout.fnmatch_lines(
        [
            "*CassetteMiss, sent again (a client retried it*",
            "*no recorded interaction in *chat.yaml matches POST http://127.0.0.1:9/v1/messages*",
            "*FAILED test_miss.py::test_retried - Failed: CassetteMiss, sent again*",
        ]
    )
    assert "APIConnectionError" not in out


def test_a_miss_an_app_swallowed_is_shown_in_the_failed_tests_report(
    pytester: pytest.Pytester,
) -> None:
    from tests.test_pytest_plugin import _chat_cassette

    pytest.importorskip("anthropic")
    pytester.makeini(INI)
    _chat_cassette(pytester.path / "cassettes/chat.yaml", ("one", 1, 1))
    pytester.makepyfile(test_miss=ANTHROPIC_MISS)
    result = pytester.runpytest("-k", "fallback")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*assert None is not None*",
            "*- harness: cassette miss -*",
            "no recorded interaction in *chat.yaml matches POST http://127.0.0.1:9/v1/messages*",
        ]
    )


# -- 5. vcr_config keys: unsupported ones are one short error; repeats and ignored hosts ---------

VCR_CHAT = """
import httpx
from pathlib import Path

import pytest

URL = "http://127.0.0.1:9/v1/chat/completions"
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "one"}]}


@pytest.fixture(scope="module")
def vcr_config():
    return CONFIG


@pytest.mark.vcr("chat")
def test_twice(vcr):
    with httpx.Client() as client:
        for _ in range(2):
            reply = client.post(URL, json=BODY).json()
            assert reply["choices"][0]["message"]["content"] == "re: one"
    assert vcr.record_mode == "none"
"""


def _vcr_project(pytester: pytest.Pytester, config: str) -> None:
    from tests.test_pytest_plugin import _chat_cassette

    pytester.makeini(INI)
    _chat_cassette(pytester.path / "cassettes/test_vcr/chat.yaml", ("one", 1, 1))
    pytester.makepyfile(test_vcr=f"CONFIG = {config}\n" + VCR_CHAT)


def test_an_unsupported_vcr_config_key_is_one_short_error_per_test(
    pytester: pytest.Pytester,
) -> None:
    _vcr_project(pytester, "{'custom_patches': ()}")
    pytester.makepyfile(
        test_more="import pytest\n\n@pytest.mark.vcr\ndef test_other():\n    pass\n"
    )
    pytester.makeconftest(
        "import pytest\n\n@pytest.fixture(scope='module')\ndef vcr_config():\n"
        "    return {'custom_patches': ()}\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    errors = out.split("= ERRORS =")[1].split("short test summary info")[0]
    assert errors.count("vcr_config key 'custom_patches' is not supported") == 2  # one per test
    assert "During handling" not in out and "Traceback" not in out, out
    assert "def vcr(" not in out and "raise " not in out, out


def test_allow_playback_repeats_replays_an_interaction_again(pytester: pytest.Pytester) -> None:
    _vcr_project(pytester, "{'allow_playback_repeats': True}")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    _vcr_project(pytester, "{}")
    once = pytester.runpytest("-p", "no:cacheprovider")
    once.assert_outcomes(failed=1)
    # 6. pytest-recording's flag, for a test of its interface
    once.stdout.fnmatch_lines(["*re-run with --record-mode=new_episodes to add it*"])
    assert "--llm-mode=record" not in once.stdout.str()


IGNORED_HOST = """
import httpx
from pathlib import Path

import pytest

URL = {url!r}


@pytest.fixture(scope="module")
def vcr_config():
    return {config}


@pytest.mark.vcr
def test_local(vcr):
    with httpx.Client() as client:
        assert client.post(URL + "/v1/x", json={{"n": 1}}).json()["echo"] == {{"n": 1}}
"""


@pytest.mark.parametrize(
    "config", ["{'ignore_localhost': True}", "{'ignore_hosts': ['127.0.0.1']}"]
)
def test_ignored_hosts_reach_the_server_past_the_cassette(
    pytester: pytest.Pytester, echo_url: str, config: str
) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_ignored=IGNORED_HOST.format(url=echo_url, config=config))
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    recorded = pytester.runpytest("-p", "no:cacheprovider", "--record-mode=once")
    recorded.assert_outcomes(passed=1)
    assert not (pytester.path / "cassettes").exists()  # neither replayed nor recorded


# -- 6. the vcr fixture speaks vcrpy's record modes ----------------------------------------------


def test_the_vcr_fixture_names_its_record_mode_as_vcrpy_does(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        test_mode="""
        import pytest

        @pytest.mark.vcr
        def test_mode(vcr):
            print("MODE", vcr.record_mode)
        """
    )
    for flags, name in (((), "none"), (("--llm-mode=record",), "new_episodes")):
        result = pytester.runpytest("-s", "-p", "no:cacheprovider", *flags)
        result.assert_outcomes(passed=1)
        assert f"MODE {name}\n" in result.stdout.str() or f"MODE {name}." in result.stdout.str()


# -- the transport options behind them -------------------------------------------------------


def _answers(path: Path, *contents: str) -> None:
    from harness.replay import Interaction, RecordedRequest, RecordedResponse, dump_interactions

    recorded = [
        Interaction(
            RecordedRequest("GET", "http://api.test/v1/x", [], b""),
            RecordedResponse(200, [("content-type", "text/plain")], text.encode()),
        )
        for text in contents
    ]
    path.write_text(dump_interactions(recorded)[1], encoding="utf-8")


def test_allow_repeats_replays_in_order_then_the_last_one_again(tmp_path: Path) -> None:
    import httpx2

    from harness.replay import CassetteMiss, ReplayTransport

    cassette = tmp_path / "c.yaml"
    _answers(cassette, "first", "second")
    repeating = ReplayTransport(cassette, allow_repeats=True)
    with httpx2.Client(transport=repeating) as client:
        got = [client.get("http://api.test/v1/x").text for _ in range(3)]
    assert got == ["first", "second", "second"]
    assert repeating.unplayed() == []
    strict = ReplayTransport(cassette)
    with httpx2.Client(transport=strict) as client:
        client.get("http://api.test/v1/x")
        client.get("http://api.test/v1/x")
        with pytest.raises(CassetteMiss):
            client.get("http://api.test/v1/x")
    assert len(strict.misses) == 1


def test_ignored_hosts_go_upstream_in_replay_mode(tmp_path: Path) -> None:
    import httpx2

    from harness.replay import ReplayTransport

    cassette = tmp_path / "c.yaml"
    _answers(cassette, "recorded")
    upstream = httpx2.MockTransport(lambda request: httpx2.Response(200, text="live"))
    transport = ReplayTransport(cassette, upstream=upstream, ignore_hosts=["LOCAL.test"])
    with httpx2.Client(transport=transport) as client:
        assert client.get("http://local.test/v1/x").text == "live"
        assert client.get("http://api.test/v1/x").text == "recorded"
    assert transport.misses == []
