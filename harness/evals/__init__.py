"""Model regression evals: cases and suites as data, graders, a concurrent runner, baselines.

Usable without pytest::

    suite = Suite.from_file("suites/qa.suite.yaml")
    result = await run_suite(suite, ModelsConfig.from_yaml_file("suites/models.yaml"))
    print(result.to_json()["totals"])
"""

from __future__ import annotations

from harness.evals import graders
from harness.evals.baseline import Baseline, BaselineEntry
from harness.evals.cases import Case, Suite, SuiteFormatError, is_settings_file, load_suites
from harness.evals.graders import GRADERS, Grade, GradeContext, Grader, as_grader, grader
from harness.evals.results import SCHEMA, Attempt, ItemResult, SuiteResult, pass_at_k, pass_hat_k
from harness.evals.runner import EvalItem, cassette_path, plan_items, run_items, run_suite

__all__ = [
    "GRADERS",
    "SCHEMA",
    "Attempt",
    "Baseline",
    "BaselineEntry",
    "Case",
    "EvalItem",
    "Grade",
    "GradeContext",
    "Grader",
    "ItemResult",
    "Suite",
    "SuiteFormatError",
    "SuiteResult",
    "as_grader",
    "cassette_path",
    "grader",
    "graders",
    "is_settings_file",
    "load_suites",
    "pass_at_k",
    "pass_hat_k",
    "plan_items",
    "run_items",
    "run_suite",
]
