"""Cassette I/O at scale (issue #14): the event-built YAML load, buffered recording, the shared
TLS context of default upstreams."""

from __future__ import annotations

import gc
import json
import re
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.replay import (
    Cassette,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    Redactor,
    ReplayTransport,
    ReplayWarning,
    SecretLeakError,
    adapters,
    dump_interactions,
    load_interactions,
    reading,
    use_cassette,
)
from harness.replay import cassette as cassette_module
from harness.replay.adapters import library_for, shared_ssl_context
from harness.replay.cassette import parse_cassette_text
from harness.replay.matching import Matcher
from harness.replay.reading import gc_paused, load_yaml
from harness.replay.writing import write_item

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parent.parent.parent
CORPUS = ROOT / "tests" / "wire_corpus"
EVERY_YAML = sorted(
    p for folder in (ROOT / "cassettes", ROOT / "tests") for p in folder.rglob("*.yaml")
)
COMMITTED = [
    p for p in EVERY_YAML if "format: harness" in p.read_text(encoding="utf-8", errors="replace")
]
URL = "https://api.example.com/v1/x"


# -- item 1: loading ----------------------------------------------------------------------------

TRICKY = {
    "scalars": "a: 1\nb: 1.5\nc: true\nd: ~\ne: ''\nf: '1'\ng: 0x1F\nh: .inf\ni: 2025-01-01\n"
    "j: 2025-01-01T12:00:00Z\nk: !!str 12\nl: !!binary aGk=\nm: !!float 3\nn: yes\no: .nan\n",
    "anchors": "base: &b {x: 1, y: [1, 2]}\nsame: *b\nlist: &l [a, b]\nagain: *l\n"
    "s: &s hi\nt: *s\n",
    "merge key": "base: &b {x: 1, y: 2}\nchild:\n  <<: *b\n  y: 3\n",
    "set and omap": "s: !!set {a, b}\no: !!omap [{a: 1}, {b: 2}]\np: !!pairs [{a: 1}]\n",
    "recursive": "&r [1, *r]\n",
    "recursive map": "&m {a: 1, self: *m}\n",
    "empty": "",
    "only a scalar": "just text\n",
    "block scalars": "a: |\n  line 1\n  line 2\nb: >-\n  folded\n  text\nc: |+\n  kept\n\n",
    "flow": "{a: [1, {b: c}], 'd': \"e\\n\"}\n",
    "tags on collections": "a: !!map {x: 1}\nb: !!seq [1]\n",
    "non-specific tag": "a: ! 12\nb: ! [1]\n",
    "interactions not first": "interactions: [{x: 1}]\nformat: harness\n",
    "value key": "a: {=: 1}\n",
}
BROKEN = {
    "two documents": "a: 1\n---\nb: 2\n",
    "undefined alias": "a: *nope\n",
    "unhashable key": "? [1, 2]\n: x\n",
    "mapping key": "? {a: 1}\n: x\n",
    "unknown tag": "a: !!python/tuple [1]\n",
    "bad indentation": "a:\n  - 1\n - 2\n",
    "duplicate anchor": "a: &x 1\nb: &x 2\n",
}


def _same(left: Any, right: Any) -> bool:
    """Equal, with NaN and recursive lists compared by shape (``==`` fails on both)."""
    return repr(left) == repr(right)


@pytest.mark.parametrize("text", TRICKY.values(), ids=TRICKY.keys())
def test_load_yaml_gives_what_the_safe_loader_gives(text: str) -> None:
    assert _same(load_yaml(text), yaml.safe_load(text))
    assert _same(load_yaml(text.encode()), yaml.safe_load(text))


@pytest.mark.parametrize("text", BROKEN.values(), ids=BROKEN.keys())
def test_load_yaml_raises_what_the_safe_loader_raises(text: str) -> None:
    with pytest.raises(yaml.YAMLError) as expected:
        yaml.load(text, Loader=reading._Loader)
    with pytest.raises(type(expected.value)) as got:
        load_yaml(text)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("path", EVERY_YAML, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_committed_yaml_file_loads_as_the_safe_loader_loads_it(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert load_yaml(text) == yaml.load(text, Loader=reading._Loader)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_cassettes_round_trip_unchanged(path: Path) -> None:
    raw = path.read_text(encoding="utf-8")
    interactions = load_interactions(path)
    dumped = dump_interactions(interactions)[1]
    # version 1 files become version 2 (the count after the list) at their next write
    expected = raw
    if "\nversion: 1\n" in raw[:100]:
        expected = raw.replace("\nversion: 1\n", "\nversion: 2\n", 1).removesuffix("...\n")
        expected += f"interactions_count: {len(interactions)}\n"
    assert dumped == expected
    assert parse_cassette_text(dumped, path) == interactions


@pytest.mark.parametrize("path", [*COMMITTED, *sorted(CORPUS.glob("*/*.yaml"))], ids=str)
def test_the_pure_python_loader_and_dumper_give_the_same_bytes(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = load_interactions(path)
    fast_text = dump_interactions(fast)[1]
    monkeypatch.setattr(reading, "_Loader", yaml.SafeLoader)  # as without libyaml
    pure_dumper = cassette_module._dumper(yaml.SafeDumper)
    monkeypatch.setitem(cassette_module._DUMP_OPTIONS, "Dumper", pure_dumper)
    monkeypatch.setattr(cassette_module, "write_item", lambda node: None)  # the dumper writes
    slow = load_interactions(path)
    assert slow == fast
    slow_text = dump_interactions(slow)[1]
    # libyaml escapes characters beyond U+FFFF (emoji) where the pure emitter writes them:
    # load-equal and stable, and byte-identical everywhere else
    reread = parse_cassette_text(slow_text, path)
    assert reread == parse_cassette_text(fast_text, path)
    assert dump_interactions(reread)[1] == slow_text
    if not any(ord(char) > 0xFFFF for char in slow_text):
        assert slow_text == fast_text


def test_without_libyaml_the_pure_python_classes_are_chosen() -> None:
    class WithoutLibyaml:
        SafeLoader = yaml.SafeLoader
        SafeDumper = yaml.SafeDumper

    assert reading._loader_class(WithoutLibyaml) is yaml.SafeLoader
    assert reading._loader_class(yaml) is getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    assert issubclass(cassette_module._dumper_base(WithoutLibyaml), yaml.SafeDumper)


def _interactions(n: int, pad: int = 0) -> list[Interaction]:
    return [
        Interaction(
            RecordedRequest(
                "POST",
                URL,
                [("content-type", "application/json")],
                json.dumps({"n": n, "messages": [{"role": "user", "content": "x" * pad}]}).encode(),
            ),
            RecordedResponse(
                200,
                [("content-type", "application/json")],
                json.dumps({"id": f"r{n}", "choices": [{"text": f"answer {n}"}]}).encode(),
            ),
            recorded_at=datetime(2025, 1, 1, tzinfo=timezone.utc),
            duration=0.5,
        )
        for n in range(n)
    ]


def test_loading_pauses_the_collector_and_restores_it_even_on_error(tmp_path: Path) -> None:
    states: list[bool] = []

    def spy(top: Any, index: int, item: Any) -> Any:
        states.append(gc.isenabled())
        return item

    assert gc.isenabled()
    load_yaml("interactions: [1, 2]\n", spy)
    assert states == [False, False] and gc.isenabled()
    with pytest.raises(yaml.YAMLError):
        load_yaml("a: [1\n")
    assert gc.isenabled()
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: harness\nversion: 2\ninteractions: [{request: 1}]\n")
    with pytest.raises(Exception, match="interactions"):
        load_interactions(bad)
    assert gc.isenabled()
    gc.disable()
    try:
        load_yaml("a: 1\n")
        assert not gc.isenabled()  # a collector the caller turned off stays off
    finally:
        gc.enable()


def test_concurrent_loads_turn_the_collector_back_on_after_the_last_one() -> None:
    inside = threading.Barrier(2, timeout=10)
    release = threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            with gc_paused():
                inside.wait()
                release.wait(10)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    first = threading.Thread(target=hold)
    first.start()
    with gc_paused():
        inside.wait()
        release.set()
        first.join(10)
        assert not gc.isenabled()  # the other one ended: still paused for this one
    assert gc.isenabled() and errors == []


def test_a_load_holds_under_5x_the_file_size_at_its_peak(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(dump_interactions(_interactions(400, pad=200))[1], encoding="utf-8")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        loaded = load_interactions(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(loaded) == 400
    assert peak < 5 * size, f"peak {peak} bytes for a {size}-byte file"


def test_an_item_that_does_not_read_is_reported_after_the_count_check(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    text = dump_interactions(_interactions(3))[1]
    # the last item lost its response, and the file its count: the cut is what is reported
    cut = text[: text.rindex("  response:")]
    path.write_text(cut, encoding="utf-8")
    with pytest.raises(Exception, match=r"interactions_count.*cut short"):
        load_interactions(path)
    path.write_text(cut + "interactions_count: 3\n", encoding="utf-8")
    with pytest.raises(Exception, match=r"interactions\[2\]\.response"):
        load_interactions(path)


def _plain_dump(node: Any) -> str:
    """What PyYAML's own representer writes for one item (the reference for the fast path)."""

    class Plain(cassette_module._dumper_base(yaml)):  # type: ignore[misc]
        pass

    Plain.add_representer(str, cassette_module._represent_str)
    return str(yaml.dump([node], **{**cassette_module._DUMP_OPTIONS, "Dumper": Plain}))


@pytest.mark.parametrize("path", [*COMMITTED, *sorted(CORPUS.glob("*/*.yaml"))], ids=str)
def test_items_are_written_as_the_representer_would_write_them(path: Path) -> None:
    for interaction in load_interactions(path):
        node = cassette_module._interaction_node(interaction)
        assert cassette_module._dump_item(node) == _plain_dump(node)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(blacklist_categories=("Cs",))),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_json_value_is_written_as_the_representer_would(value: Any) -> None:
    node = {"request": {"method": "POST", "body": {"json": value}}}
    assert cassette_module._dump_item(node) == _plain_dump(node)


def _pure_dump(node: Any) -> str:
    """What the pure-Python emitter writes for one item (as without libyaml)."""
    pure = cassette_module._dumper(yaml.SafeDumper)
    return str(yaml.dump([node], **{**cassette_module._DUMP_OPTIONS, "Dumper": pure}))


def _item_text(dumped: str) -> str:
    """A dumped item without the document end marker (``...``) PyYAML adds after ``|+``."""
    return dumped[:-4] if dumped.endswith("\n...\n") else dumped


# Strings built from the characters that change how YAML spells a scalar: indicators, quotes,
# spaces and line breaks in every position, numbers, dates, tabs, a BOM, U+2028, an emoji.
TRICKY_CHARS = list(" \n:#-?'\".,[]{}!|>%@`&*=<~0123456789eE+_abxyz\t\r\x85\u00e9\u2028\ufeff")
SPECIAL_WORDS = [
    "yes",
    "No",
    "true",
    "null",
    "~",
    "1.5",
    "0x1f",
    "1_000",
    "2025-01-01",
    "<<",
    "=",
    "---",
    "...",
    "wait...",
    "#x",
    "a:",
    "-",
]
tricky_strings = (
    st.text(st.sampled_from([*TRICKY_CHARS, "\U0001f600"]), max_size=14)
    | st.text(st.characters(blacklist_categories=("Cs",)))
    | st.sampled_from([*SPECIAL_WORDS, "", "\n", "a\n\n", "k" * 99, "k" * 100, "k" * 125])
)
tricky_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | tricky_strings,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_strings, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tricky_values)
def test_the_direct_writer_writes_what_the_dumper_writes_or_leaves_it_to_the_dumper(
    value: Any,
) -> None:
    node = {"request": {"method": "POST", "body": {"json": value}}, "duration": 0.5}
    written = write_item(node)
    dumped = _item_text(_plain_dump(node))
    if written is not None:
        assert written == dumped
        assert written == _item_text(_pure_dump(node))  # the emitter without libyaml too


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tricky_values, tricky_values)
def test_an_item_with_any_values_reads_back_as_it_was_recorded(value: Any, last: Any) -> None:
    # the last value is the item's last line: a written end marker there would cut the file
    node = {"request": {"method": "POST", "body": {"json": value}}, "note": last}
    text = write_item(node)
    if text is None:
        text = _item_text(_plain_dump(node))
    assert _same(yaml.safe_load(text), [node])


DOUBLE_QUOTED = re.compile(r'(?:^|: |- )"', re.MULTILINE)


@pytest.mark.parametrize("path", [*COMMITTED, *sorted(CORPUS.glob("*/*.yaml"))], ids=str)
def test_recorded_shapes_take_the_direct_writer_and_match_the_dumper(path: Path) -> None:
    for interaction in load_interactions(path):
        node = cassette_module._interaction_node(interaction)
        written = write_item(node)
        dumped = _item_text(_plain_dump(node))
        if written is None:  # only what the dumper spells in double quotes is left to it
            assert DOUBLE_QUOTED.search(dumped), dumped
        else:
            assert written == dumped


@pytest.mark.parametrize("header", ["text/plain", "text/plain\tx"], ids=["direct", "dumper"])
def test_an_item_whose_last_value_ends_in_three_dots_is_written_whole(header: str) -> None:
    # "...\n" at the end of an item is only PyYAML's end marker when it is a line of its own
    interaction = Interaction(
        RecordedRequest("GET", URL, [("x-note", header)]),
        RecordedResponse(200, [("content-type", "text/plain")], b"Loading..."),
    )
    text = dump_interactions([interaction])[1]
    assert parse_cassette_text(text, "c.yaml") == [interaction]


LEAK = "sk-proj-" + "a1B2" * 10
HIDDEN = {
    "plain": LEAK,
    "json escape": "\\u0073k-proj-" + "a1B2" * 10,
    "percent": "key%3D" + LEAK.replace("-", "%2D"),
    "plus": "q=" + LEAK,
    "bearer mixed case": "BeArEr " + "abcdefgh" * 3,
    "aws": "AKIA" + "ABCDEFGHIJKLMNOP",
    "jwt": "eyJ" + "a" * 10 + ".eyJ" + "b" * 10 + "." + "c" * 10,
    "google": "AIza" + "x" * 35,
    "oauth": "ya29." + "y" * 25,
}


@pytest.mark.parametrize("secret", HIDDEN.values(), ids=HIDDEN.keys())
@pytest.mark.parametrize(
    "where", ["body", "header", "uri", "json key", "escaped body", "binary body", "text body"]
)
def test_the_quick_secret_check_never_misses_what_the_full_scan_finds(
    secret: str, where: str
) -> None:
    headers = [("content-type", "application/json")]
    body = json.dumps({"text": "hello"}).encode()
    uri = URL
    if where == "body":
        body = json.dumps({"text": f"see {secret} here"}).encode()
    elif where == "header":
        headers.append(("x-note", secret))
    elif where == "uri":
        uri = f"{URL}?note={secret}"
    elif where == "escaped body":  # a tab and an emoji: YAML writes it in double quotes
        body = json.dumps({"text": f"\t\U0001f600 {secret}"}, ensure_ascii=False).encode()
    elif where == "binary body":  # stored as base64
        headers, body = [("content-type", "image/png")], b"\x89PNG\x00 " + secret.encode()
    elif where == "text body":
        headers, body = [("content-type", "text/plain")], f"a\n{secret}\n".encode()
    else:
        body = json.dumps({secret: 1}).encode()
    interaction = Interaction(
        RecordedRequest("POST", uri, headers, body), RecordedResponse(200, headers, b"{}")
    )
    item = cassette_module._Item.of(interaction)
    assert _full_scan(item), "the example must hold a key the full scan finds"
    assert cassette_module._may_hold_secret(item)
    assert cassette_module._scan_item(0, item)
    # the check of a whole file opened for recording
    assert cassette_module._file_may_hold_secret(cassette_module._document([item]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(HIDDEN.values())),
    st.text(st.sampled_from([*TRICKY_CHARS, "\U0001f600", "%", "\\", "k"]), max_size=8),
    st.text(st.sampled_from([*TRICKY_CHARS, "%", "\\"]), max_size=8),
    st.sampled_from(["json", "text/plain", "text/event-stream"]),
)
def test_the_quick_checks_never_miss_a_key_the_full_scan_finds(
    secret: str, before: str, after: str, kind: str
) -> None:
    value = before + secret + after
    if kind == "json":
        headers, body = [("content-type", "application/json")], json.dumps({"t": value}).encode()
    else:
        headers, body = [("content-type", kind)], value.encode()
    interaction = Interaction(
        RecordedRequest("POST", URL, headers, body), RecordedResponse(200, headers, body)
    )
    item = cassette_module._Item.of(interaction)
    if _full_scan(item):
        assert cassette_module._may_hold_secret(item)
        assert cassette_module._file_may_hold_secret(cassette_module._document([item]))


def _full_scan(item: Any) -> list[str]:
    """Every finding of the detailed scan, without the quick check in front of it."""
    findings = cassette_module.find_secrets(item.node, item.text)
    for body in (item.interaction.request.body, item.interaction.response.body):
        findings += cassette_module.find_secrets(body.decode("latin-1"))
    return findings


def test_the_file_check_passes_an_ordinary_cassette() -> None:
    text = dump_interactions(_interactions(5))[1]
    assert not cassette_module._file_may_hold_secret(text)
    escaped = dump_interactions([_text_interaction("50% off\tnow \\d+ \U0001f600")])[1]
    assert "\\" in escaped and "%" in escaped
    assert not cassette_module._file_may_hold_secret(escaped)
    worded = dump_interactions([_text_interaction("Bearer bonds pay interest")])[1]
    assert not cassette_module._file_may_hold_secret(worded)  # the word alone is no token


def _text_interaction(text: str) -> Interaction:
    headers = [("content-type", "text/plain")]
    return Interaction(
        RecordedRequest("POST", URL, headers, text.encode()),
        RecordedResponse(200, headers, text.encode()),
    )


class _Counted:
    """Counts the calls of the functions that do work per stored interaction."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: dict[str, int] = {"item": 0, "redact": 0, "key": 0}
        item_of = cassette_module._Item.of.__func__  # type: ignore[attr-defined]
        redact = Redactor.redact_request
        key = Matcher.key

        def counted_item(cls: Any, interaction: Interaction) -> Any:
            self.calls["item"] += 1
            return item_of(cls, interaction)

        def counted_redact(redactor: Redactor, request: RecordedRequest) -> Any:
            self.calls["redact"] += 1
            return redact(redactor, request)

        def counted_key(matcher: Matcher, request: RecordedRequest) -> Any:
            self.calls["key"] += 1
            return key(matcher, request)

        monkeypatch.setattr(cassette_module._Item, "of", classmethod(counted_item))
        monkeypatch.setattr(Redactor, "redact_request", counted_redact)
        monkeypatch.setattr(Matcher, "key", counted_key)

    def reset(self) -> None:
        self.calls = dict.fromkeys(self.calls, 0)


def _json_upstream(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, json={"id": "new"})


def test_opening_a_cassette_for_recording_does_no_work_per_stored_interaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yaml"
    stored = _interactions(40)
    path.write_text(dump_interactions(stored)[1], encoding="utf-8")
    counted = _Counted(monkeypatch)
    transport = ReplayTransport(
        path, "record", upstream=httpx2.MockTransport(_json_upstream), redactor=Redactor()
    )
    assert counted.calls == {"item": 0, "redact": 0, "key": 0}  # nothing per interaction
    with httpx2.Client(transport=transport) as client:
        # the first request builds the match index (one key per stored interaction) ...
        replayed = client.post(URL, content=stored[3].request.body, headers={"x": "1"})
        assert replayed.json() == json.loads(stored[3].response.body)
        assert counted.calls["key"] == 40 + 1
        assert counted.calls["item"] == 0  # ... and the stored items wait for the write
        client.post(URL, json={"n": "new"})
        counted.reset()
    # the write at close redacts each stored interaction once; those it leaves as they are
    # keep their text from the file (no YAML work), and every interaction is kept
    assert counted.calls["item"] == 0
    assert counted.calls["redact"] == 40
    on_disk = load_interactions(path)
    assert on_disk[:40] == stored
    assert json.loads(on_disk[40].request.body) == {"n": "new"}
    assert path.read_text(encoding="utf-8") == dump_interactions(on_disk)[1]


def test_a_stored_interaction_the_redactor_changes_is_written_redacted_the_rest_as_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.yaml"
    stored = _interactions(3)
    stored[1].request.headers.append(("x-api-key", "abc123"))  # dropped by the redactor
    before = dump_interactions(stored)[1]
    path.write_text(before, encoding="utf-8")
    transport = ReplayTransport(
        path, "record", upstream=httpx2.MockTransport(_json_upstream), redactor=Redactor()
    )
    with httpx2.Client(transport=transport) as client:
        client.post(URL, json={"n": "new"})
    on_disk = load_interactions(path)
    assert ("x-api-key", "abc123") not in on_disk[1].request.headers
    assert "abc123" not in path.read_text(encoding="utf-8")
    assert on_disk[0] == stored[0] and on_disk[2] == stored[2]
    assert path.read_text(encoding="utf-8") == dump_interactions(on_disk)[1]


def _version_1(text: str) -> str:
    return text.replace("version: 2", "version: 1").rsplit("interactions_count", 1)[0]


def _commented(text: str) -> str:
    return text.replace("interactions:\n", "interactions:\n# recorded by hand\n")


def _anchored(text: str) -> str:
    json_type = "content-type: application/json"
    anchored = text.replace(json_type, "content-type: &t application/json", 1)
    return anchored.replace(json_type, "content-type: *t")


def _flow(text: str) -> str:
    return str(yaml.safe_dump(yaml.safe_load(text), default_flow_style=True, sort_keys=False))


LAID_OUT = {"version 1": _version_1, "a comment": _commented, "anchors": _anchored, "flow": _flow}


@pytest.mark.parametrize("layout", LAID_OUT.values(), ids=LAID_OUT.keys())
def test_extending_a_file_laid_out_by_hand_keeps_every_interaction(
    tmp_path: Path, layout: Any
) -> None:
    path = tmp_path / "c.yaml"
    stored = _interactions(4)
    path.write_text(layout(dump_interactions(stored)[1]), encoding="utf-8")
    assert load_interactions(path) == stored
    transport = ReplayTransport(
        path, "record", upstream=httpx2.MockTransport(_json_upstream), redactor=Redactor()
    )
    with httpx2.Client(transport=transport) as client:
        client.post(URL, json={"n": "new"})
    on_disk = load_interactions(path)
    assert on_disk[:4] == stored
    assert json.loads(on_disk[4].request.body) == {"n": "new"}


def test_a_transport_never_used_builds_no_match_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(dump_interactions(_interactions(10))[1], encoding="utf-8")
    counted = _Counted(monkeypatch)
    for mode in ("replay", "record"):
        ReplayTransport(path, mode, upstream=httpx2.MockTransport(_json_upstream)).close()
    assert counted.calls == {"item": 0, "redact": 0, "key": 0}
    assert load_interactions(path) == _interactions(10)  # a record transport that added nothing


def test_a_key_on_disk_is_still_refused_when_a_cassette_is_opened_for_recording(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.yaml"
    leaked = _text_interaction("note: " + HIDDEN["json escape"])  # hidden behind an escape
    path.write_text(dump_interactions([*_interactions(3), leaked])[1], encoding="utf-8")
    with pytest.raises(SecretLeakError, match=r"interactions\[3\]"):
        ReplayTransport(path, "record", upstream=httpx2.MockTransport(_json_upstream))


def test_a_changed_key_pattern_turns_the_quick_check_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    from harness.replay import redaction

    patterns = {**redaction.SECRET_PATTERNS, "new kind": re.compile(r"zz-[0-9]{8}")}
    monkeypatch.setattr(cassette_module, "SECRET_PATTERNS", patterns)
    monkeypatch.setattr(redaction, "SECRET_PATTERNS", patterns)
    interaction = Interaction(
        RecordedRequest("POST", URL, [], b'{"a": "zz-12345678"}'), RecordedResponse(200, [], b"")
    )
    assert cassette_module._may_hold_secret(cassette_module._Item.of(interaction))


# -- item 2: buffered recording -----------------------------------------------------------------


def _echo(request: Any) -> httpx2.Response:
    return httpx2.Response(200, json={"echo": json.loads(request.content or b"null")})


def _sent(path: Path) -> list[Any]:
    return [json.loads(i.request.body) for i in load_interactions(path)]


def _recorder(path: Path, **options: Any) -> ReplayTransport:
    options.setdefault("redactor", Redactor())
    return ReplayTransport(path, "record", upstream=httpx2.MockTransport(_echo), **options)


def test_record_mode_writes_at_close_not_per_request(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    transport = _recorder(path)
    with httpx2.Client(transport=transport) as client:
        for n in range(5):
            client.post(URL, json={"n": n})
        assert not path.exists()
        assert transport.cassette.pending == 5
    assert _sent(path) == [{"n": n} for n in range(5)]
    assert transport.cassette.pending == 0


def test_record_mode_flush_writes_what_is_buffered(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    with httpx2.Client(transport=_recorder(path)) as client:
        client.post(URL, json={"n": 1})
        client._transport.flush()  # type: ignore[attr-defined]
        assert _sent(path) == [{"n": 1}]
        client.post(URL, json={"n": 2})
        assert _sent(path) == [{"n": 1}]
    assert _sent(path) == [{"n": 1}, {"n": 2}]


def test_record_mode_writes_once_the_buffer_reaches_its_size(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    transport = _recorder(path, clock=lambda: 0.0)  # the same duration for each
    with httpx2.Client(transport=transport) as client:
        client.post(URL, json={"n": 0})
        one = transport.cassette.pending_bytes  # every item here has the same size
        transport.buffer_bytes = 3 * one
        seen = [0]
        for n in range(1, 7):
            client.post(URL, json={"n": n})
            seen.append(len(_sent(path)) if path.exists() else 0)
    assert seen == [0, 0, 3, 3, 3, 6, 6]
    assert _sent(path) == [{"n": n} for n in range(7)]
    path.unlink()
    with httpx2.Client(transport=_recorder(path, buffer_bytes=0)) as client:
        for n in range(3):
            client.post(URL, json={"n": n})
            assert len(_sent(path)) == n + 1  # 0: each interaction at once


def test_record_mode_writes_once_the_oldest_buffered_interaction_is_old(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    now = [100.0]
    transport = _recorder(path, buffer_seconds=10.0, clock=lambda: now[0])
    with httpx2.Client(transport=transport) as client:
        client.post(URL, json={"n": 0})
        now[0] += 9.0
        client.post(URL, json={"n": 1})
        assert not path.exists()
        now[0] += 1.0  # the first one has now waited 10 s
        client.post(URL, json={"n": 2})
        assert len(_sent(path)) == 3
        client.post(URL, json={"n": 3})  # a fresh buffer
        assert len(_sent(path)) == 3
    assert len(_sent(path)) == 4


def test_negative_buffer_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="buffer_bytes"):
        ReplayTransport(tmp_path / "c.yaml", "record", buffer_bytes=-1)


def test_use_cassette_writes_the_buffer_when_the_block_exits(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    with use_cassette(path, "record", upstream=httpx2.MockTransport(_echo), redactor=Redactor()):
        with httpx2.Client() as client:
            client.post(URL, json={"n": 1})
        assert not path.exists()
    assert _sent(path) == [{"n": 1}]


async def test_use_cassette_async_exit_writes_the_buffer(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    upstream = httpx2.MockTransport(_echo)
    async with (
        use_cassette(path, "record", upstream=upstream, redactor=Redactor()),
        httpx2.AsyncClient() as client,
    ):
        await client.post(URL, json={"n": 1})
    assert _sent(path) == [{"n": 1}]


def test_a_record_transport_dropped_unflushed_warns(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    transport = _recorder(path)
    client = httpx2.Client(transport=transport)
    client.post(URL, json={"n": 1})
    with pytest.warns(ReplayWarning, match=r"record-mode .* never closed: 1 recorded"):
        del client, transport
        gc.collect()
    assert not path.exists()


def test_a_closed_record_transport_does_not_warn_when_collected(tmp_path: Path) -> None:
    import warnings

    transport = _recorder(tmp_path / "c.yaml")
    with httpx2.Client(transport=transport) as client:
        client.post(URL, json={"n": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        del client, transport
        gc.collect()


_TASKS_WORKER = textwrap.dedent(
    """
    import asyncio, json, sys, httpx2
    from harness.replay import ReplayTransport

    def echo(request):
        return httpx2.Response(200, json=json.loads(request.content))

    async def main():
        transport = ReplayTransport(
            sys.argv[1], "record", upstream=httpx2.MockTransport(echo), buffer_bytes=2000
        )
        async with httpx2.AsyncClient(transport=transport) as client:
            await asyncio.gather(*(
                client.post("https://api.example.com/v1/x", json={"p": sys.argv[2], "n": n})
                for n in range(50)
            ))

    asyncio.run(main())
    """
)


def test_two_processes_of_50_tasks_each_lose_no_interaction(tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    procs = [
        subprocess.Popen([sys.executable, "-c", _TASKS_WORKER, str(path), name], cwd=ROOT)
        for name in ("a", "b")
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    sent = sorted((b["p"], b["n"]) for b in _sent(path))
    assert sent == [(p, n) for p in ("a", "b") for n in range(50)]


_TESTS_RUNNER = textwrap.dedent(
    """
    import json, sys, httpx2
    from harness.replay import ReplayTransport

    def echo(request):
        return httpx2.Response(200, json=json.loads(request.content))

    transport = ReplayTransport(sys.argv[1], "record", upstream=httpx2.MockTransport(echo))
    run = sys.argv[2]  # a run replays what earlier runs recorded: new requests each run
    big = "x" * 20_000  # a write takes a while: some kills land in the middle of one
    with httpx2.Client(transport=transport) as client:
        for test in range(10_000):
            for n in range(3):
                body = {"r": run, "t": test, "n": n, "p": big}
                client.post("https://api.example.com/v1/x", json=body)
            transport.flush()  # the end of a test
            print(test, flush=True)
    """
)


def test_kill_9_loses_at_most_the_running_tests_interactions(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    finished = 0
    for kills in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", _TESTS_RUNNER, str(path), str(kills)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert proc.stdout is not None
        for _ in range(2 + kills):
            assert proc.stdout.readline()  # that many "tests" flushed, then kill mid-stream
        proc.kill()
        proc.wait(timeout=30)
        sent = [(b["r"], b["t"], b["n"]) for b in _sent(path)]  # never a half-written file
        this_run = [t for r, t, _ in sent if r == str(kills)]
        assert len(sent) >= finished + 3 * (2 + kills)  # every flushed test is there
        # whole tests only: at most the running test's requests are lost
        assert sorted(this_run) == [t for t in range(len(this_run) // 3) for _ in range(3)]
        finished = len(sent)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["c.yaml"]


_PLUGIN_TESTS = """
import httpx2
import pytest
from harness.replay import load_interactions


@pytest.fixture(scope="session")
def llm_cassette_options():
    return {"upstream": httpx2.MockTransport(lambda r: httpx2.Response(200, json={"ok": 1}))}


@pytest.mark.llm_cassette("first.yaml", mode="record")
def test_first(llm_cassette):
    with httpx2.Client() as client:
        for n in range(3):
            client.post("https://api.example.com/v1/x", json={"n": n})
    assert not llm_cassette.path.exists()  # buffered while the test runs


@pytest.mark.llm_cassette("second.yaml", mode="record")
def test_second(llm_cassette):
    first = llm_cassette.path.parent / "first.yaml"
    assert len(load_interactions(first)) == 3  # written when the first test ended
"""


def test_the_plugin_writes_each_tests_recordings_at_its_teardown(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_buffered=_PLUGIN_TESTS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


# -- item 3: one TLS context per process for default upstreams ----------------------------------


def _count_contexts(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[int]:
    made: list[int] = []
    original = module.create_ssl_context

    def create(*args: Any, **kwargs: Any) -> Any:
        made.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "create_ssl_context", create)
    monkeypatch.setattr(adapters, "_SSL_CONTEXTS", {})
    return made


@pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_two_transports_share_one_tls_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: Any, is_async: bool
) -> None:
    made = _count_contexts(monkeypatch, module)
    library = library_for(module.Request("GET", URL))
    first = ReplayTransport(tmp_path / "a.yaml", "record")
    second = ReplayTransport(tmp_path / "b.yaml", "record")
    assert made == []  # nothing built before a request needs it
    one = first._upstream_for(library, is_async)
    other = second._upstream_for(library, is_async)
    assert made == [1]
    assert one is not other  # each closes its own pool; only the TLS context is shared
    assert one._pool._ssl_context is other._pool._ssl_context
    assert one._pool._ssl_context is shared_ssl_context(module)


def test_the_shared_context_is_built_once_under_concurrency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = _count_contexts(monkeypatch, httpx2)
    barrier = threading.Barrier(6, timeout=10)
    got: list[Any] = []

    def build() -> None:
        barrier.wait()
        got.append(shared_ssl_context(httpx2))

    threads = [threading.Thread(target=build) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert made == [1] and len(got) == 6 and all(c is got[0] for c in got)


def test_a_new_ca_bundle_setting_gets_its_own_context(monkeypatch: pytest.MonkeyPatch) -> None:
    made = _count_contexts(monkeypatch, httpx2)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    default = shared_ssl_context(httpx2)
    import certifi

    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    assert shared_ssl_context(httpx2) is not default
    assert made == [1, 1]


def test_an_injected_upstream_is_still_used_and_no_context_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _count_contexts(monkeypatch, httpx2)
    calls: list[str] = []

    def upstream(request: httpx2.Request) -> httpx2.Response:
        calls.append(str(request.url))
        return _echo(request)

    path = tmp_path / "c.yaml"
    transport = ReplayTransport(path, "record", upstream=httpx2.MockTransport(upstream))
    with httpx2.Client(transport=transport) as client:
        assert client.post(URL, json={"n": 1}).json() == {"echo": {"n": 1}}
    assert calls == [URL] and made == []
    with (
        use_cassette(path, "rewrite", upstream=httpx2.MockTransport(upstream)),
        httpx2.Client() as client,
    ):
        client.post(URL, json={"n": 2})
    assert calls == [URL, URL] and made == []


def test_the_default_upstream_survives_a_fork(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, sys, httpx2
        from harness.replay.adapters import shared_ssl_context
        parent = shared_ssl_context(httpx2)
        pid = os.fork()
        if pid == 0:
            child = shared_ssl_context(httpx2)
            httpx2.HTTPTransport(verify=child).close()
            os._exit(0 if child.verify_mode == parent.verify_mode else 3)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
        """
    )
    if not hasattr(__import__("os"), "fork"):  # pragma: no cover - POSIX only
        pytest.skip("no fork on this platform")
    assert subprocess.run([sys.executable, "-c", script], cwd=ROOT, timeout=60).returncode == 0


def test_a_cassette_loaded_for_recording_compares_bytes_on_its_next_write(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(dump_interactions(_interactions(2))[1], encoding="utf-8")
    cassette = Cassette.load_for_recording(path, Redactor())
    other = Cassette.load(path)
    other.add(_interactions(3)[2])
    other.save()  # another writer: the file changed since the first read it
    cassette.add(_interactions(4)[3])
    cassette.save()
    assert [json.loads(i.request.body)["n"] for i in load_interactions(path)] == [0, 1, 2, 3]


def test_a_bearer_token_after_a_letter_is_seen_by_the_file_check() -> None:
    # the full scan reads raw bytes as latin-1, where "é" is no word character: found there
    body = "éBeArEr abcdefghabcdefghabcdefgh".encode()
    headers = [("content-type", "text/plain")]
    item = cassette_module._Item.of(
        Interaction(
            RecordedRequest("POST", URL, headers, body), RecordedResponse(200, headers, b"")
        )
    )
    assert _full_scan(item)
    assert cassette_module._file_may_hold_secret(cassette_module._document([item]))


def test_recording_into_an_empty_cassette_computes_no_match_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted = _Counted(monkeypatch)
    path = tmp_path / "new.yaml"
    upstream = httpx2.MockTransport(_json_upstream)
    with ReplayTransport(path, "record", upstream=upstream) as t, httpx2.Client(transport=t) as c:
        for n in range(3):
            c.post(URL, json={"n": n})
    assert counted.calls["key"] == 0  # nothing stored before could match: no lookup
    assert len(load_interactions(path)) == 3
    # with what it recorded on disk, a new record transport replays the same request
    with ReplayTransport(path, "record", upstream=upstream) as t, httpx2.Client(transport=t) as c:
        c.post(URL, json={"n": 0})
    assert counted.calls["key"] > 0 and len(load_interactions(path)) == 3
