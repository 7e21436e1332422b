"""The README's examples run as written (those that need no live provider)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from harness import OpenAILLM

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_block_after(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(heading)
    match = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert match, f"no python block after {heading!r}"
    return match.group(1)


async def test_injected_transport_example_answers_from_the_handler() -> None:
    namespace: dict[str, Any] = {}
    exec(_python_block_after("### Injecting a transport"), namespace)
    llm = namespace["llm"]
    assert isinstance(llm, OpenAILLM)
    assert await llm.aask("hi?", stream=False) == "hi"


def test_config_file_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Configuration files") :]
    yaml_block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert yaml_block
    (tmp_path / "models.yaml").write_text(yaml_block.group(1))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(_python_block_after("### Configuration files"), namespace)
    assert namespace["llm"].model == "claude-sonnet-4-5"
    assert namespace["models"].get("deepseek").model == "deepseek-reasoner"


def test_tokens_example_gives_the_numbers_it_claims() -> None:
    block = _python_block_after("### Tokens, compression and costs")
    namespace: dict[str, Any] = {}
    exec(block, namespace)
    for line in block.splitlines():
        code, _, comment = line.partition("#")
        claimed = re.match(r"\s*(\d+)", comment)
        if code.strip().startswith("count_") and claimed:
            assert eval(code, namespace) == int(claimed.group(1)), line


def test_budget_example_runs() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("A budget is enforced before each request")
    block = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert block
    namespace: dict[str, Any] = {}
    exec(block.group(1), namespace)
    assert str(namespace["costs"].max_budget) == "0.5"


def test_replay_example_builds_a_provider_on_the_transport(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(_python_block_after("### Record and replay"), namespace)
    assert namespace["llm"]._transport is namespace["transport"]
