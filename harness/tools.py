"""Tools a model may call, and the structured answers a request may ask for.

``Tool(name, description, parameters)`` is the one provider-neutral shape; :meth:`Tool.of`
builds it from a Tool, an OpenAI-style function dict (``{"type": "function", "function":
{...}}`` or the bare ``{name, description, parameters}``), a Python function (its JSON schema
from the signature, annotations and docstring) or a pydantic model class. Providers translate
Tools, :func:`tool_choice_of`'s choice and :class:`ResponseFormat` to their wire formats.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import pydantic

__all__ = [
    "ResponseFormat",
    "Tool",
    "ToolChoice",
    "ToolLike",
    "normalize_tool_choice",
    "response_format_of",
    "tools_of",
]

ToolLike: TypeAlias = "Tool | Mapping[str, Any] | Callable[..., Any] | type[pydantic.BaseModel]"
# "auto", "none", "required", or the name of the one tool the model must call.
ToolChoice: TypeAlias = str

_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, what it does, and its JSON-schema parameters."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: dict(_EMPTY_PARAMETERS))

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a tool needs a non-empty name, got {self.name!r}")
        if not isinstance(self.parameters, dict):
            raise TypeError(
                f"tool {self.name!r}: parameters must be a JSON-schema dict, "
                f"got {type(self.parameters).__name__}"
            )

    @classmethod
    def of(cls, tool: ToolLike) -> Tool:
        """A Tool from a Tool, an OpenAI-style function dict, a function or a pydantic model."""
        if isinstance(tool, Tool):
            return tool
        if isinstance(tool, Mapping):
            return cls.from_dict(tool)
        if isinstance(tool, type) and issubclass(tool, pydantic.BaseModel):
            return cls.from_model(tool)
        if callable(tool):
            return cls.from_function(tool)
        raise TypeError(
            "a tool is a harness.Tool, an OpenAI-style function dict, a function or a "
            f"pydantic model class, got {type(tool).__name__}"
        )

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Tool:
        """A Tool from ``{"type": "function", "function": {...}}`` or ``{name, ...}``."""
        function = spec.get("function") if spec.get("type") == "function" else spec
        if not isinstance(function, Mapping) or not function.get("name"):
            raise ValueError(f"a tool dict needs function.name (or name): {dict(spec)!r:.200}")
        parameters = function.get("parameters")
        if parameters is None:
            parameters = dict(_EMPTY_PARAMETERS)
        return cls(
            name=str(function["name"]),
            description=str(function.get("description") or ""),
            parameters=dict(parameters),
        )

    @classmethod
    def from_model(cls, model: type[pydantic.BaseModel]) -> Tool:
        """A Tool whose arguments are ``model``'s fields (its name, its docstring)."""
        schema = model.model_json_schema()
        description = str(schema.pop("description", "") or "")
        schema.pop("title", None)
        return cls(name=model.__name__, description=description, parameters=schema)

    @classmethod
    def from_function(cls, fn: Callable[..., Any]) -> Tool:
        """A Tool from a function: parameters from its signature and annotations (unannotated
        ones accept any JSON), description from its docstring's first paragraph."""
        name = getattr(fn, "__name__", None)
        if not name or name == "<lambda>":
            raise ValueError(f"a function tool needs a name, got {fn!r}")
        signature = inspect.signature(fn)
        hints = _type_hints(fn)
        fields: dict[str, Any] = {}
        for param in signature.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            annotation = hints.get(param.name, Any)
            default = ... if param.default is param.empty else param.default
            fields[param.name] = (annotation, default)
        model = pydantic.create_model(name, **fields)
        schema = model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            if isinstance(prop, dict):
                prop.pop("title", None)
        doc = inspect.getdoc(fn) or ""
        description = doc.split("\n\n", 1)[0].replace("\n", " ").strip()
        return cls(name=name, description=description, parameters=schema)

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI Chat Completions ``tools`` entry."""
        function: dict[str, Any] = {"name": self.name}
        if self.description:
            function["description"] = self.description
        function["parameters"] = self.parameters
        return {"type": "function", "function": function}


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(fn)
    except Exception as exc:  # a forward reference that does not resolve
        name = getattr(fn, "__name__", fn)
        raise TypeError(f"tool {name!r}: unreadable annotations: {exc}") from exc


def tools_of(tools: Iterable[ToolLike] | None) -> list[Tool]:
    """The request's tools as Tools (empty for None); duplicate names are refused."""
    if tools is None:
        return []
    if isinstance(tools, (Mapping, Tool)) or (callable(tools) and not isinstance(tools, list)):
        raise TypeError("tools is a list of tools, not one tool")
    result = [Tool.of(t) for t in tools]
    seen: set[str] = set()
    for tool in result:
        if tool.name in seen:
            raise ValueError(f"two tools are named {tool.name!r}")
        seen.add(tool.name)
    return result


def normalize_tool_choice(choice: Any, tools: list[Tool]) -> ToolChoice | None:
    """``auto``, ``none``, ``required`` or the name of one of ``tools`` (also accepts
    OpenAI's ``{"type": "function", "function": {"name": ...}}`` and a Tool); None: unset."""
    if choice is None:
        return None
    if isinstance(choice, Tool):
        choice = choice.name
    elif isinstance(choice, Mapping):
        function = choice.get("function")
        if choice.get("type") == "function" and isinstance(function, Mapping):
            choice = function.get("name")
        else:
            raise ValueError(f"unreadable tool_choice {dict(choice)!r:.200}")
    if not isinstance(choice, str) or not choice:
        raise ValueError(f"tool_choice is auto, none, required or a tool name, got {choice!r}")
    if choice in ("auto", "none", "required"):
        if choice != "none" and not tools:
            raise ValueError(f"tool_choice={choice!r} without tools")
        return choice
    names = [t.name for t in tools]
    if choice not in names:
        raise ValueError(f"tool_choice {choice!r} names no offered tool (offered: {names})")
    return choice


@dataclass(frozen=True)
class ResponseFormat:
    """A structured answer a request asks for: any JSON object (``kind="json"``), or JSON
    matching ``schema`` (from a JSON-schema dict, or from ``model``, a pydantic class)."""

    kind: Literal["json", "schema"]
    schema: dict[str, Any] | None = None
    name: str = "response"
    model: type[pydantic.BaseModel] | None = None

    def parse(self, text: str) -> Any:
        """The answer decoded and validated: a ``model`` instance, or the decoded JSON.

        Raises ValueError with the reason when the text is not valid JSON or not valid
        against the schema.
        """
        if self.model is not None:
            try:
                return self.model.model_validate_json(text)
            except pydantic.ValidationError as exc:
                raise ValueError(str(exc)) from exc
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from exc
        if self.schema is not None:
            import jsonschema

            try:
                jsonschema.validate(value, self.schema)
            except jsonschema.ValidationError as exc:
                raise ValueError(f"not valid against the schema: {exc.message}") from exc
        return value

    def as_tool(self) -> Tool:
        """The synthetic tool whose input is the answer (for APIs that force a tool call)."""
        return Tool(
            name=self.name,
            description="Answer with this tool; its input is the answer.",
            parameters=self.schema or dict(_EMPTY_PARAMETERS),
        )


def response_format_of(value: Any) -> ResponseFormat | None:
    """A ResponseFormat from a pydantic model class, a JSON-schema dict, ``"json"`` or a
    ResponseFormat (None: unset)."""
    if value is None or isinstance(value, ResponseFormat):
        return value
    if value == "json":
        return ResponseFormat(kind="json")
    if isinstance(value, type) and issubclass(value, pydantic.BaseModel):
        return ResponseFormat(
            kind="schema", schema=value.model_json_schema(), name=value.__name__, model=value
        )
    if isinstance(value, Mapping):
        schema = dict(value)
        title = schema.get("title")
        name = title if isinstance(title, str) and _is_name(title) else "response"
        return ResponseFormat(kind="schema", schema=schema, name=name)
    raise TypeError(
        "response_format is a pydantic model class, a JSON-schema dict or 'json', "
        f"got {value!r:.100}"
    )


def _is_name(text: str) -> bool:
    return bool(text) and len(text) <= 64 and all(c.isalnum() or c in "_-" for c in text)
