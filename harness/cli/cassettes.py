"""``harness cassettes``: list, show, audit, prune and convert cassette files.

``list`` and ``show`` are here; ``audit``, ``prune`` and ``convert`` have a module each
(:mod:`harness.cli.cassette_audit`, :mod:`~harness.cli.cassette_prune`,
:mod:`~harness.cli.cassette_convert`), and :mod:`harness.cli.cassette_show` renders an
interaction for ``show``.

Exit status: 0 on success, 1 when ``audit`` finds a secret (in any file), 2 on a usage error, a
missing file or a corrupt or unreadable cassette (the message says which file and key).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections import Counter
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tabulate import tabulate

from harness.cli.cassette_audit import run_audit
from harness.cli.cassette_convert import run_convert, vcr_document
from harness.cli.cassette_files import CommandError, cassette_files, cassette_format, existing_file
from harness.cli.cassette_prune import run_prune
from harness.cli.cassette_show import render_interaction
from harness.replay import CassetteFormatError, Interaction, Redactor, load_interactions
from harness.replay.bodies import header_value

__all__ = ["CommandError", "add_cassettes_parser", "cassette_format", "vcr_document"]


# -- shared helpers ----------------------------------------------------------------------------


def _recorded_at(interaction: Interaction) -> datetime | None:
    """When it was recorded: our ``recorded_at``, else the response ``date`` header (vcrpy)."""
    if interaction.recorded_at is not None:
        return interaction.recorded_at
    date = header_value(interaction.response.headers, "date")
    if date:
        with contextlib.suppress(TypeError, ValueError):
            return parsedate_to_datetime(date)
    return None


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024 or unit == "MiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# -- list --------------------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    if not Path(args.dir).exists():
        raise CommandError(f"{args.dir}: no such file or directory")
    rows: list[list[object]] = []
    failed = 0
    for path in cassette_files([args.dir]):
        shown = os.path.relpath(path, args.dir) if Path(args.dir).is_dir() else str(path)
        size = _size(path.stat().st_size)
        try:
            text = path.read_text(encoding="utf-8")
            interactions = load_interactions(path)
        except (CassetteFormatError, UnicodeDecodeError) as exc:
            failed += 1
            print(f"harness: {exc}", file=sys.stderr)
            rows.append([shown, "corrupt", "-", "-", "-", size])
            continue
        requests = Counter(
            f"{i.request.method} {urlsplit(i.request.uri).hostname or '?'}" for i in interactions
        )
        dates = sorted(d.date().isoformat() for i in interactions if (d := _recorded_at(i)))
        recorded = (
            "-" if not dates else dates[0] if dates[0] == dates[-1] else f"{dates[0]}..{dates[-1]}"
        )
        summary = ", ".join(f"{key} x{n}" if n > 1 else key for key, n in requests.items())
        rows.append(
            [shown, cassette_format(text), len(interactions), summary or "-", recorded, size]
        )
    if not rows:
        print(f"no cassettes under {args.dir}")
        return 0
    headers = ["cassette", "format", "interactions", "requests", "recorded", "size"]
    print(tabulate(rows, headers=headers, disable_numparse=True))
    return 2 if failed else 0


# -- show --------------------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    interactions = load_interactions(existing_file(args.file))
    redactor = Redactor.from_env()
    if args.index is not None:
        if not -len(interactions) <= args.index < len(interactions):
            raise CommandError(
                f"{args.file}: no interactions[{args.index}] (it has {len(interactions)})"
            )
        chosen = [(args.index % len(interactions), interactions[args.index])]
    else:
        chosen = list(enumerate(interactions))
    print(f"{args.file}: {len(interactions)} interaction(s)")
    for index, interaction in chosen:
        print()
        print(
            render_interaction(index, interaction, redactor, all_headers=args.headers, raw=args.raw)
        )
    return 0


# -- the parser --------------------------------------------------------------------------------


def add_cassettes_parser(commands: Any) -> None:
    """Add ``cassettes`` and its subcommands to the ``harness`` subparsers ``commands``."""
    parser = commands.add_parser(
        "cassettes",
        help="list, show, audit, prune, convert cassettes",
        description="Inspect and maintain recorded cassette files (harness or vcrpy format). "
        "Exit status 0 on success, 1 when audit finds a secret, 2 on a usage error or a file "
        "that cannot be read.",
    )
    sub = parser.add_subparsers(dest="cassettes_command", required=True)

    listing = sub.add_parser(
        "list",
        help="cassette files with counts, hosts, dates, size",
        description="List the cassettes under a folder: format, number of interactions, the "
        "requests by method and host, when they were recorded and the file size.",
    )
    listing.add_argument("dir", nargs="?", default="cassettes", help="default: cassettes/")
    listing.set_defaults(run=_list)

    show = sub.add_parser(
        "show",
        help="requests and responses, streams reassembled",
        description="Print the interactions of one cassette: each request and its response, "
        "secrets redacted, streamed answers reassembled into their text.",
    )
    show.add_argument("file", help="the cassette file (harness or vcrpy format)")
    show.add_argument("--index", type=int, help="only interactions[N]")
    show.add_argument("--headers", action="store_true", help="all headers, not just key ones")
    show.add_argument("--raw", action="store_true", help="list stream events, not reassembled")
    show.set_defaults(run=_show)

    audit = sub.add_parser(
        "audit",
        help="scan for secrets; exit 1 on a finding (pre-commit)",
        description="Scan cassette files for secrets (API keys, tokens, secret headers and "
        "query parameters) before they are committed. Exit status 1 on a finding, 2 when a "
        "file cannot be read.",
    )
    audit.add_argument("paths", nargs="*", help="files or directories (default: cassettes/)")
    audit.add_argument("-v", "--verbose", action="store_true", help="a line per clean file too")
    audit.set_defaults(run=run_audit)

    prune = sub.add_parser(
        "prune",
        help="drop the interactions a run reported unplayed",
        description="Drop from cassettes the interactions that no test played, as listed in "
        "the report of 'pytest --llm-unplayed-report REPORT'. A cassette changed since the "
        "report was written is refused.",
    )
    prune.add_argument("file", nargs="?", help="one cassette (default: every one in REPORT)")
    prune.add_argument("--unplayed", required=True, metavar="REPORT", help="JSON report of a run")
    prune.add_argument("--dry-run", action="store_true", help="say what would go, change nothing")
    prune.set_defaults(run=run_prune)

    convert = sub.add_parser(
        "convert",
        help="vcrpy -> harness format, or back; a file or a whole folder",
        description="Convert cassettes between vcrpy's format and harness's. SRC may be a "
        "folder: every *.yaml/*.yml file under it is converted to the same relative path "
        "under DST.",
    )
    convert.add_argument("src", help="a cassette file, or a folder of cassettes")
    convert.add_argument(
        "dst", nargs="?", default=None, help="where to write (default: SRC itself, in place)"
    )
    convert.add_argument(
        "--to",
        choices=("harness", "vcrpy"),
        default="harness",
        help="the format to write (default: harness)",
    )
    convert.add_argument(
        "--force", action="store_true", help="replace files that already exist at DST"
    )
    convert.set_defaults(run=run_convert)
