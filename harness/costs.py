"""Token usage, prices, budgets and cost reports.

``Usage`` is what one request consumed, normalised across providers: ``prompt_tokens``
includes cached and cache-write tokens, ``completion_tokens`` includes reasoning tokens.
Prices come from a table shipped with the package (``harness/data/prices.yaml``: USD per 1M
tokens, with a source and date per row) that users extend or override without editing it.
``CostManager`` adds requests up per model, safely from many tasks and threads, with exact
decimal arithmetic, and refuses a request whose projected cost would pass its budget. A model
with no known price costs ``None`` (never a silent 0), with one warning per model.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from tabulate import tabulate

from harness._model_names import name_candidates
from harness.errors import ConfigError, NoMoneyException, _usd

__all__ = [
    "CostManager",
    "CostReporter",
    "Costs",
    "ModelCosts",
    "ModelPrice",
    "PriceTable",
    "Reservation",
    "Usage",
]

logger = logging.getLogger("harness.costs")

_MILLION = Decimal(1_000_000)
_PRICE_FIELDS = ("input", "output", "cached_input", "cache_write", "reasoning")


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


def _decimal(value: Any, what: str) -> Decimal:
    # str() first: YAML gives floats, and Decimal(0.1) is not 0.1.
    try:
        number = Decimal(str(value))
    except ArithmeticError as exc:
        raise ConfigError(f"{what}: {value!r} is not a number") from exc
    if not number.is_finite() or number < 0:
        raise ConfigError(f"{what}: a price must be a finite number >= 0, got {value!r}")
    return number


@dataclass(frozen=True)
class ModelPrice:
    """USD per 1M tokens. Cached input and cache writes default to the input price,
    reasoning to the output price."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    reasoning: Decimal | None = None
    source: str | None = field(default=None, compare=False)
    date: str | None = field(default=None, compare=False)

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any], *, name: str = "price") -> ModelPrice:
        """A price from a mapping of the column names (numbers or numeric strings)."""
        unknown = set(row) - {*_PRICE_FIELDS, "source", "date"}
        if unknown:
            raise ConfigError(
                f"{name}: unknown price field(s) {', '.join(sorted(unknown))}; "
                f"valid: {', '.join(_PRICE_FIELDS)}, source, date"
            )
        if "input" not in row or "output" not in row:
            raise ConfigError(f"{name}: a price needs 'input' and 'output' (USD per 1M tokens)")
        values = {
            key: _decimal(row[key], f"{name}.{key}")
            for key in _PRICE_FIELDS
            if row.get(key) is not None
        }
        return cls(
            **values,
            source=str(row["source"]) if row.get("source") is not None else None,
            date=str(row["date"]) if row.get("date") is not None else None,
        )

    def cost(self, usage: Usage) -> Decimal:
        """The exact cost of ``usage`` at this price; each token is billed once, at one rate."""
        cached_rate = self.cached_input if self.cached_input is not None else self.input
        write_rate = self.cache_write if self.cache_write is not None else self.input
        reasoning_rate = self.reasoning if self.reasoning is not None else self.output
        prompt = max(usage.prompt_tokens, 0)
        cached = min(max(usage.cached_tokens, 0), prompt)
        written = min(max(usage.cache_write_tokens, 0), prompt - cached)
        completion = max(usage.completion_tokens, 0)
        reasoning = min(max(usage.reasoning_tokens, 0), completion)
        total = (
            (prompt - cached - written) * self.input
            + cached * cached_rate
            + written * write_rate
            + (completion - reasoning) * self.output
            + reasoning * reasoning_rate
        )
        return total / _MILLION


class PriceTable(Mapping[str, ModelPrice]):
    """Price rows by model name; :meth:`lookup` also finds dated and prefixed spellings."""

    def __init__(self, rows: Mapping[str, ModelPrice], *, version: str | None = None) -> None:
        self._rows = dict(rows)
        self.version = version

    def __getitem__(self, model: str) -> ModelPrice:
        return self._rows[model]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> PriceTable:
        """A table from ``{"models": {name: {input: ..., output: ...}}}`` (or just the rows)."""
        rows = data.get("models", data)
        if not isinstance(rows, Mapping):
            raise ConfigError("expected a mapping of model name to price", source=source)
        parsed = {}
        for name, row in rows.items():
            if not isinstance(row, Mapping):
                raise ConfigError(f"models.{name}: expected a mapping", source=source)
            try:
                parsed[str(name)] = ModelPrice.from_mapping(row, name=f"models.{name}")
            except ConfigError as exc:
                raise ConfigError(str(exc), source=source) from exc
        version = data.get("version")
        return cls(parsed, version=str(version) if version is not None else None)

    @classmethod
    def from_yaml_file(cls, path: str | os.PathLike[str]) -> PriceTable:
        """A table from a YAML file shaped like ``harness/data/prices.yaml``."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read price table: {exc}", source=str(path)) from exc
        return cls.from_dict(data or {}, source=str(path))

    @classmethod
    def default(cls) -> PriceTable:
        """The price table shipped with harness."""
        return _default_table()

    def with_overrides(self, rows: Mapping[str, ModelPrice | Mapping[str, Any]]) -> PriceTable:
        """A copy with ``rows`` added or replacing rows of the same name."""
        merged = dict(self._rows)
        for name, row in rows.items():
            price = row if isinstance(row, ModelPrice) else ModelPrice.from_mapping(row, name=name)
            merged[name] = price
        return PriceTable(merged, version=self.version)

    def lookup(self, model: str) -> ModelPrice | None:
        """The row of ``model``: by exact name, then without prefix, date or ``-latest``."""
        for name in name_candidates(model):
            if name in self._rows:
                return self._rows[name]
        return None


@functools.cache
def _default_table() -> PriceTable:
    text = resources.files("harness.data").joinpath("prices.yaml").read_text("utf-8")
    return PriceTable.from_dict(yaml.safe_load(text), source="harness/data/prices.yaml")


@dataclass
class ModelCosts:
    """Totals for one model; ``cost`` is None when the model has no price."""

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


@dataclass(frozen=True)
class Reservation:
    """The projected cost of a request in flight, held against the budget until it ends."""

    id: int
    model: str
    amount: Decimal


class CostManager:
    """Adds up usage and cost per model and enforces a budget; safe between tasks and threads.

    ``prices`` is a :class:`PriceTable` (used as is) or a mapping of rows added to, or
    replacing rows of, the shipped table. ``max_budget`` is in USD; None means no limit. With a
    budget, a request to a model with no price is refused (its cost could not be checked)
    unless ``allow_unpriced`` is true.
    """

    def __init__(
        self,
        max_budget: Decimal | float | str | None = None,
        prices: PriceTable | Mapping[str, ModelPrice | Mapping[str, Any]] | None = None,
        *,
        allow_unpriced: bool = False,
    ) -> None:
        self.max_budget = _decimal(max_budget, "max_budget") if max_budget is not None else None
        self.allow_unpriced = allow_unpriced
        if isinstance(prices, PriceTable):
            self.prices = prices
        else:
            self.prices = PriceTable.default().with_overrides(prices or {})
        self._lock = threading.Lock()
        self._per_model: dict[str, ModelCosts] = {}
        self._spent = Decimal(0)
        self._reserved: dict[int, Reservation] = {}
        self._ids = itertools.count(1)
        self._warned: set[str] = set()

    def price_of(self, model: str) -> ModelPrice | None:
        """The price row for ``model``, or None when unknown."""
        return self.prices.lookup(model)

    def cost_of(
        self, usage: Usage, model: str, *, price: ModelPrice | None = None
    ) -> Decimal | None:
        """What ``usage`` costs on ``model`` (or at ``price``); None, with one warning per
        model, when the model has no price."""
        if price is None:
            price = self.price_of(model)
        if price is None:
            with self._lock:
                first = model not in self._warned
                self._warned.add(model)
            if first:
                logger.warning(
                    "no price known for model %r: its cost is not counted (tokens are); add a "
                    "row with LLMConfig(price=...) or CostManager(prices=...)",
                    model,
                )
            return None
        return price.cost(usage)

    @property
    def spent(self) -> Decimal:
        """The cost of every priced request so far."""
        with self._lock:
            return self._spent

    def reserve(
        self,
        model: str,
        prompt_tokens: int,
        max_output_tokens: int,
        *,
        price: ModelPrice | None = None,
    ) -> Reservation | None:
        """Check the budget before a request and hold its projected cost until it ends.

        The projection is ``prompt_tokens`` at the input price plus ``max_output_tokens`` (all
        the answers a request asks for: ``n`` x ``max_token``) at the output price. Raises
        :class:`NoMoneyException` when what is spent, plus what other requests in flight hold,
        plus this projection would pass ``max_budget``, or when ``model`` has no price (unless
        ``allow_unpriced``). Returns None when there is no budget or no price (nothing to hold).
        """
        if self.max_budget is None:
            return None
        usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=max_output_tokens)
        projected = self.cost_of(usage, model, price=price)
        if projected is None:
            if self.allow_unpriced:
                return None
            raise NoMoneyException(
                spent=self.spent, limit=self.max_budget, projected=None, model=model, unpriced=True
            )
        with self._lock:
            committed = self._spent + sum((r.amount for r in self._reserved.values()), Decimal(0))
            if committed + projected > self.max_budget:
                raise NoMoneyException(
                    spent=committed, limit=self.max_budget, projected=projected, model=model
                )
            reservation = Reservation(next(self._ids), model, projected)
            self._reserved[reservation.id] = reservation
        return reservation

    def release(self, reservation: Reservation | None) -> None:
        """Give back a reservation whose request failed (a no-op for None or a used one)."""
        if reservation is not None:
            with self._lock:
                self._reserved.pop(reservation.id, None)

    def update(
        self,
        usage: Usage,
        model: str,
        *,
        price: ModelPrice | None = None,
        reservation: Reservation | None = None,
    ) -> Decimal | None:
        """Record one request (replacing its reservation); returns its cost or None."""
        cost = self.cost_of(usage, model, price=price)
        with self._lock:
            if reservation is not None:
                self._reserved.pop(reservation.id, None)
            entry = self._per_model.setdefault(model, ModelCosts())
            entry.requests += 1
            entry.usage = entry.usage + usage
            if cost is None or entry.cost is None:
                entry.cost = None
            else:
                entry.cost += cost
            if cost is not None:
                self._spent += cost
            over = self.max_budget is not None and self._spent > self.max_budget
        if over:
            logger.warning(
                "budget passed: $%s spent of $%s; further requests will be refused",
                _usd(self._spent),
                _usd(self.max_budget) if self.max_budget is not None else "?",
            )
        return cost

    def per_model(self) -> dict[str, ModelCosts]:
        """A copy of the totals per model."""
        with self._lock:
            return {m: replace(c) for m, c in self._per_model.items()}

    @property
    def total_cost(self) -> Decimal:
        """The summed cost of every priced request."""
        return self.spent

    def get_costs(self) -> Costs:
        """Totals across every model."""
        with self._lock:
            entries = [replace(e) for e in self._per_model.values()]
            spent = self._spent
        usage = sum((e.usage for e in entries), Usage())
        return Costs(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_cost=spent,
            total_budget=self.max_budget,
            requests_count=sum(e.requests for e in entries),
            unpriced_requests=sum(e.requests for e in entries if e.cost is None),
        )


class CostReporter:
    """A per-model table of requests, tokens, cost and cost per request."""

    headers = (
        "model",
        "requests",
        "prompt tokens",
        "cached",
        "completion tokens",
        "reasoning",
        "cost (USD)",
        "per request",
    )

    def __init__(self, cost_manager: CostManager) -> None:
        self.cost_manager = cost_manager

    def rows(self) -> list[list[Any]]:
        """One row per model (sorted by name) and a total row."""
        rows: list[list[Any]] = []
        for model, entry in sorted(self.cost_manager.per_model().items()):
            rows.append(self._row(model, entry))
        costs = self.cost_manager.get_costs()
        total = ModelCosts(
            requests=costs.requests_count,
            usage=sum((e.usage for e in self.cost_manager.per_model().values()), Usage()),
            cost=costs.total_cost,
        )
        rows.append(self._row("total", total, partial=costs.unpriced_requests > 0))
        return rows

    @staticmethod
    def _row(model: str, entry: ModelCosts, *, partial: bool = False) -> list[Any]:
        if entry.cost is None:
            cost, per_request = "n/a (no price)", "n/a"
        else:
            cost = f"{entry.cost:.6f}" + (" (priced only)" if partial else "")
            per_request = f"{entry.cost / entry.requests:.6f}" if entry.requests else "-"
        usage = entry.usage
        return [
            model,
            entry.requests,
            usage.prompt_tokens,
            usage.cached_tokens,
            usage.completion_tokens,
            usage.reasoning_tokens,
            cost,
            per_request,
        ]

    def table(self, tablefmt: str = "github") -> str:
        """The report as text, in any ``tabulate`` format."""
        return tabulate(self.rows(), headers=self.headers, tablefmt=tablefmt)

    def __str__(self) -> str:
        return self.table()
