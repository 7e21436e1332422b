"""The plugin stays light at start-up: on a project that uses none of it, pytest never imports
config, providers, replay, evals, pydantic or the SDKs (issue #14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import harness
from harness.pytest_plugin.keyless import derived_key_groups, key_groups
from harness.pytest_plugin.session import MODE_NAMES
from harness.replay import MODES

HEAVY = (
    "harness.providers",
    "harness.replay",
    "harness.evals",
    "harness.config",
    "openai",
    "anthropic",
    "pydantic",
    "tabulate",
    "yaml",
)

_CONFTEST = """
import json, sys

def pytest_sessionfinish(session, exitstatus):
    with open("modules.json", "w") as f:
        json.dump(sorted(sys.modules), f)
"""


def _modules_after_pytest(directory: Path, *args: str) -> set[str]:
    """Run pytest in ``directory`` (a fresh interpreter) and return the modules it imported."""
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (directory / "conftest.py").write_text(_CONFTEST, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(harness.__file__).parent.parent)}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)  # the plugin loads through its entry point
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    done = subprocess.run(
        command, cwd=directory, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode in (0, 5), done.stdout + done.stderr
    return set(json.loads((directory / "modules.json").read_text(encoding="utf-8")))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules for h in HEAVY if m == h or m.startswith(h + "."))


def test_pytest_on_an_empty_project_imports_nothing_heavy(tmp_path: Path) -> None:
    modules = _modules_after_pytest(tmp_path)
    assert "harness.pytest_plugin" in modules  # the plugin did load and configure
    assert _heavy(modules) == []


def test_a_plain_test_imports_nothing_heavy(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text("def test_one():\n    assert 1\n", encoding="utf-8")
    modules = _modules_after_pytest(tmp_path)
    assert "harness.pytest_plugin" in modules
    assert _heavy(modules) == []


def test_a_test_using_a_fixture_still_gets_it(tmp_path: Path) -> None:
    (tmp_path / "test_fake.py").write_text(
        "def test_fake(fake_llm):\n    assert type(fake_llm).__name__ == 'FakeLLM'\n",
        encoding="utf-8",
    )
    modules = _modules_after_pytest(tmp_path)
    assert "harness.providers" in modules  # loaded on demand, by the fixture


def test_the_mode_names_cover_every_replay_mode() -> None:
    assert (*MODES, "none", "new_episodes", "all", "once") == MODE_NAMES


def test_the_placeholder_key_groups_match_the_provider_defaults() -> None:
    assert key_groups() == derived_key_groups()
