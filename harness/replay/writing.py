"""The YAML text of one cassette item, written directly for the shapes recordings have.

A cassette item is a mapping of strings, numbers, booleans, nulls, lists and mappings (JSON
bodies, SSE events, headers). PyYAML's dumper turns it into nodes, events and then text, which
costs more than the HTTP request it records. ``write_item`` writes the same text straight from
the values, byte for byte what the dumper writes with the cassette options (block style,
indent 2, no line folding, unicode as is, multi-line strings as literal blocks), and returns
None for anything whose spelling it does not know for sure: then the caller uses the dumper.

Left to the dumper: strings with characters outside the printable set (control characters,
a BOM, characters beyond U+FFFF, which libyaml escapes and the pure emitter does not) or other
line breaks than ``\\n``, strings that only double quotes can hold (e.g. a multi-line string
with a space before a line break), empty, multi-line or long keys, very long lines, non-string keys,
floats spelled in a way that would not read back as floats, and values of other types.
"""

from __future__ import annotations

import re
from typing import Any

from yaml.representer import SafeRepresenter
from yaml.resolver import Resolver

__all__ = ["write_item"]

_STR = "tag:yaml.org,2002:str"
_FLOAT = "tag:yaml.org,2002:float"
# What the emitter writes unescaped with allow_unicode: "\n", printable ASCII and the BMP's
# printable range less the other line breaks (U+0085, U+2028, U+2029) and the BOM.
_UNSAFE = re.compile("[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]")
# A single-line string the block emitter will not write plain: an indicator first, a
# document marker, ": " or " #" inside, a ":" last, a space first or last.
_NOT_PLAIN = re.compile(r"[-?:](?: |$)|[#,\[\]{}&*!|>'\"%@`]|---|\.\.\.| |.*(?:: | #|:$| $)")
# A long key is written as a complex key ("? ..."), from 129 bytes in libyaml and from about
# 123 characters in the pure emitter (which counts the "!!str" tag in); an empty key by the
# pure emitter too. Such keys are left to the dumper.
_SIMPLE_KEY_BYTES = 100
_MAX_LINE = 500_000  # far below the dumper's width (1,000,000): no line is ever folded
_IMPLICIT: dict[str | None, list[tuple[str, re.Pattern[str]]]] = Resolver.yaml_implicit_resolvers
_ANY_FIRST = _IMPLICIT.get(None, [])
_FLOATS = SafeRepresenter()  # its float spelling (.nan, .inf, 1.0e+20) is the one to match


class _Unknown(Exception):
    """A value ``write_item`` leaves to the dumper."""


def _resolves_to(text: str) -> str:
    """The tag a plain scalar ``text`` reads back as (PyYAML's implicit resolvers)."""
    for tag, pattern in _IMPLICIT.get(text[0] if text else "", []) + _ANY_FIRST:
        if pattern.match(text):
            return tag
    return _STR


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_CACHED = 64  # short strings (keys, roles, enums, header values) recur in every item
_CACHE_MAX = 20_000
_keys: dict[str, str] = {}  # a key -> "key:"
_values: dict[str, str] = {}  # a one-line string value -> " value\n"


def _spell(text: str, *, key: bool) -> str:
    """A string without line breaks: plain where the emitter writes it plain, else quoted."""
    if len(text) > _MAX_LINE or _UNSAFE.search(text):
        raise _Unknown("characters only double quotes can hold, or a very long line")
    if key and (not text or len(text.encode("utf-8")) >= _SIMPLE_KEY_BYTES):
        raise _Unknown("an empty or long key")
    if text and not _NOT_PLAIN.match(text) and _resolves_to(text) == _STR:
        return text
    return _quoted(text)


def _remember(cache: dict[str, str], text: str, spelled: str) -> str:
    if len(text) <= _CACHED:
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[text] = spelled
    return spelled


def _key(key: Any) -> str:
    """``key:`` for a mapping key."""
    spelled = _keys.get(key) if type(key) is str else None
    if spelled is not None:
        return spelled
    if type(key) is not str or "\n" in key:
        raise _Unknown("a key that is not a one-line string")
    return _remember(_keys, key, _spell(key, key=True) + ":")


def _string(text: str, indent: int) -> str:
    """`` value`` and its line end for a string value (a literal block's lines at ``indent``)."""
    spelled = _values.get(text)
    if spelled is not None:
        return spelled
    if "\n" in text:
        return " " + _literal(text, indent)
    return _remember(_values, text, " " + _spell(text, key=False) + "\n")


def _literal(text: str, indent: int) -> str:
    """A multi-line string as a literal block (``|``), its lines at ``indent``."""
    if len(text) > _MAX_LINE or _UNSAFE.search(text) or " \n" in text or text[-1] == " ":
        raise _Unknown("a multi-line string that needs double quotes")
    hints = "|2" if text[0] in " \n" else "|"
    if text[-1] != "\n":
        hints += "-"
    elif len(text) == 1 or text[-2] == "\n":
        hints += "+"
    else:
        text = text[:-1]
    if text.endswith("\n"):  # "+": the last break is the block's own end
        text = text[:-1]
    pad = " " * indent
    lines = "\n".join(pad + line if line else "" for line in text.split("\n"))
    return f"{hints}\n{lines}\n"


def _scalar(value: Any, indent: int) -> str:
    """`` value`` and its line end for any scalar, or an empty mapping or list."""
    kind = type(value)
    if kind is str:
        return _string(value, indent)
    if kind is bool:
        return " true\n" if value else " false\n"
    if kind is int:
        return f" {value}\n"
    if value is None:
        return " null\n"
    if kind is float:
        text = str(_FLOATS.represent_float(value).value)
        if _resolves_to(text) != _FLOAT:
            raise _Unknown("a float that would not read back as one")
        return f" {text}\n"
    if kind is dict and not value:
        return " {}\n"
    if kind is list and not value:
        return " []\n"
    raise _Unknown(kind.__name__)


def _mapping(node: dict[Any, Any], indent: int, out: list[str], *, inline: bool) -> None:
    """A block mapping at ``indent``; ``inline``: its first key goes where the cursor is."""
    pad = " " * indent
    append = out.append
    for key, value in node.items():
        if inline:
            inline = False
        else:
            append(pad)
        append(_key(key))
        kind = type(value)
        if kind is str:
            append(_string(value, indent + 2))
        elif value and kind is dict:
            append("\n")
            _mapping(value, indent + 2, out, inline=False)
        elif value and kind is list:
            append("\n")
            _sequence(value, indent, out, inline=False)  # a list in a mapping is not indented
        else:
            append(_scalar(value, indent + 2))


def _sequence(items: list[Any], indent: int, out: list[str], *, inline: bool) -> None:
    """A block sequence with its dashes at ``indent``."""
    pad = " " * indent
    append = out.append
    for item in items:
        if inline:
            inline = False
        else:
            append(pad)
        kind = type(item)
        if kind is str:
            append("-")
            append(_string(item, indent + 2))
        elif item and kind is dict:
            append("- ")
            _mapping(item, indent + 2, out, inline=True)
        elif item and kind is list:
            append("- ")
            _sequence(item, indent + 2, out, inline=True)
        else:
            append("-")
            append(_scalar(item, indent + 2))


def write_item(node: dict[str, Any]) -> str | None:
    """The YAML text of ``[node]`` as the cassette dumper writes it, or None if unsure."""
    out: list[str] = []
    try:
        _sequence([node], 0, out, inline=False)
    except (_Unknown, RecursionError, ValueError):
        return None
    return "".join(out)
