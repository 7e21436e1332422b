"""``harness cassettes audit``: scan cassette files for secrets before they are committed.

A finding is what a write would refuse (the write-time scan, on the decoded cassette), what
redaction would have removed (secret headers, key-like query parameters, URL user-info,
secret-named body fields) and configured secret values; every line of the file is scanned
too, comments included. Exit status 1 on any finding, 2 when a file could not be read.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import yaml

from harness.cli.cassette_files import YAML_LOADER
from harness.replay import (
    CassetteFormatError,
    Interaction,
    Redactor,
    dump_interactions,
    find_secrets,
    load_interactions,
)
from harness.replay.redaction import find_interaction_secrets

__all__ = ["run_audit"]

# A header or query value that is a placeholder, not a secret (vcrpy filters, our REDACTED).
_PLACEHOLDER = re.compile(
    r"(?i)((bearer|basic|token)\s+)?[<\[({*]*"
    r"(redacted|filtered|removed|hidden|masked|scrubbed|dummy|x{3,}|\*{3,})[>\])}*]*"
)


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
        raw = yaml.load(text, Loader=YAML_LOADER)  # a safe loader
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


def run_audit(args: argparse.Namespace) -> int:
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
