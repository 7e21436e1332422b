"""Issue #13 item 4: no real sleeping under the plugin. Retry backoff, Retry-After, FakeLLM
``latency=`` and slow-first-byte faults advance a virtual clock per test, and the summary
reports each test's waits; ``--llm-real-time`` waits for real."""

from __future__ import annotations

import asyncio
import re

import pytest

from harness import _clock
from harness.providers import FakeLLM
from tests.replay.conftest import LLMServer
from tests.test_pytest_plugin import _quiet_inner_sessions, _stop, server

__all__ = ["_quiet_inner_sessions", "server"]  # fixtures shared with the plugin tests

pytest_plugins = ["pytester"]

MODELS = """
models:
  gpt:
    api_type: openai
    model: gpt-4o-mini
    base_url: ${HARNESS_TEST_BASE_URL}/v1
    api_key: sk-test-key-for-the-loopback-server
    stream: false
"""

FAULTED_CALLS = """
import asyncio
import os
import time

import pytest
from harness.replay import Faults

FAULTED = os.environ.get("WITH_FAULTS") == "1"
RATE_LIMITED = Faults().status(429, retry_after=2).status(503).then_ok()
SLOW = Faults().slow_first_byte(3.5).then_ok()


@pytest.mark.llm_faults(RATE_LIMITED if FAULTED else Faults())
def test_429_then_503(llm, llm_cassette):
    started = time.monotonic()
    assert asyncio.run(llm("gpt").aask("hello")) == "echo: hello"
    assert time.monotonic() - started < 2  # the 4 s of waits were virtual
    assert len(llm_cassette.fault_transport.history) == (3 if FAULTED else 1)


@pytest.mark.llm_cassette("test_faulted/test_429_then_503.yaml")
@pytest.mark.llm_faults(Faults().status(500, times=5))
def test_500_five_times(llm):
    from harness.errors import ServerError

    with pytest.raises(ServerError):
        asyncio.run(llm("gpt").aask("hello"))


@pytest.mark.llm_cassette("test_faulted/test_429_then_503.yaml")
@pytest.mark.llm_faults(SLOW)
def test_slow_first_byte(llm):
    assert asyncio.run(llm("gpt").aask("hello")) == "echo: hello"
"""

FAKE_CALLS = """
import asyncio
import time


def test_rate_limited_once(fake_llm):
    fake_llm.errors = {1: "rate_limit"}
    fake_llm.replies = ["ok"]
    assert asyncio.run(fake_llm.aask("hi")) == "ok"


def test_latency(fake_llm):
    fake_llm.latency = LATENCY
    fake_llm.replies = ["a", "b"]
    started = time.monotonic()
    asyncio.run(fake_llm.aask("a"))
    asyncio.run(fake_llm.aask("b"))
    elapsed = time.monotonic() - started
    assert (elapsed >= 2 * LATENCY) if REAL else (elapsed < LATENCY)
"""


def _waits(lines: list[str]) -> dict[str, float]:
    """``{nodeid: seconds}`` from the summary's wait lines, and ``total``."""
    found: dict[str, float] = {}
    for line in lines:
        head = re.match(r"(virtual|real) waits: ([\d.]+) s", line)
        if head:
            found["total"] = float(head.group(2))
        item = re.match(r"\s+(\S+::\S+): ([\d.]+) s$", line)
        if item:
            found[item.group(1).split("::")[-1]] = float(item.group(2))
    return found


def test_retries_and_slow_faults_wait_on_a_virtual_clock(
    pytester: pytest.Pytester, server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".yaml", models=MODELS)
    pytester.makepyfile(test_faulted=FAULTED_CALLS)
    config = ["--llm-config", "models.yaml"]
    pytester.runpytest(*config, "--llm-mode=record", "-k", "429").assert_outcomes(passed=1)
    _stop(server)
    monkeypatch.setenv("WITH_FAULTS", "1")

    result = pytester.runpytest(*config)
    result.assert_outcomes(passed=3)
    waits = _waits(result.outlines)
    # Retry-After: 2, then the backoff of a second retry (1 s x 2); 1 + 2 + 4 for three
    # retries of 500; the slow first byte's 3.5 s
    assert waits["test_429_then_503"] == 4.0
    assert waits["test_500_five_times"] == 7.0
    assert waits["test_slow_first_byte"] == 3.5
    assert waits["total"] == 14.5
    result.stdout.fnmatch_lines(["*virtual waits: 14.5 s, none of it slept*"])


def test_fake_llm_errors_and_latency_wait_on_a_virtual_clock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fake="LATENCY = 5.0\nREAL = False\n" + FAKE_CALLS)
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    waits = _waits(result.outlines)
    assert waits["test_rate_limited_once"] == 1.0  # retry_min_wait
    assert waits["test_latency"] == 10.0


def test_llm_real_time_waits_for_real(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fake="LATENCY = 0.05\nREAL = True\n" + FAKE_CALLS)
    result = pytester.runpytest("--llm-real-time", "-k", "latency")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*real waits: 0.1 s (--llm-real-time)*"])


def test_the_clock_is_back_to_real_outside_a_block() -> None:
    virtual = _clock.VirtualClock()
    previous = _clock.current()
    with _clock.use(virtual):
        asyncio.run(FakeLLM(["x"], latency=30).aask("q"))
        _clock.sleep(2)
    assert virtual.waits == [30, 2] and virtual.now == 32
    assert _clock.current() is previous


def test_an_injected_sleep_still_wins_over_the_clock() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    virtual = _clock.VirtualClock()
    with _clock.use(virtual):
        asyncio.run(FakeLLM(["x"], latency=0.5, sleep=sleep).aask("q"))
    assert waits == [0.5] and virtual.waits == []
