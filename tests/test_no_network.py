from __future__ import annotations

import socket

import pytest

from harness import APIConnectionError, LLMConfig, create_llm_instance

pytest_plugins = ["pytester"]


def test_connecting_to_a_public_address_is_refused() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock, pytest.raises(OSError, match="may not reach the network"):
        sock.connect(("93.184.216.34", 443))


def test_resolving_a_public_name_is_refused() -> None:
    with pytest.raises(socket.gaierror, match="may not resolve"):
        socket.getaddrinfo("api.openai.com", 443)


def test_loopback_stays_reachable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass


async def test_a_live_provider_call_in_tests_fails_fast_as_connection_error() -> None:
    config = LLMConfig(model="gpt-4o-mini", api_key="sk-test", stream=False, max_retries=0)
    llm = create_llm_instance(config)
    with pytest.raises(APIConnectionError):
        await llm.aask("hello")


_CHILD = """
import json, socket
import httpx
connects = []
real = socket.socket.connect
def connect(sock, address):
    connects.append(address[0])
    if address[0] != "127.0.0.1":
        raise OSError("the child reached " + address[0])
    return real(sock, address)
socket.socket.connect = connect
try:
    httpx.get("https://203.0.113.1/v1/models", timeout=10)
    error = ""
except Exception as exc:
    error = repr(exc)
print(json.dumps({"connects": connects, "error": error}))
"""

_CHILD_TEST = f"""
import json, subprocess, sys

CHILD = {_CHILD!r}

def test_a_child_process_meets_the_closed_proxy():
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=30)
    report = json.loads(done.stdout)
    assert report["connects"] == ["127.0.0.1"], report
    assert report["error"] and "the child reached" not in report["error"]
"""


def test_a_replay_session_sends_child_processes_to_a_closed_proxy(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_child=_CHILD_TEST)
    pytester.runpytest("--llm-mode=replay", "-p", "no:cacheprovider").assert_outcomes(passed=1)
