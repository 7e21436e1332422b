"""Compression must be linear: each message is tokenized once.

Measures, for each strategy:
- how much longer compressing 10,000 messages takes than 1,000 (linear: about 10x);
- the whole compression call against tokenizing the same messages once (target: <= 1.5x).

Run: python benchmarks/bench_compression.py [--repeat N]
Times are the best of N runs (the least disturbed by the machine), with the tokenizer warm.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

from harness.compression import compress
from harness.config import CompressType
from harness.tokens import tokenizer_for_model

TEXT = (
    "the model answers questions about invoices, code, weather and travel; tokens cost money "
    "so the harness cuts long conversations down to the context window before each request "
    "日本語 emoji 🙂 numbers 12345 and punctuation!?"
)
WORDS = TEXT.split()


def make_messages(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """A conversation of ``count`` messages of 20-80 words, with a system message first."""
    rng = random.Random(seed)
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a helpful bot."}]
    for index in range(count - 1):
        words = rng.choices(WORDS, k=rng.randint(20, 80))
        role = "user" if index % 2 == 0 else "assistant"
        messages.append({"role": role, "content": " ".join(words) + f" #{index}"})
    return messages


def best_of(repeat: int, call: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    tokenizer = tokenizer_for_model("gpt-4o")
    tokenizer.count("warm up")  # load the BPE data outside the timings
    print(f"{'strategy':<18} {'1k (ms)':>9} {'10k (ms)':>9} {'10k/1k':>7} {'call/tokenize':>14}")
    for strategy in CompressType:
        if strategy is CompressType.NO_COMPRESS:
            continue
        row = []
        for count in (1_000, 10_000):
            messages = make_messages(count)
            total = tokenizer.prompt_tokens(messages)
            budget = total // 2  # half the conversation has to go

            def run(
                messages: list[dict[str, Any]] = messages,
                budget: int = budget,
                strategy: CompressType = strategy,
            ) -> object:
                return compress(messages, strategy, budget, tokenizer)

            def tokenize_once(messages: list[dict[str, Any]] = messages) -> object:
                return [tokenizer.message_tokens(m) for m in messages]

            row.append((best_of(args.repeat, run), best_of(args.repeat, tokenize_once)))
        (small, _), (large, large_tokenize) = row
        print(
            f"{strategy.value:<18} {small * 1e3:9.1f} {large * 1e3:9.1f} "
            f"{large / small:7.2f} {large / large_tokenize:14.2f}"
        )


if __name__ == "__main__":
    main()
