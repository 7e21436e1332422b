"""Writing cassettes in vcrpy's format: a vcrpy or pytest-recording project keeps its files.

harness reads vcrpy cassettes as they are (:mod:`harness.replay.reading`); recording into one
keeps vcrpy's layout, so pytest-recording (or vcrpy) can still replay the file::

    interactions:
    - request:
        body: '{"model": ...}'
        headers:
          content-type:
          - application/json
        method: POST
        uri: https://api.example.com/v1/chat
      response:
        body:
          string: '{"id": ...}'
        headers:
          content-type:
          - application/json
        status:
          code: 200
          message: OK
    version: 1

Bodies are written decoded (harness stores no content-encoding), so ``content-encoding`` and
the framing headers (``content-length``, ``transfer-encoding``) are left out; a body that is
not UTF-8 text is written as ``!!binary``. harness's ``recorded_at`` and ``duration`` have no
place in this format and are not written.
"""

from __future__ import annotations

import http
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from harness.replay.models import Interaction

__all__ = ["dump_vcr", "is_vcr_cassette", "is_vcr_text"]

_DROPPED_RESPONSE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
_PREFIX_BYTES = 4096


def is_vcr_text(raw: bytes) -> bool:
    """Whether cassette bytes are vcrpy's format (no top-level ``format:`` key, ``version: 1``)."""
    for line in raw[:_PREFIX_BYTES].splitlines():
        if not line.strip() or line.startswith((b"#", b"---", b"%")):
            continue
        return line.startswith((b"interactions:", b"version:"))
    return False


def is_vcr_cassette(path: str | os.PathLike[str]) -> bool:
    """Whether the file at ``path`` exists and is a vcrpy-format cassette."""
    try:
        with Path(path).open("rb") as handle:
            return is_vcr_text(handle.read(_PREFIX_BYTES))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return False


def _headers(headers: Iterable[tuple[str, str]], dropped: frozenset[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        if name.lower() not in dropped:
            grouped.setdefault(name, []).append(value)
    return grouped


def _body(body: bytes) -> str | bytes | None:
    if not body:
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body  # PyYAML writes bytes as !!binary, which vcrpy reads back as bytes


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _node(interaction: Interaction) -> dict[str, Any]:
    req, resp = interaction.request, interaction.response
    response_body = _body(resp.body)
    return {
        "request": {
            "body": _body(req.body),
            "headers": _headers(req.headers, frozenset()),
            "method": req.method,
            "uri": req.uri,
        },
        "response": {
            "body": {"string": "" if response_body is None else response_body},
            "headers": _headers(resp.headers, _DROPPED_RESPONSE_HEADERS),
            "status": {"code": resp.status, "message": _reason(resp.status)},
        },
    }


def dump_vcr(interactions: Iterable[Interaction]) -> str:
    """The vcrpy-format YAML text (``version: 1``) of ``interactions``."""
    document = {"interactions": [_node(i) for i in interactions], "version": 1}
    dumper = getattr(yaml, "CSafeDumper", None) or yaml.SafeDumper
    return str(yaml.dump(document, Dumper=dumper, sort_keys=False, allow_unicode=True))
