"""pytest-recording's interface served by harness: a pytest-recording project runs unchanged."""

from __future__ import annotations

import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import vcr.serialize
import vcr.serializers.yamlserializer

from harness.replay import load_interactions

pytest_plugins = ["pytester"]

CORPUS = Path(__file__).parent / "wire_corpus"
OPENAI_GZIP = CORPUS / "openai" / "openllmetry__test_chat_tools.yaml"
ANTHROPIC_STREAM = CORPUS / "anthropic" / "llm-anthropic__test_stream_events_text.yaml"

CONFTEST = """
import pytest

@pytest.fixture(scope="module")
def vcr_config():
    return {"filter_headers": ["X-API-KEY"], "decode_compressed_response": True}
"""

TESTS = """
import anthropic
import httpx
import openai
import pytest


@pytest.mark.vcr
def test_tools():
    client = openai.OpenAI(api_key="sk-test")
    reply = client.chat.completions.create(
        model="gpt-3.5-turbo",
        messages=[{"role": "user", "content": "What's the weather like in San Francisco?"}],
    )
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "get_current_weather"
    assert reply.usage.prompt_tokens == 68


@pytest.mark.vcr
def test_stream_events_text():
    client = anthropic.Anthropic(api_key="sk-ant-test")
    with client.messages.stream(
        model="claude-haiku-4-5-20251001",
        max_tokens=8192,
        messages=[{"role": "user", "content": "Say just hello"}],
    ) as stream:
        text = "".join(stream.text_stream)
    assert text.strip()


class TestRaw:
    @pytest.mark.vcr
    def test_httpx(self, vcr):
        with httpx.Client() as client:
            answer = client.post("https://api.openai.com/v1/chat/completions", json={})
        assert answer.json()["model"] == "gpt-3.5-turbo-0125"
        assert vcr.play_count == 1
"""


INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


@pytest.fixture(autouse=True)
def _asyncio_ini(pytester: pytest.Pytester) -> None:
    """Every project here sets pytest-asyncio's loop scope (unset, it warns)."""
    pytester.makeini(INI)


def _body(body: bytes) -> object:
    """A JSON body parsed (harness stores JSON parsed), any other body as it is."""
    try:
        return json.loads(body)
    except ValueError:
        return body


def _vcr_count(path: Path) -> int:
    interactions, _ = vcr.serialize.deserialize(
        path.read_text(encoding="utf-8"), vcr.serializers.yamlserializer
    )
    return len(interactions)


@pytest.fixture
def project(pytester: pytest.Pytester) -> Path:
    """A pytest-recording project: tests, conftest, and cassettes recorded by vcrpy."""
    tests = pytester.path / "tests"
    cassettes = tests / "cassettes" / "test_chat"
    cassettes.mkdir(parents=True)
    (tests / "conftest.py").write_text(CONFTEST)
    (tests / "test_chat.py").write_text(TESTS)
    shutil.copy(OPENAI_GZIP, cassettes / "test_tools.yaml")
    shutil.copy(ANTHROPIC_STREAM, cassettes / "test_stream_events_text.yaml")
    shutil.copy(OPENAI_GZIP, cassettes / "TestRaw.test_httpx.yaml")
    return tests


def test_pytest_recording_project_passes_unchanged(
    pytester: pytest.Pytester, project: Path
) -> None:
    before = {p.name: p.read_bytes() for p in (project / "cassettes" / "test_chat").iterdir()}
    result = pytester.runpytest("tests", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    after = {p.name: p.read_bytes() for p in (project / "cassettes" / "test_chat").iterdir()}
    assert after == before  # replaying writes nothing


def test_missing_cassette_fails_in_the_default_record_mode(
    pytester: pytest.Pytester, project: Path
) -> None:
    (project / "cassettes" / "test_chat" / "test_tools.yaml").unlink()
    result = pytester.runpytest("tests", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_tools.yaml*"])


class _Echo(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        answer = json.dumps({"echo": json.loads(body), "path": self.path}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


RECORDING = """
import httpx
import pytest

URL = {url!r}


@pytest.mark.vcr
def test_extend():
    with httpx.Client() as client:
        assert client.post(URL + "/v1/new", json={{"n": 1}}).json()["path"] == "/v1/new"


@pytest.mark.vcr
def test_fresh():
    with httpx.Client() as client:
        assert client.post(URL + "/v1/fresh", json={{"n": 2}}).json()["echo"] == {{"n": 2}}
"""


def test_recording_keeps_the_vcrpy_format(pytester: pytest.Pytester, echo_url: str) -> None:
    cassettes = pytester.path / "cassettes" / "test_rec"
    cassettes.mkdir(parents=True)
    extend = cassettes / "test_extend.yaml"
    shutil.copy(OPENAI_GZIP, extend)  # a vcrpy cassette with one interaction already
    pytester.makepyfile(test_rec=RECORDING.format(url=echo_url))

    result = pytester.runpytest("--record-mode=new_episodes", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)

    fresh = cassettes / "test_fresh.yaml"
    for path, count in ((extend, 2), (fresh, 1)):
        text = path.read_text(encoding="utf-8")
        assert "format: harness" not in text
        assert text.rstrip().endswith("version: 1")
        assert _vcr_count(path) == count  # vcrpy itself reads what harness wrote
        assert len(load_interactions(path)) == count
    assert "/v1/new" in extend.read_text(encoding="utf-8")

    # and replays with the default record mode (none)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_convert_ini_writes_harness_format(pytester: pytest.Pytester, echo_url: str) -> None:
    pytester.makeini(INI + "llm_vcr_convert = true\n")
    pytester.makepyfile(test_rec=RECORDING.format(url=echo_url))
    result = pytester.runpytest("--record-mode=once", "-k", "fresh", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, deselected=1)
    text = (pytester.path / "cassettes" / "test_rec" / "test_fresh.yaml").read_text()
    assert text.startswith("format: harness")


def test_match_on_body_and_marker_options(pytester: pytest.Pytester, echo_url: str) -> None:
    pytester.makepyfile(
        test_body=f"""
        import httpx
        import pytest

        @pytest.mark.vcr("shared", match_on=["method", "path", "body"])
        def test_same_path_other_body():
            with httpx.Client(base_url={echo_url!r}) as client:
                assert client.post("/p", json={{"n": 1}}).json()["echo"] == {{"n": 1}}
                assert client.post("/p", json={{"n": 2}}).json()["echo"] == {{"n": 2}}
        """
    )
    pytester.runpytest("--record-mode=once", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert _vcr_count(pytester.path / "cassettes" / "test_body" / "shared.yaml") == 2
    # replay: the bodies pick the interactions, whatever their order
    pytester.makepyfile(
        test_body=f"""
        import httpx
        import pytest

        @pytest.mark.vcr("shared", match_on=["method", "path", "body"])
        def test_same_path_other_body():
            with httpx.Client(base_url={echo_url!r}) as client:
                assert client.post("/p", json={{"n": 2}}).json()["echo"] == {{"n": 2}}
                assert client.post("/p", json={{"n": 1}}).json()["echo"] == {{"n": 1}}
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_unknown_vcr_config_key_is_named(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="module")
        def vcr_config():
            return {"custom_patches": ()}
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.vcr
        def test_one():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*vcr_config key 'custom_patches' is not supported*"])


def test_block_network_marker_in_a_live_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import socket
        import pytest

        @pytest.mark.block_network
        def test_blocked():
            with pytest.raises(Exception, match="blocked"):
                socket.getaddrinfo("example.invalid", 443)

        def test_free():
            assert socket.getaddrinfo("127.0.0.1", 80)
        """
    )
    result = pytester.runpytest("--llm-mode=live", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_allowed_hosts_reach_the_replay_guard(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import socket
        import pytest

        def test_allowed():
            with pytest.raises(socket.gaierror):  # let through to the resolver, which fails
                socket.getaddrinfo("allowed.invalid", 443)

        def test_other():
            with pytest.raises(Exception, match="blocked"):
                socket.getaddrinfo("other.invalid", 443)
        """
    )
    result = pytester.runpytest("--allowed-hosts=allowed.invalid", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_pytest_recording_installed_is_left_alone(pytester: pytest.Pytester) -> None:
    fake = pytester.path / "site" / "pytest_recording"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    pytester.makepyfile("def test_one():\n    pass\n")
    monkey = pytest.MonkeyPatch()
    try:
        monkey.syspath_prepend(str(fake.parent))
        result = pytester.runpytest("-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["harness: pytest-recording is installed*leaves it alone*"])
        assert result.stdout.str().count("pytest-recording is installed") == 1
        error = pytester.runpytest("--record-mode=none", "-p", "no:cacheprovider")
        assert error.ret == pytest.ExitCode.USAGE_ERROR
    finally:
        monkey.undo()


def test_cassettes_convert_takes_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.cli import main

    source = tmp_path / "tests" / "cassettes"
    (source / "test_a").mkdir(parents=True)
    (source / "test_b").mkdir(parents=True)
    shutil.copy(OPENAI_GZIP, source / "test_a" / "one.yaml")
    shutil.copy(ANTHROPIC_STREAM, source / "test_b" / "two.yml")
    (source / "notes.txt").write_text("not a cassette")
    target = tmp_path / "converted"

    assert main(["cassettes", "convert", str(source), str(target)]) == 0
    out = capsys.readouterr().out
    assert "converted 2 cassette(s)" in out
    assert "(harness format, 2 interaction(s))" in out
    for name, original in (("test_a/one.yaml", OPENAI_GZIP), ("test_b/two.yml", ANTHROPIC_STREAM)):
        written = target / name
        assert written.read_text().startswith("format: harness")
        before, after = load_interactions(original), load_interactions(written)
        assert [_body(i.response.body) for i in after] == [_body(i.response.body) for i in before]
    assert not (target / "notes.txt").exists()

    # a second run refuses to overwrite, --force replaces, and in place goes back to vcrpy
    assert main(["cassettes", "convert", str(source), str(target)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["cassettes", "convert", str(target), "--to", "vcrpy"]) == 0
    assert _vcr_count(target / "test_a" / "one.yaml") == 1
    assert _vcr_count(target / "test_b" / "two.yml") == 1


def test_vcr_config_filters_and_callbacks_shape_what_is_recorded(
    pytester: pytest.Pytester, echo_url: str
) -> None:
    pytester.makeconftest(
        """
        import pytest

        def scrub_request(request):
            request.uri = request.uri.replace("/private", "/public")
            return request

        def scrub_response(response):
            response["headers"]["x-recorded-by"] = ["scrubber"]
            return response

        @pytest.fixture(scope="module")
        def vcr_config():
            return {
                "filter_headers": ["X-Custom-Token"],
                "filter_query_parameters": ["session"],
                "before_record_request": scrub_request,
                "before_record_response": scrub_response,
            }
        """
    )
    pytester.makepyfile(
        test_scrub=f"""
        import httpx
        import pytest

        @pytest.mark.vcr
        def test_call():
            with httpx.Client(base_url={echo_url!r}) as client:
                answer = client.post(
                    "/private?session=s3cr3t&page=2",
                    json={{"n": 1}},
                    headers={{"X-Custom-Token": "abc123"}},
                )
            assert answer.json()["echo"] == {{"n": 1}}
        """
    )
    pytester.runpytest("--record-mode=once", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    path = pytester.path / "cassettes" / "test_scrub" / "test_call.yaml"
    (recorded,) = load_interactions(path)
    assert "x-custom-token" not in {name for name, _ in recorded.request.headers}
    assert "abc123" not in path.read_text()
    assert recorded.request.uri.endswith("/public?page=2")  # filtered, then the callback
    assert ("x-recorded-by", "scrubber") in recorded.response.headers
    # the replay matches with the same callbacks applied to the live request
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
