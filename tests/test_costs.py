from __future__ import annotations

import asyncio
import logging
import threading
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import (
    BudgetExceeded,
    CostManager,
    CostReporter,
    FakeLLM,
    LLMConfig,
    LLMType,
    ModelPrice,
    NoMoneyException,
    PriceTable,
    Usage,
)
from harness.errors import ConfigError

PRICE = ModelPrice(
    input=Decimal("2.50"), output=Decimal("10"), cached_input=Decimal("1.25"), cache_write=None
)
TABLE = PriceTable({"m": PRICE, "cheap": ModelPrice(input=Decimal("0.1"), output=Decimal("0.2"))})


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    prompt = draw(st.integers(0, 10_000_000))
    cached = draw(st.integers(0, prompt))
    written = draw(st.integers(0, prompt - cached))
    completion = draw(st.integers(0, 1_000_000))
    reasoning = draw(st.integers(0, completion))
    return Usage(prompt, completion, cached, written, reasoning)


models = st.sampled_from(["m", "cheap", "unknown-model"])


# -- properties, named after their invariants -------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(requests=st.lists(st.tuples(usages(), models), max_size=20), data=st.data())
def test_total_equals_the_sum_of_per_request_costs_in_any_order(
    requests: list[tuple[Usage, str]], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(requests))
    first, second = CostManager(prices=TABLE), CostManager(prices=TABLE)
    costs = [first.update(u, m) for u, m in requests]
    for usage, model in shuffled:
        second.update(usage, model)
    expected = sum((c for c in costs if c is not None), Decimal(0))
    assert first.get_costs().total_cost == second.get_costs().total_cost == expected
    assert first.get_costs() == second.get_costs()


@settings(max_examples=30, deadline=None)
@given(requests=st.lists(st.tuples(usages(), models), min_size=1, max_size=40))
def test_n_concurrent_updates_equal_n_sequential_ones(requests: list[tuple[Usage, str]]) -> None:
    sequential, threaded, tasks = (CostManager(prices=TABLE) for _ in range(3))
    for usage, model in requests:
        sequential.update(usage, model)

    barrier = threading.Barrier(len(requests))

    def update(usage: Usage, model: str) -> None:
        barrier.wait()
        threaded.update(usage, model)

    threads = [threading.Thread(target=update, args=r) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    async def update_all() -> None:
        async def one(usage: Usage, model: str) -> None:
            await asyncio.sleep(0)
            tasks.update(usage, model)

        await asyncio.gather(*(one(u, m) for u, m in requests))

    asyncio.run(update_all())
    assert threaded.get_costs() == sequential.get_costs() == tasks.get_costs()
    assert threaded.per_model() == sequential.per_model() == tasks.per_model()


@settings(max_examples=300, deadline=None)
@given(
    usage=st.builds(
        Usage,
        st.integers(-100, 10**7),
        st.integers(-100, 10**7),
        st.integers(-100, 10**7),
        st.integers(-100, 10**7),
        st.integers(-100, 10**7),
    ),
    model=models,
)
def test_costs_are_never_negative(usage: Usage, model: str) -> None:
    manager = CostManager(prices=TABLE)
    cost = manager.update(usage, model)
    assert (cost is None) == (model == "unknown-model")
    assert cost is None or cost >= 0
    assert manager.get_costs().total_cost >= 0


@settings(max_examples=200, deadline=None)
@given(
    spent=st.lists(usages(), max_size=5),
    prompt=st.integers(0, 2_000_000),
    max_output=st.integers(0, 200_000),
    limit=st.decimals(min_value=0, max_value=100, places=4),
)
def test_the_budget_error_is_raised_exactly_when_the_projected_total_would_pass_the_limit(
    spent: list[Usage], prompt: int, max_output: int, limit: Decimal
) -> None:
    manager = CostManager(max_budget=limit, prices=TABLE)
    for usage in spent:
        manager.update(usage, "m")
    projected = PRICE.cost(Usage(prompt_tokens=prompt, completion_tokens=max_output))
    would_pass = manager.spent + projected > limit
    if would_pass:
        with pytest.raises(NoMoneyException) as info:
            manager.reserve("m", prompt, max_output)
        assert (info.value.spent, info.value.limit, info.value.projected) == (
            manager.spent,
            limit,
            projected,
        )
    else:
        assert manager.reserve("m", prompt, max_output) is not None


@settings(max_examples=300, deadline=None)
@given(usage=usages())
def test_cached_tokens_are_never_billed_twice(usage: Usage) -> None:
    fresh = usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens
    expected = (
        fresh * PRICE.input
        + usage.cached_tokens * PRICE.cached_input  # type: ignore[operator]
        + usage.cache_write_tokens * PRICE.input
        + usage.completion_tokens * PRICE.output
    ) / 1_000_000
    assert PRICE.cost(usage) == expected
    # Caching can only make a request cheaper, never dearer.
    uncached = Usage(usage.prompt_tokens, usage.completion_tokens)
    assert PRICE.cost(usage) <= PRICE.cost(uncached)


# -- the price table ----------------------------------------------------------------------


def test_shipped_table_rows_have_source_date_and_valid_prices() -> None:
    table = PriceTable.default()
    assert len(table) > 80
    for name, price in table.items():
        assert price.source and price.date, name
        assert price.input >= 0 and price.output >= 0, name


@pytest.mark.parametrize(
    ("model", "row"),
    [
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai/gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # a dated row whose price differs
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-3-7-sonnet-latest", "claude-3-7-sonnet"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet"),
        ("anthropic.claude-v2", "anthropic.claude-v2"),
        ("models/gemini-2.0-flash", "gemini-2.0-flash"),
        ("moonshot-v1-8k", "moonshot-v1-8k"),
    ],
)
def test_lookup_resolves_dated_and_prefixed_names(model: str, row: str) -> None:
    table = PriceTable.default()
    assert table.lookup(model) is table[row]


def test_seed_table_errors_are_fixed() -> None:
    table = PriceTable.default()
    assert table["gpt-4-0613"].input == Decimal(30) and table["gpt-4-0613"].output == Decimal(60)
    assert table["anthropic.claude-v2"].output == Decimal(24)  # USD per 1M, not per 1K
    assert table["moonshot-v1-8k"].input < Decimal(1)  # USD, not the CNY list price


def test_gpt_4o_mini_cost_of_the_recorded_hello_request() -> None:
    usage = Usage(prompt_tokens=8, completion_tokens=9)
    assert CostManager().cost_of(usage, "gpt-4o-mini-2024-07-18") == Decimal("0.0000066")


def test_users_add_and_override_rows_without_editing_the_package() -> None:
    manager = CostManager(
        prices={"gpt-4o": {"input": 1, "output": 2}, "mine": {"input": 3, "output": 4}}
    )
    assert manager.cost_of(Usage(1_000_000, 0), "gpt-4o") == Decimal(1)
    assert manager.cost_of(Usage(0, 1_000_000), "mine") == Decimal(4)
    assert manager.price_of("gpt-4.1") == PriceTable.default()["gpt-4.1"]


def test_a_bad_price_row_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"mine\.input"):
        CostManager(prices={"mine": {"input": -1, "output": 2}})
    with pytest.raises(ConfigError, match="unknown price field"):
        CostManager(prices={"mine": {"input": 1, "output": 2, "inptu": 3}})


def test_unknown_model_costs_none_with_one_warning_and_tokens_still_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = CostManager(prices=TABLE)
    with caplog.at_level(logging.WARNING, logger="harness.costs"):
        assert manager.update(Usage(10, 5), "mystery") is None
        assert manager.update(Usage(10, 5), "mystery") is None
    assert len([r for r in caplog.records if "mystery" in r.getMessage()]) == 1
    costs = manager.get_costs()
    assert (costs.prompt_tokens, costs.completion_tokens, costs.unpriced_requests) == (20, 10, 2)
    assert manager.per_model()["mystery"].cost is None


def test_reasoning_price_applies_to_reasoning_tokens_only() -> None:
    price = ModelPrice(input=Decimal(1), output=Decimal(4), reasoning=Decimal(2))
    usage = Usage(prompt_tokens=0, completion_tokens=1_000_000, reasoning_tokens=250_000)
    assert price.cost(usage) == Decimal("3.5")


# -- the budget around real calls ----------------------------------------------------------


def test_budget_exceeded_is_the_same_class() -> None:
    assert BudgetExceeded is NoMoneyException


async def test_a_request_over_budget_is_refused_before_it_is_sent() -> None:
    config = LLMConfig(api_type=LLMType.FAKE, model="gpt-4o", max_token=1000)
    llm = FakeLLM(
        ["ok", "never"],
        config=config,
        usage=Usage(prompt_tokens=100_000, completion_tokens=0),
        cost_manager=CostManager(max_budget="0.26"),
    )
    await llm.aask("first", stream=False)  # projected 20 + 1000 tokens: about $0.01
    assert llm.get_costs().total_cost == Decimal("0.25")
    with pytest.raises(NoMoneyException) as info:
        await llm.aask("second", stream=False)
    assert info.value.spent == Decimal("0.25") and info.value.limit == Decimal("0.26")
    assert len(llm.calls) == 1  # the second request never left


async def test_a_failed_request_gives_its_reservation_back() -> None:
    manager = CostManager(max_budget="1")
    config = LLMConfig(api_type=LLMType.FAKE, model="gpt-4o", max_retries=0)
    llm = FakeLLM([ValueError("boom"), "ok"], config=config, cost_manager=manager)
    with pytest.raises(ValueError):
        await llm.aask("q", stream=False)
    assert manager._reserved == {}
    assert await llm.aask("q", stream=False) == "ok"


async def test_config_price_overrides_the_table() -> None:
    config = LLMConfig(
        api_type=LLMType.FAKE, model="my-finetune", price={"input": "1", "output": "2"}
    )
    llm = FakeLLM(["ok"], config=config, usage=Usage(prompt_tokens=1_000_000, completion_tokens=0))
    await llm.aask("q", stream=False)
    assert llm.get_costs().total_cost == Decimal(1)


def test_cost_reporter_shows_a_row_per_model_and_a_total() -> None:
    manager = CostManager(prices=TABLE)
    manager.update(Usage(1_000_000, 100_000, cached_tokens=400_000), "m")
    manager.update(Usage(1_000_000, 100_000), "m")
    manager.update(Usage(10, 5), "mystery")
    report = CostReporter(manager)
    rows = {row[0]: row for row in report.rows()}
    assert rows["m"][1:7] == [2, 2_000_000, 400_000, 200_000, 0, "6.500000"]
    assert rows["m"][7] == "3.250000"
    assert rows["mystery"][6] == "n/a (no price)"
    assert rows["total"][1] == 3 and "priced only" in rows["total"][6]
    text = str(report)
    assert "| model" in text and "mystery" in text


def test_the_budget_error_survives_pickling() -> None:
    import pickle

    error = NoMoneyException(
        spent=Decimal("1"), limit=Decimal("2"), projected=Decimal("3"), model="m"
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.spent, copy.limit, copy.projected, copy.model) == (1, 2, 3, "m")
    assert str(copy) == str(error)


# -- issue #9 item 17: n answers, unpriced models under a budget, readable amounts -------------


async def test_the_projected_cost_multiplies_the_output_by_n() -> None:
    def llm(n: int | None) -> FakeLLM:
        config = LLMConfig(api_type=LLMType.FAKE, model="gpt-4o", max_token=1000, n=n)
        return FakeLLM(["ok"], config=config, cost_manager=CostManager(max_budget="0.02"))

    assert await llm(1).aask("q", stream=False) == "ok"  # about $0.01: one answer fits
    three = llm(3)
    with pytest.raises(NoMoneyException) as info:
        await three.aask("q", stream=False)
    projected = info.value.projected
    assert projected is not None
    # 3 x 1000 output tokens at $10/1M, plus a few prompt tokens at $2.50/1M
    assert Decimal("0.03") < projected < Decimal("0.0301")
    assert three.calls == []


async def test_a_model_without_a_price_under_a_budget_is_refused_with_a_hint() -> None:
    config = LLMConfig(api_type=LLMType.FAKE, model="my-private-model")
    llm = FakeLLM(["ok"], config=config, cost_manager=CostManager(max_budget="5"))
    with pytest.raises(BudgetExceeded) as info:
        await llm.aask("q", stream=False)
    assert info.value.unpriced is True and info.value.model == "my-private-model"
    message = str(info.value)
    assert "'my-private-model' has no price" in message
    assert "LLMConfig(price=" in message and "CostManager(allow_unpriced=True)" in message
    assert llm.calls == []  # refused before it was sent


async def test_an_unpriced_model_goes_through_when_allowed_or_priced() -> None:
    allowed = CostManager(max_budget="5", allow_unpriced=True)
    config = LLMConfig(api_type=LLMType.FAKE, model="my-private-model")
    assert await FakeLLM(["ok"], config=config, cost_manager=allowed).aask("q") == "ok"
    assert allowed.get_costs().unpriced_requests == 1

    priced = LLMConfig(
        api_type=LLMType.FAKE, model="my-private-model", price={"input": "1", "output": "1"}
    )
    manager = CostManager(max_budget="5")
    assert await FakeLLM(["ok"], config=priced, cost_manager=manager).aask("q") == "ok"
    assert manager.spent > 0


def test_without_a_budget_an_unpriced_model_is_not_refused() -> None:
    assert CostManager().reserve("my-private-model", 10, 10) is None


@pytest.mark.parametrize(
    ("price", "limit", "spent_text", "limit_text"),
    [
        ("0.44", "0.0000005", "$0.00000044 spent", "limit of $0.0000005"),
        ("440", "0.0005", "$0.00044 spent", "limit of $0.0005"),
    ],
)
def test_the_refusal_shows_what_was_spent_with_enough_precision(
    price: str, limit: str, spent_text: str, limit_text: str
) -> None:
    rate = ModelPrice(input=Decimal(price), output=Decimal(price))
    manager = CostManager(max_budget=limit, prices=PriceTable({"tiny": rate}))
    manager.update(Usage(prompt_tokens=1), "tiny")
    with pytest.raises(NoMoneyException) as info:
        manager.reserve("tiny", 1, 0)
    message = str(info.value)
    assert spent_text in message and limit_text in message
    assert "E-" not in message and "$0 " not in message


# -- a budget holds whatever calc_usage says ---------------------------------------------------


async def test_calc_usage_off_does_not_let_an_unpriced_model_pass_a_budget() -> None:
    config = LLMConfig(api_type=LLMType.FAKE, model="my-private-model", calc_usage=False)
    llm = FakeLLM(["ok"], config=config, cost_manager=CostManager(max_budget="5"))
    with pytest.raises(BudgetExceeded) as info:
        await llm.aask("q", stream=False)
    assert info.value.unpriced is True
    assert llm.calls == []


@pytest.mark.parametrize("stream", [False, True])
async def test_calc_usage_off_does_not_let_a_request_over_budget_pass(stream: bool) -> None:
    config = LLMConfig(api_type=LLMType.FAKE, model="gpt-4o", max_token=1000, calc_usage=False)
    llm = FakeLLM(
        ["ok", "never"],
        config=config,
        usage=Usage(prompt_tokens=100_000, completion_tokens=0),
        cost_manager=CostManager(max_budget="0.26"),
    )
    await llm.aask("first", stream=stream)
    assert llm.get_costs().total_cost == Decimal("0.25")  # billed: the budget counts it
    with pytest.raises(NoMoneyException):
        await llm.aask("second", stream=stream)
    assert len(llm.calls) == 1


async def test_calc_usage_off_without_a_budget_bills_nothing() -> None:
    config = LLMConfig(api_type=LLMType.FAKE, model="gpt-4o", calc_usage=False)
    manager = CostManager()
    llm = FakeLLM(["ok"], config=config, cost_manager=manager)
    assert await llm.aask("q", stream=False) == "ok"
    assert manager.get_costs().requests_count == 0


async def test_calc_usage_off_does_not_let_embeddings_pass_a_budget() -> None:
    config = LLMConfig(api_type=LLMType.FAKE, model="my-private-model", calc_usage=False)
    llm = FakeLLM(["ok"], config=config, cost_manager=CostManager(max_budget="5"))
    with pytest.raises(BudgetExceeded):
        await llm.aembed("q")
