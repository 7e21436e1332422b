"""The pytest plugin's per-test objects: the active cassette, the ledger, the ``llm`` factory.

No pytest here (``harness.pytest_plugin`` wires these into fixtures).
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2

from harness._http import build_async_client
from harness.config import LLMConfig, LLMType, ModelsConfig
from harness.costs import CostManager
from harness.errors import ConfigError
from harness.providers import BaseLLM, create_llm_instance
from harness.pytest_plugin.summary import TestRecord, usage_of
from harness.pytest_plugin.unplayed import unplayed_entry
from harness.replay import (
    CassetteMiss,
    FaultTransport,
    Interaction,
    ReplayTransport,
    resolve_mode,
)
from harness.replay.transport import Mode

__all__ = ["LLMCassette", "LLMFactory", "TestState"]

_METERED = "harness.metered"  # request extension: a harness provider bills this call itself


class LLMCassette:
    """The cassette a test runs on: its file, mode, and what was played and recorded."""

    def __init__(self, path: Path | None, mode: str, strict: bool) -> None:
        self.path = path  # None: no cassette (faults only), requests pass through
        # resolved once (vcrpy aliases; "once" looks at the file): what the test really does
        self.mode: Mode = resolve_mode(mode, path if path is not None else "")
        self.strict = strict
        self.transport: ReplayTransport | None = None
        self.fault_transport: FaultTransport | None = None
        self.played: list[Interaction] = []
        self.recorded: list[Interaction] = []

    @property
    def interactions(self) -> list[Interaction]:
        """Every interaction in the cassette now (read from the file, and recorded since)."""
        return [] if self.transport is None else list(self.transport.cassette.interactions)

    @property
    def unplayed(self) -> list[Interaction]:
        """Interactions in the file that no request of this test used."""
        if self.transport is None or self.path is None:
            return []
        return self.transport.unplayed()

    @property
    def requests(self) -> int:
        """Requests answered through the cassette (replayed plus recorded)."""
        return len(self.played) + len(self.recorded)


class TestState:
    """One test's ledger and cassette, turned into a TestRecord at teardown."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, nodeid: str, budget: Decimal | None) -> None:
        self.costs = CostManager(max_budget=budget)
        self.record = TestRecord(nodeid=nodeid)
        self.unmetered = 0  # requests whose response reported no usage
        self.cassette: LLMCassette | None = None
        self._missed: set[tuple[str, str, bytes]] = set()

    def repeats_a_miss(self, request: Any, miss: CassetteMiss) -> bool:
        """Whether ``request`` already missed the cassette in this test (a client's retry:
        replay mode misses it again, whatever the wait); notes it otherwise."""
        content = getattr(request, "content", b"") if request is not None else b""
        key = (miss.method, miss.url, bytes(content))
        if key in self._missed:
            return True
        self._missed.add(key)
        return False

    @property
    def misses(self) -> list[CassetteMiss]:
        """The cassette misses of this test, in order."""
        cassette = self.cassette
        if cassette is None or cassette.transport is None:
            return []
        return list(cassette.transport.misses)

    def observe(self, request: Any, interaction: Interaction, replayed: bool) -> None:
        cassette = self.cassette
        if cassette is not None:
            (cassette.played if replayed else cassette.recorded).append(interaction)
        if request is not None and request.extensions.get(_METERED):
            return
        usage, model = usage_of(interaction)
        if usage is None:
            self.unmetered += 1
        else:
            self.costs.update(usage, model or "unknown")

    def finish(self, rootdir: Path, *, failed: bool = False) -> TestRecord:
        """The test's record, with its cassette's unplayed entry (merged over the run later)."""
        record = self.record
        totals = self.costs.get_costs()
        record.requests = totals.requests_count + self.unmetered
        record.prompt_tokens = totals.prompt_tokens
        record.completion_tokens = totals.completion_tokens
        record.cost = None if totals.unpriced_requests else str(totals.total_cost)
        cassette = self.cassette
        if cassette is not None:
            record.mode = cassette.mode
            if cassette.path is not None:
                record.cassette = _shown(cassette.path, rootdir)
                record.recorded = len(cassette.recorded)
                record.unplayed = len(cassette.unplayed)
                if cassette.transport is not None:
                    record.unplayed_report = unplayed_entry(cassette.transport, failed=failed)
        return record


def _shown(path: Path, rootdir: Path) -> str:
    try:
        return str(path.resolve().relative_to(rootdir.resolve()))
    except ValueError:
        return str(path)


async def _mark_metered(request: httpx2.Request) -> None:
    request.extensions[_METERED] = True


class LLMFactory:
    """``llm("name")``: a provider from the models config, on the test's cassette and ledger.

    Replay mode needs no API key (the cassette answers); in record, rewrite and live mode a
    missing key fails at once with the variable to set. ``overrides`` update the config.
    """

    def __init__(
        self, models: ModelsConfig | None, cassette: LLMCassette, costs: CostManager
    ) -> None:
        self.models = models
        self.cassette = cassette
        self.costs = costs
        self.clients: list[httpx2.AsyncClient] = []

    def __call__(self, name: str | LLMConfig, **overrides: Any) -> BaseLLM:
        """The provider for ``name`` (a model name or api_type in the config, or an LLMConfig)."""
        if isinstance(name, LLMConfig):
            config = name
        elif self.models is None:
            raise ConfigError(
                f"llm({name!r}): no models config; pass --llm-config FILE, set llm_config in "
                "the ini file, or override the llm_models_config fixture"
            )
        else:
            config = self.models.get(name)
        if overrides:
            config = config.model_copy(update=overrides)
        if config.api_type == LLMType.FAKE:
            return create_llm_instance(config, cost_manager=self.costs)
        replaying = self.cassette.mode == "replay" and self.cassette.transport is not None
        if not replaying:
            config.require_api_key()  # MissingAPIKeyError names the variable to set
        client = build_async_client(
            timeout=config.timeout,
            proxy=config.proxy,
            transport=self.cassette.transport if replaying else None,
        )
        client.event_hooks = {"request": [_mark_metered], "response": []}
        self.clients.append(client)
        return create_llm_instance(
            config, http_client=client, cost_manager=self.costs, allow_missing_key=replaying
        )

    def close(self) -> None:
        """Close the clients made for this test."""
        for client in self.clients:
            if not client.is_closed and self.cassette.mode != "replay":
                with contextlib.suppress(Exception):
                    asyncio.run(client.aclose())
        self.clients.clear()
