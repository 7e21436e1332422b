"""Eval-suite fixtures and the closing results table (see suites/support.py)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from tabulate import tabulate

from harness import create_llm_instance
from harness.replay import ReplayTransport
from suites.support import CASSETTES, MODELS, RESULTS, SuiteRun


@pytest.fixture
def suite_run(request: pytest.FixtureRequest) -> Iterator[Callable[[str, str], SuiteRun]]:
    """A factory: ``suite_run(model_name, case_id)`` gives a provider on that pair's cassette."""
    transports: list[ReplayTransport] = []

    def make(model_name: str, case_id: str) -> SuiteRun:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", case_id)
        path = CASSETTES / model_name / f"{safe}.yaml"
        transport = ReplayTransport(path, mode=suite_mode(request.config))
        transports.append(transport)
        llm = create_llm_instance(MODELS.get(model_name), transport=transport)
        return SuiteRun(llm=llm, transport=transport, model_name=model_name, case_id=case_id)

    yield make
    for transport in transports:
        transport.close()


def suite_mode(config: pytest.Config) -> str:
    """flag (--llm-mode) > HARNESS_LLM_MODE > ini (llm_mode) > replay."""
    return str(
        config.getoption("llm_mode", None)
        or os.environ.get("HARNESS_LLM_MODE")
        or config.getini("llm_mode")
        or "replay"
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print pass rate, tokens, cost and recorded latency per model."""
    if not RESULTS:
        return
    rows = []
    for model in sorted({r.model for r in RESULTS}):
        mine = [r for r in RESULTS if r.model == model]
        passed = sum(r.passed for r in mine)
        known = [r.cost for r in mine if r.cost is not None]
        cost = "n/a" if len(known) < len(mine) else f"${sum(known, Decimal(0)):.6f}"
        rows.append(
            [
                model,
                f"{passed}/{len(mine)}",
                f"{100 * passed / len(mine):.0f}%",
                sum(r.prompt_tokens for r in mine),
                sum(r.completion_tokens for r in mine),
                cost,
                f"{sum(r.latency for r in mine) / len(mine):.3f}s",
            ]
        )
    headers = ["model", "passed", "pass rate", "prompt tok", "completion tok", "cost", "latency"]
    terminalreporter.section(f"harness eval results (mode: {suite_mode(terminalreporter.config)})")
    terminalreporter.write_line(tabulate(rows, headers=headers))
