"""Every Python and shell example of the README runs as written.

Blocks are found by the heading they follow (and their rank under it), so an edit to the README
that breaks an example fails here. Module-level blocks run with ``exec`` (top-level ``await``
under asyncio), pytest-style blocks run in a temporary project through ``pytester``, and a
loopback server on 127.0.0.1 stands in for the OpenAI API where a block calls it. The few
blocks that cannot run in a test are listed in ``EXCLUDED`` with the reason.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
import shlex
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai  # noqa: F401  imported once here, so inline pytester runs do not import it again
import pytest

from harness.cli import main as harness_main
from harness.providers.fake import FakeLLM
from harness.replay import load_interactions

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# (language, heading, rank of the block under that heading) -> why it does not run here.
EXCLUDED: dict[tuple[str, str, int], str] = {
    ("bash", "## Set-up", 0): "creates a venv and installs from the network",
    ("bash", "## Set-up", 1): "runs this whole test suite (it would run itself)",
    ("bash", "## Use harness in your own tests", 0): "pip install from the network",
    ("bash", "### From pytest-recording / vcrpy", 0): "pip (un)install from the network",
    ("bash", "## Try it without API keys", 0): "builds llama.cpp (minutes) and runs a real model",
    ("bash", "### Amazon Bedrock", 0): "pip install from the network",
    # run as copies by tests/test_testing_an_agent.py; checked verbatim below
    ("python", "## Testing an agent", 0): "in tests/test_testing_an_agent.py",
    ("python", "## Testing an agent", 1): "in tests/test_testing_an_agent.py",
    ("python", "## Testing an agent", 2): "in tests/test_testing_an_agent.py",
    ("python", "## Testing an agent", 3): "in tests/test_testing_an_agent.py",
    # run by tests/test_readme.py, which finds them by the same headings
    ("python", "### Configuration files", 0): "in tests/test_readme.py",
    ("python", "### Injecting a transport (record, replay, fakes)", 0): "in tests/test_readme.py",
    ("python", "### Tokens, compression and costs", 0): "in tests/test_readme.py",
    ("python", "### Tokens, compression and costs", 1): "in tests/test_readme.py",
    ("python", "### Record and replay", 0): "in tests/test_readme.py",
    # run by tests/test_readme_eval_commands.py, which finds them by the same headings
    ("bash", "### Updating the baseline", 0): "in tests/test_readme_eval_commands.py",
    ("bash", "### Running live and re-recording", 0): "in tests/test_readme_eval_commands.py",
    ("bash", "### Running live and re-recording", 1): "in tests/test_readme_eval_commands.py",
    ("bash", "### Without pytest", 0): "in tests/test_readme_eval_commands.py",
    ("python", "## Use harness in your own tests", 7): "in tests/test_readme_eval_commands.py",
}

# The blocks this module runs (each by one test below).
COVERED = {
    ("python", "### Writing a case", 0),
    ("python", "### Graders", 0),
    ("python", "### Without pytest", 0),
    ("python", "## Quickstart", 0),
    ("python", "### Tools across providers", 0),
    ("python", "### Structured output", 0),
    ("python", "### Record and replay", 1),
    ("python", "### Embeddings", 0),
    ("python", "## Use harness in your own tests", 0),
    ("python", "## Use harness in your own tests", 1),
    ("python", "## Use harness in your own tests", 2),
    ("python", "## Use harness in your own tests", 3),
    ("python", "## Use harness in your own tests", 4),
    ("python", "## Use harness in your own tests", 5),
    ("python", "## Use harness in your own tests", 6),
    ("shell", "## Use harness in your own tests", 0),
}

_FENCE = re.compile(r"^(#+ [^\n]*)$|^```(\w*)\n(.*?)^```", re.M | re.S)


def readme_blocks() -> dict[tuple[str, str, int], str]:
    """Every fenced block of the README, keyed by (language, heading, rank under it)."""
    blocks: dict[tuple[str, str, int], str] = {}
    heading = ""
    for match in _FENCE.finditer(README.read_text(encoding="utf-8")):
        if match.group(1):
            heading = match.group(1)
            continue
        lang = match.group(2)
        rank = sum(1 for key in blocks if key[:2] == (lang, heading))
        blocks[(lang, heading, rank)] = match.group(3)
    return blocks


def block(lang: str, heading: str, rank: int = 0) -> str:
    """One README block; a KeyError names it when the README no longer has it."""
    key = (lang, heading, rank)
    assert key in COVERED, key
    return readme_blocks()[key]


def run_block(code: str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run a module-level block; one with top-level ``await`` runs on an asyncio loop."""
    namespace = {} if namespace is None else namespace
    compiled = compile(code, "<README>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, namespace)  # a coroutine when the block awaits
    if asyncio.iscoroutine(result):
        asyncio.run(result)
    return namespace


def test_every_python_and_shell_block_is_run_or_excluded_with_a_reason() -> None:
    runnable = {key for key in readme_blocks() if key[0] in ("python", "bash", "shell")}
    assert runnable == COVERED | set(EXCLUDED)
    assert not COVERED & set(EXCLUDED)


def test_the_testing_an_agent_blocks_are_the_ones_its_test_runs() -> None:
    copied = (ROOT / "tests" / "test_testing_an_agent.py").read_text(encoding="utf-8")
    agent_blocks = [
        v for k, v in readme_blocks().items() if k[:2] == ("python", "## Testing an agent")
    ]
    assert len(agent_blocks) == 4
    for code in agent_blocks:
        assert code.strip() in copied


# -- a loopback stand-in for the OpenAI API ------------------------------------------------------


class _OpenAIHandler(BaseHTTPRequestHandler):
    requests: list[tuple[str, dict[str, Any]]]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        self.requests.append((self.path, body))
        if self.path.endswith("/embeddings"):
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            answer: dict[str, Any] = {
                "object": "list",
                "model": body["model"],
                "data": [
                    {"object": "embedding", "index": i, "embedding": [0.5, float(i)]}
                    for i in range(len(texts))
                ],
                "usage": {"prompt_tokens": 4, "total_tokens": 4},
            }
        else:
            answer = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model", "gpt-4o-mini"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "7 ... a prime"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16},
            }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """The OpenAI API on 127.0.0.1 (OPENAI_BASE_URL, a dummy key); yields the requests seen."""
    seen: list[tuple[str, dict[str, Any]]] = []
    handler = type("H", (_OpenAIHandler,), {"requests": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{httpd.server_address[1]}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dummy-key-for-loopback")
    try:
        yield seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# -- module-level blocks -------------------------------------------------------------------------


def test_python_suite_example_builds_the_suite() -> None:
    suite = run_block(block("python", "### Writing a case"))["SUITE"]
    assert suite.name == "support-bot"
    assert [case.id for case in suite.cases] == ["refund"]


def test_custom_graders_example() -> None:
    namespace = run_block(block("python", "### Graders"))
    assert namespace["no_apology"]("Sorry, no.") == (False, "apologised")
    assert namespace["no_apology"]("Yes.") == (True, "ok")


def test_without_pytest_example_runs_the_shipped_suite_from_its_cassettes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    namespace = run_block(block("python", "### Without pytest"))
    totals = namespace["result"].to_json()["totals"]
    assert str(totals) in capsys.readouterr().out


def test_quickstart_asks_the_openai_api(
    openai_server: list[tuple[str, dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    run_block(block("python", "## Quickstart"))
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "7 ... a prime"
    assert "prompt_tokens=12" in out
    assert [path for path, _ in openai_server] == ["/v1/chat/completions"]
    assert openai_server[0][1]["messages"][-1]["content"] == "Name a prime number."


def test_tools_loop_example_calls_the_tool_then_answers() -> None:
    from harness.providers.fake import tool_call

    namespace = run_block(block("python", "### Tools across providers"))
    llm = FakeLLM([tool_call("get_weather", {"city": "Paris"}), "Sunny."])
    assert asyncio.run(namespace["answer"](llm, "Weather in Paris?")) == "Sunny."
    assert llm.calls[1].messages[-1]["content"] == "sunny in Paris"


def test_structured_output_example_parses_the_model() -> None:
    llm = FakeLLM(['{"name": "Mexico City", "country": "Mexico"}'])
    namespace = run_block(block("python", "### Structured output"), {"llm": llm})
    assert repr(namespace["reply"].parsed) == "City(name='Mexico City', country='Mexico')"


def test_embeddings_example(openai_server: list[tuple[str, dict[str, Any]]]) -> None:
    from harness import LLMConfig, create_llm_instance

    llm = create_llm_instance(LLMConfig(model="text-embedding-3-small"))
    namespace = run_block(block("python", "### Embeddings"), {"llm": llm})
    assert namespace["result"].vectors == [[0.5, 0.0], [0.5, 1.0]]
    assert openai_server[0][1]["input"] == ["first text", "second text"]


def test_use_cassette_example_records_then_replays(
    openai_server: list[tuple[str, dict[str, Any]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code = block("python", "### Record and replay", 1)
    run_block(code)
    assert len(openai_server) == 1
    cassette = (tmp_path / "cassettes" / "my_test.yaml").read_text(encoding="utf-8")
    assert "Hello!" in cassette and "sk-test-dummy" not in cassette
    run_block(code)  # record mode replays what matches: nothing new is sent
    assert len(openai_server) == 1


# -- pytest-style blocks, in a project of their own ----------------------------------------------

OWN_TESTS = "## Use harness in your own tests"


def test_plugin_examples_record_then_replay_offline(
    pytester: pytest.Pytester,
    openai_server: list[tuple[str, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = README.read_text(encoding="utf-8")
    models_yaml = re.search(r"```yaml\n(# models\.yaml.*?)```", text, re.S)
    assert models_yaml, "the models.yaml example of the llm fixture"
    pytester.makefile(".yaml", models=models_yaml.group(1))
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "llm_config = models.yaml\n"
    )
    pytester.makepyfile(
        test_app=block("python", OWN_TESTS, 0),
        test_answer=block("python", OWN_TESTS, 1),
        test_fake=block("python", OWN_TESTS, 2),
        test_cheap=block("python", OWN_TESTS, 3),
        test_faults=block("python", OWN_TESTS, 4),
        test_keyless=block("python", OWN_TESTS, 6),
    )
    sub = pytester.mkpydir("sub")
    (sub / "conftest.py").write_text(block("python", OWN_TESTS, 5), encoding="utf-8")
    (sub / "test_overrides.py").write_text(
        "def test_the_conftest_models_config_wins(llm_models_config):\n"
        "    assert llm_models_config.get('gpt').model == 'gpt-4o'\n",
        encoding="utf-8",
    )
    recorded = pytester.runpytest("--llm-mode=record", "-p", "no:cacheprovider")
    recorded.assert_outcomes(passed=7)
    assert (pytester.path / "cassettes" / "test_app" / "test_summary.yaml").is_file()
    sent = len(openai_server)
    assert sent == 4  # app, answer, cheap, faults (after its two faults)

    monkeypatch.delenv("OPENAI_API_KEY")  # replay needs no key
    shell = block("shell", OWN_TESTS)
    commands = [shlex.split(line, comments=True) for line in shell.splitlines()]
    # cassettes/x.yaml: one recorded answer that the replay run leaves unplayed
    x_yaml = pytester.path / "cassettes" / "x.yaml"
    recorded_answer = (pytester.path / "cassettes" / "test_answer" / "test_answer.yaml").read_text()
    x_yaml.write_text(recorded_answer)
    pytester.makepyfile(
        test_x="import pytest\n\n\n@pytest.mark.llm_cassette('x.yaml')\n"
        "def test_x(llm_cassette):\n    assert llm_cassette.path.name == 'x.yaml'\n"
    )
    for argv in commands:
        if argv[0] == "pytest":
            replayed = pytester.runpytest(*argv[1:], "-p", "no:cacheprovider")
            replayed.assert_outcomes(passed=8)
            assert len(openai_server) == sent  # answered from the cassettes alone
        else:  # each prune command on the cassettes as the run left them
            assert argv[:2] == ["harness", "cassettes"], argv
            x_yaml.write_text(recorded_answer)
            assert harness_main(argv[1:]) == 0, argv
            assert load_interactions(x_yaml) == []  # dropped: no test played it
            played = pytester.path / "cassettes" / "test_app" / "test_summary.yaml"
            assert len(load_interactions(played)) == 1  # kept


def test_prune_of_a_whole_report_skips_cassettes_never_written(tmp_path: Path) -> None:
    report = tmp_path / "unplayed.json"
    missing = {"version": 1, "cassette": "cassettes/none.yaml", "interactions": 0, "unplayed": []}
    report.write_text(json.dumps([missing]), encoding="utf-8")
    assert harness_main(["cassettes", "prune", "--unplayed", str(report)]) == 0
    report.write_text(json.dumps([{**missing, "unplayed": [0]}]), encoding="utf-8")
    assert harness_main(["cassettes", "prune", "--unplayed", str(report)]) != 0
