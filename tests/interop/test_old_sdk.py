"""A project that pins an old, httpx-based SDK records and replays through the plugin.

The vendor SDKs are extras, so harness installs beside whatever SDK version a project tests
with. This checks it for real: ``--interop-python`` names the interpreter of a virtual
environment holding harness without extras, ``anthropic<1`` (whose client runs on httpx, not
httpx2) and pytest (``.ci/run`` builds it). In that environment a project's plain
``anthropic.Anthropic()`` tests record against a loopback stand-in for the Messages API, then
replay with the server stopped and no key set, and ``pip check`` is clean. The tests are
deselected unless ``--interop-python`` is given.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop

STAND_IN = Path(__file__).resolve().parents[1] / "fake_llama_server.py"

PROJECT_TEST = """
import anthropic
import pytest


@pytest.mark.llm_cassette
def test_create(llm_cassette):
    client = anthropic.Anthropic()
    message = client.messages.create(
        model="claude-3-5-haiku-latest",
        max_tokens=32,
        messages=[{"role": "user", "content": "Say hi."}],
    )
    assert message.content[0].text == "claude heard: Say hi."
    assert llm_cassette.requests == 1


@pytest.mark.llm_cassette
def test_stream(llm_cassette):
    client = anthropic.Anthropic()
    with client.messages.stream(
        model="claude-3-5-haiku-latest",
        max_tokens=32,
        messages=[{"role": "user", "content": "Stream it."}],
    ) as stream:
        text = "".join(stream.text_stream)
    assert text == "claude heard: Stream it."
"""


@pytest.fixture(scope="module")
def python(request: pytest.FixtureRequest) -> str:
    """The old-SDK environment's interpreter (``--interop-python``)."""
    return str(request.config.getoption("--interop-python"))


def _run(
    python: str, *args: str, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def stand_in() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The Messages API stand-in on a free loopback port: its base URL and its process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, str(STAND_IN), "--port", str(port), "--alias", "claude"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the stand-in server did not start") from None
                time.sleep(0.05)  # waiting for a process to bind, not for a retry
        yield url, server
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_environment_is_an_old_httpx_sdk_without_extras(python: str, tmp_path: Path) -> None:
    probe = (
        "import anthropic, importlib.util as u; "
        "print(anthropic.__version__); "
        "print(sorted({c.__module__.split('.')[0] for c in "
        "type(anthropic.Anthropic(api_key='x')._client).__mro__} & {'httpx', 'httpx2'})); "
        "print(u.find_spec('openai') is None)"
    )
    result = _run(python, "-c", probe, cwd=tmp_path, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    version, stack, no_openai = result.stdout.split()
    assert int(version.split(".")[0]) == 0, version
    assert stack == "['httpx']", stack  # its client is an httpx.Client, not httpx2
    assert no_openai == "True"  # harness installed without extras
    check = _run(python, "-m", "pip", "check", cwd=tmp_path, env=dict(os.environ))
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_project_on_the_old_sdk_records_then_replays_offline_without_a_key(
    python: str, stand_in: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    url, server = stand_in
    (tmp_path / "test_app.py").write_text(textwrap.dedent(PROJECT_TEST), encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "PYTEST_"))}
    env["ANTHROPIC_BASE_URL"] = url
    key = "sk-ant-api03-" + "k" * 40
    record = _run(
        python,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--llm-mode=record",
        cwd=tmp_path,
        env={**env, "ANTHROPIC_API_KEY": key},
    )
    assert record.returncode == 0, record.stdout[-3000:] + record.stderr[-2000:]
    cassettes = sorted((tmp_path / "cassettes").rglob("*.yaml"))
    assert [p.name for p in cassettes] == ["test_create.yaml", "test_stream.yaml"]
    for path in cassettes:
        text = path.read_text(encoding="utf-8")
        assert key not in text and "claude heard" in text

    server.terminate()  # replay: no server, no key
    server.wait(timeout=10)
    replay = _run(python, "-m", "pytest", "-p", "no:cacheprovider", cwd=tmp_path, env=env)
    assert replay.returncode == 0, replay.stdout[-3000:] + replay.stderr[-2000:]
    assert "2 passed" in replay.stdout
