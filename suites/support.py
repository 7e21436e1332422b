"""Eval-suite support: models from suites/models.yaml, one cassette per (case, model).

The record/replay mode is the plugin's ``--llm-mode`` (or ``HARNESS_LLM_MODE``, or the ini key
``llm_mode``); the default, ``replay``, is offline and needs no key.
A case that fails and is not in ``suites/baseline.json`` is a known failure (xfail); a case
listed there that fails is a regression and fails the run. A table per model (pass rate,
tokens, cost, recorded latency) closes the session.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from harness import BaseLLM, ModelsConfig
from harness.replay import ReplayTransport

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = ROOT / "cassettes" / "suites"
MODELS = ModelsConfig.from_yaml_file(Path(__file__).parent / "models.yaml")
BASELINE_FILE = Path(__file__).parent / "baseline.json"


@dataclass
class CaseResult:
    """One (case, model) outcome for the closing table."""

    model: str
    case: str
    passed: bool
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal | None
    latency: float


RESULTS: list[CaseResult] = []


def _baseline() -> set[str]:
    if not BASELINE_FILE.exists():
        return set()
    return set(json.loads(BASELINE_FILE.read_text(encoding="utf-8"))["passing"])


@dataclass
class SuiteRun:
    """The provider for one (case, model), wired to that pair's cassette."""

    llm: BaseLLM
    transport: ReplayTransport
    model_name: str
    case_id: str

    def record(self, passed: bool, reason: str) -> None:
        """Store the outcome; a failure fails the test unless it is a known failure."""
        costs = self.llm.get_costs()
        played = set(map(id, self.transport.unplayed()))
        latency = sum(
            i.duration or 0.0 for i in self.transport.cassette.interactions if id(i) not in played
        )
        RESULTS.append(
            CaseResult(
                model=self.model_name,
                case=self.case_id,
                passed=passed,
                prompt_tokens=costs.prompt_tokens,
                completion_tokens=costs.completion_tokens,
                cost=None if costs.unpriced_requests else costs.total_cost,
                latency=latency,
            )
        )
        if passed:
            return
        key = f"{self.case_id}[{self.model_name}]"
        if key in _baseline():
            pytest.fail(f"regression: {key} passed in the baseline and fails now: {reason}")
        pytest.xfail(f"known failure (not in suites/baseline.json): {reason}")
