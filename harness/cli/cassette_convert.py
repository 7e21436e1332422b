"""``harness cassettes convert``: vcrpy -> harness format, or back; a file or a whole folder.

Every interaction is redacted on the way, and a result that would still hold a secret is
refused before anything is written.
"""

from __future__ import annotations

import argparse
import http
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from harness.cli.cassette_files import YAML_DUMPER, CommandError, cassette_files, existing_file
from harness.replay import Interaction, Redactor, dump_interactions, find_secrets, load_interactions
from harness.replay.cassette import atomic_write

__all__ = ["run_convert", "vcr_document"]


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
        text = yaml.dump(
            data, Dumper=YAML_DUMPER, sort_keys=False, allow_unicode=True, width=1_000_000
        )
    findings = find_secrets(data, text)
    if findings:
        shown = "\n".join(f"  {f}" for f in findings[:10])
        raise CommandError(f"refusing to write {target}: it would contain secrets\n{shown}")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, text)
    return len(interactions)


def run_convert(args: argparse.Namespace) -> int:
    source = Path(args.src)
    target = Path(args.dst) if args.dst is not None else source
    if source.is_dir():
        if target.exists() and not target.is_dir():
            raise CommandError(f"{target}: SRC is a directory, so DST must be one too")
        in_place = target.exists() and target.samefile(source)
        pairs = [(f, target / f.relative_to(source)) for f in cassette_files([str(source)])]
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
    source = existing_file(args.src)
    if target.exists() and not args.force and not target.samefile(source):
        raise CommandError(f"{target}: already exists (pass --force to replace it)")
    count = _convert_file(source, target, args.to)
    print(f"wrote {target} ({args.to} format, {count} interaction(s))")
    return 0
