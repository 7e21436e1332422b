from __future__ import annotations

import socket

import pytest

from harness import APIConnectionError, LLMConfig, create_llm_instance


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
