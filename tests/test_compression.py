from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from harness import CompressType, FakeLLM, LLMConfig, LLMType
from harness.compression import compress, compress_messages, keep_tokens
from harness.errors import ConfigError
from harness.tokens import Tokenizer, tokenizer_for_model

TOKENIZER = tokenizer_for_model("gpt-4o")
CUTTING = [s for s in CompressType if s is not CompressType.NO_COMPRESS]
PRE = (CompressType.PRE_CUT_BY_TOKEN, CompressType.PRE_CUT_BY_MSG)

texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=60) | st.sampled_from(
    [
        "",
        "hello world",
        "the quick brown fox jumps over the lazy dog " * 3,
        "日本語のテキスト",
        "🙂🙃",
    ]
)
# Every message gets a unique ``name``, so a truncated copy can be traced to its original.
messages_strategy = st.lists(
    st.tuples(st.sampled_from(["system", "user", "assistant", "user", "assistant"]), texts),
    max_size=12,
).map(
    lambda pairs: [
        {"role": role, "content": content, "name": f"m{i}"}
        for i, (role, content) in enumerate(pairs)
    ]
)


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return TOKENIZER.prompt_tokens(messages)


def system_tokens(messages: list[dict[str, Any]]) -> int:
    return prompt_tokens([m for m in messages if m["role"] == "system"])


def match_subsequence(
    original: list[dict[str, Any]], result: list[dict[str, Any]]
) -> list[tuple[int, bool]]:
    """Each result message's input index (by its unique name); True where it was truncated."""
    index_of = {m["name"]: i for i, m in enumerate(original)}
    mapping = [(index_of[m["name"]], m is not original[index_of[m["name"]]]) for m in result]
    assert [i for i, _ in mapping] == sorted({i for i, _ in mapping}), "order not preserved"
    return mapping


# -- properties, named after their invariants -------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(messages=messages_strategy, budget=st.integers(0, 400), strategy=st.sampled_from(CUTTING))
def test_compression_never_exceeds_the_budget(
    messages: list[dict[str, Any]], budget: int, strategy: CompressType
) -> None:
    assume(system_tokens(messages) <= budget)
    result = compress(messages, strategy, budget, TOKENIZER)
    assert prompt_tokens(result) <= budget


@settings(max_examples=200, deadline=None)
@given(messages=messages_strategy, budget=st.integers(0, 400), strategy=st.sampled_from(CUTTING))
def test_system_messages_are_all_preserved_in_order(
    messages: list[dict[str, Any]], budget: int, strategy: CompressType
) -> None:
    result = compress(messages, strategy, budget, TOKENIZER)
    assert [m for m in result if m["role"] == "system"] == [
        m for m in messages if m["role"] == "system"
    ]


@settings(max_examples=300, deadline=None)
@given(messages=messages_strategy, budget=st.integers(0, 400), strategy=st.sampled_from(CUTTING))
def test_result_is_an_ordered_subsequence_except_one_truncated_token_prefix_or_suffix(
    messages: list[dict[str, Any]], budget: int, strategy: CompressType
) -> None:
    result = compress(messages, strategy, budget, TOKENIZER)
    mapping = match_subsequence(messages, result)
    truncated = [(i, r) for (i, cut), r in zip(mapping, result, strict=True) if cut]
    assert len(truncated) <= 1
    for index, message in truncated:
        original = messages[index]["content"]
        assert message["content"] and message["content"] != original
        if strategy in PRE:
            assert original.startswith(message["content"])
        else:
            assert original.endswith(message["content"])


@settings(max_examples=200, deadline=None)
@given(messages=messages_strategy, budget=st.integers(0, 400), strategy=st.sampled_from(CUTTING))
def test_pre_keeps_the_earliest_and_post_keeps_the_latest(
    messages: list[dict[str, Any]], budget: int, strategy: CompressType
) -> None:
    result = compress(messages, strategy, budget, TOKENIZER)
    others = [i for i, m in enumerate(messages) if m["role"] != "system"]
    kept = [i for i, _ in match_subsequence(messages, result) if messages[i]["role"] != "system"]
    expected = others[: len(kept)] if strategy in PRE else others[len(others) - len(kept) :]
    assert kept == expected


@settings(max_examples=100, deadline=None)
@given(messages=messages_strategy, budget=st.integers(0, 400))
def test_no_compress_is_the_identity(messages: list[dict[str, Any]], budget: int) -> None:
    assert compress(messages, CompressType.NO_COMPRESS, budget, TOKENIZER) == messages
    assert compress_messages(messages, "no_compress", max_token=1) == messages


@settings(max_examples=200, deadline=None)
@given(messages=messages_strategy, budget=st.integers(0, 400), strategy=st.sampled_from(CUTTING))
def test_compression_is_idempotent(
    messages: list[dict[str, Any]], budget: int, strategy: CompressType
) -> None:
    once = compress(messages, strategy, budget, TOKENIZER)
    assert compress(once, strategy, budget, TOKENIZER) == once


@settings(max_examples=200, deadline=None)
@given(
    messages=messages_strategy,
    budget=st.integers(0, 400),
    extra=st.integers(0, 200),
    strategy=st.sampled_from(CUTTING),
)
def test_a_larger_budget_never_keeps_fewer_messages(
    messages: list[dict[str, Any]], budget: int, extra: int, strategy: CompressType
) -> None:
    smaller = compress(messages, strategy, budget, TOKENIZER)
    larger = compress(messages, strategy, budget + extra, TOKENIZER)
    assert len(larger) >= len(smaller)


# -- examples -------------------------------------------------------------------------------

LONG = "one two three four five six seven eight nine ten " * 20
CONVERSATION = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "first question"},
    {"role": "assistant", "content": LONG},
    {"role": "user", "content": "last question"},
]


def test_post_cut_by_token_keeps_a_token_suffix_of_the_boundary_message() -> None:
    budget = prompt_tokens([CONVERSATION[0], CONVERSATION[3]]) + 20
    result = compress(CONVERSATION, "post_cut_by_token", budget, TOKENIZER)
    assert result[0] is CONVERSATION[0] and result[-1] is CONVERSATION[3]
    assert LONG.endswith(result[1]["content"]) and len(result[1]["content"]) < len(LONG)
    assert prompt_tokens(result) <= budget


def test_by_msg_drops_whole_messages() -> None:
    budget = prompt_tokens([CONVERSATION[0], CONVERSATION[3]]) + 20
    result = compress(CONVERSATION, "post_cut_by_msg", budget, TOKENIZER)
    assert result == [CONVERSATION[0], CONVERSATION[3]]


def test_by_msg_truncates_when_nothing_else_fits() -> None:
    conversation = [{"role": "system", "content": "s"}, {"role": "user", "content": LONG}]
    budget = prompt_tokens(conversation[:1]) + 30
    for strategy, keep in (("pre_cut_by_msg", str.startswith), ("post_cut_by_msg", str.endswith)):
        result = compress(conversation, strategy, budget, TOKENIZER)
        assert len(result) == 2 and keep(LONG, result[1]["content"])
        assert prompt_tokens(result) <= budget


def test_every_message_kept_when_all_are_system_even_over_budget() -> None:
    systems = [{"role": "system", "content": LONG}, {"role": "system", "content": "two"}]
    assert compress(systems, "pre_cut_by_token", 10, TOKENIZER) == systems


def test_multi_part_content_keeps_its_images_and_cuts_its_text() -> None:
    image = {
        "type": "image_url",
        "image_url": {"url": "https://example.com/a.png", "detail": "low"},
    }
    message = {"role": "user", "content": [{"type": "text", "text": LONG}, image]}
    budget = prompt_tokens([{"role": "user", "content": [image]}]) + 15
    result = compress([message], "pre_cut_by_token", budget, TOKENIZER)
    assert len(result) == 1
    text, kept_image = result[0]["content"]
    assert kept_image == image and LONG.startswith(text["text"]) and text["text"]
    assert prompt_tokens(result) <= budget


def test_a_message_without_text_content_is_dropped_not_crashed_on() -> None:
    call = {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f"}}]}
    result = compress([call, {"role": "user", "content": "hi"}], "post_cut_by_token", 12, TOKENIZER)
    assert result == [{"role": "user", "content": "hi"}]


def test_each_message_is_tokenized_once() -> None:
    calls: list[int] = []

    class CountingTokenizer(Tokenizer):
        def message_tokens(self, message: Any) -> int:
            calls.append(1)
            return super().message_tokens(message)

    counter = CountingTokenizer(encoding=TOKENIZER.encoding)
    messages = [{"role": "user", "content": f"message {i}"} for i in range(200)]
    compress(messages, "post_cut_by_token", 500, counter)
    assert len(calls) <= len(messages) + 2  # + the truncated message's overhead and check


def test_keep_tokens_is_threshold_times_the_window() -> None:
    assert keep_tokens(128_000, 0.8) == 102_400
    with pytest.raises(ConfigError, match="threshold"):
        keep_tokens(1000, 1.5)


def test_compress_messages_budgets_threshold_of_the_window() -> None:
    messages = [{"role": "user", "content": f"message number {i}"} for i in range(50)]
    result = compress_messages(
        messages, "post_cut_by_msg", max_token=100, threshold=0.5, model="gpt-4o"
    )
    assert 0 < len(result) < 50 and prompt_tokens(result) <= 50
    assert result[-1] is messages[-1]


async def test_llm_compresses_to_the_configured_context_length() -> None:
    config = LLMConfig(
        api_type=LLMType.FAKE,
        model="gpt-4o-mini",
        compress_type="pre_cut_by_msg",
        context_length=60,
    )
    llm = FakeLLM(["ok"], config=config)
    history = [{"role": "user", "content": f"turn {i} " * 5} for i in range(20)]
    await llm.aask(history, stream=False)
    sent = llm.calls[0].messages
    assert sent[0]["role"] == "system" and 1 < len(sent) < 21
    assert sent[1] is history[0]
    assert prompt_tokens(sent) <= 48
