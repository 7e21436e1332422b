"""``ReplayTransport``: record and replay HTTP for httpx and httpx2 clients, sync and async."""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from harness.replay.adapters import Library, library_for
from harness.replay.bodies import decode_content, split_events
from harness.replay.cassette import Cassette, load_interactions
from harness.replay.errors import CassetteFormatError, CassetteMiss, ReplayError, ReplayWarning
from harness.replay.files import unwritable_reason
from harness.replay.matching import (
    InteractionIndex,
    Matcher,
    is_volatile_header,
    request_fingerprint,
)
from harness.replay.models import Interaction, RecordedRequest, RecordedResponse
from harness.replay.reading import gc_paused
from harness.replay.redaction import Redactor
from harness.replay.stream_ends import stream_end

__all__ = ["MODES", "Mode", "ReplayTransport", "resolve_mode"]

Mode = Literal["replay", "record", "rewrite", "live"]
MODES: tuple[str, ...] = ("replay", "record", "rewrite", "live")
"""The modes, in order of how much they let reach the network."""

_ALIASES = {"none": "replay", "new_episodes": "record", "all": "rewrite"}

NOT_RECORDED_STATUSES = frozenset({401, 403, 407})
"""Answers that say the credentials were refused: passed on, never recorded."""
NOTE_EXTENSION = "harness.note"
"""Response extension holding a hint for whoever turns the response into an error."""
BUFFER_BYTES = 8 * 1024 * 1024
"""Record mode writes its buffered interactions once their YAML reaches this size (default)."""
BUFFER_SECONDS = 30.0
"""... or once the oldest of them has waited this long (default; checked at each recording)."""


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


def _counted(statuses: list[int]) -> str:
    """``[404, 404, 500]`` as ``404 (2 times), 500``."""
    counts: dict[int, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{s} ({n} times)" if n > 1 else str(s) for s, n in sorted(counts.items()))


def _warn_unwritten(cassette: Cassette, mode: str) -> None:
    """A transport dropped without ``close``: what it recorded since its last write is lost."""
    if cassette.pending:
        why = (
            "rewrite replaces the cassette at close"
            if mode == "rewrite"
            else "record mode buffers what it records and writes it at close or flush()"
        )
        warnings.warn(
            f"a {mode}-mode ReplayTransport for {cassette.path} was never closed: "
            f"{cassette.pending} recorded interaction(s) were not written; close the client "
            f"or the transport ({why})",
            ReplayWarning,
            stacklevel=2,
        )


class ReplayTransport:
    """A transport for ``httpx``/``httpx2`` ``Client`` and ``AsyncClient`` backed by a cassette.

    ``replay``: answer from the cassette; a miss raises CassetteMiss and nothing leaves the
    machine. ``record``: answer what matches, send the rest to ``upstream`` and record it
    (once its body has been read); new interactions are buffered and merged into the file
    (under a lock, keeping what other writers saved meanwhile) at ``flush``/``close``, and
    before that once their YAML reaches ``buffer_bytes`` or the oldest has waited
    ``buffer_seconds`` (checked as each interaction is recorded; ``buffer_bytes=0`` writes
    each one at once). ``rewrite``: send everything; at ``close`` the cassette is replaced by
    what was recorded, if anything was and not only errors: when every recorded answer is an
    error (status >= 400: a wrong URL, a rate limit, an outage) the recorded successes on disk
    are kept and a ReplayWarning names the statuses (record mode records error answers like any
    other). ``live``: pass everything through. The file is read and checked when the transport
    is made, before any request: in record mode a corrupt file (or one holding a secret that
    redaction cannot remove) raises; in rewrite mode it is replaced, with a warning; in both, a
    cassette whose folder cannot be made or written (a file on its path, no permission) raises
    CassetteFormatError.

    Not recorded, and the cassette left as it is: a 401/403/407 answer (the credentials were
    refused; the response still reaches the caller, with a ReplayWarning and a hint in the
    response's ``harness.note`` extension), a stream that the caller closed early or that
    ended without its wire format's end marker (ReplayWarning), and an interaction holding a
    key-like string (its call raises SecretLeakError; later ones record normally).
    ``upstream`` defaults to the client library's own HTTP transport. ``on_interaction`` is
    called with ``(request, interaction, replayed)`` for each interaction replayed or recorded
    (a recorded one once its body has been read), e.g. to meter tokens; it must not raise.
    Replay mode: each miss is kept in ``misses``, and ``on_miss`` (if given) is called with
    ``(request, miss)`` before the CassetteMiss is raised (it may raise another error instead);
    ``miss_hint`` replaces the miss message's closing line (how to record the request).
    ``allow_repeats``: a request whose recorded interactions were all played gets the last of
    them again (vcrpy's ``allow_playback_repeats``). ``ignore_hosts``: requests to these hosts
    go to the upstream in every mode, neither replayed nor recorded (vcrpy's ``ignore_hosts``).
    ``run_started_at``: in ``rewrite`` mode, interactions recorded before it are dropped
    (default: when this transport was made); give several transports of one run the same
    start so a cassette they share keeps what each of them recorded. A record or rewrite
    transport garbage-collected with unwritten interactions warns (ReplayWarning).
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
        buffer_bytes: int = BUFFER_BYTES,
        buffer_seconds: float = BUFFER_SECONDS,
        on_miss: Callable[[Any, CassetteMiss], None] | None = None,
        miss_hint: str | None = None,
        allow_repeats: bool = False,
        ignore_hosts: Iterable[str] = (),
    ) -> None:
        if buffer_bytes < 0 or buffer_seconds < 0:
            raise ValueError(
                f"buffer_bytes and buffer_seconds must be >= 0, got {buffer_bytes} and "
                f"{buffer_seconds}"
            )
        self.path = Path(cassette_path)
        self.buffer_bytes = buffer_bytes
        self.buffer_seconds = buffer_seconds
        self._buffered_since: float | None = None  # clock() at the oldest unwritten recording
        self.mode: Mode = resolve_mode(mode, self.path)
        self.matcher = matcher or Matcher()
        self.redactor = redactor if redactor is not None else Redactor.from_env()
        self._upstream = upstream
        self._owned: dict[tuple[str, bool], Any] = {}
        self._clock = clock
        self._now = now
        self._on_interaction = on_interaction
        self._on_miss = on_miss
        self._miss_hint = miss_hint
        self.misses: list[CassetteMiss] = []
        self.ignore_hosts = frozenset(h.lower() for h in ignore_hosts)
        # rewrite keeps only interactions recorded since the run started: by default this
        # transport's start; a shared start keeps what earlier transports of the run recorded
        self._started_at = now() if run_started_at is None else run_started_at
        self._lock = threading.Lock()
        existed = self.path.exists()
        self._existed = existed
        self._replace_unreadable = False
        if self.mode in ("record", "rewrite"):  # found now, not after an answer was paid for
            reason = unwritable_reason(self.path)
            if reason is not None:
                raise CassetteFormatError(f"cannot be written: {reason}", path=str(self.path))
        if self.mode == "replay":
            self.cassette = Cassette.load(self.path)
        elif self.mode == "record":  # checked now, not after an answer was paid for
            self.cassette = Cassette.load_for_recording(self.path, self.redactor)
        else:  # rewrite drops what is there; live never reads or writes
            self.cassette = Cassette(self.path)
            if self.mode == "rewrite" and existed:
                self._check_replaceable()
        # The match index is built by the first request (or report) that needs it: opening a
        # large cassette costs no key per interaction, and a transport never used pays none.
        self._indexed = list(self.cassette.interactions)
        self._empty_at_open = not self._indexed
        self._allow_repeats = allow_repeats
        self._built_index: InteractionIndex | None = None
        self._index_lock = threading.Lock()
        if self.mode in ("record", "rewrite"):
            weakref.finalize(self, _warn_unwritten, self.cassette, self.mode)

    @property
    def _index(self) -> InteractionIndex:
        """The index of the interactions the cassette held when this transport opened it."""
        index = self._built_index
        if index is None:
            with self._index_lock:
                index = self._built_index
                if index is None:
                    with gc_paused():  # one key per interaction: no collector passes meanwhile
                        index = InteractionIndex(
                            self._indexed, self.matcher, allow_repeats=self._allow_repeats
                        )
                    self._built_index, self._indexed = index, []
        return index

    @property
    def reaches_upstream(self) -> bool:
        """Whether requests may reach the upstream (record, rewrite, live), so need a real key."""
        return self.mode != "replay"

    def _check_replaceable(self) -> None:
        """Rewrite mode: a corrupt file will be replaced (warn now); a directory cannot be."""
        if self.path.is_dir():
            raise CassetteFormatError("is a directory, not a cassette file", path=str(self.path))
        try:
            load_interactions(self.path)
        except CassetteFormatError as error:
            self._replace_unreadable = True
            warnings.warn(
                f"{self.path} is not a readable cassette and rewrite mode will replace it: {error}",
                ReplayWarning,
                stacklevel=3,
            )

    # -- the transport interface ------------------------------------------------------------

    def handle_request(self, request: Any, *, upstream: Any = None) -> Any:
        """Answer a sync client's request (httpx or httpx2); ``upstream`` overrides for this one."""
        library = library_for(request)
        request.read()
        if self.mode == "live" or self._ignored(request):
            return self._upstream_for(library, False, upstream).handle_request(request)
        recorded = self._recorded_request(request)
        replayed = self._replay(library, recorded, request)
        if replayed is not None:
            return replayed
        at, started = self._now(), self._clock()
        answer = self._upstream_for(library, False, upstream).handle_request(request)
        if answer.status_code in NOT_RECORDED_STATUSES:
            return self._refused(answer, recorded)
        store = self._on_recorded(recorded, answer, at, started, request)
        return library.teed_response(answer, request, store, is_async=False)

    async def handle_async_request(self, request: Any, *, upstream: Any = None) -> Any:
        """Answer an async client's request (httpx or httpx2); ``upstream`` as in the sync one."""
        library = library_for(request)
        await request.aread()
        if self.mode == "live" or self._ignored(request):
            return await self._upstream_for(library, True, upstream).handle_async_request(request)
        recorded = self._recorded_request(request)
        replayed = self._replay(library, recorded, request)
        if replayed is not None:
            return replayed
        at, started = self._now(), self._clock()
        answer = await self._upstream_for(library, True, upstream).handle_async_request(request)
        if answer.status_code in NOT_RECORDED_STATUSES:
            return self._refused(answer, recorded)
        store = self._on_recorded(recorded, answer, at, started, request)
        return library.teed_response(answer, request, store, is_async=True)

    def flush(self) -> None:
        """Write what was recorded and not yet written (if anything); ``close`` calls it.

        Record mode merges the buffered interactions into the file. Rewrite mode replaces the
        cassette: interactions recorded before the run started (see ``run_started_at``) are
        dropped; those other transports of the run wrote are kept. If the result would hold
        only error answers while dropping recorded successes, the file is left as it is (a
        ReplayWarning names the statuses) and what was recorded stays buffered: a later flush
        that has a success writes it all, ``close`` forgets it. Replay and live: no-op.
        """
        if self.mode == "record":
            with self._lock:
                self._buffered_since = None
            self.cassette.save(redactor=self.redactor)
            return
        if self.mode != "rewrite" or not self.cassette.pending:
            return
        written = self.cassette.save(
            drop_recorded_before=self._started_at,
            redactor=self.redactor,
            replace_unreadable=self._replace_unreadable,
            keep_successes=True,
        )
        if written:
            self._replace_unreadable = False
            return
        statuses = [i.response.status for i in self.cassette.pending_interactions]
        warnings.warn(
            f"rewrite left {self.path} as it was: every answer recorded for it was an error "
            f"({_counted(statuses)}) and writing them would drop its recorded successes; check "
            "the base_url, model and key used for recording, or the upstream's health (record "
            "mode records error answers)",
            ReplayWarning,
            stacklevel=2,
        )

    def _buffered(self) -> None:
        """Record mode, after an interaction was added: write the buffer if it is full or old."""
        now = self._clock()
        with self._lock:
            if self._buffered_since is None:
                self._buffered_since = now
            due = (
                self.cassette.pending_bytes >= self.buffer_bytes
                or now - self._buffered_since >= self.buffer_seconds
            )
        if due:
            self.flush()

    def _final_flush(self) -> None:
        try:
            self.flush()
        finally:
            if self.mode == "rewrite":  # left unwritten on purpose (flush warned): no more warning
                self.cassette.discard_pending()

    def close(self) -> None:
        """Write what was recorded and not yet written, then close the upstream transport(s)."""
        try:
            self._final_flush()
        finally:
            for transport in self._upstreams():
                close = getattr(transport, "close", None)
                if close is not None:
                    close()

    async def aclose(self) -> None:
        """Write what was recorded and not yet written, then close the upstream transport(s)."""
        try:
            self._final_flush()
        finally:
            await self._aclose_upstreams()

    async def _aclose_upstreams(self) -> None:
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
        report = self.unplayed_report()
        Path(path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    def unplayed_report(self) -> dict[str, Any]:
        """What :meth:`write_unplayed_report` writes, as a dict."""
        interactions = self._index.interactions
        return {
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

    # -- internals ---------------------------------------------------------------------------

    def _ignored(self, request: Any) -> bool:
        """Whether ``request`` goes to a host in ``ignore_hosts`` (past the cassette)."""
        return bool(self.ignore_hosts) and str(request.url.host).lower() in self.ignore_hosts

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
        if self.mode == "rewrite" or (self.mode == "record" and self._empty_at_open):
            return None  # nothing recorded before this transport could match
        with self._lock:
            hit = self._index.take(recorded)
        if hit is not None:
            if self._on_interaction is not None:
                self._on_interaction(request, hit[1], True)
            response = hit[1].response
            chunks = split_events(response.headers, response.body)
            return library.replay_response(response.status, response.headers, chunks, request)
        if self.mode == "replay":
            miss = CassetteMiss(
                cassette=str(self.path),
                mode=self.mode,
                method=recorded.method,
                url=recorded.uri,
                closest=self._index.closest(recorded),
                reason=None if self._existed else "the cassette file does not exist",
                hint=self._miss_hint,
            )
            with self._lock:
                self.misses.append(miss)
            if self._on_miss is not None:
                self._on_miss(request, miss)
            raise miss
        return None

    def _refused(self, answer: Any, recorded: RecordedRequest) -> Any:
        """A 401/403/407 answer: handed on unrecorded, with a hint about the credentials."""
        status = answer.status_code
        what = "proxy credentials" if status == 407 else "API key (and its permissions)"
        note = (
            f"harness: the {status} answer to {recorded.method} {recorded.uri} was not recorded "
            f"in {self.path} (mode={self.mode}; the cassette is unchanged); check the {what} "
            "used for recording"
        )
        answer.extensions[NOTE_EXTENSION] = note
        warnings.warn(note, ReplayWarning, stacklevel=3)
        return answer

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
            end = stream_end(decoded_headers, decoded)
            # A cut-short body replayed later would be a silently truncated answer. SDKs close
            # a stream at its closing event (``data: [DONE]``, ``message_stop``): that is whole.
            if not complete and not end.closed:
                warnings.warn(
                    f"{recorded.method} {recorded.uri} was not recorded in {self.path}: the "
                    f"caller closed the response after {len(body)} bytes, before reading it "
                    "all; read the whole response to record it",
                    ReplayWarning,
                    stacklevel=2,
                )
                return
            if end.missing is not None:
                warnings.warn(
                    f"{recorded.method} {recorded.uri} was not recorded in {self.path}: the "
                    f"stream ended without its end marker ({end.missing}), so the answer may "
                    "be cut short",
                    ReplayWarning,
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
            # SecretLeakError here drops this interaction for good (its call raises)
            self.cassette.add(interaction, check=True)
            if self.mode == "record":  # rewrite replaces the file at close
                self._buffered()
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
