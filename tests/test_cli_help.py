"""``harness --help`` and every subcommand's help describe each argument, in plain text."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import harness
from harness.cli import build_parser, main

# reStructuredText that would show up raw in a terminal
_RST = re.compile(r"``|:(class|func|meth|mod|attr|exc|data|obj):`|\.\. \w+::|^\s*::\s*$", re.M)


def _parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ("harness",)
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser, argparse.ArgumentParser | None]]:
    """Every parser of the command tree, with its path."""
    found: list[tuple[tuple[str, ...], argparse.ArgumentParser, argparse.ArgumentParser | None]] = [
        (path, parser, None)
    ]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                assert helps.get(name), f"{' '.join(path)} {name}: no help line in the listing"
                found.extend(_parsers(sub, (*path, name)))
    return found


COMMANDS = _parsers(build_parser())


def test_the_tree_has_every_subcommand() -> None:
    names = {" ".join(path) for path, _, _ in COMMANDS}
    for wanted in (
        "harness models",
        "harness cassettes convert",
        "harness cassettes audit",
        "harness local-llm build",
        "harness local-llm start",
        "harness eval",
    ):
        assert any(name.startswith(wanted) for name in names), wanted


@pytest.mark.parametrize(
    "path, parser",
    [(p, parser) for p, parser, _ in COMMANDS],
    ids=[" ".join(p) for p, _, _ in COMMANDS],
)
def test_every_argument_has_help_in_plain_text(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    undocumented = [
        "/".join(action.option_strings) or action.dest
        for action in parser._actions
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
        and not (action.help and action.help.strip())
        and action.help is not argparse.SUPPRESS
    ]
    assert not undocumented, f"{' '.join(path)}: arguments without help: {undocumented}"
    text = parser.format_help()
    assert not _RST.search(text), f"{' '.join(path)} --help shows reStructuredText:\n{text}"


@pytest.mark.parametrize(
    "path, parser",
    [(p, parser) for p, parser, _ in COMMANDS],
    ids=[" ".join(p) for p, _, _ in COMMANDS],
)
def test_every_command_help_has_a_description(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    description = (parser.description or "").strip()
    assert description, f"{' '.join(path)} --help: no description line"
    assert description.endswith("."), description
    assert " ".join(description.split()) in " ".join(parser.format_help().split())


def test_models_help_says_what_the_command_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["models", "--help"])
    usage, _, rest = capsys.readouterr().out.partition("\n\n")
    assert usage.startswith("usage: harness models")
    assert rest.startswith("List the models"), rest


def test_help_exits_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["local-llm", "build", "--help"])
    assert exit_.value.code == 0
    assert "--jobs" in capsys.readouterr().out


def test_python_m_harness_cli_is_the_harness_command() -> None:
    """``python -m harness.cli`` (how the live tests start the local model) runs ``main``."""
    env = {**os.environ, "PYTHONPATH": str(Path(harness.__file__).parent.parent)}
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"harness {harness.__version__}"
