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


class CountingTokenizer(Tokenizer):
    """A tokenizer that counts how many messages it was asked to measure."""

    calls = 0

    def message_tokens(self, message: Any) -> int:
        self.calls += 1
        return super().message_tokens(message)


def test_each_message_is_tokenized_once() -> None:
    counter = CountingTokenizer(encoding=TOKENIZER.encoding)
    messages = [{"role": "user", "content": f"message {i}"} for i in range(200)]
    compress(messages, "post_cut_by_token", 500, counter)
    assert counter.calls <= len(messages) + 2  # + the truncated message's overhead and check


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


# -- tool exchanges: an assistant message with tool_calls and its tool results ----------------


def tool_call(call_id: str, name: str = "lookup", arguments: str = '{"q": "x"}') -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def call_ids(message: dict[str, Any]) -> list[str]:
    """The ids of the tool calls a message makes: OpenAI ``tool_calls`` or native call parts."""
    ids = [c["id"] for c in message.get("tool_calls") or []]
    if message["role"] == "assistant" and isinstance(message.get("content"), list):
        for part in message["content"]:
            if part.get("type") == "tool_use":
                ids.append(part["id"])
            elif "toolUse" in part:
                ids.append(part["toolUse"]["toolUseId"])
            elif "functionCall" in part:
                ids.append(part["functionCall"]["id"])
    return ids


def result_ids(message: dict[str, Any]) -> list[str]:
    """The ids of the calls a message answers: a ``tool`` message or native result parts."""
    if message["role"] == "tool":
        return [message["tool_call_id"]]
    ids = []
    for part in message["content"] if isinstance(message.get("content"), list) else []:
        if part.get("type") == "tool_result":
            ids.append(part["tool_use_id"])
        elif "toolResult" in part:
            ids.append(part["toolResult"]["toolUseId"])
        elif "functionResponse" in part:
            ids.append(part["functionResponse"]["id"])
    return ids


def assert_tool_results_follow_their_calls(result: list[dict[str, Any]]) -> None:
    """Every result follows (past other results and system messages) the call it answers."""
    for position, message in enumerate(result):
        answered = result_ids(message)
        if not answered:
            continue
        before = [m for m in result[:position] if m["role"] != "system" and not result_ids(m)]
        assert before, f"tool result {position} has no call before it"
        call = before[-1]
        assert call["role"] == "assistant", f"tool result {position} follows a {call['role']}"
        assert set(answered) <= set(call_ids(call))


def assert_calls_keep_all_their_results(
    original: list[dict[str, Any]], result: list[dict[str, Any]]
) -> None:
    results_of = {
        i: [m for m in original if i in result_ids(m)] for m in original for i in call_ids(m)
    }
    for message in result:
        for call_id in call_ids(message):
            assert results_of[call_id], "the generated conversation answers every call"
            assert all(any(r is k for k in result) for r in results_of[call_id])


def in_exchange(message: dict[str, Any]) -> bool:
    return bool(call_ids(message) or result_ids(message))


TOOL_CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "what is the weather in " + LONG},
    {"role": "assistant", "content": None, "tool_calls": [tool_call("call_1")]},
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny " * 40},
    {"role": "user", "content": "thanks, and tomorrow?"},
]


@pytest.mark.parametrize("strategy", CUTTING)
def test_a_tool_result_is_never_kept_without_its_call(strategy: CompressType) -> None:
    full = prompt_tokens(TOOL_CONVERSATION)
    for budget in range(0, full + 5):
        result = compress(TOOL_CONVERSATION, strategy, budget, TOKENIZER)
        assert_tool_results_follow_their_calls(result)
        assert_calls_keep_all_their_results(TOOL_CONVERSATION, result)
        exchange = [m for m in result if m["role"] == "tool" or m.get("tool_calls")]
        assert (
            exchange == []
            or all(  # kept whole, as they are (never truncated)
                m is o for m, o in zip(exchange, TOOL_CONVERSATION[2:4], strict=True)
            )
        )
        if system_tokens(TOOL_CONVERSATION) <= budget:
            assert prompt_tokens(result) <= budget


def test_post_cut_by_msg_drops_the_call_with_its_result_instead_of_orphaning_the_result() -> None:
    # Room for the last user message and the tool result, not for the call as well.
    budget = prompt_tokens([TOOL_CONVERSATION[0], *TOOL_CONVERSATION[3:]])
    result = compress(TOOL_CONVERSATION, "post_cut_by_msg", budget, TOKENIZER)
    assert [m["role"] for m in result] == ["system", "user"]
    assert result[1] is TOOL_CONVERSATION[4]


def test_a_tool_exchange_that_fits_is_kept_whole() -> None:
    budget = prompt_tokens([TOOL_CONVERSATION[0], *TOOL_CONVERSATION[2:]])
    for strategy in ("post_cut_by_msg", "post_cut_by_token"):
        result = compress(TOOL_CONVERSATION, strategy, budget, TOKENIZER)
        assert result[0] is TOOL_CONVERSATION[0] and result[-3:] == TOOL_CONVERSATION[2:]
        assert all(m is o for m, o in zip(result[-3:], TOOL_CONVERSATION[2:], strict=True))


def test_pre_cut_stops_at_a_tool_exchange_that_does_not_fit_and_never_truncates_it() -> None:
    conversation: list[dict[str, Any]] = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "let me look " * 30, "tool_calls": [tool_call("a")]},
        {"role": "tool", "tool_call_id": "a", "content": "result " * 30},
        {"role": "user", "content": "next"},
    ]
    budget = prompt_tokens(conversation[:1]) + 30
    for strategy in PRE:
        result = compress(conversation, strategy, budget, TOKENIZER)
        assert result == conversation[:1] and result[0] is conversation[0]


def test_by_msg_sends_no_part_of_a_tool_exchange_when_it_alone_does_not_fit() -> None:
    conversation: list[dict[str, Any]] = [
        {"role": "system", "content": "s"},
        {"role": "assistant", "content": None, "tool_calls": [tool_call("a"), tool_call("b")]},
        {"role": "tool", "tool_call_id": "a", "content": LONG},
        {"role": "tool", "tool_call_id": "b", "content": LONG},
    ]
    budget = prompt_tokens(conversation[:1]) + 40
    for strategy in CUTTING:
        assert compress(conversation, strategy, budget, TOKENIZER) == conversation[:1]


def test_system_messages_inside_a_tool_exchange_are_kept_and_do_not_split_it() -> None:
    conversation: list[dict[str, Any]] = [
        {"role": "user", "content": "q " * 50},
        {"role": "assistant", "content": None, "tool_calls": [tool_call("a")]},
        {"role": "system", "content": "tool output follows"},
        {"role": "tool", "tool_call_id": "a", "content": "42"},
    ]
    budget = prompt_tokens(conversation[1:])
    result = compress(conversation, "post_cut_by_token", budget, TOKENIZER)
    assert result == conversation[1:]
    smaller = compress(conversation, "post_cut_by_msg", budget - 1, TOKENIZER)
    assert smaller == [conversation[2]]


def test_tool_exchanges_are_still_tokenized_once() -> None:
    counter = CountingTokenizer(encoding=TOKENIZER.encoding)
    messages: list[dict[str, Any]] = []
    for i in range(60):
        messages += [
            {"role": "user", "content": f"question {i}"},
            {"role": "assistant", "content": None, "tool_calls": [tool_call(f"c{i}")]},
            {"role": "tool", "tool_call_id": f"c{i}", "content": f"answer {i}"},
        ]
    compress(messages, "post_cut_by_token", 500, counter)
    assert counter.calls <= len(messages) + 2


SHAPES = ("openai", "anthropic", "converse", "gemini")


def tool_exchange(shape: str, ids: list[str], text: str | None) -> list[dict[str, Any]]:
    """An assistant message calling tools ``ids`` and the message(s) with their results, in
    OpenAI's shape or as a provider's native content parts."""
    if shape == "openai":
        call = {"role": "assistant", "content": text, "tool_calls": [tool_call(i) for i in ids]}
        return [call, *({"role": "tool", "tool_call_id": i, "content": f"r {i}"} for i in ids)]
    lead = [{"type": "text", "text": text}] if text else []
    if shape == "anthropic":
        calls = [{"type": "tool_use", "id": i, "name": "lookup", "input": {}} for i in ids]
        results = [{"type": "tool_result", "tool_use_id": i, "content": f"r {i}"} for i in ids]
    elif shape == "converse":
        calls = [{"toolUse": {"toolUseId": i, "name": "lookup", "input": {}}} for i in ids]
        results = [{"toolResult": {"toolUseId": i, "content": [{"text": f"r {i}"}]}} for i in ids]
    else:
        calls = [{"functionCall": {"id": i, "name": "lookup", "args": {}}} for i in ids]
        results = [{"functionResponse": {"id": i, "name": "lookup", "response": {}}} for i in ids]
    return [
        {"role": "assistant", "content": lead + calls},
        {"role": "user", "content": results},
    ]


@st.composite
def tool_conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Well-formed conversations mixing plain turns and tool exchanges (1-3 parallel calls),
    in OpenAI's shape or with one provider's native call and result parts."""
    shape = draw(st.sampled_from(SHAPES))
    messages: list[dict[str, Any]] = []
    for turn in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["system", "user", "assistant", "tools"]))
        if kind != "tools":
            messages.append({"role": kind, "content": draw(texts)})
            continue
        ids = [f"call_{turn}_{k}" for k in range(draw(st.integers(1, 3)))]
        call, *results = tool_exchange(shape, ids, draw(st.none() | texts))
        messages.append(call)
        for result in results:
            if draw(st.booleans()) and draw(st.booleans()):
                messages.append({"role": "system", "content": draw(texts)})
            messages.append(result)
    for i, message in enumerate(messages):
        message["name"] = f"m{i}"
    return messages


@settings(max_examples=400, deadline=None)
@given(messages=tool_conversations(), budget=st.integers(0, 500), strategy=st.sampled_from(CUTTING))
def test_every_kept_tool_result_follows_its_call_and_every_kept_call_keeps_its_results(
    messages: list[dict[str, Any]], budget: int, strategy: CompressType
) -> None:
    result = compress(messages, strategy, budget, TOKENIZER)
    assert_tool_results_follow_their_calls(result)
    assert_calls_keep_all_their_results(messages, result)
    mapping = match_subsequence(messages, result)
    truncated = [messages[i] for i, cut in mapping if cut]
    assert len(truncated) <= 1
    assert not any(in_exchange(m) for m in truncated)
    system = [m for m in messages if m["role"] == "system"]
    assert [m for m in result if m["role"] == "system"] == system
    if system_tokens(messages) <= budget:
        assert prompt_tokens(result) <= budget
    others = [i for i, m in enumerate(messages) if m["role"] != "system"]
    kept = [i for i, _ in mapping if messages[i]["role"] != "system"]
    expected = others[: len(kept)] if strategy in PRE else others[len(others) - len(kept) :]
    assert kept == expected
    assert compress(result, strategy, budget, TOKENIZER) == result


@pytest.mark.parametrize("shape", SHAPES[1:])
@pytest.mark.parametrize("strategy", CUTTING)
def test_native_tool_parts_are_kept_or_dropped_with_their_call(
    shape: str, strategy: CompressType
) -> None:
    call, results = tool_exchange(shape, ["t1", "t2"], "let me check " * 10)
    conversation = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "what is the weather in " + LONG},
        call,
        results,
        {"role": "user", "content": "thanks, and tomorrow?"},
    ]
    seen_exchange = False
    for budget in range(0, prompt_tokens(conversation) + 2):
        result = compress(conversation, strategy, budget, TOKENIZER)
        assert_tool_results_follow_their_calls(result)
        assert_calls_keep_all_their_results(conversation, result)
        exchange = [m for m in result if in_exchange(m)]
        assert exchange in ([], [call, results])
        assert all(m is o for m, o in zip(exchange, (call, results), strict=False))
        seen_exchange = seen_exchange or bool(exchange)
    assert seen_exchange


def test_post_cut_by_msg_drops_a_native_call_with_its_result() -> None:
    call, results = tool_exchange("anthropic", ["t1"], None)
    conversation = [call, results, {"role": "user", "content": "thanks " * 20}]
    budget = prompt_tokens(conversation[1:])  # room for the result, not for its call
    result = compress(conversation, "post_cut_by_msg", budget, TOKENIZER)
    assert result == [conversation[2]]


async def test_compression_leaves_room_for_max_token_of_answer() -> None:
    config = LLMConfig(
        api_type=LLMType.FAKE,
        model="gpt-4o-mini",
        compress_type="pre_cut_by_msg",
        context_length=100,
        max_token=60,
    )
    llm = FakeLLM(["ok"], config=config)
    history = [{"role": "user", "content": f"turn {i} " * 5} for i in range(20)]
    await llm.aask(history, stream=False)
    assert prompt_tokens(llm.calls[0].messages) <= 40  # 100 - 60, below 80% of the window
