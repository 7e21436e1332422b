"""The ``harness`` command."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from tabulate import tabulate

import harness
from harness.cli.cassettes import add_cassettes_parser
from harness.cli.eval import add_eval_parser
from harness.config import ModelsConfig
from harness.errors import HarnessError
from harness.local_llm import server as local_llm

__all__ = ["build_parser", "main"]


def _models(args: argparse.Namespace) -> int:
    config = ModelsConfig.from_yaml_file(args.config)
    entries = [("llm (default)", config.llm)] if config.llm is not None else []
    entries += list(config.models.items())
    rows = []
    for name, entry in entries:
        url, origin = entry.base_url_origin()
        rows.append([name, entry.api_type.value, entry.model, url, origin])
    print(tabulate(rows, headers=["name", "api_type", "model", "base_url", "from"]))
    return 0


def _plain(text: str) -> str:
    """A docstring without its reStructuredText markup, for a terminal."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    return re.sub(r"::$", ":", text.replace("``", ""), flags=re.M)


def build_parser() -> argparse.ArgumentParser:
    """The ``harness`` command line: every subcommand and its arguments."""
    parser = argparse.ArgumentParser(prog="harness", description=_plain(harness.__doc__ or ""))
    parser.add_argument("--version", action="version", version=f"harness {harness.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    models = commands.add_parser("models", help="list the models of a config file")
    models.add_argument("--config", required=True, help="a YAML file with llm: and/or models:")
    models.set_defaults(run=_models)
    add_cassettes_parser(commands)
    add_eval_parser(commands)
    local = commands.add_parser(
        "local-llm",
        help="build, fetch, start and stop the local model (llama.cpp's llama-server)",
        description=local_llm.DESCRIPTION,
    )
    local_llm.add_commands(local)
    local.set_defaults(run=local_llm.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``harness`` console script."""
    args = build_parser().parse_args(argv)
    try:
        result: int = args.run(args)
    except (HarnessError, OSError) as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return 2
    return result
