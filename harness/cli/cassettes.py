"""``harness cassettes``: list, show, audit, prune and convert cassette files.

Exit status: 0 on success, 1 when ``audit`` finds a secret (in any file), 2 on a usage error, a
missing file or a corrupt or unreadable cassette (the message says which file and key).
"""

from __future__ import annotations

import argparse
import contextlib
import http
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml
from filelock import FileLock
from tabulate import tabulate

from harness.cli.cassette_show import render_interaction
from harness.errors import HarnessError
from harness.replay import (
    Cassette,
    CassetteFormatError,
    Interaction,
    RecordedRequest,
    Redactor,
    dump_interactions,
    find_secrets,
    load_interactions,
)
from harness.replay.bodies import header_value
from harness.replay.cassette import atomic_write
from harness.replay.matching import request_fingerprint
from harness.replay.redaction import find_interaction_secrets

__all__ = ["CommandError", "add_cassettes_parser"]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_FORMAT_LINE = re.compile(r"^format:\s*['\"]?([\w-]+)", re.MULTILINE)
# A header or query value that is a placeholder, not a secret (vcrpy filters, our REDACTED).
_PLACEHOLDER = re.compile(
    r"(?i)((bearer|basic|token)\s+)?[<\[({*]*"
    r"(redacted|filtered|removed|hidden|masked|scrubbed|dummy|x{3,}|\*{3,})[>\])}*]*"
)


class CommandError(HarnessError):
    """A usage problem the command reports with exit status 2 (missing file, bad report...)."""


# -- shared helpers ----------------------------------------------------------------------------


def _existing_file(path: str) -> Path:
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


def _cassette_files(paths: list[str]) -> Iterator[Path]:
    """The given files, and the ``*.yaml``/``*.yml`` files under the given directories."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        elif path.exists():
            yield path
        else:
            raise CommandError(f"{name}: no such file or directory")


def _audit_targets(paths: list[str]) -> tuple[list[Path], list[str]]:
    """The files to audit (named ones, and the cassettes under named directories, symlinks
    followed once), and why a named path or a directory under it could not be read."""
    files: list[Path] = []
    problems: list[str] = []
    for name in paths:
        path = Path(name)
        if not path.is_dir():
            if path.exists() or path.is_symlink():
                files.append(path)
            else:
                problems.append(f"{name}: no such file or directory")
            continue

        def failed(exc: OSError, name: str = name) -> None:
            where = exc.filename or name
            problems.append(f"{where}: cannot read the directory: {exc.strerror or exc}")

        seen: set[str] = set()
        found: list[Path] = []
        for root, dirs, names in os.walk(path, onerror=failed, followlinks=True):
            real = os.path.realpath(root)
            if real in seen:  # a symlink loop, or a folder reached twice
                dirs[:] = []
                continue
            seen.add(real)
            dirs.sort()
            found.extend(Path(root, n) for n in names if Path(n).suffix in (".yaml", ".yml"))
        files.extend(sorted(found))
    return files, problems


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
    for path in _cassette_files([args.dir]):
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
    interactions = load_interactions(_existing_file(args.file))
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


# -- audit -------------------------------------------------------------------------------------


def _is_placeholder(value: str, redactor: Redactor) -> bool:
    value = value.strip()
    return not value or redactor.placeholder in value or bool(_PLACEHOLDER.fullmatch(value))


def _not_text(data: bytes) -> str | None:
    """Why ``data`` cannot be a cassette (binary, not UTF-8), or None for UTF-8 text."""
    if (nul := data.find(b"\x00")) != -1:
        return f"a binary file (a NUL byte at offset {nul})"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
    return None


def _tail(finding: str) -> str:
    """What a pattern finding found ("<kind> <masked key>"), without where it was found."""
    return finding.rpartition(": ")[2]


def _place(finding: str) -> str:
    """The part of a cassette a finding is in (``interactions[0].request.body``), or ""."""
    where = finding.partition(": ")[0]
    return ".".join(where.split(".")[:3]) if where.startswith("interactions[") else ""


def _new(findings: list[str], more: list[str]) -> list[str]:
    """``more`` without keys already reported in the same place (a line: anywhere)."""
    seen = {(_place(f), _tail(f)) for f in findings}
    anywhere = {_tail(f) for f in findings}
    return [
        f
        for f in more
        if ((_place(f), _tail(f)) not in seen if _place(f) else _tail(f) not in anywhere)
    ]


def _removable(i: int, interaction: Interaction, redactor: Redactor) -> list[str]:
    """What redaction removes and the file still holds: secret headers, key-like query
    parameters, URL user-info, secret-named body fields (JSON, SSE/NDJSON events, forms)."""
    where = f"interactions[{i}]"
    findings = []
    for side, message in (("request", interaction.request), ("response", interaction.response)):
        for name, value in message.headers:
            if redactor.is_secret_header(name) and not _is_placeholder(value, redactor):
                findings.append(f"{where}.{side}.headers.{name.lower()}: secret header present")
        for field, value in redactor.secret_fields(message.headers, message.body):
            if not _is_placeholder(value, redactor):
                findings.append(f"{where}.{side}.body.{field}: secret-named field")
    parts = urlsplit(interaction.request.uri)
    if "@" in parts.netloc and not _is_placeholder(parts.netloc.rpartition("@")[0], redactor):
        findings.append(f"{where}.request.uri: user-info (user:password@) in the URL")
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if redactor.is_secret_param(name) and not _is_placeholder(value, redactor):
            findings.append(f"{where}.request.uri: key-like query parameter {name!r}")
    return findings


def _interaction_findings(i: int, interaction: Interaction, redactor: Redactor) -> list[str]:
    """What a write of ``interaction`` would refuse (the write-time scan, on its decoded
    harness form), plus what redaction would have removed and configured secret values."""
    where = f"interactions[{i}]"
    data, text = dump_interactions([interaction])
    bodies = [("request", interaction.request.body), ("response", interaction.response.body)]
    scanned = find_interaction_secrets(data["interactions"][0], text, bodies, path=where)
    findings = _removable(i, interaction, redactor) + scanned
    for number, line in enumerate(text.splitlines(), start=1):
        if redactor.redact_text(line) != line:
            findings.append(f"{where} (as decoded YAML, line {number}): a configured secret value")
    return findings


def _configured_lines(text: str, redactor: Redactor) -> list[str]:
    return [
        f"line {number}: a configured secret value"
        for number, line in enumerate(text.splitlines(), start=1)
        if redactor.redact_text(line) != line
    ]


def _audit_file(path: Path, redactor: Redactor) -> tuple[list[str], str | None]:
    """The findings in one file, and why it could not be read as a cassette (or None)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [], f"{path}: cannot read it: {exc.strerror or exc}"
    if (problem := _not_text(data)) is not None:
        # not a cassette, but it may still hold a key: scan every byte as one character
        text = data.decode("latin-1")
        findings = find_secrets(None, text) + _configured_lines(text, redactor)
        return findings, f"{path}: {problem}; a cassette is UTF-8 YAML text, so it was not audited"
    text = data.decode("utf-8")
    lines = find_secrets(None, text)  # every line, comments included
    try:
        raw = yaml.load(text, Loader=_Loader)  # a safe loader
    except yaml.YAMLError as exc:
        return lines + _configured_lines(text, redactor), f"{path}: not valid YAML: {exc}"
    findings = find_secrets(raw)  # key paths of the file as written
    try:
        interactions = load_interactions(path)
    except CassetteFormatError as exc:
        return findings + _new(findings, lines) + _configured_lines(text, redactor), str(exc)
    for i, interaction in enumerate(interactions):
        found = _interaction_findings(i, interaction, redactor)
        findings.extend(_new(findings, found))
    return findings + _new(findings, lines), None


def _audit(args: argparse.Namespace) -> int:
    redactor = Redactor.from_env()
    files, problems = _audit_targets(args.paths or ["cassettes"])
    unreadable = found = clean = 0
    for problem in problems:
        unreadable += 1
        print(f"harness: {problem}", file=sys.stderr)
    for path in files:
        findings, error = _audit_file(path, redactor)
        if error is not None:
            unreadable += 1
            print(f"harness: {error}", file=sys.stderr)
        for finding in dict.fromkeys(findings):  # one line per distinct finding
            print(f"{path}: {finding}")
        found += bool(findings)
        if not findings and error is None:
            clean += 1
            if args.verbose:
                print(f"{path}: clean")
    total = len(files) + len(problems)  # a path that could not be read counts as one
    print(f"audited {total} file(s): {found} with secrets, {unreadable} unreadable, {clean} clean")
    if found:
        print(
            f"harness: secrets in {found} of {total} file(s); redact them (or re-record "
            "with harness, which never writes them) before committing",
            file=sys.stderr,
        )
    return 1 if found else 2 if unreadable else 0


# -- prune -------------------------------------------------------------------------------------


def _report_entry(report_path: Path, cassette: Path) -> dict[str, Any]:
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CommandError(f"{report_path}: not a JSON unplayed report: {exc}") from None
    entries = report if isinstance(report, list) else [report]
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("cassette"), str):
            raise CommandError(f"{report_path}: expected objects with a 'cassette' path")
        named = Path(entry["cassette"])
        candidates = [named] if named.is_absolute() else [named, report_path.parent / named]
        if any(c.exists() and os.path.samefile(c, cassette) for c in candidates):
            return entry
    raise CommandError(f"{report_path}: no entry for {cassette}")


def _differs(item: dict[str, Any], request: RecordedRequest) -> bool:
    """Whether a report entry describes another request than the one now at its index."""
    return (
        str(item.get("method", request.method)).upper() != request.method
        or item.get("uri", request.uri) != request.uri
        or ("fingerprint" in item and item["fingerprint"] != request_fingerprint(request))
    )


def _unplayed_indexes(
    entry: dict[str, Any], interactions: list[Interaction], where: str
) -> list[int]:
    """The indexes to drop, checked against the cassette as it is now."""
    count = entry.get("interactions")
    if isinstance(count, int) and count > len(interactions):
        raise CommandError(f"{where}: the cassette lost interactions since the report was written")
    indexes = set()
    for item in entry.get("unplayed") or []:
        index = item.get("index") if isinstance(item, dict) else item
        if not isinstance(index, int) or isinstance(index, bool):
            raise CommandError(f"{where}: unplayed entries must be indexes or {{'index': ...}}")
        if not 0 <= index < len(interactions):
            raise CommandError(f"{where}: no interactions[{index}] in the cassette")
        request = interactions[index].request
        if isinstance(item, dict) and _differs(item, request):
            raise CommandError(
                f"{where}: interactions[{index}] is no longer the {item.get('method')} "
                f"{item.get('uri')} request the run reported; the cassette changed since the run"
            )
        indexes.add(index)
    return sorted(indexes)


def _report_cassettes(report_path: Path) -> list[Path]:
    """Every cassette a report names (relative paths: from the report's folder)."""
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CommandError(f"{report_path}: not a JSON unplayed report: {exc}") from None
    entries = report if isinstance(report, list) else [report]
    paths = []
    for entry in entries:
        name = entry.get("cassette") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            raise CommandError(f"{report_path}: expected objects with a 'cassette' path")
        path = Path(name) if Path(name).is_absolute() else report_path.parent / name
        if not path.exists() and not entry.get("unplayed"):
            continue  # a test that made no request: its cassette was never written
        paths.append(path)
    return paths


def _prune(args: argparse.Namespace) -> int:
    if args.file is None:  # the whole report: each cassette it names
        for cassette in _report_cassettes(_existing_file(args.unplayed)):
            _prune(argparse.Namespace(**{**vars(args), "file": str(cassette)}))
        return 0
    file = _existing_file(args.file)
    entry = _report_entry(_existing_file(args.unplayed), file)
    with FileLock(Cassette(file).lock_path, timeout=60):
        text = file.read_text(encoding="utf-8")
        interactions = load_interactions(file)
        drop = _unplayed_indexes(entry, interactions, args.unplayed)
        verb = "would drop" if args.dry_run else "dropping"
        for i in drop:
            request = interactions[i].request
            print(f"{verb} interactions[{i}]: {request.method} {request.uri}")
        print(f"{file}: {verb} {len(drop)} of {len(interactions)} interaction(s)")
        if args.dry_run or not drop:
            return 0
        gone = set(drop)
        if cassette_format(text) == "harness":
            _, new_text = dump_interactions(x for i, x in enumerate(interactions) if i not in gone)
        else:  # keep vcrpy's own layout: drop the items from the document as it is
            data = yaml.load(text, Loader=_Loader)
            data["interactions"] = [x for i, x in enumerate(data["interactions"]) if i not in gone]
            new_text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
        atomic_write(file, new_text)
    return 0


# -- convert -----------------------------------------------------------------------------------


def _vcr_headers(headers: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        grouped.setdefault(name, []).append(value)
    return grouped


def _vcr_body(body: bytes) -> str | bytes:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body  # written as !!binary


def vcr_document(interactions: list[Interaction]) -> dict[str, Any]:
    """A vcrpy (version 1) cassette document with ``interactions``, bodies decoded."""
    items = []
    for interaction in interactions:
        req, resp = interaction.request, interaction.response
        try:
            message = http.HTTPStatus(resp.status).phrase
        except ValueError:
            message = ""
        items.append(
            {
                "request": {
                    "body": _vcr_body(req.body) if req.body else None,
                    "headers": _vcr_headers(req.headers),
                    "method": req.method,
                    "uri": req.uri,
                },
                "response": {
                    "body": {"string": _vcr_body(resp.body)},
                    "headers": _vcr_headers(resp.headers),
                    "status": {"code": resp.status, "message": message},
                },
            }
        )
    return {"interactions": items, "version": 1}


def _convert_file(source: Path, target: Path, to: str) -> int:
    """Convert one cassette; the number of interactions written."""
    redactor = Redactor.from_env()
    interactions = [
        replace(
            i,
            request=redactor.redact_request(i.request),
            response=redactor.redact_response(i.response),
        )
        for i in load_interactions(source)
    ]
    if to == "harness":
        data, text = dump_interactions(interactions)
    else:
        data = vcr_document(interactions)
        text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1_000_000)
    findings = find_secrets(data, text)
    if findings:
        shown = "\n".join(f"  {f}" for f in findings[:10])
        raise CommandError(f"refusing to write {target}: it would contain secrets\n{shown}")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, text)
    return len(interactions)


def _convert(args: argparse.Namespace) -> int:
    source = Path(args.src)
    target = Path(args.dst) if args.dst is not None else source
    if source.is_dir():
        if target.exists() and not target.is_dir():
            raise CommandError(f"{target}: SRC is a directory, so DST must be one too")
        in_place = target.exists() and target.samefile(source)
        pairs = [(f, target / f.relative_to(source)) for f in _cassette_files([str(source)])]
        if not pairs:
            raise CommandError(f"{source}: no *.yaml or *.yml cassette files in it")
        taken = [t for _, t in pairs if t.exists() and not in_place]
        if taken and not args.force:
            raise CommandError(f"{taken[0]}: already exists (pass --force to replace it)")
        for file, _ in pairs:  # read every file first: a bad one stops before any write
            load_interactions(file)
        total = sum(_convert_file(file, destination, args.to) for file, destination in pairs)
        print(
            f"converted {len(pairs)} cassette(s) from {source} into {target} ({args.to} format, "
            f"{total} interaction(s))"
        )
        return 0
    source = _existing_file(args.src)
    if target.exists() and not args.force and not target.samefile(source):
        raise CommandError(f"{target}: already exists (pass --force to replace it)")
    count = _convert_file(source, target, args.to)
    print(f"wrote {target} ({args.to} format, {count} interaction(s))")
    return 0


# -- the parser --------------------------------------------------------------------------------


def add_cassettes_parser(commands: Any) -> None:
    """Add ``cassettes`` and its subcommands to the ``harness`` subparsers ``commands``."""
    parser = commands.add_parser("cassettes", help="list, show, audit, prune, convert cassettes")
    sub = parser.add_subparsers(dest="cassettes_command", required=True)

    listing = sub.add_parser("list", help="cassette files with counts, hosts, dates, size")
    listing.add_argument("dir", nargs="?", default="cassettes", help="default: cassettes/")
    listing.set_defaults(run=_list)

    show = sub.add_parser("show", help="requests and responses, streams reassembled")
    show.add_argument("file", help="the cassette file (harness or vcrpy format)")
    show.add_argument("--index", type=int, help="only interactions[N]")
    show.add_argument("--headers", action="store_true", help="all headers, not just key ones")
    show.add_argument("--raw", action="store_true", help="list stream events, not reassembled")
    show.set_defaults(run=_show)

    audit = sub.add_parser("audit", help="scan for secrets; exit 1 on a finding (pre-commit)")
    audit.add_argument("paths", nargs="*", help="files or directories (default: cassettes/)")
    audit.add_argument("-v", "--verbose", action="store_true", help="a line per clean file too")
    audit.set_defaults(run=_audit)

    prune = sub.add_parser("prune", help="drop the interactions a run reported unplayed")
    prune.add_argument("file", nargs="?", help="one cassette (default: every one in REPORT)")
    prune.add_argument("--unplayed", required=True, metavar="REPORT", help="JSON report of a run")
    prune.add_argument("--dry-run", action="store_true", help="say what would go, change nothing")
    prune.set_defaults(run=_prune)

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
    convert.set_defaults(run=_convert)
