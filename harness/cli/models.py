"""``harness models``: the models a config file defines, and where each base URL comes from."""

from __future__ import annotations

import argparse
from typing import Any

from tabulate import tabulate

from harness.config import ModelsConfig

__all__ = ["add_models_parser"]


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


def add_models_parser(commands: Any) -> None:
    """Add ``models`` to the ``harness`` command's subparsers ``commands``."""
    models = commands.add_parser(
        "models",
        help="list the models of a config file",
        description="List the models a config file defines (the llm: default and each of "
        "models:) with their api_type, model name and base URL, and where that base URL comes "
        "from: the file, an environment variable or the provider's default.",
    )
    models.add_argument("--config", required=True, help="a YAML file with llm: and/or models:")
    models.set_defaults(run=_models)
