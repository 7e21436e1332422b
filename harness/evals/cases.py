"""Cases and suites: the data of an eval, built in Python or loaded from a suite file.

A suite file is YAML (``*.suite.yaml``)::

    suite: factual-qa
    models: [local-smollm2, local-smollm2-anthropic]
    params: {max_token: 64, temperature: 0}     # LLMConfig overrides for every case
    repeats: 1
    pass_threshold: 1.0
    expect: [...]                                # graders applied to every case
    cases:
      - id: capital-of-france
        prompt: What is the capital of France? Answer in one word.
        expect: [{contains: Paris}]

A case may offer tools and run the agent loop: ``tools`` are tool definitions (OpenAI-style
function dicts or ``{name, description, parameters}`` with a JSON schema), ``tool_results``
scripts what each tool returns (a text, or a mapping from arguments to texts: keys are JSON
objects matched as subsets of the call's arguments, ``"*"`` the fallback), and the model is
asked again with the results up to ``max_steps`` times (default 5) until it answers without
calling a tool::

      - id: weather-paris
        prompt: What is the weather in Paris?
        tools:
          - name: get_weather
            description: The current weather in a city.
            parameters: {type: object, properties: {city: {type: string}}, required: [city]}
        tool_results:
          get_weather: {'{"city": "Paris"}': 18 C and sunny, '*': unknown city}
        expect: [{called_tool: {name: get_weather, args: {city: Paris}}}, {contains: sunny}]

or JSONL (``*.suite.jsonl``): one case mapping per line, with the suite settings (everything
but ``cases``) in ``<name>.suite.yaml`` beside it, or given to :meth:`Suite.from_file`.

Graders under ``expect:`` are a list; a grader without arguments is a bare name
(``- json_valid``), one with one argument a single-key mapping (``- contains: Paris``), one with
several a mapping of its keyword arguments (``- word_count_between: {min: 1, max: 5}``);
``- not: {contains: x}`` negates. Names are those of :data:`harness.evals.graders.GRADERS`.
Loading errors are :class:`SuiteFormatError` naming the file and the key path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from harness.evals.graders import Grader, as_grader
from harness.evals.suite_format import (
    DEFAULT_MAX_STEPS,
    SuiteFormatError,
    case_fields,
    check_tools,
    parse_grader,
    suite_settings,
    validate_params,
)

__all__ = [
    "DEFAULT_MAX_STEPS",
    "Case",
    "Suite",
    "SuiteFormatError",
    "is_settings_file",
    "load_suites",
    "parse_grader",
    "settings_file_for",
    "validate_params",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, eq=False)
class Case:
    """One input to send to a model, and the graders its reply must pass."""

    id: str
    prompt: str | list[str] | None = None  # a list: a multi-turn conversation (aask_batch)
    messages: list[dict[str, Any]] | None = None  # explicit messages, sent with acompletion
    system: str | None = None
    images: tuple[str, ...] = ()
    expected: Any = None
    graders: tuple[Grader, ...] = ()
    tags: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)  # LLMConfig overrides
    # The agent loop: tools offered (Tools or OpenAI-style dicts), each tool's scripted result
    # (a text, a mapping from argument JSON to text, or in Python a function of the
    # arguments), the tool choice, and how many requests the loop may make.
    tools: tuple[Any, ...] = ()
    tool_results: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    tool_choice: str | None = None
    max_steps: int = DEFAULT_MAX_STEPS

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise SuiteFormatError(f"a case needs a non-empty string id, got {self.id!r}")
        if (self.prompt is None) == (self.messages is None):
            raise SuiteFormatError(
                "a case needs exactly one of 'prompt' or 'messages'", key=f"case {self.id!r}"
            )
        if isinstance(self.prompt, list) and (
            not self.prompt or not all(isinstance(p, str) for p in self.prompt)
        ):
            raise SuiteFormatError(
                "a multi-turn prompt is a non-empty list of strings", key=f"case {self.id!r}"
            )
        # Accept lists where tuples are meant (from Python or YAML).
        object.__setattr__(self, "images", tuple(self.images))
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "graders", tuple(as_grader(g) for g in self.graders))
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        tools = check_tools(self, source=None, prefix=f"case {self.id!r}.")
        object.__setattr__(self, "tools", tools)
        object.__setattr__(self, "tool_results", MappingProxyType(dict(self.tool_results)))

    @property
    def input(self) -> str | list[str] | list[dict[str, Any]]:
        """What is sent: the prompt, the turns or the messages."""
        if self.prompt is not None:
            return self.prompt
        return list(self.messages or [])


@dataclass(frozen=True, eq=False)
class Suite:
    """Cases, the models to run them on, and how to judge them."""

    name: str
    cases: tuple[Case, ...]
    models: tuple[str, ...] = ()
    graders: tuple[Grader, ...] = ()  # applied to every case
    repeats: int = 1
    pass_threshold: float = 1.0
    params: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    path: Path | None = None  # the file it came from
    description: str | None = None

    def __post_init__(self) -> None:
        source = str(self.path) if self.path else f"suite {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip():
            raise SuiteFormatError("a suite needs a non-empty name", source=source, key="suite")
        object.__setattr__(self, "cases", tuple(self.cases))
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "graders", tuple(as_grader(g) for g in self.graders))
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        if not isinstance(self.repeats, int) or isinstance(self.repeats, bool) or self.repeats < 1:
            raise SuiteFormatError(
                f"must be an integer >= 1, got {self.repeats!r}", source=source, key="repeats"
            )
        threshold = self.pass_threshold
        if not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
            raise SuiteFormatError(
                f"must be a number between 0 and 1, got {threshold!r}",
                source=source,
                key="pass_threshold",
            )
        seen: dict[str, int] = {}
        for i, case in enumerate(self.cases):
            if not isinstance(case, Case):
                raise SuiteFormatError(
                    f"expected a Case, got {type(case).__name__}", source=source, key=f"cases[{i}]"
                )
            if case.id in seen:
                raise SuiteFormatError(
                    f"duplicate case id {case.id!r} (also cases[{seen[case.id]}])",
                    source=source,
                    key=f"cases[{i}].id",
                )
            seen[case.id] = i
        validate_params(self.params, source=source, key="params")
        for i, case in enumerate(self.cases):
            validate_params(case.params, source=source, key=f"cases[{i}].params")

    def case(self, case_id: str) -> Case:
        """The case with this id (a KeyError listing the ids when there is none)."""
        for case in self.cases:
            if case.id == case_id:
                return case
        ids = ", ".join(c.id for c in self.cases)
        raise KeyError(f"suite {self.name!r} has no case {case_id!r}; its cases: {ids}")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **overrides: Any) -> Suite:
        """Load a suite file (``*.yaml`` or ``*.jsonl``); keyword arguments override settings.

        For a JSONL file the settings come from ``<name>.suite.yaml`` beside it when it exists
        (``<name>`` being the file name without ``.suite.jsonl``/``.jsonl``); a YAML file with
        no ``cases`` and a JSONL file beside it loads that JSONL file's cases.
        """
        path = Path(path)
        if path.suffix == ".jsonl":
            return _load_jsonl(path, overrides)
        if path.suffix in (".yaml", ".yml"):
            data = _read_yaml(path)
            jsonl = _jsonl_for(path)
            if "cases" not in data and jsonl is not None:
                return _load_jsonl(jsonl, overrides)
            return _suite_from_mapping(data, path, overrides)
        raise SuiteFormatError("a suite file must end in .yaml, .yml or .jsonl", source=str(path))


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".suite.yaml", ".suite.yml", ".suite.jsonl", ".yaml", ".yml", ".jsonl"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def settings_file_for(jsonl: str | os.PathLike[str]) -> Path:
    """Where the settings of a JSONL suite live: ``<name>.suite.yaml`` beside it."""
    path = Path(jsonl)
    return path.with_name(f"{_stem(path)}.suite.yaml")


def _jsonl_for(yaml_path: Path) -> Path | None:
    stem = _stem(yaml_path)
    for name in (f"{stem}.suite.jsonl", f"{stem}.jsonl"):
        candidate = yaml_path.with_name(name)
        if candidate.exists():
            return candidate
    return None


def is_settings_file(path: str | os.PathLike[str]) -> bool:
    """Whether a YAML file only holds the settings of a JSONL suite beside it (not collected)."""
    path = Path(path)
    if path.suffix not in (".yaml", ".yml") or _jsonl_for(path) is None:
        return False
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "cases" not in data


def load_suites(paths: Iterable[str | os.PathLike[str]]) -> list[Suite]:
    """Load suite files in order; a JSONL suite's settings file is not loaded a second time."""
    chosen = [Path(p) for p in paths]
    resolved = {p.resolve() for p in chosen}
    suites: list[Suite] = []
    for path in chosen:
        jsonl = _jsonl_for(path) if path.suffix in (".yaml", ".yml") else None
        if jsonl is not None and jsonl.resolve() in resolved and is_settings_file(path):
            continue
        suites.append(Suite.from_file(path))
    return suites


# -- loading -------------------------------------------------------------------------------------


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SuiteFormatError(f"cannot read suite file: {exc.strerror}", source=str(path)) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SuiteFormatError(f"invalid YAML{where}: {exc}", source=str(path)) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SuiteFormatError(
            f"expected a mapping with 'suite' and 'cases', got {type(data).__name__}",
            source=str(path),
        )
    return data


def _suite_from_mapping(data: Mapping[str, Any], path: Path, overrides: Mapping[str, Any]) -> Suite:
    source = str(path)
    settings = suite_settings(data, source, _stem(path))
    cases_data = data.get("cases")
    if not isinstance(cases_data, list) or not cases_data:
        raise SuiteFormatError("must be a non-empty list of cases", source=source, key="cases")
    cases = tuple(
        Case(**case_fields(entry, source, f"cases[{i}]")) for i, entry in enumerate(cases_data)
    )
    return _build(settings, cases, path, overrides, source)


def _load_jsonl(path: Path, overrides: Mapping[str, Any]) -> Suite:
    settings_path = settings_file_for(path)
    data = _read_yaml(settings_path) if settings_path.exists() else {}
    settings_source = str(settings_path)
    if "cases" in data:
        raise SuiteFormatError(
            f"holds the settings of {path.name}: its cases belong in the JSONL file",
            source=settings_source,
            key="cases",
        )
    settings = suite_settings(data, settings_source, _stem(path))
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SuiteFormatError(f"cannot read suite file: {exc.strerror}", source=str(path)) from exc
    cases = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        source = f"{path}, line {number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SuiteFormatError(
                f"invalid JSON: {exc.msg} at column {exc.colno}", source=source
            ) from exc
        cases.append(Case(**case_fields(entry, source, "")))
    if not cases:
        raise SuiteFormatError("no cases (one JSON object per line)", source=str(path))
    return _build(settings, tuple(cases), path, overrides, str(path))


def _build(
    settings: dict[str, Any],
    cases: tuple[Case, ...],
    path: Path,
    overrides: Mapping[str, Any],
    source: str,
) -> Suite:
    allowed = {"name", "models", "graders", "repeats", "pass_threshold", "params", "description"}
    for key in overrides:
        if key not in allowed:
            raise SuiteFormatError(
                f"unknown suite setting {key!r}; expected one of: {', '.join(sorted(allowed))}",
                source=source,
            )
    merged = {**settings, **overrides}
    if "models" in overrides:
        merged["models"] = tuple(overrides["models"])
    try:
        return Suite(cases=cases, path=path, **merged)
    except SuiteFormatError:
        raise
    except (TypeError, ValueError) as exc:
        raise SuiteFormatError(str(exc), source=source) from exc
