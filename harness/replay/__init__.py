"""Record/replay transports and cassettes for httpx and httpx2 (HTTP and files only)."""

from __future__ import annotations

from harness.replay.cassette import Cassette, dump_interactions, load_interactions
from harness.replay.errors import (
    CassetteFormatError,
    CassetteMiss,
    CassetteVersionError,
    ReplayError,
    ReplayWarning,
    SecretLeakError,
)
from harness.replay.faults import (
    CutStreamFault,
    Fault,
    Faults,
    FaultTransport,
    Injection,
    ResetFault,
    SlowFirstByteFault,
    StatusFault,
    TimeoutFault,
)
from harness.replay.matching import InteractionIndex, Matcher, RequestKey
from harness.replay.models import Interaction, RecordedRequest, RecordedResponse
from harness.replay.patching import CassetteContext, use_cassette
from harness.replay.redaction import Redactor, find_secrets
from harness.replay.transport import MODES, ReplayTransport, resolve_mode

__all__ = [
    "MODES",
    "Cassette",
    "CassetteContext",
    "CassetteFormatError",
    "CassetteMiss",
    "CassetteVersionError",
    "CutStreamFault",
    "Fault",
    "FaultTransport",
    "Faults",
    "Injection",
    "Interaction",
    "InteractionIndex",
    "Matcher",
    "RecordedRequest",
    "RecordedResponse",
    "Redactor",
    "ReplayError",
    "ReplayTransport",
    "ReplayWarning",
    "RequestKey",
    "ResetFault",
    "SecretLeakError",
    "SlowFirstByteFault",
    "StatusFault",
    "TimeoutFault",
    "dump_interactions",
    "find_secrets",
    "load_interactions",
    "resolve_mode",
    "use_cassette",
]
