"""``harness local-llm``: build, fetch, start and stop the local model server.

The commands live with the server in :mod:`harness.local_llm.server` (standard library only,
so the scripts that run it need nothing else); this module wires them into ``harness``.
"""

from __future__ import annotations

from typing import Any

from harness.local_llm import server

__all__ = ["add_local_llm_parser"]


def add_local_llm_parser(commands: Any) -> None:
    """Add ``local-llm`` and its subcommands to the ``harness`` command's subparsers."""
    local = commands.add_parser(
        "local-llm",
        help="build, fetch, start and stop the local model (llama.cpp's llama-server)",
        description=server.DESCRIPTION,
    )
    server.add_commands(local)
    local.set_defaults(run=server.run)
