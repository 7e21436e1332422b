"""``ReplayTransport``: record and replay HTTP for httpx and httpx2 clients, sync and async."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from harness.replay.adapters import Library, library_for
from harness.replay.bodies import decode_content, split_events
from harness.replay.cassette import Cassette
from harness.replay.errors import CassetteMiss, ReplayError
from harness.replay.matching import (
    InteractionIndex,
    Matcher,
    is_volatile_header,
    request_fingerprint,
)
from harness.replay.models import Interaction, RecordedRequest, RecordedResponse
from harness.replay.redaction import Redactor

__all__ = ["MODES", "Mode", "ReplayTransport", "resolve_mode"]

Mode = Literal["replay", "record", "rewrite", "live"]
MODES: tuple[str, ...] = ("replay", "record", "rewrite", "live")
"""The modes, in order of how much they let reach the network."""

_ALIASES = {"none": "replay", "new_episodes": "record", "all": "rewrite"}


def resolve_mode(mode: str, cassette_path: str | os.PathLike[str]) -> Mode:
    """A mode name or vcrpy alias (none, new_episodes, all, once) as one of ``MODES``."""
    name = mode.lower()
    if name == "once":  # vcrpy: record a new cassette, never touch an existing one
        return "replay" if os.path.exists(cassette_path) else "record"
    name = _ALIASES.get(name, name)
    if name not in MODES:
        known = ", ".join([*MODES, *_ALIASES, "once"])
        raise ValueError(f"unknown record/replay mode {mode!r}; expected one of: {known}")
    return name  # type: ignore[return-value]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class ReplayTransport:
    """A transport for ``httpx``/``httpx2`` ``Client`` and ``AsyncClient`` backed by a cassette.

    ``replay``: answer from the cassette; a miss raises CassetteMiss and nothing leaves the
    machine. ``record``: answer what matches, send the rest to ``upstream`` and record it.
    ``rewrite``: send everything and replace the cassette. ``live``: pass everything through.
    ``upstream`` defaults to the client library's own HTTP transport. ``on_interaction`` is
    called with ``(request, interaction, replayed)`` for each interaction replayed or recorded
    (a recorded one once its body has been read), e.g. to meter tokens; it must not raise.
    ``run_started_at``: in ``rewrite`` mode, interactions recorded before it are dropped
    (default: when this transport was made); give several transports of one run the same
    start so a cassette they share keeps what each of them recorded.
    """

    def __init__(
        self,
        cassette_path: str | os.PathLike[str],
        mode: str = "replay",
        *,
        upstream: Any = None,
        matcher: Matcher | None = None,
        redactor: Redactor | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _utc_now,
        on_interaction: Callable[[Any, Interaction, bool], None] | None = None,
        run_started_at: datetime | None = None,
    ) -> None:
        self.path = Path(cassette_path)
        self.mode: Mode = resolve_mode(mode, self.path)
        self.matcher = matcher or Matcher()
        self.redactor = redactor if redactor is not None else Redactor.from_env()
        self._upstream = upstream
        self._owned: dict[tuple[str, bool], Any] = {}
        self._clock = clock
        self._now = now
        self._on_interaction = on_interaction
        # rewrite keeps only interactions recorded since the run started: by default this
        # transport's start; a shared start keeps what earlier transports of the run recorded
        self._started_at = now() if run_started_at is None else run_started_at
        self._lock = threading.Lock()
        existed = self.path.exists()
        self._existed = existed
        if self.mode in ("replay", "record"):
            self.cassette = Cassette.load(self.path)
        else:  # rewrite drops what is there; live never reads or writes
            self.cassette = Cassette(self.path)
        self._index = InteractionIndex(self.cassette.interactions, self.matcher)

    # -- the transport interface ------------------------------------------------------------

    def handle_request(self, request: Any, *, upstream: Any = None) -> Any:
        """Answer a sync client's request (httpx or httpx2); ``upstream`` overrides for this one."""
        library = library_for(request)
        request.read()
        if self.mode == "live":
            return self._upstream_for(library, False, upstream).handle_request(request)
        recorded = self._recorded_request(request)
        replayed = self._replay(library, recorded, request)
        if replayed is not None:
            return replayed
        at, started = self._now(), self._clock()
        answer = self._upstream_for(library, False, upstream).handle_request(request)
        store = self._on_recorded(recorded, answer, at, started, request)
        return library.teed_response(answer, request, store, is_async=False)

    async def handle_async_request(self, request: Any, *, upstream: Any = None) -> Any:
        """Answer an async client's request (httpx or httpx2); ``upstream`` as in the sync one."""
        library = library_for(request)
        await request.aread()
        if self.mode == "live":
            return await self._upstream_for(library, True, upstream).handle_async_request(request)
        recorded = self._recorded_request(request)
        replayed = self._replay(library, recorded, request)
        if replayed is not None:
            return replayed
        at, started = self._now(), self._clock()
        answer = await self._upstream_for(library, True, upstream).handle_async_request(request)
        store = self._on_recorded(recorded, answer, at, started, request)
        return library.teed_response(answer, request, store, is_async=True)

    def close(self) -> None:
        """Close the upstream transport(s)."""
        for transport in self._upstreams():
            close = getattr(transport, "close", None)
            if close is not None:
                close()

    async def aclose(self) -> None:
        """Close the upstream transport(s), async ones with ``aclose``."""
        for transport in self._upstreams():
            aclose = getattr(transport, "aclose", None)
            if aclose is not None:
                await aclose()
            elif (close := getattr(transport, "close", None)) is not None:
                close()

    def __enter__(self) -> ReplayTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> ReplayTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- reporting ---------------------------------------------------------------------------

    def unplayed(self) -> list[Interaction]:
        """Recorded interactions that no request has used (candidates for pruning)."""
        return [self._index.interactions[i] for i in self._index.unplayed()]

    def assert_all_played(self) -> None:
        """Strict mode: raise ReplayError if some recorded interaction was never used."""
        missing = self._index.unplayed()
        if missing and self.mode in ("replay", "record"):
            listed = ", ".join(
                f"[{i}] {self._index.interactions[i].request.method} "
                f"{self._index.interactions[i].request.uri}"
                for i in missing[:5]
            )
            raise ReplayError(
                f"{len(missing)} interaction(s) in {self.path} were never played: {listed}"
            )

    def write_unplayed_report(self, path: str | os.PathLike[str]) -> None:
        """Write the unplayed interactions as JSON, for ``harness cassettes prune --unplayed``.

        The report is ``{"version": 1, "cassette": <absolute path>, "interactions": <count>,
        "unplayed": [{"index": i, "method": ..., "uri": ..., "fingerprint": ...}, ...]}``;
        ``prune`` checks method, uri and fingerprint (``request_fingerprint``) to make sure the
        cassette did not change since.
        """
        interactions = self._index.interactions
        report = {
            "version": 1,
            "cassette": os.path.abspath(self.path),
            "interactions": len(interactions),
            "unplayed": [
                {
                    "index": i,
                    "method": interactions[i].request.method,
                    "uri": interactions[i].request.uri,
                    "fingerprint": request_fingerprint(interactions[i].request),
                }
                for i in self._index.unplayed()
            ],
        }
        Path(path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    # -- internals ---------------------------------------------------------------------------

    def _recorded_request(self, request: Any) -> RecordedRequest:
        headers = [
            (name.lower(), value)
            for name, value in request.headers.multi_items()
            if not is_volatile_header(name)
        ]
        headers, body = decode_content(headers, request.content)
        raw = RecordedRequest(
            method=request.method, uri=str(request.url), headers=headers, body=body
        )
        return self.redactor.redact_request(raw)

    def _replay(self, library: Library, recorded: RecordedRequest, request: Any) -> Any:
        if self.mode == "rewrite":
            return None
        with self._lock:
            hit = self._index.take(recorded)
        if hit is not None:
            if self._on_interaction is not None:
                self._on_interaction(request, hit[1], True)
            response = hit[1].response
            chunks = split_events(response.headers, response.body)
            return library.replay_response(response.status, response.headers, chunks, request)
        if self.mode == "replay":
            raise CassetteMiss(
                cassette=str(self.path),
                mode=self.mode,
                method=recorded.method,
                url=recorded.uri,
                closest=self._index.closest(recorded),
                reason=None if self._existed else "the cassette file does not exist",
            )
        return None

    def _on_recorded(
        self,
        recorded: RecordedRequest,
        upstream: Any,
        at: datetime,
        started: float,
        request: Any = None,
    ) -> Callable[[bytes, bool], None]:
        status = upstream.status_code
        headers = [(name.lower(), value) for name, value in upstream.headers.multi_items()]

        def store(body: bytes, complete: bool) -> None:
            decoded_headers, decoded = decode_content(headers, body)
            events = split_events(decoded_headers, decoded) if not complete else []
            # SDKs close an OpenAI-style stream at its ``data: [DONE]`` event: that is whole.
            if events and events[-1].strip() == b"data: [DONE]":
                complete = True
            if not complete:
                # A cut-short body replayed later would be a silently truncated answer.
                import warnings

                warnings.warn(
                    f"{recorded.method} {recorded.uri} was not recorded in {self.path}: the "
                    f"caller closed the response after {len(body)} bytes, before reading it "
                    "all; read the whole response to record it",
                    stacklevel=2,
                )
                return
            response = self.redactor.redact_response(
                RecordedResponse(status=status, headers=decoded_headers, body=decoded)
            )
            interaction = Interaction(
                request=recorded,
                response=response,
                recorded_at=at,
                duration=self._clock() - started,
            )
            self.cassette.add(interaction)
            self.cassette.save(
                drop_recorded_before=self._started_at if self.mode == "rewrite" else None,
                redactor=self.redactor,
            )
            if self._on_interaction is not None:
                self._on_interaction(request, interaction, False)

        return store

    def _upstream_for(self, library: Library, is_async: bool, override: Any = None) -> Any:
        # use_cassette passes each client's own transport, so its proxy and limits still apply
        if override is not None:
            return override
        if self._upstream is not None:
            return self._upstream
        key = (library.module.__name__, is_async)
        with self._lock:
            if key not in self._owned:
                self._owned[key] = library.default_upstream(is_async)
            return self._owned[key]

    def _upstreams(self) -> list[Any]:
        return [self._upstream] if self._upstream is not None else list(self._owned.values())
