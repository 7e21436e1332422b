"""Cassette files: reading every vcrpy variant, harness's own format, errors, safe writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from filelock import FileLock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.replay import (
    Cassette,
    CassetteFormatError,
    CassetteVersionError,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    SecretLeakError,
    dump_interactions,
    load_interactions,
)
from harness.replay.files import (
    LOCK_DIR_ENV,
    STALE_AFTER,
    atomic_write,
    remove_legacy_lock,
    remove_stale_temps,
)

CORPUS = Path(__file__).parent.parent / "wire_corpus"
ALL_FILES = sorted(CORPUS.glob("*/*.yaml"))


def _interaction(n: int, **response: object) -> Interaction:
    return Interaction(
        request=RecordedRequest(
            "POST", "https://api.example.com/v1/x", [], json.dumps({"n": n}).encode()
        ),
        response=RecordedResponse(
            status=200,
            headers=[("content-type", "application/json")],
            body=json.dumps({"n": n, **response}).encode(),
        ),
        recorded_at=datetime(2025, 1, 1, tzinfo=timezone.utc),
        duration=0.25,
    )


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_corpus_file_loads_and_round_trips_through_harness_format(
    path: Path, tmp_path: Path
) -> None:
    interactions = load_interactions(path)
    assert interactions
    for interaction in interactions:
        assert 100 <= interaction.response.status <= 599
        names = {name for name, _ in interaction.response.headers}
        assert "content-encoding" not in names  # every corpus body is stored decoded
        assert interaction.response.body[:2] != b"\x1f\x8b"
    out = tmp_path / "out.yaml"
    out.write_text(dump_interactions(interactions)[1], encoding="utf-8")
    again = load_interactions(out)
    assert len(again) == len(interactions)
    for before, after in zip(interactions, again, strict=True):
        assert (after.request.method, after.request.uri) == (
            before.request.method,
            before.request.uri,
        )
        assert _same_body(after.request.body, before.request.body)
        assert after.response.status == before.response.status
        assert sorted(after.response.headers) == sorted(before.response.headers)
        assert _same_body(after.response.body, before.response.body)


def _same_body(a: bytes, b: bytes) -> bool:
    """Equal bytes, or equal JSON (JSON bodies are stored parsed and re-serialised)."""
    return a == b or json.loads(a) == json.loads(b)


def test_gzip_binary_body_is_decoded_and_its_header_dropped() -> None:
    interaction = load_interactions(CORPUS / "openai/openllmetry__test_chat_tools.yaml")[0]
    assert json.loads(interaction.response.body)["model"] == "gpt-3.5-turbo-0125"
    assert ("content-type", "application/json") in interaction.response.headers


def test_binary_request_header_values_are_read_as_text() -> None:
    path = CORPUS / "bedrock/openllmetry__test_anthropic_3_completion_string_content.yaml"
    headers = dict(load_interactions(path)[0].request.headers)
    assert headers["accept"] == "application/json"
    assert headers["user-agent"].startswith("Boto3/")


def test_parsed_body_and_several_interactions_per_file() -> None:
    path = CORPUS / "openai_compatible/pydantic-ai__test_openrouter_errors_raised.yaml"
    interactions = load_interactions(path)
    assert [i.response.status for i in interactions] == [429, 429, 429]
    assert json.loads(interactions[0].response.body)["error"]["code"] == 429


def test_bodies_are_stored_readably(tmp_path: Path) -> None:
    sse = Interaction(
        RecordedRequest(
            "POST", "https://h/v1/x", [("content-type", "application/json")], b'{"b":1,"a":2}'
        ),
        RecordedResponse(200, [("content-type", "text/event-stream")], b"data: 1\n\ndata: 2\n\n"),
    )
    binary = Interaction(
        RecordedRequest("GET", "https://h/img"),
        RecordedResponse(200, [("content-type", "image/png")], b"\x89PNG\x00\xff"),
    )
    data, text = dump_interactions([sse, binary])
    first, second = data["interactions"]
    assert first["request"]["body"] == {"json": {"b": 1, "a": 2}}
    assert first["response"]["body"] == {"sse": ["data: 1", "data: 2"]}
    assert second["response"]["body"] == {"base64": "iVBORwD/"}
    assert text.startswith(
        "format: harness\nversion: 2\ninteractions:\n- request:\n    method: POST"
    )
    assert text.endswith("\ninteractions_count: 2\n")
    assert yaml.safe_load(text) == data


def test_dump_is_stable_so_a_resave_is_byte_identical(tmp_path: Path) -> None:
    interactions = load_interactions(
        CORPUS / "anthropic/llm-anthropic__test_stream_events_thinking.yaml"
    )
    text = dump_interactions(interactions)[1]
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    assert dump_interactions(load_interactions(path))[1] == text


def test_newer_harness_version_is_a_version_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("format: harness\nversion: 3\ninteractions: []\ninteractions_count: 0\n")
    with pytest.raises(CassetteVersionError, match="version 3") as info:
        load_interactions(path)
    assert info.value.path == str(path) and info.value.key == "version"


def test_unknown_vcrpy_version_is_a_version_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("version: 7\ninteractions: []\n")
    with pytest.raises(CassetteVersionError):
        load_interactions(path)


def test_malformed_cassette_names_file_and_key_path(tmp_path: Path) -> None:
    _, text = dump_interactions([_interaction(n) for n in range(4)])
    path = tmp_path / "c.yaml"
    data = yaml.safe_load(text)
    data["interactions"][3]["response"]["status"] = "two hundred"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CassetteFormatError) as info:
        load_interactions(path)
    assert info.value.key == "interactions[3].response.status"
    assert str(path) in str(info.value)


def test_unknown_key_in_harness_format_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    data = yaml.safe_load(dump_interactions([_interaction(0)])[1])
    data["interactions"][0]["respones"] = {}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CassetteFormatError, match=r"interactions\[0\]\.respones"):
        load_interactions(path)


def test_invalid_yaml_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("interactions: [\n")
    with pytest.raises(CassetteFormatError, match="not valid YAML"):
        load_interactions(path)


def test_metadata_round_trips(tmp_path: Path) -> None:
    cassette = Cassette(tmp_path / "c.yaml")
    cassette.add(_interaction(1))
    cassette.save()
    loaded = load_interactions(tmp_path / "c.yaml")[0]
    assert loaded.recorded_at == datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert loaded.duration == 0.25


def test_crash_mid_write_leaves_the_old_cassette_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yaml"
    cassette = Cassette(path)
    cassette.add(_interaction(1))
    cassette.save()
    before = path.read_text()

    def crash(src: str, dst: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    cassette.add(_interaction(2))
    with pytest.raises(OSError, match="disk gone"):
        cassette.save()
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_save_merges_with_what_other_writers_saved(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    first, second = Cassette.load(path), Cassette.load(path)
    first.add(_interaction(1))
    second.add(_interaction(2))
    first.save()
    second.save()
    first.add(_interaction(3))
    first.save()
    assert [json.loads(i.request.body)["n"] for i in load_interactions(path)] == [1, 2, 3]


def test_concurrent_thread_writers_lose_no_interaction(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"

    def writer(w: int) -> None:
        cassette = Cassette.load(path)
        for n in range(10):
            cassette.add(_interaction(w * 100 + n))
            cassette.save()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    numbers = sorted(json.loads(i.request.body)["n"] for i in load_interactions(path))
    assert numbers == sorted(w * 100 + n for w in range(6) for n in range(10))


# -- format version 2: a cut file is refused (issue #9, item 11) --------------------------------


def _numbers(interactions: list[Interaction]) -> list[int]:
    return [json.loads(i.request.body)["n"] for i in interactions]


def test_version_2_cassette_cut_before_its_count_is_refused(tmp_path: Path) -> None:
    text = dump_interactions([_interaction(n) for n in range(3)])[1]
    path = tmp_path / "c.yaml"
    lines = text.splitlines(keepends=True)
    assert lines[-1] == "interactions_count: 3\n"
    path.write_text("".join(lines[:-1]), encoding="utf-8")
    with pytest.raises(CassetteFormatError, match="cut short") as info:
        load_interactions(path)
    assert info.value.path == str(path) and info.value.key == "interactions_count"
    assert str(path) in str(info.value)


def test_version_2_count_that_disagrees_with_the_list_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    data = yaml.safe_load(dump_interactions([_interaction(n) for n in range(3)])[1])
    del data["interactions"][2]
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(CassetteFormatError, match=r"says 3 interaction.* list has 2") as info:
        load_interactions(path)
    assert info.value.key == "interactions_count"


def test_version_2_count_must_be_an_integer(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("format: harness\nversion: 2\ninteractions: []\ninteractions_count: yes\n")
    with pytest.raises(CassetteFormatError, match="expected an integer"):
        load_interactions(path)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(count=st.integers(min_value=0, max_value=4), data=st.data())
def test_a_cassette_cut_at_any_line_loads_whole_or_is_refused(
    tmp_path: Path, count: int, data: st.DataObject
) -> None:
    interactions = [_interaction(n, text="two\nlines\n") for n in range(count)]
    lines = dump_interactions(interactions)[1].splitlines(keepends=True)
    cut = data.draw(st.integers(min_value=0, max_value=len(lines)), label="lines kept")
    path = tmp_path / f"cut-{count}-{cut}.yaml"
    path.write_text("".join(lines[:cut]), encoding="utf-8")
    try:
        loaded = load_interactions(path)
    except CassetteFormatError as error:
        assert error.path == str(path)
        assert cut < len(lines)
    else:  # only the whole file loads, with every interaction (an empty file is no cassette)
        assert (cut, _numbers(loaded)) in ((len(lines), list(range(count))), (0, []))


def test_version_1_cassette_loads_and_becomes_version_2_at_its_next_write(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    v1 = dump_interactions([_interaction(1)])[1]
    v1 = v1.replace("version: 2\n", "version: 1\n").replace("interactions_count: 1\n", "")
    path.write_text(v1, encoding="utf-8")
    assert _numbers(load_interactions(path)) == [1]
    cassette = Cassette.load(path)
    cassette.add(_interaction(2))
    cassette.save()
    text = path.read_text(encoding="utf-8")
    assert text.startswith("format: harness\nversion: 2\n")
    assert text.endswith("interactions_count: 2\n")
    assert _numbers(load_interactions(path)) == [1, 2]


def test_version_1_cassette_with_a_count_key_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("format: harness\nversion: 1\ninteractions: []\ninteractions_count: 0\n")
    with pytest.raises(CassetteFormatError, match="unknown key"):
        load_interactions(path)


COMMITTED = sorted(
    p
    for folder in (CORPUS.parent.parent / "cassettes", CORPUS.parent)
    for p in folder.rglob("*.yaml")
    if "format: harness" in p.read_text(encoding="utf-8", errors="replace")[:200]
)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_committed_harness_cassettes_still_load(path: Path) -> None:
    assert isinstance(load_interactions(path), list)


def test_items_ending_in_a_kept_block_scalar_still_make_one_document(tmp_path: Path) -> None:
    # A body string ending in blank lines is dumped as ``|+``, after which PyYAML ends the
    # document with ``...``: joined items must not carry that marker into the middle.
    def kept(n: int) -> Interaction:
        body = json.dumps({"n": n, "system": "keep these\n\n"}).encode()
        return Interaction(
            RecordedRequest("POST", "https://h/x", [("content-type", "application/json")], body),
            RecordedResponse(200),
        )

    path = tmp_path / "c.yaml"
    cassette = Cassette(path)
    for n in range(3):
        cassette.add(kept(n))
        cassette.save()
    loaded = load_interactions(path)
    assert [json.loads(i.request.body) for i in loaded] == [
        {"n": n, "system": "keep these\n\n"} for n in range(3)
    ]


# -- unreadable paths (item 12) ----------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe",
        "format: harness # caf\xe9\n".encode("latin-1"),
    ],
    ids=["binary", "latin-1"],
)
def test_a_binary_or_latin1_file_is_a_format_error_naming_it(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    for load in (load_interactions, Cassette.load):
        with pytest.raises(CassetteFormatError, match="not UTF-8") as info:
            load(path)
        assert info.value.path == str(path) and str(path) in str(info.value)


def test_a_directory_is_a_format_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.mkdir()
    for load in (load_interactions, Cassette.load):
        with pytest.raises(CassetteFormatError, match="is a directory") as info:
            load(path)
        assert info.value.path == str(path)


def test_a_file_with_nul_bytes_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"format: harness\x00\x00\n")
    with pytest.raises(CassetteFormatError) as info:
        load_interactions(path)
    assert info.value.path == str(path)


# -- a refused interaction does not block later ones (item 4) ----------------------------------


def test_an_interaction_refused_for_a_secret_is_dropped_and_later_ones_are_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.yaml"
    cassette = Cassette(path)
    cassette.add(_interaction(1))
    cassette.save()
    cassette.add(_interaction(2, note="key sk-proj-" + "a1B2" * 10))
    with pytest.raises(SecretLeakError, match=r"interactions\[1\]"):
        cassette.save()
    assert _numbers(load_interactions(path)) == [1]
    for n in (3, 4):
        cassette.add(_interaction(n))
        cassette.save()  # the refused one is gone for good
    assert _numbers(load_interactions(path)) == [1, 3, 4]
    assert _numbers(cassette.interactions) == [1, 3, 4]
    assert "sk-proj" not in path.read_text(encoding="utf-8")


def test_add_with_check_refuses_at_once_and_keeps_nothing(tmp_path: Path) -> None:
    cassette = Cassette(tmp_path / "c.yaml")
    with pytest.raises(SecretLeakError):
        cassette.add(_interaction(1, note="sk-ant-api03-" + "Zz9_" * 10), check=True)
    assert cassette.interactions == [] and cassette.pending == 0
    cassette.add(_interaction(2), check=True)
    cassette.save()
    assert _numbers(load_interactions(tmp_path / "c.yaml")) == [2]


# -- locks and temp files (item 14) ------------------------------------------------------------


def test_the_lock_lives_outside_the_cassette_folder_keyed_by_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LOCK_DIR_ENV, raising=False)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = Cassette(tmp_path / "a/c.yaml"), Cassette(tmp_path / "b/c.yaml")
    assert first.lock_path != second.lock_path
    assert tmp_path not in first.lock_path.parents
    monkeypatch.chdir(tmp_path / "a")
    assert Cassette("c.yaml").lock_path == first.lock_path  # relative or absolute: one lock
    first.add(_interaction(1))
    first.save()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["c.yaml"]


def test_lock_dir_can_be_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path / "locks"))
    assert Cassette(tmp_path / "c.yaml").lock_path.parent == tmp_path / "locks"


def test_a_save_removes_temp_files_of_dead_writers_but_not_of_live_ones(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead_temp = tmp_path / f".c.yaml.{dead.pid}-abcd1234.tmp"
        live_temp = tmp_path / f".c.yaml.{live.pid}-abcd1234.tmp"
        legacy_old = tmp_path / ".c.yaml.k3j4h5g6.tmp"  # an older harness: no pid in the name
        legacy_new = tmp_path / ".c.yaml.z9y8x7w6.tmp"
        other = tmp_path / f".other.yaml.{dead.pid}-abcd1234.tmp"  # another cassette's
        for temp in (dead_temp, live_temp, legacy_old, legacy_new, other):
            temp.write_text("half a cassette")
        old = time.time() - STALE_AFTER - 60
        os.utime(legacy_old, (old, old))
        cassette = Cassette(path)
        cassette.add(_interaction(1))
        cassette.save()
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == sorted(["c.yaml", live_temp.name, legacy_new.name, other.name])
    finally:
        live.kill()
        live.wait(timeout=30)


def test_an_old_temp_file_is_stale_even_if_its_pid_was_reused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    temp = tmp_path / f".c.yaml.{os.getppid()}-abcd1234.tmp"
    temp.write_text("x")
    assert remove_stale_temps(path) == []  # a live process, a fresh file: kept
    later = time.time() + STALE_AFTER + 1
    assert remove_stale_temps(path, now=lambda: later) == [temp]
    assert not temp.exists()


_KILLED_WRITER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from harness.replay import files

    def die(src, dst):
        os._exit(9)  # killed between writing the temp file and renaming it

    os.replace = die
    files.atomic_write(Path(sys.argv[1]), "format: harness\\nversion: 2\\n")
    """
)


def test_a_writer_killed_mid_write_leaves_the_cassette_whole_and_the_next_one_cleans_up(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.yaml"
    cassette = Cassette(path)
    cassette.add(_interaction(1))
    cassette.save()
    before = path.read_text(encoding="utf-8")
    killed = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(path)], timeout=60)
    assert killed.returncode == 9
    assert len(list(tmp_path.glob(".c.yaml.*.tmp"))) == 1
    assert path.read_text(encoding="utf-8") == before
    again = Cassette.load(path)
    again.add(_interaction(2))
    again.save()
    assert _numbers(load_interactions(path)) == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_a_save_removes_the_lock_older_versions_kept_beside_the_cassette_unless_it_is_held(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.yaml"
    legacy = tmp_path / ".c.yaml.lock"
    legacy.touch()
    other = tmp_path / ".other.yaml.lock"  # another cassette's: its own writer removes it
    other.touch()
    with FileLock(legacy):  # an older harness writing right now
        held = Cassette(path)
        held.add(_interaction(1))
        held.save()
        assert legacy.exists()
    cassette = Cassette.load(path)
    cassette.add(_interaction(2))
    cassette.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.yaml.lock", "c.yaml"]
    assert cassette.lock_path.exists()  # the lock in use now is left alone
    assert _numbers(load_interactions(path)) == [1, 2]


def test_a_legacy_lock_that_is_not_a_plain_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    target = tmp_path / "kept"
    target.write_text("x")
    (tmp_path / ".c.yaml.lock").symlink_to(target)
    assert remove_legacy_lock(path) is False
    assert target.exists() and (tmp_path / ".c.yaml.lock").is_symlink()


# -- file modes (item 14) -----------------------------------------------------------------------


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize(
    ("mask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)], ids=["022", "027", "002"]
)
def test_a_new_cassette_gets_the_mode_a_plain_open_would_give_it(
    tmp_path: Path, mask: int, mode: int
) -> None:
    path = tmp_path / "c.yaml"
    with _umask(mask):
        cassette = Cassette(path)
        cassette.add(_interaction(1))
        cassette.save()
        atomic_write(tmp_path / "report.json", "{}")
    assert path.stat().st_mode & 0o777 == mode
    assert (tmp_path / "report.json").stat().st_mode & 0o777 == mode


@pytest.mark.parametrize("mode", [0o644, 0o664, 0o600, 0o444], ids=oct)
def test_a_cassette_keeps_its_mode_when_a_save_replaces_it(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "c.yaml"
    first = Cassette(path)
    first.add(_interaction(1))
    first.save()
    path.chmod(mode)
    with _umask(0o077):  # the umask is for new files only
        again = Cassette.load(path)
        again.add(_interaction(2))
        again.save()
    assert path.stat().st_mode & 0o777 == mode
    assert _numbers(load_interactions(path)) == [1, 2]


# -- a folder that cannot be made (item 12) ------------------------------------------------------


def test_saving_under_a_file_is_a_format_error_naming_the_cassette(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    path = tmp_path / "afile" / "c.yaml"
    cassette = Cassette(path)
    cassette.add(_interaction(1))
    with pytest.raises(CassetteFormatError, match="cannot be written") as info:
        cassette.save()
    assert info.value.path == str(path)
