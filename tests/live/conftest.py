"""The real local LLM server (``harness local-llm``: llama.cpp's llama-server) for the live tier.

Each test using ``local_llm`` gets its own server on a free loopback port, started with
``harness local-llm start --background --state-file <tmp>`` and stopped by that state file when
the test ends (on failure too). A test may stop it earlier with :meth:`LocalLLM.stop` to prove
that what follows (replay) no longer needs it. Every subprocess runs under a time limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
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


@pytest.fixture
def local_llm(local_llm_ready: None, tmp_path: Path) -> Iterator[LocalLLM]:
    """A fresh real server on a free port (the script picks one), stopped at teardown."""
    state_file = tmp_path / "local-llm-state.json"
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
            timeout=START_TIMEOUT,
        )
        url = done.stdout.strip().splitlines()[-1]
        state = json.loads(state_file.read_text())
        assert state["url"] == url
        command = Path(state["log"]).read_text(errors="replace").splitlines()[0]
        server = LocalLLM(url=url, state_file=state_file, command=command)
    except BaseException:
        # a start that timed out or failed after launching must not leave a server behind
        if state_file.exists():
            subprocess.run(
                [*LOCAL_LLM, "stop", "--state-file", str(state_file)],
                capture_output=True,
                timeout=STOP_TIMEOUT,
            )
        raise
    try:
        yield server
    finally:
        server.stop()
        assert not server.answers(), f"llama-server still answers at {server.url}"
