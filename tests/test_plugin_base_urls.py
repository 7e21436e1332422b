"""Issue #13 item 2: base URLs from the SDKs' environment variables (config > environment >
vendor default), shown by ``harness models``; and ``${VAR:-default}`` with the shell's
semantics for a set but empty variable."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest

from harness import LLMConfig, create_llm_instance
from harness.cli import main
from harness.config import ModelsConfig
from tests.providers.answers import Upstream, ask

URL_VARS = [
    ("openai", "OPENAI_BASE_URL", "http://127.0.0.1:8001/v1", "http://127.0.0.1:8001/v1"),
    ("anthropic", "ANTHROPIC_BASE_URL", "http://127.0.0.1:8002", "http://127.0.0.1:8002"),
    ("azure", "AZURE_OPENAI_ENDPOINT", "http://127.0.0.1:8003", "http://127.0.0.1:8003"),
    ("gemini", "GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:8004", "http://127.0.0.1:8004"),
    ("ollama", "OLLAMA_HOST", "127.0.0.1:8005", "http://127.0.0.1:8005/api"),
]


@pytest.mark.parametrize(("api_type", "var", "value", "expected"), URL_VARS)
def test_the_environment_gives_the_base_url_when_the_config_has_none(
    api_type: str, var: str, value: str, expected: str
) -> None:
    config = LLMConfig(api_type=api_type, model="m")
    assert config.resolved_base_url({var: value}) == expected
    assert config.base_url_origin({var: value}) == (expected, var)


@pytest.mark.parametrize(("api_type", "var", "value", "expected"), URL_VARS)
def test_the_config_base_url_beats_the_environment(
    api_type: str, var: str, value: str, expected: str
) -> None:
    config = LLMConfig(api_type=api_type, model="m", base_url="http://configured.test")
    assert config.base_url_origin({var: value}) == ("http://configured.test", "config")


def test_without_config_or_environment_the_vendor_default_applies() -> None:
    config = LLMConfig(api_type="openai", model="m")
    assert config.base_url_origin({"OPENAI_BASE_URL": "  "}) == (
        "https://api.openai.com/v1",
        "default",
    )


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("localhost", "http://localhost:11434/api"),
        ("0.0.0.0:9999", "http://0.0.0.0:9999/api"),
        ("http://box:11434", "http://box:11434/api"),
        ("https://ollama.example.com", "https://ollama.example.com:443/api"),
        ("http://box:1/ollama/", "http://box:1/ollama/api"),
        ("http://box:1/api", "http://box:1/api"),
        ("[::1]:7000", "http://[::1]:7000/api"),
    ],
)
def test_ollama_host_takes_the_forms_ollama_accepts(host: str, url: str) -> None:
    assert LLMConfig(api_type="ollama", model="m").resolved_base_url({"OLLAMA_HOST": host}) == url


@pytest.mark.parametrize("provider", ["openai", "anthropic", "azure", "gemini"])
async def test_a_provider_sends_to_the_base_url_from_its_environment(provider: str) -> None:
    var, value = {
        "openai": ("OPENAI_BASE_URL", "http://from-env.test/v1"),
        "anthropic": ("ANTHROPIC_BASE_URL", "http://from-env.test"),
        "azure": ("AZURE_OPENAI_ENDPOINT", "http://from-env.test"),
        "gemini": ("GOOGLE_GEMINI_BASE_URL", "http://from-env.test"),
    }[provider]
    upstream = Upstream(provider)
    extra = {"api_version": "2024-10-21"} if provider == "azure" else {}
    config = LLMConfig(api_type=provider, model="m-test", api_key="sk-x", max_retries=0, **extra)
    llm = create_llm_instance(
        config, transport=httpx2.MockTransport(upstream), environ={var: value}
    )
    assert await ask(llm, "aask") == "all good"
    assert [r.url.host for r in upstream.requests] == ["from-env.test"]


def test_harness_models_shows_the_resolved_url_and_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(
        "models:\n"
        "  gpt: {api_type: openai, model: gpt-4o-mini}\n"
        "  claude: {api_type: anthropic, model: claude-x, base_url: 'http://mine.test'}\n"
        "  local: {api_type: ollama, model: smollm2}\n"
    )
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://ignored.test")
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert main(["models", "--config", str(config)]) == 0
    lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert lines["gpt"][3:] == ["http://127.0.0.1:8080/v1", "OPENAI_BASE_URL"]
    assert lines["claude"][3:] == ["http://mine.test", "config"]
    assert lines["local"][3:] == ["http://127.0.0.1:11434/api", "default"]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({}, "http://fallback.test"), ({"URL": ""}, "http://fallback.test"), ({"URL": "x"}, "x")],
)
def test_a_default_applies_to_an_unset_or_empty_variable(
    environ: dict[str, str], expected: str
) -> None:
    text = "llm: {api_type: openai, model: m, base_url: '${URL:-http://fallback.test}'}"
    assert ModelsConfig.from_yaml(text, environ=environ).get("llm").base_url == expected


def test_a_set_but_empty_variable_without_a_default_stays_empty() -> None:
    text = "llm: {api_type: openai, model: m, proxy: 'a${EMPTY}b'}"
    assert ModelsConfig.from_yaml(text, environ={"EMPTY": ""}).get("llm").proxy == "ab"
