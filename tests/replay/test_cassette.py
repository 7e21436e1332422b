"""Cassette files: reading every vcrpy variant, harness's own format, errors, safe writes."""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from harness.replay import (
    Cassette,
    CassetteFormatError,
    CassetteVersionError,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    dump_interactions,
    load_interactions,
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
        "format: harness\nversion: 1\ninteractions:\n- request:\n    method: POST"
    )
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
    path.write_text("format: harness\nversion: 2\ninteractions: []\n")
    with pytest.raises(CassetteVersionError, match="version 2") as info:
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
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["c.yaml"]


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
