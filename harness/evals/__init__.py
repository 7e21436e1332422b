"""Eval suites: cases, graders, runner, report and baseline."""
