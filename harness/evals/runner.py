"""Run suites: every (case x model x repeat) concurrently, each (case, model) on its cassette.

Each (case, model) gets one :class:`~harness.replay.ReplayTransport` at
``<cassette_dir>/<suite>/<model>/<case>.yaml`` that holds all its repeats and judge calls
(identical requests replay in recorded order). Each attempt gets its own provider instance
and cost manager, so its usage and cost are exact even while others run; its latency is the
recorded duration of the interactions it used (replay/record), or the wall time (live).
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2

from harness.config import LLMConfig, ModelsConfig
from harness.costs import CostManager, Usage
from harness.errors import ConfigError, HarnessError
from harness.evals._tool_loop import run_tool_loop
from harness.evals.baseline import Baseline
from harness.evals.cases import Case, Suite, SuiteFormatError, validate_params
from harness.evals.graders import GradeContext, Grader, grader_models, grader_name, run_grader
from harness.evals.results import Attempt, ItemResult, SuiteResult
from harness.messages import assistant_msg, system_msg, user_msg
from harness.providers.base import BaseLLM, ChatResponse, ToolCall
from harness.providers.registry import create_llm_instance
from harness.replay import CassetteMiss, Interaction, ReplayTransport, resolve_mode

__all__ = [
    "DEFAULT_CASSETTE_DIR",
    "EvalItem",
    "LLMFactory",
    "cassette_path",
    "default_llm",
    "item_config",
    "parse_shard",
    "plan_items",
    "rerecord_command",
    "run_items",
    "run_suite",
    "safe_name",
    "shard_of",
]

DEFAULT_CASSETTE_DIR = "cassettes/suites"

Models = ModelsConfig | Mapping[str, LLMConfig]
LLMFactory = Callable[[LLMConfig, ReplayTransport, CostManager], BaseLLM]
"""Builds the provider of one attempt (or judge) on its cassette's transport."""


def default_llm(config: LLMConfig, transport: ReplayTransport, costs: CostManager) -> BaseLLM:
    """The registered provider for ``config``, on ``transport``, billing ``costs``."""
    return create_llm_instance(config, transport=transport, cost_manager=costs)


@dataclass(frozen=True)
class EvalItem:
    """One (suite, case, model): what the pytest plugin makes one test item of."""

    suite: Suite
    case: Case
    model: str

    @property
    def id(self) -> str:
        """``<case>[<model>]``."""
        return f"{self.case.id}[{self.model}]"

    @property
    def key(self) -> tuple[str, str, str]:
        """``(suite name, case id, model)``."""
        return (self.suite.name, self.case.id, self.model)


def plan_items(suites: Iterable[Suite], models: Sequence[str] | None = None) -> list[EvalItem]:
    """Every (case x model) of the suites, in order; ``models`` replaces each suite's list."""
    items: list[EvalItem] = []
    for suite in suites:
        names = tuple(models) if models else suite.models
        if not names:
            raise SuiteFormatError(
                "no models to run: list them under 'models:' or pass models",
                source=str(suite.path) if suite.path else f"suite {suite.name!r}",
                key="models",
            )
        items.extend(EvalItem(suite, case, model) for case in suite.cases for model in names)
    return items


def parse_shard(text: str, *, flag: str = "--shard") -> tuple[int, int]:
    """``"K/N"`` as ``(K, N)`` with ``1 <= K <= N``; else a ValueError naming ``flag``."""
    index, sep, count = text.partition("/")
    try:
        k, n = int(index), int(count)
    except ValueError:
        raise ValueError(f"{flag} {text!r}: expected K/N, e.g. 1/4") from None
    if not sep or n < 1 or not 1 <= k <= n:
        raise ValueError(f"{flag} {text!r}: expected K/N with 1 <= K <= N, e.g. 1/4")
    return k, n


def shard_of(item_id: str, count: int) -> int:
    """The shard (1-based) of an item id among ``count``: a hash, the same on every machine.

    The id is the pytest node id (``suites/qa.suite.yaml::case[model]``), so ``pytest
    --llm-shard`` and ``harness eval run --shard`` split the same items the same way.
    """
    digest = hashlib.sha256(item_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(name: str) -> str:
    """``name`` usable as one path component (no separators, no leading dot)."""
    return _UNSAFE.sub("_", name).lstrip(".") or "_"


def cassette_path(cassette_dir: str | Path, item: EvalItem) -> Path:
    """``<cassette_dir>/<suite>/<model>/<case>.yaml`` with safe names."""
    return (
        Path(cassette_dir)
        / safe_name(item.suite.name)
        / safe_name(item.model)
        / f"{safe_name(item.case.id)}.yaml"
    )


def rerecord_command(item: EvalItem) -> str:
    """The command that re-records one item's cassette."""
    where = str(item.suite.path) if item.suite.path else "suites/"
    return f"pytest {where} --llm-mode=record -k '{item.id}'"


def _lookup(models: Models, name: str) -> LLMConfig:
    if isinstance(models, ModelsConfig):
        return models.get(name)
    try:
        return models[name]
    except KeyError:
        raise ConfigError(
            f"no model named {name!r}; models: {', '.join(models) or '(none)'}", key="models"
        ) from None


def _override(config: LLMConfig, params: Mapping[str, Any], source: str, key: str) -> LLMConfig:
    if not params:
        return config
    validate_params(params, source=source, key=key)
    # Validated values, applied as explicitly set fields (providers send only what is set).
    checked = LLMConfig.model_validate(dict(params))
    return config.model_copy(update={name: getattr(checked, name) for name in params})


def item_config(item: EvalItem, models: Models) -> LLMConfig:
    """The model's config with the suite's then the case's ``params`` applied (validated)."""
    source = str(item.suite.path) if item.suite.path else f"suite {item.suite.name!r}"
    config = _lookup(models, item.model)
    config = _override(config, item.suite.params, source, "params")
    return _override(config, item.case.params, source, f"case {item.case.id!r} params")


# -- latency metering -----------------------------------------------------------------------------


@dataclass
class _Meter:
    """The recorded durations of the interactions one attempt (or its judge) used."""

    durations: list[float] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.durations)


# The transport calls back in the task that sent the request (httpx awaits it there), so a
# context variable tells concurrent attempts sharing one cassette apart.
_METER: contextvars.ContextVar[_Meter | None] = contextvars.ContextVar("_METER", default=None)


def _on_interaction(request: Any, interaction: Interaction, replayed: bool) -> None:
    meter = _METER.get()
    if meter is not None and interaction.duration is not None:
        meter.durations.append(interaction.duration)


# -- one attempt ---------------------------------------------------------------------------------


@dataclass
class _Call:
    reply: str
    turns: list[str]
    messages: list[dict[str, Any]]
    response: ChatResponse | None


async def _ask(llm: BaseLLM, case: Case, config: LLMConfig, calls: list[ToolCall]) -> _Call:
    """Ask the case; ``calls`` receives the tool calls of a loop as they are made."""
    stream = config.stream
    system = [case.system] if case.system else None
    if case.tools:  # the agent loop; its response's tool_calls are every step's calls
        if isinstance(case.prompt, str):
            images = list(case.images) or None
            start = llm._build_messages(case.prompt, system, None, images)  # as aask builds
        else:
            start = [dict(m) for m in case.messages or []]
        loop = await run_tool_loop(llm, case, start, stream=stream, calls=calls)
        return _Call(loop.text, [loop.text], loop.messages, loop.response)
    if isinstance(case.prompt, str):
        images = list(case.images) or None
        reply = await llm.aask(case.prompt, system_msgs=system, images=images, stream=stream)
        sent = llm.compress_messages(
            llm._build_messages(case.prompt, system, None, images)  # what aask sent
        )
        return _Call(str(reply), [str(reply)], sent, reply.response)
    if isinstance(case.prompt, list):
        # aask_batch's conversation: each turn sees the earlier turns and replies.
        context: list[dict[str, Any]] = [system_msg(case.system)] if case.system else []
        turns: list[str] = []
        response: ChatResponse | None = None
        for n, prompt in enumerate(case.prompt):
            images = list(case.images) if n == 0 and case.images else None
            context.append(user_msg(prompt, images))
            response = await llm.acompletion(list(context), stream=stream)
            text = response.text or ""
            turns.append(text)
            context.append(assistant_msg(text))
        sent = llm.compress_messages(context[:-1])
        return _Call(turns[-1], turns, sent, response)
    messages = [dict(m) for m in case.messages or []]
    response = await llm.acompletion(messages, stream=stream)
    text = response.text or ""
    return _Call(text, [text], llm.compress_messages(messages), response)


def _spent(manager: CostManager) -> tuple[Usage | None, Decimal | None]:
    per_model = manager.per_model()
    if not per_model:
        return None, None
    usage = sum((entry.usage for entry in per_model.values()), Usage())
    costs = [entry.cost for entry in per_model.values()]
    cost = None if any(c is None for c in costs) else sum((c for c in costs if c), Decimal(0))
    return usage, cost


def _describe_failure(
    exc: BaseException, item: EvalItem, path: Path, mode: str, rerecord: Callable[[EvalItem], str]
) -> str:
    if isinstance(exc, CassetteMiss) and mode == "replay":
        if exc.reason:  # the cassette file does not exist: nothing more to show
            return f"{item.id} has no recorded cassette ({path}); record it with: {rerecord(item)}"
        if any(c.diff.startswith("(identical request") for c in exc.closest):
            head = (
                f"{item.id}: {path} holds fewer answers to this request than the run asks for "
                "(more repeats or judge votes than when it was recorded)"
            )
        else:
            head = f"{item.id}: the case changed since it was recorded ({path})"
        # the miss's own details (the closest recorded requests), without its generic hint
        details = [line for line in str(exc).splitlines() if not line.startswith("re-run with")]
        return f"{head}; re-record it with: {rerecord(item)}\n" + "\n".join(details)
    return f"{type(exc).__name__}: {exc}"


class _Lent:
    """An upstream lent to every cassette of a run: a cassette closes what it was given when
    its item is done, so this one has no ``aclose`` and the run closes the pool at the end."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def handle_async_request(self, request: Any) -> Any:
        return await self.inner.handle_async_request(request)


@dataclass
class _Run:
    """Shared state of one run_items call."""

    models: Models
    mode: str
    cassette_dir: Path
    clock: Callable[[], float]
    rerecord: Callable[[EvalItem], str]
    make_llm: LLMFactory


async def _attempt(
    run: _Run,
    item: EvalItem,
    repeat: int,
    transport: ReplayTransport,
    config: LLMConfig,
    path: Path,
) -> Attempt:
    case = item.case
    meter = _Meter()
    _METER.set(meter)  # this task's own context (asyncio tasks copy it)
    llm = run.make_llm(config, transport, CostManager())
    started = run.clock()
    error: str | None = None
    call: _Call | None = None
    calls: list[ToolCall] = []  # a tool loop's calls, kept when a later step fails
    try:
        call = await _ask(llm, case, config, calls)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        error = _describe_failure(exc, item, path, transport.mode, run.rerecord)
    finally:
        await llm.aclose()
    wall = run.clock() - started
    latency = wall if transport.mode == "live" else meter.total
    usage, cost = _spent(llm.cost_manager)
    if call is None:
        return Attempt(
            reply="",
            passed=False,
            score=0.0,
            usage=usage,
            cost=cost,
            latency=latency,
            error=error,
            tool_calls=calls,
        )

    judge_costs = CostManager()
    judges: list[BaseLLM] = []

    def judge(name: str) -> BaseLLM:
        judge_config = _lookup(run.models, name).model_copy(update={"temperature": 0.0})
        llm_ = run.make_llm(judge_config, transport, judge_costs)
        judges.append(llm_)
        return llm_

    ctx = GradeContext(
        reply=call.reply,
        case=case,
        model=item.model,
        usage=usage,
        cost=cost,
        latency=latency,
        messages=call.messages,
        response=call.response,
        judge=judge,
        turns=call.turns,
        attempt=repeat,
    )
    graders: list[Grader] = [*item.suite.graders, *case.graders]
    # latency was taken above: the judge's calls (same task, same meter) do not count
    try:
        grades = [await run_grader(g, ctx) for g in graders]
    finally:
        for llm_ in judges:
            await llm_.aclose()
    judge_usage, judge_cost = _spent(judge_costs)
    passed = all(g.passed for g in grades)
    score = sum(g.score for g in grades) / len(grades) if grades else 1.0
    return Attempt(
        reply=call.reply,
        passed=passed,
        score=score,
        grades=grades,
        usage=usage,
        cost=cost,
        latency=latency,
        turns=call.turns,
        tool_calls=ctx.tool_calls,  # what the graders saw
        judge_usage=judge_usage,
        judge_cost=judge_cost,
        judged=bool(judges),
    )


async def run_items(
    items: Sequence[EvalItem],
    models: Models,
    *,
    mode: str = "replay",
    cassette_dir: str | Path = DEFAULT_CASSETTE_DIR,
    concurrency: int = 8,
    on_result: Callable[[ItemResult], None] | None = None,
    rerecord: Callable[[EvalItem], str] = rerecord_command,
    clock: Callable[[], float] = time.perf_counter,
    upstream: Any = None,
    make_llm: LLMFactory = default_llm,
) -> list[ItemResult]:
    """Run every (item x repeat) at most ``concurrency`` at a time; results in item order.

    A failed model call does not raise: it fails its attempt with the message (for a replay
    miss: that the case changed since it was recorded, and the command to re-record it).
    ``on_result`` is called with each item's result as soon as all its repeats are done.
    ``upstream`` is the transport record/live modes send to (default: one connection pool
    for the run, closed at its end; one given is used, never closed);
    ``make_llm`` builds each attempt's provider (default: the registered one for the config).
    Bad configuration (an unknown model, a bad ``params`` value) raises before any call.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    resolve_mode(mode, Path(cassette_dir))  # an unknown mode fails here, not once per item
    items = list(items)
    seen: set[tuple[str, str, str]] = set()
    for item in items:
        if item.key in seen:
            raise ValueError(f"{item.suite.name}::{item.id} is planned twice")
        seen.add(item.key)
    configs = [item_config(item, models) for item in items]  # config errors before any call
    for item in items:
        for grader in (*item.suite.graders, *item.case.graders):
            for name in grader_models(grader):
                try:
                    _lookup(models, name)
                except ConfigError as exc:
                    raise ConfigError(
                        f"{item.suite.name}::{item.id}: grader {grader_name(grader)} needs "
                        f"model {name!r}: {exc}"
                    ) from exc
    run = _Run(models, mode, Path(cassette_dir), clock, rerecord, make_llm)
    # One connection pool for the whole run (each new one costs an SSL context: tens of ms
    # of CPU), lent to every cassette; the caller's upstream is only borrowed, never closed.
    owned = None
    if upstream is None and mode.lower() not in ("replay", "none"):
        owned = upstream = httpx2.AsyncHTTPTransport()
    lent = _Lent(upstream) if upstream is not None else None
    semaphore = asyncio.Semaphore(concurrency)
    results: list[ItemResult | None] = [None] * len(items)

    async def one_item(index: int) -> None:
        item, config = items[index], configs[index]
        path = cassette_path(run.cassette_dir, item)
        try:
            transport = ReplayTransport(
                path, mode=mode, upstream=lent, on_interaction=_on_interaction
            )
        except HarnessError as exc:  # an unreadable cassette fails its item, not the run
            error = f"{type(exc).__name__}: {exc}"
            attempts = [
                Attempt(reply="", passed=False, score=0.0, error=error)
            ] * item.suite.repeats
        else:

            async def one_attempt(repeat: int) -> Attempt:
                async with semaphore:
                    return await _attempt(run, item, repeat, transport, config, path)

            try:
                attempts = await asyncio.gather(
                    *(one_attempt(r) for r in range(item.suite.repeats))
                )
            finally:
                await transport.aclose()
        result = ItemResult(
            suite=item.suite.name,
            case=item.case.id,
            model=item.model,
            attempts=list(attempts),
            prompt=item.case.input,
            cassette=str(path),
            pass_threshold=item.suite.pass_threshold,
            tags=item.case.tags,
            system=item.case.system,
            expected=item.case.expected,
        )
        results[index] = result
        if on_result is not None:
            on_result(result)

    tasks = [asyncio.ensure_future(one_item(i)) for i in range(len(items))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        # a bug (or on_result raising) stops the whole run: stop the other items too
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        if owned is not None:
            await owned.aclose()
    return [r for r in results if r is not None]


async def run_suite(
    suite: Suite,
    models: Models,
    *,
    mode: str = "replay",
    cassette_dir: str | Path = DEFAULT_CASSETTE_DIR,
    concurrency: int = 8,
    baseline: Baseline | None = None,
    **options: Any,
) -> SuiteResult:
    """Run one suite on its models; with a ``Baseline``, statuses say what changed.

    ``options`` go to :func:`run_items` (``on_result``, ``rerecord``, ``upstream``...).
    """
    items = plan_items([suite])
    results = await run_items(
        items, models, mode=mode, cassette_dir=cassette_dir, concurrency=concurrency, **options
    )
    if baseline is not None:
        baseline.apply(results)
    return SuiteResult(items=results, mode=mode)
