"""JSON Schema -> hypothesis strategies, and seeded draws from them (for ``schema_model``).

Covers the subset tool definitions and structured answers use: ``type`` (one or a list),
``enum``, ``const``, strings (``minLength``, ``maxLength``, ``pattern``, common ``format``\\ s),
integers and numbers (inclusive and exclusive bounds, ``multipleOf``), booleans, null,
arrays (``items``, ``prefixItems``, ``minItems``, ``maxItems``, ``uniqueItems``), objects
(``properties``, ``required``, ``minProperties``, ``maxProperties``), ``anyOf``, ``oneOf``,
``allOf`` and local ``$ref`` (``#/$defs/...``, ``#/definitions/...``, recursion included), as
pydantic's ``model_json_schema()`` writes them. Free text is printable ASCII, so generated
answers read well in logs and cassettes. Objects never get properties the schema does
not name, so generated tool arguments fit ``fn(**arguments)``. Every drawn value is checked
against the whole schema with ``jsonschema`` (what the subset approximates is filtered, never
passed through); a keyword outside the subset is a :class:`SchemaNotSupportedError`.

hypothesis is imported by this module: import it only when a schema is to be drawn from.
"""

from __future__ import annotations

import json
import math
import random as _random
from collections.abc import Callable, Mapping
from typing import Any

import jsonschema
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample, Unsatisfiable

__all__ = ["SchemaNotSupportedError", "draw", "schema_strategy"]

_MAX_TEXT = 12
_MAX_ITEMS = 4
_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$defs",
        "definitions",
        "discriminator",  # OpenAPI's; pydantic writes it next to oneOf
        "strict",
        "additionalProperties",  # generated objects have only the named properties
        "unevaluatedProperties",
        "contentMediaType",
        "contentEncoding",
    }
)
_KNOWN = _ANNOTATIONS | {
    "type",
    "enum",
    "const",
    "$ref",
    "anyOf",
    "oneOf",
    "allOf",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "uniqueItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
}
_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")


class SchemaNotSupportedError(ValueError):
    """A JSON schema uses a keyword (or a form) the generator does not cover; names where."""


def _readable() -> st.SearchStrategy[str]:
    return st.characters(min_codepoint=0x20, max_codepoint=0x7E)  # printable ASCII


def _json_leaves() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-1000, max_value=1000),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        st.text(_readable(), max_size=_MAX_TEXT),
    )


def _any_json() -> st.SearchStrategy[Any]:
    return st.recursive(
        _json_leaves(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.text(_readable(), max_size=6), inner, max_size=3),
        ),
        max_leaves=6,
    )


_FORMATS: dict[str, Callable[[], st.SearchStrategy[str]]] = {
    "date": lambda: st.dates().map(lambda d: d.isoformat()),
    "date-time": lambda: st.datetimes(timezones=st.just(__import__("datetime").timezone.utc)).map(
        lambda d: d.isoformat()
    ),
    "time": lambda: st.times().map(lambda t: t.isoformat()),
    "email": lambda: st.emails(),
    "uuid": lambda: st.uuids().map(str),
    "uri": lambda: st.from_regex(r"\Ahttps://[a-z]{1,10}\.example/[a-z0-9]{0,8}\Z"),
    "ipv4": lambda: st.ip_addresses(v=4).map(str),
}


class _Builder:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, st.SearchStrategy[Any]] = {}

    def build(self, schema: Any, where: str) -> st.SearchStrategy[Any]:
        if schema is True or schema == {}:
            return _any_json()
        if schema is False:
            raise SchemaNotSupportedError(f"{where}: the schema `false` admits no value")
        if not isinstance(schema, Mapping):
            raise SchemaNotSupportedError(f"{where}: a schema is a mapping, got {schema!r:.80}")
        unknown = sorted(set(schema) - _KNOWN)
        if unknown:
            raise SchemaNotSupportedError(
                f"{where}: schema keyword {unknown[0]!r} is not supported by the generator"
            )
        if "$ref" in schema:
            if any(k != "$ref" and k not in _ANNOTATIONS for k in schema):
                return self._merged_ref(schema, where)  # pydantic: $ref beside constraints
            return self._ref(str(schema["$ref"]), where)
        if "allOf" in schema:
            return self.build(self._merge_all_of(schema, where), where)
        if "const" in schema:
            return st.just(schema["const"])
        if "enum" in schema:
            values = schema["enum"]
            if not isinstance(values, list) or not values:
                raise SchemaNotSupportedError(f"{where}.enum: must be a non-empty list")
            return st.sampled_from(values)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = schema[key]
                if not isinstance(options, list) or not options:
                    raise SchemaNotSupportedError(f"{where}.{key}: must be a non-empty list")
                siblings = {k: v for k, v in schema.items() if k != key}
                return st.one_of(
                    [
                        self.build(_merge(siblings, option), f"{where}.{key}[{i}]")
                        for i, option in enumerate(options)
                    ]
                )
        types = schema.get("type")
        if types is None:
            types = _implied_types(schema)
        if isinstance(types, str):
            types = [types]
        if not isinstance(types, list) or not types or any(t not in _TYPES for t in types):
            raise SchemaNotSupportedError(f"{where}.type: unknown type {schema.get('type')!r}")
        return st.one_of([self._typed(t, schema, where) for t in types])

    def _ref(self, ref: str, where: str) -> st.SearchStrategy[Any]:
        if ref not in self.refs:
            target = self._resolve(ref, where)
            # deferred: a recursive model refers to itself while being built
            self.refs[ref] = st.deferred(lambda: built)
            built = self.build(target, ref)
        return self.refs[ref]

    def _resolve(self, ref: str, where: str) -> Any:
        if not ref.startswith("#"):
            raise SchemaNotSupportedError(f"{where}: only local $refs are supported, got {ref!r}")
        node: Any = self.root
        for part in ref[1:].split("/")[1:] if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                raise SchemaNotSupportedError(f"{where}: $ref {ref!r} points nowhere")
            node = node[part]
        return node

    def _merged_ref(self, schema: Mapping[str, Any], where: str) -> st.SearchStrategy[Any]:
        target = self._resolve(str(schema["$ref"]), where)
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return self.build(_merge(target, rest), where)

    def _merge_all_of(self, schema: Mapping[str, Any], where: str) -> dict[str, Any]:
        parts = schema["allOf"]
        if not isinstance(parts, list) or not parts:
            raise SchemaNotSupportedError(f"{where}.allOf: must be a non-empty list")
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for i, part in enumerate(parts):
            if isinstance(part, Mapping) and "$ref" in part:
                part = _merge(
                    self._resolve(str(part["$ref"]), f"{where}.allOf[{i}]"),
                    {k: v for k, v in part.items() if k != "$ref"},
                )
            if not isinstance(part, Mapping):
                raise SchemaNotSupportedError(f"{where}.allOf[{i}]: expected a schema mapping")
            merged = _merge(merged, part)
        return merged

    def _typed(self, kind: str, schema: Mapping[str, Any], where: str) -> st.SearchStrategy[Any]:
        if kind == "null":
            return st.none()
        if kind == "boolean":
            return st.booleans()
        if kind == "integer":
            return _integers(schema, where)
        if kind == "number":
            return _numbers(schema, where)
        if kind == "string":
            return _strings(schema, where)
        if kind == "array":
            return self._array(schema, where)
        return self._object(schema, where)

    def _array(self, schema: Mapping[str, Any], where: str) -> st.SearchStrategy[Any]:
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        prefix = schema.get("prefixItems")
        items = schema.get("items", True)
        if isinstance(items, list):  # draft 4 tuple form
            prefix, items = items, schema.get("additionalItems", True)
        head: list[st.SearchStrategy[Any]] = []
        if prefix is not None:
            head = [self.build(s, f"{where}.prefixItems[{i}]") for i, s in enumerate(prefix)]
        tail_max = 0 if items is False else max(low - len(head), 0) + _MAX_ITEMS
        if high is not None:
            tail_max = min(tail_max, int(high) - len(head))
        if tail_max < 0 or (len(head) > 0 and high is not None and int(high) < len(head)):
            head = head[: int(high or 0)]
            tail_max = 0
        element = self.build(items, f"{where}.items") if items is not False else st.nothing()
        tail_min = max(low - len(head), 0)
        unique = _canonical if schema.get("uniqueItems") else None
        tail = st.lists(
            element, min_size=tail_min, max_size=max(tail_max, tail_min), unique_by=unique
        )
        if not head:
            return tail
        return st.tuples(st.tuples(*head), tail).map(lambda pair: [*pair[0], *pair[1]])

    def _object(self, schema: Mapping[str, Any], where: str) -> st.SearchStrategy[Any]:
        properties = schema.get("properties") or {}
        if not isinstance(properties, Mapping):
            raise SchemaNotSupportedError(f"{where}.properties: must be a mapping")
        required = schema.get("required") or []
        if not isinstance(required, list):
            raise SchemaNotSupportedError(f"{where}.required: must be a list of names")
        fixed = {
            name: self.build(properties.get(name, True), f"{where}.properties.{name}")
            for name in required
        }
        optional = {
            name: self.build(sub, f"{where}.properties.{name}")
            for name, sub in properties.items()
            if name not in fixed
        }
        low = schema.get("minProperties")
        high = schema.get("maxProperties")
        if low is not None and int(low) > len(fixed) + len(optional):
            raise SchemaNotSupportedError(
                f"{where}.minProperties: more properties than the schema names are needed"
            )
        strategy = st.fixed_dictionaries(fixed, optional=optional)
        if low is not None or high is not None:
            least, most = int(low or 0), math.inf if high is None else int(high)
            strategy = strategy.filter(lambda d: least <= len(d) <= most)
        return strategy


def _implied_types(schema: Mapping[str, Any]) -> list[str]:
    if {"properties", "required", "minProperties", "maxProperties"} & set(schema):
        return ["object"]
    if {"items", "prefixItems", "minItems", "maxItems", "uniqueItems"} & set(schema):
        return ["array"]
    if {"minLength", "maxLength", "pattern", "format"} & set(schema):
        return ["string"]
    if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"} & set(schema):
        return ["number"]
    return list(_TYPES)


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Two schemas that must both hold, as one (properties joined, required united)."""
    merged = dict(base)
    for key, value in extra.items():
        if key == "properties" and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        elif key == "required" and isinstance(merged.get(key), list):
            merged[key] = list(dict.fromkeys([*merged[key], *value]))
        else:
            merged[key] = value
    return merged


def _bounds(schema: Mapping[str, Any]) -> tuple[Any, Any, bool, bool]:
    low, high = schema.get("minimum"), schema.get("maximum")
    low_open = high_open = False
    exclusive_low, exclusive_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if exclusive_low is True:  # draft 4: a flag on minimum
        low_open = True
    elif isinstance(exclusive_low, (int, float)) and (low is None or exclusive_low >= low):
        low, low_open = exclusive_low, True
    if exclusive_high is True:
        high_open = True
    elif isinstance(exclusive_high, (int, float)) and (high is None or exclusive_high <= high):
        high, high_open = exclusive_high, True
    return low, high, low_open, high_open


def _integers(schema: Mapping[str, Any], where: str) -> st.SearchStrategy[int]:
    low, high, low_open, high_open = _bounds(schema)
    least = None if low is None else math.floor(low) + 1 if low_open else math.ceil(low)
    most = None if high is None else math.ceil(high) - 1 if high_open else math.floor(high)
    step = schema.get("multipleOf")
    if step is not None:
        if not isinstance(step, int) or step <= 0:
            raise SchemaNotSupportedError(f"{where}.multipleOf: only positive integers")
        least = None if least is None else -((-least) // step)
        most = None if most is None else most // step
    if least is not None and most is not None and least > most:
        raise SchemaNotSupportedError(f"{where}: no integer satisfies the bounds (unsatisfiable)")
    if step is not None:
        return st.integers(min_value=least, max_value=most).map(lambda n: n * step)
    return st.integers(min_value=least, max_value=most)


def _numbers(schema: Mapping[str, Any], where: str) -> st.SearchStrategy[Any]:
    if "multipleOf" in schema:
        return _integers(schema, where)
    low, high, low_open, high_open = _bounds(schema)
    if (
        low is not None
        and high is not None
        and (low > high or (low == high and (low_open or high_open)))
    ):
        raise SchemaNotSupportedError(f"{where}: no number satisfies the bounds (unsatisfiable)")
    return st.floats(
        min_value=low,
        max_value=high,
        exclude_min=low_open and low is not None,
        exclude_max=high_open and high is not None,
        allow_nan=False,
        allow_infinity=False,
    )


def _strings(schema: Mapping[str, Any], where: str) -> st.SearchStrategy[str]:
    least = int(schema.get("minLength", 0))
    most = schema.get("maxLength")
    fmt = schema.get("format")
    if "pattern" in schema:
        strategy = st.from_regex(str(schema["pattern"]))
    elif isinstance(fmt, str) and fmt in _FORMATS:
        strategy = _FORMATS[fmt]()
    else:  # unknown formats are annotations (jsonschema does not check them by default)
        alphabet = _readable()
        high = int(most) if most is not None else least + _MAX_TEXT
        return st.text(alphabet, min_size=least, max_size=high)
    if least or most is not None:
        top = math.inf if most is None else int(most)
        # JSON Schema counts code points, as len() does
        strategy = strategy.filter(lambda s: least <= len(s) <= top)
    return strategy


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def schema_strategy(schema: Mapping[str, Any] | bool) -> st.SearchStrategy[Any]:
    """A hypothesis strategy of JSON values valid against ``schema`` (see the module doc)."""
    if isinstance(schema, bool):
        schema = {} if schema else {"not": {}}
    strategy = _Builder(schema).build(schema, "#")
    validator = jsonschema.validators.validator_for(schema)(schema)
    return strategy.filter(validator.is_valid)


def draw(strategy: st.SearchStrategy[Any], seed: int) -> Any:
    """One value of ``strategy``, the same for the same ``seed`` (no shrinking, no database).

    Uses hypothesis's public ``find`` with a seeded ``random`` and only the generate phase;
    the value is the fourth one generated (the first ones are the simplest), or the last
    one when the schema has fewer values.
    """
    seen: list[Any] = []

    def fourth(value: Any) -> bool:
        seen.append(value)
        return len(seen) > 3

    config = settings(
        database=None,
        phases=[Phase.generate],
        max_examples=200,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    try:
        return find(strategy, fourth, settings=config, random=_random.Random(seed))
    except (NoSuchExample, Unsatisfiable) as exc:
        if seen:  # fewer than four values exist (e.g. only {}): the last one generated
            return seen[-1]
        raise SchemaNotSupportedError(
            "no value valid against the schema could be generated (is it satisfiable?)"
        ) from exc
