"""What the ``harness cassettes`` commands share: finding and reading cassette files.

A usage problem (a missing file, a bad report) is a :class:`CommandError`: exit status 2.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError

__all__ = [
    "YAML_DUMPER",
    "YAML_LOADER",
    "CommandError",
    "cassette_files",
    "cassette_format",
    "existing_file",
]

YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
YAML_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_FORMAT_LINE = re.compile(r"^format:\s*['\"]?([\w-]+)", re.MULTILINE)


class CommandError(HarnessError):
    """A usage problem the command reports with exit status 2 (missing file, bad report...)."""


def existing_file(path: str) -> Path:
    """``path`` as a file, or a :class:`CommandError` saying why it is none."""
    file = Path(path)
    if not file.exists():
        raise CommandError(f"{path}: no such file")
    if not file.is_file():
        raise CommandError(f"{path}: not a file")
    return file


def cassette_format(text: str) -> str:
    """``harness`` for a file with a top-level ``format: harness``, else ``vcrpy``."""
    match = _FORMAT_LINE.search(text)
    return match.group(1) if match else "vcrpy"


def cassette_files(paths: list[str]) -> Iterator[Path]:
    """The given files, and the ``*.yaml``/``*.yml`` files under the given directories."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        elif path.exists():
            yield path
        else:
            raise CommandError(f"{name}: no such file or directory")
