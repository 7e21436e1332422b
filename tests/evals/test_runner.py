"""The runner: cassettes per (case, model), repeats, multi-turn, judge billing, latency,
errors that do not crash the run, and concurrency (no real sleeping)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest

from harness import FakeLLM, LLMConfig, ModelsConfig
from harness.errors import ConfigError
from harness.evals import Case, EvalItem, Grade, GradeContext, Suite, SuiteFormatError, graders
from harness.evals.runner import cassette_path, plan_items, run_items, run_suite
from harness.replay import dump_interactions, load_interactions

PRICE = {"input": 1, "output": 2}  # USD per 1M tokens


def models(**extra: Any) -> dict[str, LLMConfig]:
    base = {
        "api_type": "open_llm",
        "base_url": "http://127.0.0.1:9/v1",
        "stream": False,
        "max_retries": 0,
        "price": PRICE,
    }
    return {
        "m1": LLMConfig(model="m1", **base),
        "m2": LLMConfig(model="m2", **base),
        "judge": LLMConfig(model="judge-model", **{**base, "price": {"input": 10, "output": 10}}),
        **extra,
    }


def completion(text: str, prompt_tokens: int = 10, completion_tokens: int = 5) -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class Server:
    """A MockTransport handler answering chat completions with ``answer(body)``."""

    def __init__(self, answer: Callable[[dict[str, Any]], str | dict[str, Any]]) -> None:
        self.answer = answer
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        answer = self.answer(body)
        data = completion(answer) if isinstance(answer, str) else answer
        return httpx2.Response(200, json=data)

    @property
    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self)


def last_user(body: dict[str, Any]) -> str:
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")


def suite(*cases: Case, **kw: Any) -> Suite:
    kw.setdefault("models", ("m1",))
    return Suite(name=kw.pop("name", "s"), cases=cases, **kw)


async def run(
    s: Suite, tmp_path: Path, mode: str = "replay", server: Server | None = None, **kw: Any
) -> list[Any]:
    items = plan_items([s])
    upstream = server.transport if server is not None else None
    return await run_items(
        items, models(), mode=mode, cassette_dir=tmp_path, upstream=upstream, **kw
    )


def test_plan_items_and_cassette_paths(tmp_path: Path) -> None:
    a, b = Case(id="a", prompt="x"), Case(id="b/../c d", prompt="y")
    s1, s2 = suite(a, b, models=("m1", "m2")), suite(a, name="t")
    items = plan_items([s1, s2])
    assert [i.id for i in items] == ["a[m1]", "a[m2]", "b/../c d[m1]", "b/../c d[m2]", "a[m1]"]
    assert items[0].key == ("s", "a", "m1")
    assert [i.id for i in plan_items([s1], models=["x"])] == ["a[x]", "b/../c d[x]"]
    assert cassette_path(tmp_path, items[0]) == tmp_path / "s" / "m1" / "a.yaml"
    weird = cassette_path(tmp_path, EvalItem(Suite(name="../up", cases=(a,)), b, "org/model"))
    assert weird == tmp_path / "_up" / "org_model" / "b_.._c_d.yaml"
    assert weird.resolve().is_relative_to(tmp_path.resolve())
    with pytest.raises(SuiteFormatError, match="no models to run"):
        plan_items([Suite(name="s", cases=(a,))])


async def test_record_then_replay_offline_with_usage_cost_and_grades(tmp_path: Path) -> None:
    server = Server(lambda body: "The capital is Paris.")
    s = suite(
        Case(
            id="capital",
            prompt="Capital of France?",
            system="Be brief.",
            graders=[graders.contains("Paris")],
        ),
        Case(id="wrong", prompt="Capital of Spain?", graders=[graders.contains("Madrid")]),
        models=("m1", "m2"),
    )
    recorded = await run(s, tmp_path, "record", server)
    assert len(server.bodies) == 4
    assert server.bodies[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert {b["model"] for b in server.bodies} == {"m1", "m2"}
    # replay: nothing reaches the server
    replayed = await run(s, tmp_path)
    assert len(server.bodies) == 4
    for results in (recorded, replayed):
        assert [r.id for r in results] == ["capital[m1]", "capital[m2]", "wrong[m1]", "wrong[m2]"]
        first = results[0]
        assert first.passed and first.status == "pass" and first.reply == "The capital is Paris."
        assert first.usage.prompt_tokens == 10 and first.usage.completion_tokens == 5
        assert first.cost == Decimal(10 * 1 + 5 * 2) / 1_000_000
        assert first.cassette == str(tmp_path / "s" / "m1" / "capital.yaml")
        assert first.judge_usage is None and not first.judged
        wrong = results[2]
        assert not wrong.passed and wrong.status == "fail"
        assert "missing ['Madrid']" in wrong.reason
    assert (tmp_path / "s" / "m2" / "wrong.yaml").exists()


async def test_replay_latency_is_each_attempts_recorded_duration(tmp_path: Path) -> None:
    count = iter(range(100))
    server = Server(lambda body: f"answer {next(count)}")
    s = suite(Case(id="c", prompt="q"), repeats=3)
    await run(s, tmp_path, "record", server)
    path = tmp_path / "s" / "m1" / "c.yaml"
    interactions = load_interactions(path)
    assert len(interactions) == 3  # one cassette holds every repeat
    for n, interaction in enumerate(interactions):
        interaction.duration = 0.5 + n
    path.write_text(dump_interactions(interactions)[1], encoding="utf-8")
    (result,) = await run(s, tmp_path, concurrency=3)
    by_reply = {a.reply: a.latency for a in result.attempts}
    assert by_reply == {"answer 0": 0.5, "answer 1": 1.5, "answer 2": 2.5}
    assert result.latency == pytest.approx(1.5)


async def test_live_latency_is_the_wall_time(tmp_path: Path) -> None:
    ticks = iter([10.0, 12.5])
    s = suite(Case(id="c", prompt="q"))
    (result,) = await run(s, tmp_path, "live", Server(lambda body: "hi"), clock=lambda: next(ticks))
    assert result.latency == 2.5
    assert not (tmp_path / "s").exists()  # live writes no cassette


async def test_repeats_pass_rate_flaky_and_threshold(tmp_path: Path) -> None:
    replies = iter(["yes", "no", "yes", "yes"])
    server = Server(lambda body: next(replies))
    case = Case(id="c", prompt="q", graders=[graders.equals("yes")])
    s = suite(case, repeats=4, pass_threshold=0.75)
    await run(s, tmp_path, "record", server, concurrency=1)
    (result,) = await run(s, tmp_path, concurrency=1)  # one at a time: the recorded order
    assert [a.reply for a in result.attempts] == ["yes", "no", "yes", "yes"]
    assert result.repeats == 4 and result.pass_rate == 0.75 and result.passed
    assert result.flaky and result.status == "flaky"
    assert result.pass_at_k == 1.0 and result.pass_hat_k == 0.0
    assert result.score_mean == 0.75 and result.score_stdev == pytest.approx(0.4330127)
    assert result.usage.prompt_tokens == 40  # summed over the 4 attempts
    strict = suite(case, repeats=4)
    (again,) = await run(strict, tmp_path, concurrency=4)
    assert not again.passed and sorted(a.reply for a in again.attempts) == [
        "no",
        "yes",
        "yes",
        "yes",
    ]


async def test_multi_turn_keeps_every_turn_and_grades_the_last(tmp_path: Path) -> None:
    def answer(body: dict[str, Any]) -> str:
        return f"turn {len([m for m in body['messages'] if m['role'] == 'user'])}"

    server = Server(answer)
    seen: list[GradeContext] = []

    def spy(ctx: GradeContext) -> bool:
        seen.append(ctx)
        return ctx.reply == "turn 3"

    s = suite(Case(id="chat", prompt=["a", "b", "c"], system="sys", graders=[spy]))
    (result,) = await run(s, tmp_path, "record", server)
    assert result.passed and result.reply == "turn 3"
    assert result.attempts[0].turns == ["turn 1", "turn 2", "turn 3"]
    assert [m["content"] for m in server.bodies[2]["messages"]] == [
        "sys",
        "a",
        "turn 1",
        "b",
        "turn 2",
        "c",
    ]
    assert result.usage.prompt_tokens == 30  # three requests
    assert seen[0].messages[-1] == {"role": "user", "content": "c"}
    assert seen[0].response is not None and seen[0].response.text == "turn 3"
    (replayed,) = await run(s, tmp_path)
    assert replayed.attempts[0].turns == ["turn 1", "turn 2", "turn 3"]


async def test_messages_case_sends_them_as_given(tmp_path: Path) -> None:
    server = Server(lambda body: "ok")
    messages = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "u2"},
    ]
    s = suite(Case(id="m", messages=messages))
    (result,) = await run(s, tmp_path, "record", server)
    assert server.bodies[0]["messages"] == messages
    assert result.passed and result.attempts[0].grades == []  # no graders: the call answered
    assert result.prompt == messages


async def test_params_override_the_model_config(tmp_path: Path) -> None:
    server = Server(lambda body: "ok")
    s = suite(
        Case(id="c", prompt="q", params={"max_token": 7}),
        params={"temperature": 0.5, "max_token": 99},
    )
    await run(s, tmp_path, "record", server)
    assert server.bodies[0]["max_tokens"] == 7 and server.bodies[0]["temperature"] == 0.5


async def test_bad_configuration_raises_before_any_call(tmp_path: Path) -> None:
    server = Server(lambda body: "ok")
    s = suite(Case(id="c", prompt="q"), models=("m1", "nope"))
    with pytest.raises(ConfigError, match="no model named 'nope'"):
        await run(s, tmp_path, "record", server)
    config = ModelsConfig(models=models())
    items = plan_items([suite(Case(id="c", prompt="q"), models=("m3",))])
    with pytest.raises(ConfigError, match="no model named 'm3'"):
        await run_items(items, config, cassette_dir=tmp_path)
    assert server.bodies == []


async def test_judge_calls_go_on_the_case_cassette_and_are_billed_apart(tmp_path: Path) -> None:
    def answer(body: dict[str, Any]) -> dict[str, Any]:
        if body["model"] == "judge-model":
            assert "RUBRIC:\nMentions Paris." in last_user(body)
            assert body["temperature"] == 0.0
            return completion("REASON: it does\nVERDICT: PASS", 100, 10)
        return completion("Paris", 10, 5)

    server = Server(answer)
    judge = graders.llm_judge("Mentions Paris.", votes=3)
    s = suite(Case(id="c", prompt="Capital?", graders=[judge]), params={"temperature": 0.7})
    (result,) = await run(s, tmp_path, "record", server)
    assert result.passed and result.grades[0].reason == "3/3 PASS: it does"
    assert result.usage.prompt_tokens == 10  # the model's call only
    assert result.judge_usage.prompt_tokens == 300 and result.judged
    assert result.judge_cost == Decimal(3 * (100 * 10 + 10 * 10)) / 1_000_000
    assert len(load_interactions(tmp_path / "s" / "m1" / "c.yaml")) == 4
    data = result.to_json()
    assert data["judge"]["cost"] == str(result.judge_cost)
    # the judge's recorded durations are not the attempt's latency
    path = tmp_path / "s" / "m1" / "c.yaml"
    interactions = load_interactions(path)
    for interaction in interactions:
        judged = b"judge-model" in interaction.request.body
        interaction.duration = 5.0 if judged else 1.25
    path.write_text(dump_interactions(interactions)[1], encoding="utf-8")
    (replayed,) = await run(s, tmp_path)
    assert replayed.passed and replayed.judge_usage.prompt_tokens == 300
    assert replayed.latency == 1.25


async def test_a_changed_case_fails_with_the_rerecord_command(tmp_path: Path) -> None:
    server = Server(lambda body: "ok")
    await run(suite(Case(id="c", prompt="old")), tmp_path, "record", server)
    s = Suite(
        name="s",
        cases=(Case(id="c", prompt="new"), Case(id="d", prompt="never")),
        models=("m1",),
        path=tmp_path / "qa.suite.yaml",
    )
    changed, missing = await run(s, tmp_path)
    assert not changed.passed and changed.attempts[0].reply == ""
    assert "c[m1]: the case changed since it was recorded" in changed.error
    assert f"pytest {tmp_path / 'qa.suite.yaml'} --llm-mode=record -k 'c[m1]'" in changed.error
    assert "closest recorded requests" in changed.error
    assert "--llm-mode=rewrite" not in changed.error  # one command, ours
    assert missing.error == (
        f"d[m1] has no recorded cassette ({tmp_path / 's' / 'm1' / 'd.yaml'}); record it with: "
        f"pytest {tmp_path / 'qa.suite.yaml'} --llm-mode=record -k 'd[m1]'"
    )
    more = Suite(name="s", cases=(Case(id="c", prompt="old"),), models=("m1",), repeats=2)
    (short,) = await run(more, tmp_path)
    assert short.attempts[0].passed and not short.attempts[1].passed
    assert "holds fewer answers to this request than the run asks for" in short.error
    custom = await run(s, tmp_path, rerecord=lambda item: f"harness eval run --record {item.id}")
    assert "harness eval run --record c[m1]" in custom[0].error


async def test_provider_errors_and_grader_errors_do_not_crash_the_run(tmp_path: Path) -> None:
    def answer(body: dict[str, Any]) -> str:
        if last_user(body) == "fail":
            raise httpx2.ConnectError("refused")
        return "fine"

    def broken(text: str) -> bool:
        raise ZeroDivisionError("division by zero in grader")

    s = suite(
        Case(id="a", prompt="fail"),
        Case(id="b", prompt="ok", graders=[broken]),
        Case(id="c", prompt="ok", graders=[graders.contains("fine")]),
    )
    a, b, c = await run(s, tmp_path, "live", Server(answer))
    assert not a.passed and "APIConnectionError" in a.error
    assert not b.passed and b.error is None
    assert "grader raised ZeroDivisionError: division by zero in grader" in b.grades[0].reason
    assert c.passed


async def test_on_result_sees_each_item_and_results_keep_plan_order(tmp_path: Path) -> None:
    seen: list[str] = []
    s = suite(*(Case(id=f"c{i}", prompt=str(i)) for i in range(6)), models=("m1", "m2"))
    results = await run(
        s,
        tmp_path,
        "live",
        Server(lambda body: last_user(body)),
        on_result=lambda r: seen.append(r.id),
        concurrency=3,
    )
    assert [r.id for r in results] == [i.id for i in plan_items([s])]
    assert sorted(seen) == sorted(r.id for r in results)
    assert [r.reply for r in results] == [str(i // 2) for i in range(12)]


class Gate:
    """An injected ``sleep`` for FakeLLM: counts calls in flight and holds them until opened."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.max_in_flight = 0
        self.started = 0
        self.done = 0
        self.cancelled = 0
        self.opened = asyncio.Event()
        self.reached = asyncio.Event()
        self.target = 0

    async def sleep(self, seconds: float) -> None:
        self.started += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.in_flight >= self.target:
            self.reached.set()
        try:
            await self.opened.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.in_flight -= 1
        self.done += 1

    def make_llm(self, config: LLMConfig, transport: Any, costs: Any) -> FakeLLM:
        return FakeLLM(lambda messages: "ok", latency=1.0, sleep=self.sleep, cost_manager=costs)


async def run_gated(gate: Gate, s: Suite, tmp_path: Path, concurrency: int) -> Any:
    return asyncio.create_task(
        run_items(
            plan_items([s]),
            models(),
            mode="live",
            cassette_dir=tmp_path,
            concurrency=concurrency,
            make_llm=gate.make_llm,
        )
    )


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_concurrency_limits_calls_in_flight(tmp_path: Path, concurrency: int) -> None:
    gate = Gate()
    gate.target = concurrency
    s = suite(*(Case(id=f"c{i}", prompt=str(i)) for i in range(5)), models=("m1", "m2"))
    task = await run_gated(gate, s, tmp_path, concurrency)
    await asyncio.wait_for(gate.reached.wait(), timeout=10)
    for _ in range(200):  # let every runnable task run (no threads here): none may enter
        await asyncio.sleep(0)
    assert gate.in_flight == gate.started == concurrency and gate.done == 0
    gate.opened.set()
    results = await asyncio.wait_for(task, timeout=10)
    assert gate.started == 10 and gate.max_in_flight == concurrency
    assert [r.reply for r in results] == ["ok"] * 10 and all(r.passed for r in results)


async def test_every_call_is_in_flight_before_any_completes(tmp_path: Path) -> None:
    # 4 cases x 2 models x 2 repeats = 16 calls, all held at once under concurrency 16
    gate = Gate()
    gate.target = 16
    s = suite(*(Case(id=f"c{i}", prompt=str(i)) for i in range(4)), models=("m1", "m2"), repeats=2)
    task = await run_gated(gate, s, tmp_path, 16)
    await asyncio.wait_for(gate.reached.wait(), timeout=10)
    assert gate.in_flight == 16 and gate.done == 0
    gate.opened.set()
    results = await asyncio.wait_for(task, timeout=10)
    assert [r.repeats for r in results] == [2] * 8


async def test_http_calls_run_concurrently_through_the_transport(tmp_path: Path) -> None:
    # the same through real providers on ReplayTransport(live) -> MockTransport
    in_flight, seen_max = 0, 0
    opened = asyncio.Event()

    async def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal in_flight, seen_max
        in_flight += 1
        seen_max = max(seen_max, in_flight)
        if in_flight == 6:
            opened.set()
        await opened.wait()
        in_flight -= 1
        return httpx2.Response(200, json=completion("ok"))

    s = suite(*(Case(id=f"c{i}", prompt=str(i)) for i in range(3)), models=("m1", "m2"))
    results = await asyncio.wait_for(
        run_items(
            plan_items([s]),
            models(),
            mode="live",
            cassette_dir=tmp_path,
            concurrency=8,
            upstream=httpx2.MockTransport(handler),
        ),
        timeout=10,
    )
    assert seen_max == 6 and all(r.passed for r in results)


async def test_run_suite_applies_the_baseline(tmp_path: Path) -> None:
    from harness.evals import Baseline
    from harness.evals.baseline import BaselineEntry

    server = Server(lambda body: "yes")
    s = suite(
        Case(id="a", prompt="1", graders=[graders.equals("no")]),
        Case(id="b", prompt="2", graders=[graders.equals("yes")]),
        Case(id="c", prompt="3", graders=[graders.equals("no")]),
    )
    baseline = Baseline(
        {"s::a[m1]": BaselineEntry(True, 1.0), "s::b[m1]": BaselineEntry(False, 0.0)}
    )
    result = await run_suite(
        s,
        models(),
        mode="live",
        cassette_dir=tmp_path,
        baseline=baseline,
        upstream=server.transport,
    )
    a, b, c = result.items
    assert (a.status, b.status, c.status) == ("regression", "improvement", "known_failure")
    assert c.new and not a.new and a.baseline == {"passed": True, "score": 1.0}
    assert result.to_json()["totals"]["regressions"] == 1


async def test_grade_context_carries_usage_cost_latency_and_attempt(tmp_path: Path) -> None:
    seen: list[GradeContext] = []

    def spy(ctx: GradeContext) -> Grade:
        seen.append(ctx)
        return Grade(True, 0.5, "half")

    s = suite(Case(id="c", prompt="q", graders=[spy, graders.max_cost("0.001")]), repeats=2)
    (result,) = await run(s, tmp_path, "live", Server(lambda body: "r"), concurrency=1)
    assert sorted(c.attempt for c in seen) == [0, 1]
    assert seen[0].usage.prompt_tokens == 10 and seen[0].cost == Decimal("0.00002")
    assert seen[0].model == "m1" and seen[0].judge is not None
    assert result.score_mean == 0.75 and result.passed


async def test_a_judge_model_missing_from_the_config_fails_before_any_call(
    tmp_path: Path,
) -> None:
    server = Server(lambda body: "ok")
    judge = graders.not_(graders.llm_judge("Is polite.", model="critic"))
    s = suite(Case(id="c", prompt="q", graders=[judge]))
    with pytest.raises(
        ConfigError, match=r"s::c\[m1\]: grader not\(llm_judge.*needs model 'critic'"
    ):
        await run(s, tmp_path, "live", server)
    assert server.bodies == []


def sse(*texts: str) -> bytes:
    events = [
        {
            "id": "x",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}],
        }
        for t in texts
    ]
    events.append(
        {
            "id": "x",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 11},
        }
    )
    lines = [f"data: {json.dumps(e)}\n\n" for e in events] + ["data: [DONE]\n\n"]
    return "".join(lines).encode()


async def test_stream_param_and_images_reach_the_request_and_replay(tmp_path: Path) -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        bodies.append(json.loads(request.content))
        return httpx2.Response(
            200, content=sse("Pa", "ris"), headers={"content-type": "text/event-stream"}
        )

    image = "https://example.com/eiffel.png"
    s = suite(
        Case(
            id="c",
            prompt="Where is this?",
            images=(image,),
            params={"stream": True},
            graders=[graders.equals("Paris")],
        )
    )
    items = plan_items([s])
    (recorded,) = await run_items(
        items,
        models(),
        mode="record",
        cassette_dir=tmp_path,
        upstream=httpx2.MockTransport(handler),
    )
    assert bodies[0]["stream"] is True
    content = bodies[0]["messages"][-1]["content"]
    assert {"type": "image_url", "image_url": {"url": image}} in content
    (replayed,) = await run_items(items, models(), cassette_dir=tmp_path)
    for result in (recorded, replayed):
        assert result.passed and result.reply == "Paris"
        assert result.usage.prompt_tokens == 8 and result.usage.completion_tokens == 3


async def test_mode_aliases_work_and_an_unknown_mode_fails_first(tmp_path: Path) -> None:
    server = Server(lambda body: "ok")
    s = suite(Case(id="c", prompt="old"))
    await run(s, tmp_path, "new_episodes", server)  # vcrpy's name for record
    assert len(server.bodies) == 1
    (changed,) = await run(suite(Case(id="c", prompt="new")), tmp_path, "none")
    assert "the case changed since it was recorded" in changed.error
    with pytest.raises(ValueError, match="unknown record/replay mode 'replya'"):
        await run(s, tmp_path, "replya")


def test_the_library_does_not_import_pytest() -> None:
    import subprocess
    import sys

    code = (
        "import sys, harness.evals, harness.evals.runner, harness.evals.report; "
        "print('pytest' in sys.modules or '_pytest' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


def test_public_names_are_sorted_and_importable() -> None:
    import harness.evals as evals

    assert evals.__all__ == sorted(evals.__all__, key=lambda n: (not n.isupper(), n))
    for name in evals.__all__:
        assert getattr(evals, name) is not None
    for name in evals.graders.__all__:
        assert getattr(evals.graders, name) is not None
    assert set(evals.graders.GRADERS) >= {
        "equals",
        "contains",
        "regex",
        "starts_with",
        "not",
        "json_valid",
        "json_schema",
        "pydantic_model",
        "numeric_close",
        "length_between",
        "word_count_between",
        "max_cost",
        "max_latency",
        "max_prompt_tokens",
        "llm_judge",
    }


async def test_an_unreadable_cassette_fails_its_item_only(tmp_path: Path) -> None:
    server = Server(lambda body: "ok")
    s = suite(Case(id="a", prompt="1"), Case(id="b", prompt="2"), repeats=2)
    await run(s, tmp_path, "record", server)
    (tmp_path / "s" / "m1" / "a.yaml").write_text("interactions: [oops\n", encoding="utf-8")
    a, b = await run(s, tmp_path)
    assert not a.passed and a.repeats == 2 and "CassetteFormatError" in a.error
    assert str(tmp_path / "s" / "m1" / "a.yaml") in a.error
    assert b.passed


async def test_an_on_result_that_raises_stops_the_run_and_its_other_items(tmp_path: Path) -> None:
    gate = Gate()
    gate.target = 1

    def explode(result: Any) -> None:
        raise RuntimeError("report failed")

    s = suite(Case(id="fast", prompt="1"), Case(id="slow", prompt="2"))
    fast = FakeLLM(["ok"])

    def make_llm(config: LLMConfig, transport: Any, costs: Any) -> FakeLLM:
        return gate.make_llm(config, transport, costs) if config.model == "m2" else fast

    items = [
        plan_items([s])[0],
        plan_items([suite(Case(id="slow", prompt="2"), models=("m2",))])[0],
    ]
    with pytest.raises(RuntimeError, match="report failed"):
        await asyncio.wait_for(
            run_items(
                items,
                models(),
                mode="live",
                cassette_dir=tmp_path,
                on_result=explode,
                make_llm=make_llm,
            ),
            timeout=10,
        )
    assert gate.started == 1 and gate.done == 0
    assert gate.cancelled == 1  # the held call was cancelled, not left running


async def test_live_runs_share_one_connection_pool_to_a_real_server(tmp_path: Path) -> None:
    from tests.replay.conftest import serve_llm

    with serve_llm() as server:
        config = LLMConfig(
            api_type="open_llm",
            base_url=f"{server.base_url}/v1",
            model="m",
            stream=False,
            max_retries=0,
        )
        s = suite(
            *(Case(id=f"c{i}", prompt=f"p{i}") for i in range(4)), models=("local",), repeats=2
        )
        results = await asyncio.wait_for(
            run_items(
                plan_items([s]),
                {"local": config},
                mode="live",
                cassette_dir=tmp_path,
                concurrency=3,
            ),
            timeout=30,
        )
    # every item's cassette closes what it is given: the shared pool must outlive them all
    assert [r.error for r in results] == [None] * 4
    assert [r.reply for r in results] == [f"echo: p{i}" for i in range(4)]
    assert len(server.requests) == 8


async def test_an_upstream_given_is_borrowed_never_closed(tmp_path: Path) -> None:
    closed: list[bool] = []

    class Tracked(httpx2.MockTransport):
        async def aclose(self) -> None:
            closed.append(True)

    s = suite(Case(id="a", prompt="1"), Case(id="b", prompt="2"))
    results = await run_items(
        plan_items([s]),
        models(),
        mode="live",
        cassette_dir=tmp_path,
        upstream=Tracked(Server(lambda body: "ok")),
    )
    assert all(r.passed for r in results) and closed == []
