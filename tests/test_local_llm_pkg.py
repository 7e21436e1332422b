"""The local model in the package: ``harness local-llm``, build progress, ``local_llm``."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.cli import main
from harness.local_llm import BuildProgress, build_percent, format_elapsed, server
from harness.local_llm.server import cache_root

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
CACHE = cache_root()  # read at import, before pytester moves HOME
INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"

# Lines of a real ``cmake --build`` of llama-server (make, -j2), with the noise between them.
MAKE_LINES = """\
[  1%] Building C object ggml/src/CMakeFiles/ggml-base.dir/ggml.c.o
[  1%] Building CXX object vendor/hash/CMakeFiles/vendor-hash.dir/hash.cpp.o
/work/llama.cpp/ggml/src/ggml.c: In function 'ggml_init':
[  2%] Building C object vendor/hash/CMakeFiles/vendor-hash.dir/sha256/sha256.c.o
[  9%] Linking CXX static library libggml-base.a
[ 12%] Built target ggml-base
[ 23%] Building CXX object ggml/src/CMakeFiles/ggml-cpu.dir/ggml-cpu/ops.cpp.o
[ 35%] Building CXX object src/CMakeFiles/llama.dir/llama-model.cpp.o
[ 36%] Building CXX object src/CMakeFiles/llama.dir/llama-vocab.cpp.o
[ 61%] Building CXX object common/CMakeFiles/common.dir/common.cpp.o
[ 98%] Building CXX object tools/server/CMakeFiles/llama-server.dir/main.cpp.o
[100%] Linking CXX executable ../../bin/llama-server
[100%] Built target llama-server
""".splitlines()


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_build_percent_reads_make_and_ninja_lines() -> None:
    assert build_percent("[  1%] Building C object ggml/src/ggml.c.o") == 1
    assert build_percent("[100%] Built target llama-server") == 100
    assert build_percent("[120/240] Building CXX object src/llama.cpp.o") == 50
    assert build_percent("-- Configuring done (2.1s)") is None
    assert build_percent("/src/ggml.c:12: warning: [ 5%] in a message") is None


def test_format_elapsed() -> None:
    assert format_elapsed(45.2) == "45s"
    assert format_elapsed(185) == "3m05s"
    assert format_elapsed(981.2) == "16m21s"
    assert format_elapsed(3723) == "1h02m03s"


def test_build_progress_shows_step_percent_and_elapsed_time() -> None:
    clock = _Clock()
    shown: list[str] = []
    progress = BuildProgress(clock.now, clock=clock, emit=shown.append, every=100.0)
    for line in MAKE_LINES:
        clock.now += 20.0  # 20 s per line
        progress.feed(line)
    assert shown[0] == "build: step 4 of 4: compiling llama-server [  1%], 20s elapsed"
    # each 10 points (or after ``every`` quiet seconds), and always the end
    percents = [int(re.search(r"\[\s*(\d+)%\]", m).group(1)) for m in shown]  # type: ignore[union-attr]
    assert percents == [1, 12, 23, 35, 61, 98, 100]
    assert shown[-1] == "build: step 4 of 4: compiling llama-server [100%], 4m00s elapsed"


def test_build_progress_repeats_after_a_quiet_minute() -> None:
    clock = _Clock()
    shown: list[str] = []
    progress = BuildProgress(clock.now, clock=clock, emit=shown.append, every=60.0)
    progress.feed("[ 40%] Building CXX object a.o")
    clock.now += 30
    assert progress.feed("[ 41%] Building CXX object b.o") is None  # too soon, too small
    clock.now += 31
    assert progress.feed("[ 42%] Building CXX object c.o") is not None  # a minute went by
    assert progress.feed("[ 42%] Building CXX object d.o") is None  # no progress: no line


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_LLM")}
    env["HARNESS_LLM_CACHE"] = str(cache)
    return env


def test_harness_local_llm_paths_and_status_on_an_empty_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HARNESS_LLM_CACHE", str(tmp_path))
    assert main(["local-llm", "paths"]) == 0
    paths = json.loads(capsys.readouterr().out)
    assert paths["cache_root"] == str(tmp_path.resolve())
    assert paths["llama_server"].startswith(str(tmp_path.resolve() / "llama-server"))
    assert paths["llama_server_built"] is False
    assert main(["local-llm", "status"]) == 1
    assert "no healthy server recorded" in capsys.readouterr().err


def test_scripts_wrapper_runs_the_packaged_code_without_harness_importable(
    tmp_path: Path,
) -> None:
    # -I: no PYTHONPATH, no user site; harness is loaded by file path, not imported
    done = subprocess.run(
        [sys.executable, "-I", str(ROOT / "scripts" / "local-llm"), "paths"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["cache_root"] == str(tmp_path.resolve())
    helped = subprocess.run(
        [sys.executable, "-I", str(ROOT / "scripts" / "local-llm"), "build", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert "usage: local-llm build [-h] [--force] [--jobs JOBS] [--keep-build]" in helped.stdout


FIXTURE_PROJECT = """
import httpx


def test_uses_the_model(local_llm):
    answer = httpx.post(
        local_llm.openai_base_url + "/chat/completions",
        json={"model": local_llm.model, "messages": [{"role": "user", "content": "Hi"}],
              "max_tokens": 4},
        timeout=60,
    )
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] is not None
    assert local_llm.models_config().get("local-smollm2").base_url == local_llm.openai_base_url


def test_other():
    pass
"""


def test_local_llm_fixture_fails_clearly_when_it_cannot_be_built(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.delenv("HARNESS_LOCAL_LLM_URL", raising=False)
    monkeypatch.setenv("HARNESS_LLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(empty_bin))  # no cmake, no compiler
    pytester.makeini(INI)
    pytester.makepyfile(test_model=FIXTURE_PROJECT)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*local_llm: the local model could not be started: build: 'cmake' not found*",
            "*harness local-llm build*",
        ]
    )


def test_local_llm_fixture_starts_nothing_when_deselected(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_LLM_CACHE", str(cache))
    monkeypatch.delenv("HARNESS_LOCAL_LLM_URL", raising=False)
    pytester.makeini(INI)
    pytester.makepyfile(test_model=FIXTURE_PROJECT)
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "other")
    result.assert_outcomes(passed=1, deselected=1)
    assert not cache.exists()


STAND_IN = ROOT / "tests" / "fake_llama_server.py"

# what a test sees of the server the fixture gives it (the stand-in echoes "<alias> heard: Hi")
USES_THE_SERVER = """
import httpx


def test_uses_the_server(local_llm):
    answer = httpx.post(
        local_llm.openai_base_url + "/chat/completions",
        json={"model": local_llm.model, "messages": [{"role": "user", "content": "Hi"}]},
        timeout=30,
    )
    assert answer.json()["choices"][0]["message"]["content"] == local_llm.model + " heard: Hi"
    print("BASE_URL", local_llm.base_url, "STATE", local_llm.state_file)
    print("MODELS", sorted(local_llm.models_config().models))
    config = local_llm.models_config()
    assert {e.base_url for e in config.models.values()} == {
        local_llm.base_url, local_llm.openai_base_url
    }
"""


def _installed_stand_in() -> None:
    """The stand-in llama-server as the cached binary (of ``HARNESS_LLM_CACHE``), and weights."""
    binary = server.server_binary()
    binary.parent.mkdir(parents=True)
    binary.write_text(f"#!{sys.executable}\n{STAND_IN.read_text(encoding='utf-8')}")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    for model in server.MODELS:
        server.model_path(model).parent.mkdir(parents=True)
        server.model_path(model).write_bytes(b"GGUF stand-in")


def _no_build_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty PATH: a fixture that tried to build llama-server would fail at once."""
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))


def _printed(result: pytest.RunResult, key: str) -> str:
    lines = [line.split(key + " ", 1)[1] for line in result.outlines if key + " " in line]
    assert lines, result.outlines
    return lines[0]


def test_local_llm_port_chooses_the_port_and_models_config_lists_the_served_model(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_LLM_CACHE", str(cache))
    monkeypatch.delenv("HARNESS_LOCAL_LLM_URL", raising=False)
    _installed_stand_in()
    port = server.free_port()
    pytester.makeini(INI)
    pytester.makeconftest(
        "import pytest\n\n\n"
        "@pytest.fixture(scope='session')\n"
        f"def local_llm_port():\n    return {port}\n\n\n"
        "@pytest.fixture(scope='session')\n"
        "def local_llm_model():\n    return 'gemma'\n"
    )
    pytester.makepyfile(test_model=USES_THE_SERVER)
    result = pytester.runpytest("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    assert _printed(result, "BASE_URL").split()[0] == f"http://127.0.0.1:{port}"
    assert _printed(result, "MODELS") == "['local-gemma', 'local-gemma-anthropic']"
    state_file = Path(_printed(result, "BASE_URL").split("STATE ")[1])
    assert not state_file.exists()  # stopped at the end of the session
    assert server.port_free(port)


@pytest.fixture
def running_stand_in(tmp_path: Path) -> Iterator[str]:
    """The stand-in llama-server serving smollm2 on a free port, as a user would have it."""
    port = server.free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, str(STAND_IN), "--port", str(port), "--alias", "smollm2"],
        env={**_env(tmp_path), "FAKE_LLAMA_LOG": str(tmp_path / "requests.jsonl")},
    )
    try:
        deadline = time.monotonic() + 30
        while not server.health(url, timeout=1.0):
            assert proc.poll() is None and time.monotonic() < deadline, "the stand-in did not start"
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_local_llm_fixture_reuses_the_server_at_harness_local_llm_url(
    pytester: pytest.Pytester,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    running_stand_in: str,
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_LLM_CACHE", str(cache))  # empty: starting one would fail
    monkeypatch.setenv("HARNESS_LOCAL_LLM_URL", running_stand_in + "/")
    _no_build_tools(tmp_path, monkeypatch)
    pytester.makeini(INI)
    pytester.makepyfile(test_model=USES_THE_SERVER)
    result = pytester.runpytest("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    assert _printed(result, "BASE_URL") == f"{running_stand_in} STATE None"
    assert _printed(result, "MODELS") == "['local-smollm2', 'local-smollm2-anthropic']"
    assert len((tmp_path / "requests.jsonl").read_text().splitlines()) == 1
    assert server.health(running_stand_in)  # not ours: still running after the session
    assert not cache.exists()  # nothing built, fetched or started


def test_local_llm_fixture_fails_clearly_when_harness_local_llm_url_is_down(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{server.free_port()}"  # nothing listens there
    monkeypatch.setenv("HARNESS_LLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HARNESS_LOCAL_LLM_URL", url)
    _no_build_tools(tmp_path, monkeypatch)
    pytester.makeini(INI)
    pytester.makepyfile(test_model=USES_THE_SERVER)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"*HARNESS_LOCAL_LLM_URL is {url}, but no healthy server answers {url}/health*"]
    )


def test_local_llm_fixture_refuses_a_server_that_serves_another_model(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Gemma(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = b'{"status":"ok"}'
            if self.path == "/v1/models":
                body = json.dumps({"object": "list", "data": [{"id": "gemma"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Gemma)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        monkeypatch.setenv("HARNESS_LLM_CACHE", str(tmp_path / "cache"))
        monkeypatch.setenv("HARNESS_LOCAL_LLM_URL", url)
        _no_build_tools(tmp_path, monkeypatch)
        pytester.makeini(INI)
        pytester.makepyfile(test_model=USES_THE_SERVER)
        result = pytester.runpytest("-p", "no:cacheprovider")
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"*the server at HARNESS_LOCAL_LLM_URL={url} serves gemma, not 'smollm2'*"]
    )


@pytest.mark.live
def test_local_llm_fixture_serves_the_real_model(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the server built and cached (``harness local-llm build``): start, use, stop."""
    cache = CACHE  # pytester moves HOME: keep the cache where it is
    if not (cache / "llama-server").is_dir():
        pytest.fail(f"no llama-server in {cache}: run `harness local-llm build` first")
    monkeypatch.setenv("HARNESS_LLM_CACHE", str(cache))
    monkeypatch.delenv("HARNESS_LOCAL_LLM_URL", raising=False)
    pytester.makeini(INI)
    pytester.makepyfile(test_model=FIXTURE_PROJECT)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    states = list(pytester.path.parent.rglob("local-llm*/state.json"))
    assert not any(p.exists() for p in states)  # stopped: the state file is gone


def test_a_port_whose_last_server_just_stopped_is_free() -> None:
    # a stopped server's closed connections linger in TIME_WAIT on its port for a minute;
    # 'start --port N' right after 'stop' must not call the port taken
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server side closes first: its end goes to TIME_WAIT
    client.recv(1)
    client.close()
    listener.close()
    assert server.port_free(port)
    with socket.create_server(("127.0.0.1", port)) as busy:
        assert busy and not server.port_free(port)  # a listener does take it


def test_run_logged_feeds_the_build_output_to_the_progress_and_the_log(tmp_path: Path) -> None:
    clock = _Clock()
    shown: list[str] = []
    progress = server.BuildProgress(clock.now, clock=clock, emit=shown.append)
    script = "print('[ 50%] Building CXX object a.o'); print('[100%] Built target llama-server')"
    log = tmp_path / "build.log"
    server.run_logged("build: compile", [sys.executable, "-c", script], log, 60, progress=progress)
    assert [m.split("]")[0] for m in shown] == [
        "build: step 4 of 4: compiling llama-server [ 50%",
        "build: step 4 of 4: compiling llama-server [100%",
    ]
    assert "[100%] Built target llama-server" in log.read_text()
    with pytest.raises(server.Failure, match="exited with status 3"):
        server.run_logged("step", [sys.executable, "-c", "raise SystemExit(3)"], log, 60)
