"""The pytest plugin, driven as a downstream project would use it (``pytester``).

Inner sessions talk only to a loopback server started here, or to nothing at all.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic  # noqa: F401  imported once here, so inline runs do not import it again
import openai  # noqa: F401
import pytest

from harness.errors import NetworkBlockedError
from harness.pytest_plugin.network import NetworkGuard
from harness.replay import (
    Interaction,
    RecordedRequest,
    RecordedResponse,
    dump_interactions,
    load_interactions,
)
from tests.replay.conftest import LLMServer, _Handler

pytest_plugins = ["pytester"]

SDK_TESTS = """
import os

import anthropic
import openai
import pytest

BASE = os.environ["HARNESS_TEST_BASE_URL"]
PROMPT = os.environ.get("HARNESS_TEST_PROMPT", "hello")


@pytest.mark.llm_cassette
def test_openai_chat(llm_cassette):
    client = openai.OpenAI(base_url=BASE + "/v1", api_key="sk-test-key", max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}]
    )
    assert reply.choices[0].message.content == "echo: " + PROMPT
    assert llm_cassette.requests == 1


@pytest.mark.llm_cassette
def test_anthropic_messages():
    client = anthropic.Anthropic(base_url=BASE, api_key="sk-ant-test", max_retries=0)
    message = client.messages.create(
        model="claude-x", max_tokens=50, messages=[{"role": "user", "content": "hi there"}]
    )
    assert message.content[0].text == "echo: hi there"
"""


INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


@pytest.fixture(autouse=True)
def _quiet_inner_sessions(pytester: pytest.Pytester) -> None:
    """Inner sessions set pytest-asyncio's loop scope, so they warn about nothing."""
    pytester.makeini(INI)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMServer]:
    """The replay tests' LLM-shaped server on 127.0.0.1; its URL in HARNESS_TEST_BASE_URL."""
    state = LLMServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Handler,), {"server_state": state}))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setenv("HARNESS_TEST_BASE_URL", state.base_url)
    try:
        yield state
    finally:
        state.stopped.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _stop(server: LLMServer) -> None:
    """Nothing listens at the server's address afterwards (its URL stays in the env)."""
    server.stopped.set()


def _chat_cassette(path: Path, *replies: tuple[str, int, int], model: str = "gpt-4o") -> None:
    """A harness cassette of OpenAI chat completions: (prompt, prompt tokens, output tokens)."""
    interactions = []
    for prompt, prompt_tokens, completion_tokens in replies:
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}]}
        answer = {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": f"re: {prompt}"}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }  # fmt: skip
        json_headers = [("content-type", "application/json")]
        interactions.append(
            Interaction(
                RecordedRequest(
                    "POST",
                    "http://127.0.0.1:9/v1/chat/completions",
                    json_headers,
                    json.dumps(body).encode(),
                ),
                RecordedResponse(200, json_headers, json.dumps(answer).encode()),
            )
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_interactions(interactions)[1], encoding="utf-8")


REPLAYED_CHAT = """
import openai
import pytest


@pytest.mark.llm_cassette("chat.yaml")
def test_chat():
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="k", max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "one"}]
    )
    assert reply.choices[0].message.content == "re: one"
"""


# -- record, then replay with the server gone -----------------------------------------------------


def test_sdk_calls_are_recorded_then_replayed_offline(
    pytester: pytest.Pytester, server: LLMServer
) -> None:
    pytester.makepyfile(test_sdk=SDK_TESTS)
    recorded = pytester.runpytest("--llm-mode=record")
    recorded.assert_outcomes(passed=2)
    cassettes = pytester.path / "cassettes" / "test_sdk"
    assert sorted(p.name for p in cassettes.glob("*.yaml")) == [
        "test_anthropic_messages.yaml",
        "test_openai_chat.yaml",
    ]
    assert "sk-test-key" not in (cassettes / "test_openai_chat.yaml").read_text()
    recorded.stdout.fnmatch_lines(["*harness LLM calls*", "*cassettes written (2)*"])
    assert len(server.requests) == 2

    _stop(server)
    replayed = pytester.runpytest("--llm-mode", "replay")
    replayed.assert_outcomes(passed=2)
    assert len(server.requests) == 2  # nothing reached the server
    replayed.stdout.fnmatch_lines(["*test_sdk.py::test_openai_chat*replay*1*3*4*"])


def test_a_changed_prompt_is_a_cassette_miss_with_a_diff(
    pytester: pytest.Pytester, server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_sdk=SDK_TESTS)
    pytester.runpytest("--llm-mode=record", "-k", "openai").assert_outcomes(passed=1)
    monkeypatch.setenv("HARNESS_TEST_PROMPT", "goodbye")
    result = pytester.runpytest("-k", "openai")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*CassetteMiss: no recorded interaction in *test_openai_chat.yaml matches POST*",
            '*-*"content": "hello"*',
            '*+*"content": "goodbye"*',
            "*--llm-mode=record*",
        ]
    )
    assert len(server.requests) == 1


def test_record_mode_adds_new_interactions_to_the_cassette(
    pytester: pytest.Pytester, server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_sdk=SDK_TESTS)
    pytester.runpytest("--llm-mode=record", "-k", "openai").assert_outcomes(passed=1)
    monkeypatch.setenv("HARNESS_TEST_PROMPT", "goodbye")
    pytester.runpytest("--llm-mode=record", "-k", "openai").assert_outcomes(passed=1)
    text = (pytester.path / "cassettes/test_sdk/test_openai_chat.yaml").read_text()
    assert "hello" in text and "goodbye" in text


# -- network blocking -----------------------------------------------------------------------------


def test_replay_mode_blocks_non_loopback_connections_before_sending(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import socket

        import openai
        import pytest

        from harness.errors import NetworkBlockedError


        def test_socket_connect_is_refused():
            with socket.socket() as sock:
                with pytest.raises(NetworkBlockedError, match="203.0.113.1:443") as info:
                    sock.connect(("203.0.113.1", 443))
            assert "--llm-allow-hosts=203.0.113.1" in str(info.value)


        def test_name_lookup_is_refused():
            with pytest.raises(NetworkBlockedError, match="api.openai.com"):
                socket.create_connection(("api.openai.com", 443), timeout=1)


        def test_an_sdk_call_is_refused():
            client = openai.OpenAI(base_url="http://203.0.113.1/v1", api_key="k", max_retries=0)
            with pytest.raises(Exception) as info:
                client.models.list()
            error, messages = info.value, []
            while error is not None:
                messages.append(str(error))
                error = error.__cause__ or error.__context__
            assert any("harness blocked a connection to 203.0.113.1:80" in m for m in messages)


        def test_loopback_stays_allowed():
            with socket.socket() as server:
                server.bind(("127.0.0.1", 0))
                server.listen()
                with socket.create_connection(server.getsockname(), timeout=1):
                    pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=4)


def test_allowed_hosts_pass_the_guard(pytester: pytest.Pytester) -> None:
    # The host passes harness's guard and reaches the next layer: this repository's own
    # conftest guard, which still refuses it (so no packet leaves in this test either).
    pytester.makepyfile(
        """
        import socket
        import pytest

        def test_allowed():
            with socket.socket() as sock:
                with pytest.raises(OSError, match="tests may not reach the network"):
                    sock.connect(("203.0.113.1", 443))
        """
    )
    pytester.runpytest("--llm-allow-hosts=example.org,203.0.113.*").assert_outcomes(passed=1)


def _stub_dns(monkeypatch: pytest.MonkeyPatch, address: str) -> list[str]:
    """Fake name lookups (and UDP sends) under a NetworkGuard: nothing real is called."""
    sent: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))]

    def sendto(sock: socket.socket, data: Any, *args: Any) -> int:
        sent.append(str(args[-1][0]))
        return len(data)

    def sendmsg(sock: socket.socket, buffers: Any, *args: Any) -> int:
        sent.append(str(args[2][0]))
        return 1

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "gethostbyname", lambda host: address)
    monkeypatch.setattr(socket, "gethostbyname_ex", lambda host: (host, [], [address]))
    monkeypatch.setattr(socket, "gethostbyaddr", lambda host: ("name.example", [], [host]))
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    monkeypatch.setattr(socket.socket, "sendmsg", sendmsg)
    return sent


def test_lookups_made_while_suspended_stay_blocked_afterwards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _stub_dns(monkeypatch, "203.0.113.7")
    guard = NetworkGuard(["allowed.example"])
    guard.install()
    try:
        with NetworkGuard.suspended():  # a recording test resolves a host nobody allowed
            socket.getaddrinfo("api.openai.com", 443)
            socket.gethostbyname("api.openai.com")
        assert not guard.allowed("203.0.113.7")
        with pytest.raises(NetworkBlockedError), socket.socket() as sock:
            sock.connect(("203.0.113.7", 443))
        socket.getaddrinfo("allowed.example", 443)  # an allowed name allows its addresses
        assert guard.allowed("203.0.113.7")
    finally:
        guard.uninstall()


def test_the_guard_covers_gethostbyname_and_udp_and_restores_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent = _stub_dns(monkeypatch, "203.0.113.8")
    before = {
        name: getattr(socket, name)
        for name in ("gethostbyname", "gethostbyname_ex", "gethostbyaddr")
    }
    before_send = (socket.socket.sendto, socket.socket.sendmsg)
    guard = NetworkGuard(["ok.example", "198.51.100.*"])
    guard.install()
    try:
        for lookup in before:
            with pytest.raises(NetworkBlockedError, match=r"api\.openai\.com"):
                getattr(socket, lookup)("api.openai.com")
        with pytest.raises(NetworkBlockedError, match=r"203\.0\.113\.9"):
            socket.gethostbyaddr("203.0.113.9")
        assert socket.gethostbyname("localhost") == "203.0.113.8"  # the stub: loopback passes
        assert socket.gethostbyname_ex("ok.example")[2] == ["203.0.113.8"]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            with pytest.raises(NetworkBlockedError, match=r"203\.0\.113\.1:53"):
                udp.sendto(b"q", ("203.0.113.1", 53))
            with pytest.raises(NetworkBlockedError, match=r"203\.0\.113\.1:53"):
                udp.sendto(b"q", 0, ("203.0.113.1", 53))
            with pytest.raises(NetworkBlockedError, match=r"203\.0\.113\.1:53"):
                udp.sendmsg([b"q"], [], 0, ("203.0.113.1", 53))
            udp.sendto(b"q", ("127.0.0.1", 9))
            udp.sendto(b"q", ("198.51.100.2", 9))
            udp.sendmsg([b"q"], [], 0, ("203.0.113.8", 9))  # resolved from ok.example
            with NetworkGuard.suspended():
                udp.sendto(b"q", ("203.0.113.1", 53))
    finally:
        guard.uninstall()
    assert sent == ["127.0.0.1", "198.51.100.2", "203.0.113.8", "203.0.113.1"]
    assert {name: getattr(socket, name) for name in before} == before
    assert (socket.socket.sendto, socket.socket.sendmsg) == before_send


def test_vcrpy_mode_aliases_are_resolved_for_the_guard_and_the_key(
    pytester: pytest.Pytester, server: LLMServer
) -> None:
    pytester.makepyfile(
        """
        import socket

        import pytest

        from harness.errors import NetworkBlockedError


        @pytest.mark.llm_cassette(mode="none")
        def test_none_is_replay(llm_cassette):
            assert llm_cassette.mode == "replay"
            with socket.socket() as sock, pytest.raises(NetworkBlockedError):
                sock.connect(("203.0.113.1", 443))


        @pytest.mark.llm_cassette(mode="new_episodes")
        def test_new_episodes_is_record(llm_cassette):
            assert llm_cassette.mode == "record"
            with socket.socket() as sock:  # guard lifted: the repo's own guard refuses it
                with pytest.raises(OSError, match="tests may not reach the network"):
                    sock.connect(("203.0.113.1", 443))


        @pytest.mark.llm_cassette(mode="all")
        def test_all_is_rewrite(llm_cassette):
            assert llm_cassette.mode == "rewrite"


        @pytest.mark.llm_cassette(mode="once")
        def test_once_without_a_file_records(llm_cassette):
            assert llm_cassette.mode == "record"
        """
    )
    pytester.runpytest().assert_outcomes(passed=4)
    pytester.makefile(
        ".yaml",
        models="""
        models:
          gpt:
            api_type: openai
            model: gpt-4o-mini
            base_url: ${HARNESS_TEST_BASE_URL}/v1
        """,
    )
    pytester.makepyfile(
        test_key="""
        def test_ask(llm):
            llm("gpt")
        """
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("OPENAI_API_KEY", raising=False)
        for alias in ("new_episodes", "all"):
            needs = pytester.runpytest(
                "test_key.py", "--llm-config=models.yaml", f"--llm-mode={alias}"
            )
            needs.assert_outcomes(failed=1)
            needs.stdout.fnmatch_lines(["*MissingAPIKeyError*OPENAI_API_KEY*"])
        replayed = pytester.runpytest("test_key.py", "--llm-config=models.yaml", "--llm-mode=none")
        replayed.assert_outcomes(passed=1)
    pytester.makeini(INI + "llm_mode = none\n")
    pytester.runpytest("test_key.py", "--llm-config=models.yaml").assert_outcomes(passed=1)


def test_rewrite_keeps_every_test_of_the_run_on_a_shared_cassette(
    pytester: pytest.Pytester, server: LLMServer
) -> None:
    pytester.makepyfile(
        """
        import os

        import openai
        import pytest


        def _ask(prompt):
            client = openai.OpenAI(
                base_url=os.environ["HARNESS_TEST_BASE_URL"] + "/v1", api_key="k", max_retries=0
            )
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": prompt}]
            )


        @pytest.mark.llm_cassette("shared.yaml")
        def test_one():
            _ask("one")


        @pytest.mark.llm_cassette("shared.yaml")
        def test_two():
            _ask("two")
        """
    )
    pytester.runpytest("--llm-mode=rewrite", "-p", "no:randomly").assert_outcomes(passed=2)
    prompts = [
        json.loads(i.request.body)["messages"][0]["content"]
        for i in load_interactions(pytester.path / "cassettes/shared.yaml")
    ]
    assert sorted(prompts) == ["one", "two"]


# -- budget and strict ----------------------------------------------------------------------------


def test_budget_fails_the_session_when_spent(pytester: pytest.Pytester) -> None:
    # 1000 prompt + 1000 output tokens of gpt-4o: $0.0125
    _chat_cassette(pytester.path / "cassettes/chat.yaml", ("one", 1000, 1000))
    pytester.makepyfile(test_budget=REPLAYED_CHAT)
    over = pytester.runpytest("--llm-budget=0.01")
    over.assert_outcomes(passed=1)
    assert over.ret == pytest.ExitCode.TESTS_FAILED
    over.stdout.fnmatch_lines(["*--llm-budget exceeded*$0.012500*$0.01*"])
    under = pytester.runpytest("--llm-budget=0.02")
    assert under.ret == pytest.ExitCode.OK
    under.stdout.fnmatch_lines(["*budget: $0.012500 of $0.02 spent (ok)*"])


def test_strict_fails_a_test_that_leaves_interactions_unplayed(
    pytester: pytest.Pytester,
) -> None:
    _chat_cassette(pytester.path / "cassettes/chat.yaml", ("one", 1, 1), ("two", 1, 1))
    pytester.makepyfile(test_strict=REPLAYED_CHAT)
    lenient = pytester.runpytest()
    lenient.assert_outcomes(passed=1)
    lenient.stdout.fnmatch_lines(["*unplayed interactions (1*", "*chat.yaml: 1*"])
    strict = pytester.runpytest("--llm-strict")
    strict.assert_outcomes(passed=1, errors=1)
    strict.stdout.fnmatch_lines(["*1 interaction(s) in *chat.yaml were never played*"])


# -- xdist ----------------------------------------------------------------------------------------


def test_works_under_xdist_with_merged_summaries(
    pytester: pytest.Pytester, server: LLMServer
) -> None:
    pytester.makepyfile(test_sdk=SDK_TESTS)
    pytester.runpytest("--llm-mode=record").assert_outcomes(passed=2)
    _stop(server)
    replayed = pytester.runpytest_subprocess("-n", "2", timeout=120)
    replayed.assert_outcomes(passed=2)
    replayed.stdout.fnmatch_lines(["*test_anthropic_messages*", "*test_openai_chat*", "total*2*"])
    assert len(server.requests) == 2


# -- fixtures, markers, precedence ----------------------------------------------------------------


def test_llm_factory_needs_no_key_in_replay_and_names_the_variable_in_record(
    pytester: pytest.Pytester, server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(
        ".yaml",
        models="""
        models:
          gpt:
            api_type: openai
            model: gpt-4o-mini
            base_url: ${HARNESS_TEST_BASE_URL}/v1
        """,
    )
    pytester.makepyfile(
        """
        import asyncio

        def test_ask(llm, llm_costs):
            reply = asyncio.run(llm("gpt").aask("hi", stream=False))
            assert reply == "echo: hi"
            assert llm_costs.get_costs().prompt_tokens == 3
        """
    )
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    missing = pytester.runpytest("--llm-config=models.yaml", "--llm-mode=record")
    missing.assert_outcomes(failed=1)
    missing.stdout.fnmatch_lines(["*MissingAPIKeyError*OPENAI_API_KEY*"])
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    pytester.runpytest("--llm-config=models.yaml", "--llm-mode=record").assert_outcomes(passed=1)
    monkeypatch.delenv("OPENAI_API_KEY")
    _stop(server)
    replayed = pytester.runpytest("--llm-config=models.yaml")
    replayed.assert_outcomes(passed=1)
    replayed.stdout.fnmatch_lines(["*test_ask*replay*1*3*4*"])  # billed once, not twice


def test_fake_llm_and_llm_faults(pytester: pytest.Pytester, server: LLMServer) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import os

        import openai
        import pytest

        from harness.replay import Faults


        def test_fake(fake_llm, llm_costs):
            fake_llm.replies = ["scripted"]
            assert asyncio.run(fake_llm.aask("question", stream=False)) == "scripted"
            fake_llm.assert_called_with_prompt("question")
            assert llm_costs.get_costs().requests_count == 1


        @pytest.mark.llm_faults(Faults().status(429))
        def test_rate_limited_once():
            base = os.environ["HARNESS_TEST_BASE_URL"] + "/v1"
            client = openai.OpenAI(base_url=base, api_key="k", max_retries=0)
            messages = [{"role": "user", "content": "x"}]
            with pytest.raises(openai.RateLimitError):
                client.chat.completions.create(model="m", messages=messages)
            reply = client.chat.completions.create(model="m", messages=messages)
            assert reply.choices[0].message.content == "echo: x"
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)
    assert len(server.requests) == 1  # the faulted request never reached the server


def test_cassette_names_are_file_safe_and_follow_module_and_class(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_names="""
        import pytest

        @pytest.mark.llm_cassette(mode="record")
        @pytest.mark.parametrize("model", ["gpt-4o/mini", "a b"])
        def test_param(llm_cassette, model):
            assert llm_cassette.path.name in ("test_param-gpt-4o_mini.yaml", "test_param-a_b.yaml")

        @pytest.mark.llm_cassette
        class TestGroup:
            def test_inner(self, llm_cassette):
                assert llm_cassette.path.parts[-2:] == ("test_names", "TestGroup.test_inner.yaml")
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_precedence_is_flag_then_marker_then_fixture_then_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI + "llm_mode = rewrite\n")
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def llm_mode():
            return "live"
        """
    )
    pytester.makepyfile(
        """
        import os
        import pytest

        EXPECTED = os.environ["EXPECTED_MODES"].split(",")

        def test_fixture_beats_ini(llm_cassette):
            assert llm_cassette.mode == EXPECTED[0]

        @pytest.mark.llm_cassette(mode="record")
        def test_marker_beats_fixture(llm_cassette):
            assert llm_cassette.mode == EXPECTED[1]
        """
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPECTED_MODES", "live,record")
        pytester.runpytest().assert_outcomes(passed=2)
        patch.setenv("EXPECTED_MODES", "replay,replay")
        pytester.runpytest("--llm-mode=replay").assert_outcomes(passed=2)


def test_the_plugin_is_inert_for_tests_that_do_not_use_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "harness LLM calls" not in result.stdout.str()
    assert not (pytester.path / "cassettes").exists()


def test_markers_are_registered_with_their_signatures(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.llm_cassette(path=None, *, mode=None, match=None, strict=None):*",
            "@pytest.mark.llm_faults(*faults):*",
        ]
    )


def test_the_readme_fake_llm_example_passes_as_written(pytester: pytest.Pytester) -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    start = readme.index("**`fake_llm`: a scripted model")
    block = re.search(r"```python\n(.*?)```", readme[start:], re.S)
    assert block is not None
    pytester.makepyfile(test_readme_example=block.group(1))
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
