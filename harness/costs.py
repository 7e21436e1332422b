"""Token usage and cost accounting.

``Usage`` is what one request consumed, normalised across providers: ``prompt_tokens``
includes cached and cache-write tokens, ``completion_tokens`` includes reasoning tokens.
``CostManager`` adds requests up, per model, safely from many tasks and threads, with exact
decimal arithmetic. A model with no known price costs ``None`` (never a silent 0), with one
warning per model.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

__all__ = ["CostManager", "Costs", "ModelCosts", "ModelPrice", "Usage"]

logger = logging.getLogger("harness.costs")

_MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Usage:
    """Tokens one request consumed (or an estimate of them, when ``estimated``)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            estimated=self.estimated or other.estimated,
        )

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for reports and cassettes)."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "estimated": self.estimated,
        }


@dataclass(frozen=True)
class ModelPrice:
    """USD per 1M tokens. Cached input and cache writes default to the input price."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    reasoning: Decimal | None = None

    def cost(self, usage: Usage) -> Decimal:
        """The exact cost of ``usage`` at this price; cached tokens are billed once."""
        cached = self.cached_input if self.cached_input is not None else self.input
        write = self.cache_write if self.cache_write is not None else self.input
        fresh_prompt = max(usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens, 0)
        reasoning_price = self.reasoning if self.reasoning is not None else self.output
        answer_tokens = max(usage.completion_tokens - usage.reasoning_tokens, 0)
        total = (
            fresh_prompt * self.input
            + usage.cached_tokens * cached
            + usage.cache_write_tokens * write
            + answer_tokens * self.output
            + usage.reasoning_tokens * reasoning_price
        )
        return total / _MILLION


@dataclass
class ModelCosts:
    """Totals for one model."""

    requests: int = 0
    usage: Usage = field(default_factory=Usage)
    cost: Decimal | None = Decimal(0)


@dataclass(frozen=True)
class Costs:
    """A snapshot of a CostManager's totals (the seed's names)."""

    prompt_tokens: int
    completion_tokens: int
    total_cost: Decimal
    total_budget: Decimal | None
    requests_count: int
    unpriced_requests: int = 0

    @property
    def total_prompt_tokens(self) -> int:
        """Alias kept for code written against the seed."""
        return self.prompt_tokens

    @property
    def total_completion_tokens(self) -> int:
        """Alias kept for code written against the seed."""
        return self.completion_tokens


class CostManager:
    """Adds up usage and cost per model; safe to share between tasks and threads."""

    def __init__(
        self,
        max_budget: Decimal | float | None = None,
        prices: Mapping[str, ModelPrice] | None = None,
    ) -> None:
        self.max_budget = Decimal(str(max_budget)) if max_budget is not None else None
        self._prices: dict[str, ModelPrice] = dict(prices or {})
        self._lock = threading.Lock()
        self._per_model: dict[str, ModelCosts] = {}
        self._warned: set[str] = set()

    def price_of(self, model: str) -> ModelPrice | None:
        """The price row for ``model``, or None when unknown."""
        return self._prices.get(model)

    def cost_of(self, usage: Usage, model: str) -> Decimal | None:
        """What ``usage`` costs on ``model``; None (with one warning) for an unknown model."""
        price = self.price_of(model)
        if price is None:
            with self._lock:
                first = model not in self._warned
                self._warned.add(model)
            if first:
                logger.warning("no price known for model %r: its cost is not counted", model)
            return None
        return price.cost(usage)

    def update(self, usage: Usage, model: str) -> Decimal | None:
        """Record one request; returns its cost (None if the model has no price)."""
        cost = self.cost_of(usage, model)
        with self._lock:
            entry = self._per_model.setdefault(model, ModelCosts())
            entry.requests += 1
            entry.usage = entry.usage + usage
            if cost is None or entry.cost is None:
                entry.cost = None
            else:
                entry.cost += cost
        return cost

    def per_model(self) -> dict[str, ModelCosts]:
        """A copy of the totals per model."""
        with self._lock:
            return {m: replace(c) for m, c in self._per_model.items()}

    @property
    def total_cost(self) -> Decimal:
        """The summed cost of every priced request."""
        with self._lock:
            return sum((c.cost for c in self._per_model.values() if c.cost is not None), Decimal(0))

    def get_costs(self) -> Costs:
        """Totals across every model."""
        with self._lock:
            entries = list(self._per_model.values())
        usage = sum((e.usage for e in entries), Usage())
        return Costs(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_cost=sum((e.cost for e in entries if e.cost is not None), Decimal(0)),
            total_budget=self.max_budget,
            requests_count=sum(e.requests for e in entries),
            unpriced_requests=sum(e.requests for e in entries if e.cost is None),
        )
