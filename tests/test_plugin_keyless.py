"""Issue #13 item 1: keyless replay. ``openai.OpenAI()`` and ``anthropic.Anthropic()`` with no
key in the environment replay from a cassette; the placeholders exist only in replay mode,
only for the test's duration, and can never be written to a cassette."""

from __future__ import annotations

import os

import pytest

from harness.pytest_plugin.keyless import PLACEHOLDER_KEY, PlaceholderKeys, key_variables
from harness.replay import Redactor
from harness.replay.redaction import find_secrets
from tests.replay.conftest import LLMServer
from tests.test_pytest_plugin import _quiet_inner_sessions, _stop, server

__all__ = ["_quiet_inner_sessions", "server"]  # fixtures shared with the plugin tests

pytest_plugins = ["pytester"]

KEYLESS_SDK_TESTS = """
import os

import anthropic
import openai

BASE = os.environ["HARNESS_TEST_BASE_URL"]


def test_openai_without_a_key(llm_cassette):
    client = openai.OpenAI(base_url=BASE + "/v1", max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
    )
    assert reply.choices[0].message.content == "echo: hello"


def test_anthropic_without_a_key(llm_cassette):
    client = anthropic.Anthropic(base_url=BASE, max_retries=0)
    message = client.messages.create(
        model="claude-x", max_tokens=50, messages=[{"role": "user", "content": "hi there"}]
    )
    assert message.content[0].text == "echo: hi there"
"""

KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AWS_ACCESS_KEY_ID", "DEEPSEEK_API_KEY")


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in key_variables():
        monkeypatch.delenv(name, raising=False)


def test_openai_and_anthropic_clients_replay_without_any_key(
    pytester: pytest.Pytester,
    server: LLMServer,
    monkeypatch: pytest.MonkeyPatch,
    no_keys: None,
) -> None:
    pytester.makepyfile(test_sdk=KEYLESS_SDK_TESTS)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-recording-key-0123456789abcdef")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-recording-key-0123456789")
    pytester.runpytest("--llm-mode=record").assert_outcomes(passed=2)
    _stop(server)
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("ANTHROPIC_API_KEY")

    pytester.runpytest().assert_outcomes(passed=2)  # replay, the default
    assert len(server.requests) == 2  # only the recording run reached the server
    assert "OPENAI_API_KEY" not in os.environ  # the placeholders left with the tests
    for cassette in (pytester.path / "cassettes").rglob("*.yaml"):
        assert "placeholder" not in cassette.read_text()


def test_placeholders_only_in_replay_mode_and_only_during_the_test(
    pytester: pytest.Pytester, no_keys: None
) -> None:
    pytester.makepyfile(
        test_env=f"""
        import os
        import pytest

        NAMES = {KEY_VARS!r}

        def test_replay_has_placeholders():
            assert all(os.environ[name] for name in NAMES)
            assert os.environ["OPENAI_API_KEY"] == {PLACEHOLDER_KEY!r}

        @pytest.mark.llm_cassette(mode="record")
        def test_a_recording_test_has_none(llm_cassette):
            assert not any(name in os.environ for name in NAMES)

        def test_a_key_the_test_sets_is_left_alone(monkeypatch):
            monkeypatch.setenv("OPENAI_API_KEY", "mine")
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)
    assert not any(name in os.environ for name in KEY_VARS)
    pytester.runpytest("--llm-mode=record", "-k", "placeholders").assert_outcomes(failed=1)
    pytester.runpytest("--llm-mode=live", "-k", "placeholders").assert_outcomes(failed=1)


def test_a_key_that_is_set_is_not_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    environ = {"OPENAI_API_KEY": "sk-real", "ANTHROPIC_API_KEY": ""}
    keys = PlaceholderKeys(environ)
    keys.install()
    assert environ["OPENAI_API_KEY"] == "sk-real"
    assert environ["ANTHROPIC_API_KEY"] == PLACEHOLDER_KEY  # empty counts as unset
    assert {"AZURE_OPENAI_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY"} <= set(environ)
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(environ)
    assert "GOOGLE_API_KEY" not in environ  # google-genai warns when both are set
    environ["GEMINI_API_KEY"] = "changed by the test"
    keys.remove()
    assert environ == {"OPENAI_API_KEY": "sk-real", "GEMINI_API_KEY": "changed by the test"}


def test_a_group_with_one_variable_set_gets_no_placeholder() -> None:
    environ = {"GOOGLE_API_KEY": "AIza-mine"}
    PlaceholderKeys(environ).install()
    assert "GEMINI_API_KEY" not in environ and environ["GOOGLE_API_KEY"] == "AIza-mine"


def test_every_placeholder_is_caught_by_the_secret_scan_and_the_redactor() -> None:
    placeholders = key_variables()
    for name, value in placeholders.items():
        if name != "AWS_SECRET_ACCESS_KEY":
            assert find_secrets({"body": f"key={value}"}), name
    redactor = Redactor.from_env(environ=placeholders)
    text = " ".join(placeholders.values())
    assert "placeholder" not in redactor.redact_text(text)
    assert "HARNESSREPLAY" not in redactor.redact_text(text)


def test_harness_providers_take_the_placeholder_for_no_key() -> None:
    from harness import LLMConfig

    config = LLMConfig(api_type="openai", model="m")
    assert config.resolved_api_key({"OPENAI_API_KEY": PLACEHOLDER_KEY}) is None
    assert LLMConfig(api_type="openai", model="m", api_key=PLACEHOLDER_KEY).api_key is None
