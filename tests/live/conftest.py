"""The real local LLM server (``harness local-llm``: llama.cpp's llama-server) for the live tier.

Each test using ``local_llm`` gets its own server on a free loopback port, started with
``harness local-llm start --background --state-file <tmp>`` and stopped by that state file when
the test ends (on failure too). A test that needs other llama-server arguments (a chat
template...) parametrizes ``local_llm`` indirectly with them, or starts servers itself with the
``start_local_llm`` factory. A test may stop it earlier with :meth:`LocalLLM.stop` to prove
that what follows (replay) no longer needs it. Every subprocess runs under a time limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.local_llm import MODELS_YAML as MODELS_YAML  # used by the live tests

LOCAL_LLM = [sys.executable, "-m", "harness.cli", "local-llm"]  # the packaged command
MODEL = "smollm2"

# Every wait is bounded. build/fetch return at once when the cache is filled (CI fills it in a
# step of its own first); the limits below only matter on a cold cache.
PREPARE_TIMEOUT = 2700.0
START_TIMEOUT = 120.0
HEALTH_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``harness local-llm ARGS`` under a time limit; fails the test with its output if it fails."""
    cmd = [*LOCAL_LLM, *args]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(args)} took more than {timeout:g}s\n{exc.stderr or ''}")
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether anything answers HTTP at ``url``/health."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError:
        return True  # something is listening
    except (OSError, ValueError):
        return False


@dataclass
class LocalLLM:
    """One running llama-server, as ``harness local-llm start --background`` reported it."""

    url: str
    state_file: Path
    command: str  # the llama-server command line, from the head of its log
    stopped: bool = field(default=False)

    def stop(self) -> None:
        """Stop the server (idempotent); bounded by STOP_TIMEOUT."""
        if self.stopped:
            return
        _run(
            "stop",
            "--state-file",
            str(self.state_file),
            "--stop-timeout",
            str(STOP_TIMEOUT / 2),
            timeout=STOP_TIMEOUT,
        )
        self.stopped = True

    def answers(self) -> bool:
        return answers(self.url)


@pytest.fixture(scope="session")
def local_llm_ready() -> None:
    """llama-server built and the weights fetched (instant when cached)."""
    _run("build", timeout=PREPARE_TIMEOUT)
    _run("fetch", "--model", MODEL, timeout=PREPARE_TIMEOUT)


StartLocalLLM = Callable[..., LocalLLM]


def _start(state_file: Path, server_args: Sequence[str]) -> LocalLLM:
    """``harness local-llm start`` on a free port (the script picks one), passing
    ``server_args`` on to llama-server; a start that fails leaves no server behind."""
    try:
        done = _run(
            "start",
            "--model",
            MODEL,
            "--background",
            "--state-file",
            str(state_file),
            "--health-timeout",
            str(HEALTH_TIMEOUT),
            *(f"--server-arg={arg}" for arg in server_args),
            timeout=START_TIMEOUT,
        )
        url = done.stdout.strip().splitlines()[-1]
        state = json.loads(state_file.read_text())
        assert state["url"] == url
        command = Path(state["log"]).read_text(errors="replace").splitlines()[0]
        return LocalLLM(url=url, state_file=state_file, command=command)
    except BaseException:
        # a start that timed out or failed after launching must not leave a server behind
        if state_file.exists():
            subprocess.run(
                [*LOCAL_LLM, "stop", "--state-file", str(state_file)],
                capture_output=True,
                timeout=STOP_TIMEOUT,
            )
        raise


@pytest.fixture
def start_local_llm(local_llm_ready: None, tmp_path: Path) -> Iterator[StartLocalLLM]:
    """A factory: ``start_local_llm("--jinja", ...)`` starts a fresh real server with those
    llama-server arguments, on a free port; every server it started is stopped at teardown."""
    servers: list[LocalLLM] = []

    def start(*server_args: str) -> LocalLLM:
        server = _start(tmp_path / f"local-llm-state-{len(servers)}.json", server_args)
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
        for server in servers:
            assert not server.answers(), f"llama-server still answers at {server.url}"


@pytest.fixture
def local_llm(request: pytest.FixtureRequest, start_local_llm: StartLocalLLM) -> LocalLLM:
    """A fresh real server on a free port, stopped at teardown. Parametrize it indirectly
    with a tuple of llama-server arguments to start it with those
    (``@pytest.mark.parametrize("local_llm", [("--jinja",)], indirect=True)``)."""
    server_args: Sequence[str] = getattr(request, "param", ())
    return start_local_llm(*server_args)
