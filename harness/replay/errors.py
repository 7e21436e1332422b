"""Exceptions raised by the record/replay layer, all under ``harness.errors.HarnessError``.

HarnessError
└── ReplayError                 anything about cassettes and the replay transport
    ├── CassetteMiss            no recorded interaction matches a request (names the closest)
    ├── CassetteFormatError     a cassette file cannot be read (names file and key path)
    │   └── CassetteVersionError    a cassette written by a newer or unknown format version
    └── SecretLeakError         a write was refused because a secret was found in it

ReplayWarning (a UserWarning) says that the cassette on disk is not what the run recorded (each
case is listed on the class).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import HarnessError

__all__ = [
    "CassetteFormatError",
    "CassetteMiss",
    "CassetteVersionError",
    "ClosestRequest",
    "ReplayError",
    "ReplayWarning",
    "SecretLeakError",
]


class ReplayError(HarnessError):
    """Root of the record/replay errors."""


class ReplayWarning(UserWarning):
    """What a recording run did not write to its cassette, or wrote over (the message names
    the cassette and says why).

    Emitted when:

    - an answer reached the caller but was not recorded: a 401/403/407 in record or rewrite
      mode, a response the caller closed before reading it all, or a stream that ended
      without its wire format's end marker;
    - rewrite mode kept the file as it was, because every answer recorded for it was an
      error (status >= 400) and writing them would drop its recorded successes;
    - rewrite mode will replace a file that is not a readable cassette;
    - a record- or rewrite-mode transport was garbage-collected without being closed, its
      recorded interactions never written.
    """


@dataclass(frozen=True)
class ClosestRequest:
    """A recorded request that nearly matched a missed one, with a diff of what differs."""

    index: int
    method: str
    url: str
    diff: str


class CassetteMiss(ReplayError):
    """No recorded interaction matches the request (and the mode forbids going to the network).

    ``hint``, when given, replaces the closing line that says how to record the request.
    """

    def __init__(
        self,
        *,
        cassette: str,
        mode: str,
        method: str,
        url: str,
        closest: list[ClosestRequest] | None = None,
        reason: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.cassette = cassette
        self.mode = mode
        self.method = method
        self.url = url
        self.closest = list(closest or [])
        self.reason = reason
        lines = [
            f"no recorded interaction in {cassette} matches {method} {url} (mode={mode})"
            + (f": {reason}" if reason else "")
        ]
        if self.closest:
            lines.append("closest recorded requests:")
            for near in self.closest:
                lines.append(f"  interactions[{near.index}]: {near.method} {near.url}")
                lines.extend(f"    {line}" for line in near.diff.splitlines())
        else:
            lines.append("the cassette has no recorded requests")
        lines.append(
            hint or "re-run with --llm-mode=record to add it (or --llm-mode=rewrite to re-record)"
        )
        super().__init__("\n".join(lines))


class CassetteFormatError(ReplayError):
    """A cassette file is malformed; ``path`` and ``key`` say where."""

    def __init__(self, message: str, *, path: str, key: str | None = None) -> None:
        self.path = path
        self.key = key
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {message}")


class CassetteVersionError(CassetteFormatError):
    """A cassette declares a format version this harness cannot read."""


class SecretLeakError(ReplayError):
    """A cassette write was refused because it still contains something that looks like a key."""

    def __init__(self, *, path: str, findings: list[str], hint: str | None = None) -> None:
        self.path = path
        self.findings = list(findings)
        shown = "\n".join(f"  {finding}" for finding in self.findings[:10])
        super().__init__(
            f"refusing to write {path}: it contains what looks like a secret\n{shown}\n"
            + (hint or "redact it (configure the secret value or header) before recording")
        )
