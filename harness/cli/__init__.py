"""The ``harness`` command: one module per subcommand group.

``models`` (:mod:`harness.cli.models`), ``cassettes`` (:mod:`harness.cli.cassettes`), ``eval``
(:mod:`harness.cli.eval`) and ``local-llm`` (:mod:`harness.cli.local_llm`). Exit status 2 on a
usage error or a file that cannot be read; each group documents its own.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

import harness
from harness.cli.cassettes import add_cassettes_parser
from harness.cli.eval import add_eval_parser
from harness.cli.local_llm import add_local_llm_parser
from harness.cli.models import add_models_parser
from harness.errors import HarnessError

__all__ = ["build_parser", "main"]


def _plain(text: str) -> str:
    """A docstring without its reStructuredText markup, for a terminal."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    return re.sub(r"::$", ":", text.replace("``", ""), flags=re.M)


def build_parser() -> argparse.ArgumentParser:
    """The ``harness`` command line: every subcommand and its arguments."""
    parser = argparse.ArgumentParser(prog="harness", description=_plain(harness.__doc__ or ""))
    parser.add_argument("--version", action="version", version=f"harness {harness.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_models_parser(commands)
    add_cassettes_parser(commands)
    add_eval_parser(commands)
    add_local_llm_parser(commands)
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
