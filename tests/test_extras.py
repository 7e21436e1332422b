"""The vendor SDKs are extras: harness works without them, and names the extra to install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "wire_corpus"

# Installed first in the child: any import of a blocked SDK raises ImportError.
BLOCKER = """
import sys

class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("openai", "anthropic"):
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, _Blocked())
"""

WITHOUT_SDKS = """
import asyncio
import httpx

import harness
from harness import CostManager, FakeLLM
from harness.config import LLMConfig
from harness.errors import ConfigError
from harness.providers import create_llm_instance
from harness.replay import load_interactions, use_cassette
from harness.tokens import count_text_tokens

# replay through a vcrpy cassette with a plain httpx client
recorded = load_interactions({cassette!r})[0].request
with use_cassette({cassette!r}, "replay"):
    with httpx.Client() as client:
        answer = client.post(recorded.uri, content=recorded.body)
model = answer.json()["model"]

# FakeLLM, tokens and costs
costs = CostManager()
reply = asyncio.run(FakeLLM(["ok"], cost_manager=costs).aask("hi"))
tokens = int(count_text_tokens("hello world", "gpt-4o"))

errors = {{}}
for api_type, model_name in (("openai", "gpt-4o-mini"), ("anthropic", "claude-3-5-haiku-latest")):
    try:
        create_llm_instance(LLMConfig(api_type=api_type, model=model_name, api_key="sk-x"))
    except ConfigError as error:
        errors[api_type] = str(error)

loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("openai", "anthropic"))
print(json.dumps({{"model": model, "reply": reply, "tokens": tokens, "errors": errors,
                  "loaded": loaded, "prompt_tokens": costs.get_costs().total_prompt_tokens}}))
"""


def _run(script: str, *, path: list[Path] = ()) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in path), str(ROOT)])
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_harness_works_with_no_sdk_and_names_the_extra() -> None:
    cassette = CORPUS / "openai" / "openllmetry__test_chat_tools.yaml"
    script = BLOCKER + "import json\n" + WITHOUT_SDKS.format(cassette=str(cassette))
    done = _run(script)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["model"] == "gpt-3.5-turbo-0125"
    assert result["reply"] == "ok"
    assert result["tokens"] == 2
    assert result["loaded"] == []
    assert result["prompt_tokens"] > 0  # FakeLLM billed the ledger
    assert "harness-llm[openai]" in result["errors"]["openai"]
    assert "not installed" in result["errors"]["openai"]
    assert "harness-llm[anthropic]" in result["errors"]["anthropic"]


def test_the_pytest_plugin_runs_with_no_sdk(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(
        textwrap.dedent(
            """
            import asyncio

            import httpx
            import pytest

            def test_fake(fake_llm):
                fake_llm.replies = ["Paris"]
                assert asyncio.run(fake_llm.aask("capital of France?")) == "Paris"

            @pytest.mark.vcr
            def test_replayed():
                with httpx.Client() as client:
                    answer = client.post("https://api.openai.com/v1/chat/completions", json={})
                assert answer.status_code == 200
            """
        )
    )
    cassettes = tmp_path / "cassettes" / "test_plain"
    cassettes.mkdir(parents=True)
    source = CORPUS / "openai" / "openllmetry__test_chat_tools.yaml"
    (cassettes / "test_replayed.yaml").write_bytes(source.read_bytes())
    script = BLOCKER + textwrap.dedent(
        f"""
        import pytest
        code = pytest.main([{str(tmp_path)!r}, "-q", "-p", "no:cacheprovider",
                            "--rootdir", {str(tmp_path)!r}, "-W", "ignore::DeprecationWarning"])
        loaded = [m for m in sys.modules if m.split(".")[0] in ("openai", "anthropic")]
        print("LOADED", loaded)
        raise SystemExit(int(code))
        """
    )
    done = _run(script)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    assert "LOADED []" in done.stdout


def test_an_sdk_too_old_is_named_with_the_extra(tmp_path: Path) -> None:
    old = tmp_path / "site"
    (old / "openai").mkdir(parents=True)
    (old / "openai" / "__init__.py").write_text("")
    info = old / "openai-1.99.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: openai\nVersion: 1.99.0\n")
    script = textwrap.dedent(
        """
        from harness.config import LLMConfig
        from harness.errors import ConfigError
        from harness.providers import create_llm_instance
        try:
            create_llm_instance(LLMConfig(api_type="openai", model="gpt-4o", api_key="sk-x"))
        except ConfigError as error:
            print(error)
        """
    )
    done = _run(script, path=[old])
    assert done.returncode == 0, done.stderr
    assert "openai 1.99.0 is installed" in done.stdout
    assert "pip install -U 'harness-llm[openai]'" in done.stdout


@pytest.mark.parametrize("extra", ["openai", "anthropic", "all"])
def test_pyproject_declares_the_sdk_extras(extra: str) -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith(("openai", "anthropic")) for d in project["dependencies"])
    extras = project["optional-dependencies"]
    assert "harness-llm[all]" in extras["dev"]
    wanted = {"openai": ["openai"], "anthropic": ["anthropic"], "all": ["openai", "anthropic"]}
    for name in wanted[extra]:
        assert any(d.startswith(f"{name}>=") for d in extras[extra])
