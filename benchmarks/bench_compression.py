"""Compression must be linear: each message is tokenized once.

For each strategy, in one run and in alternating blocks (so a noisy moment on a shared
machine hits both sides of a ratio alike):

- growth: compressing 10,000 messages against compressing 1,000 (linear: about 10x);
- cost: the whole compression call against tokenizing the same 10,000 messages once
  (target: <= 1.5x).

Each block gives one ratio; the report is the median ratio with its spread (interquartile
range and min-max). The tokenizer is warm before the first block.

Run: python benchmarks/bench_compression.py [--blocks N] [--quick]
"""

from __future__ import annotations

import argparse
import random
from typing import Any

from _common import alternate, clock, ratio

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


def main() -> None:
    """Time each strategy in alternating blocks and print the median ratios."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--blocks", type=int, default=9, help="alternating blocks (9)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes")
    args = parser.parse_args()
    small_n, large_n, blocks = (20, 200, 2) if args.quick else (1_000, 10_000, args.blocks)

    tokenizer = tokenizer_for_model("gpt-4o")
    tokenizer.count("warm up")  # load the BPE data outside the timings
    small, large = make_messages(small_n), make_messages(large_n)
    budgets = {id(m): tokenizer.prompt_tokens(m) // 2 for m in (small, large)}  # half must go

    print(f"{large_n} vs {small_n} messages, {blocks} alternating blocks; median (spread)")
    growth_title = f"growth ({large_n // small_n}x the messages)"
    print(f"{'strategy':<18} {growth_title:<48} call / tokenize once")
    for strategy in CompressType:
        if strategy is CompressType.NO_COMPRESS:
            continue

        def run(messages: list[dict[str, Any]], strategy: CompressType = strategy) -> float:
            return clock(lambda: compress(messages, strategy, budgets[id(messages)], tokenizer))

        def tokenize_once(messages: list[dict[str, Any]]) -> float:
            return clock(lambda: [tokenizer.message_tokens(m) for m in messages])

        growth = ratio(*alternate(blocks, lambda _: run(large), lambda _: run(small)))
        cost = ratio(*alternate(blocks, lambda _: run(large), lambda _: tokenize_once(large)))
        print(f"{strategy.value:<18} {growth!s:<48} {cost}")


if __name__ == "__main__":
    main()
