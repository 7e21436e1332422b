from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.evals.report import (
    render_html,
    render_markdown,
    render_terminal,
    write_reports,
)
from harness.evals.report.data import check_results, compute_totals, percentile

INJECTION = '<script>document.title="pwned"</script><img src=x onerror="alert(1)">'


def make_item(
    suite: str,
    case: str,
    model: str,
    status: str,
    *,
    prompt: Any = "What is the capital of France? Answer in one word.",
    reply: str = "Paris",
    grades: list[dict[str, Any]] | None = None,
    cost: str | None = "0.000012",
    latency: float = 0.2,
    tokens: tuple[int, int] = (20, 3),
    attempts: list[dict[str, Any]] | None = None,
    baseline: dict[str, Any] | None = None,
    new: bool = False,
    judge: dict[str, Any] | None = None,
    error: str | None = None,
    turns: list[str] | None = None,
    system: str | None = None,
) -> dict[str, Any]:
    """One result in the "harness.evals/1" shape the library writes."""
    passed = status in ("pass", "improvement") or (
        status == "flaky" and attempts is not None and _rate(attempts) >= 0.5
    )
    if grades is None:
        grades = [
            {
                "name": "contains('Paris')",
                "passed": passed,
                "score": 1.0 if passed else 0.0,
                "reason": "found 'Paris'" if passed else f"'Paris' not in {reply!r}",
            }
        ]
    usage = {"prompt_tokens": tokens[0], "completion_tokens": tokens[1]}
    usage["total_tokens"] = sum(tokens)
    if attempts is None:
        attempts = [
            {
                "reply": reply,
                "passed": passed,
                "score": 1.0 if passed else 0.0,
                "grades": grades,
                "usage": usage,
                "cost": cost,
                "latency": latency,
                "error": error,
            }
        ]
    rate = _rate(attempts)
    scores = [a["score"] for a in attempts]
    return {
        "suite": suite,
        "case": case,
        "model": model,
        "id": f"{case}[{model}]",
        "status": status,
        "new": new,
        "passed": passed,
        "score": sum(scores) / len(scores),
        "prompt": prompt,
        "reply": attempts[-1]["reply"],
        "turns": turns if turns is not None else [attempts[-1]["reply"]],
        "grades": attempts[-1]["grades"],
        "usage": usage,
        "cost": cost,
        "latency": sum(a["latency"] for a in attempts) / len(attempts),
        "judge": judge,
        "cassette": f"cassettes/suites/{suite}/{model}/{case}.yaml",
        "error": error,
        "repeats": len(attempts),
        "pass_rate": rate,
        "pass_at_k": 1.0 if rate > 0 else 0.0,
        "pass_hat_k": 1.0 if rate == 1 else 0.0,
        "score_mean": sum(scores) / len(scores),
        "score_stdev": 0.0,
        "flaky": 0 < rate < 1,
        "attempts": attempts,
        "baseline": baseline,
        "tags": ["geo"] if suite == "factual-qa" else [],
        "pass_threshold": 1.0 if len(attempts) == 1 else 0.5,
        "system": system,
        "expected": None,
    }


def _rate(attempts: list[dict[str, Any]]) -> float:
    return sum(1 for a in attempts if a["passed"]) / len(attempts)


def _attempt(reply: str, passed: bool, latency: float, reason: str) -> dict[str, Any]:
    grade = {"name": "llm_judge(rubric)", "passed": passed, "score": float(passed)}
    return {
        "reply": reply,
        "passed": passed,
        "score": float(passed),
        "grades": [{**grade, "reason": reason}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 30, "total_tokens": 70},
        "cost": None,
        "latency": latency,
        "error": None,
    }


def results_document() -> dict[str, Any]:
    """A realistic run: three suites, three models, every status, repeats, an unpriced model."""
    ok = {"passed": True, "score": 1.0}
    bad = {"passed": False, "score": 0.0}
    qa, ins, judged = "factual-qa", "instruction-following", "open-answers"
    smol, anth, gemma = "local-smollm2", "local-smollm2-anthropic", "local-gemma"
    items = [
        make_item(qa, "capital-of-france", smol, "pass", baseline=ok, latency=0.21),
        make_item(qa, "capital-of-france", anth, "pass", baseline=ok, latency=0.25),
        make_item(qa, "capital-of-france", gemma, "pass", cost=None, latency=0.4),
        make_item(
            qa,
            "capital-of-japan",
            smol,
            "regression",
            prompt="What is the capital of Japan? Answer in one word.",
            reply=f"Kyoto {INJECTION}",
            baseline=ok,
            latency=0.3,
        ),
        make_item(qa, "capital-of-japan", anth, "pass", reply="Tokyo", baseline=ok, latency=0.22),
        make_item(
            qa,
            "capital-of-japan",
            gemma,
            "known_failure",
            reply="Osaka",
            cost=None,
            baseline=bad,
            latency=0.5,
        ),
        make_item(
            qa, "largest-planet", smol, "improvement", reply="Jupiter", baseline=bad, latency=0.18
        ),
        make_item(
            qa, "largest-planet", anth, "known_failure", reply="Saturn", new=True, latency=0.2
        ),
        make_item(
            ins,
            "one-word",
            smol,
            "fail",
            prompt=[
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "Name a colour | one word"},
            ],
            reply="The colour is blue.",
            grades=[
                {
                    "name": "word_count_between(1, 1)",
                    "passed": False,
                    "score": 0.0,
                    "reason": "4 words, expected 1..1 | not <b>one</b>",
                },
            ],
            tokens=(31, 6),
            latency=0.9,
        ),
        make_item(
            ins,
            "one-word",
            anth,
            "pass",
            prompt=["Hello", "Name a colour in one word"],
            turns=["Hi there! How can I help?", "Blue"],
            reply="Blue",
            baseline=ok,
            latency=1.4,
            system="Be terse.",
        ),
        make_item(
            judged,
            "explain-recursion",
            smol,
            "flaky",
            prompt="Explain recursion to a child.",
            attempts=[
                _attempt("A thing that uses itself.", True, 0.6, "clear and correct"),
                _attempt("Recursion is recursion.", False, 0.7, "circular explanation"),
                _attempt("Like mirrors facing each other.", True, 0.8, "a good picture"),
            ],
            cost=None,
            tokens=(120, 90),
            baseline=ok,
            judge={"usage": {"prompt_tokens": 300, "completion_tokens": 6}, "cost": "0.000150"},
        ),
        make_item(
            judged,
            "haiku",
            smol,
            "regression",
            prompt="Write a haiku about autumn.",
            attempts=[
                _attempt("Leaves fall", False, 0.5, "not a haiku"),
                _attempt("", False, 0.4, "empty reply"),
            ],
            cost=None,
            tokens=(80, 10),
            baseline=ok,
            judge={"usage": {"prompt_tokens": 200, "completion_tokens": 4}, "cost": None},
        ),
    ]
    return {
        "schema": "harness.evals/1",
        "created": "2026-12-01T22:40:00Z",
        "mode": "replay",
        "items": items,
        "totals": compute_totals(items),
    }


class _Page(HTMLParser):
    """The parts of the report a reader sees: matrix cells, legend, scripts, links, texts."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.suite: str | None = None
        self.cells: dict[tuple[str, str, str], dict[str, str]] = {}
        self.missing: list[str] = []
        self.ids: set[str] = set()
        self.scripts: list[dict[str, str]] = []
        self.script_text: list[str] = []
        self.links: list[tuple[str, dict[str, str]]] = []
        self.legend: list[str] = []
        self.meta: list[dict[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.links.append((tag, a))
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "section" and "data-suite" in a:
            self.suite = a["data-suite"]
        if tag == "td" and "cell" in a.get("class", "").split():
            if a["data-status"] == "missing":
                self.missing.append(self.suite or "")
            else:
                assert self.suite is not None
                self.cells[(self.suite, a["data-case"], a["data-model"])] = a
        if tag == "a" and "data-result" in a and self.stack and self.stack[-1][0] == "td":
            self.stack[-1][1]["link-class"] = a.get("class", "")
        if tag == "span" and "data-status" in a and self.stack and "legend" in str(self.stack):
            self.legend.append(a["data-status"])
        if tag == "script":
            self.scripts.append(a)
        if tag == "meta":
            self.meta.append(a)
        if tag not in ("meta", "input", "br", "img"):
            self.stack.append((tag, a))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            open_tag, _ = self.stack.pop()
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1][0] == "script":
            self.script_text.append(data)
        else:
            self.text.append(data)


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


# ---- totals ----------------------------------------------------------------------------------


def test_totals_sum_tokens_and_exact_decimal_cost_and_count_unpriced_items() -> None:
    data = results_document()
    totals = compute_totals(data["items"])
    assert totals["items"] == 12
    assert totals["passed"] == 7  # 5 pass, 1 improvement, the flaky one above its threshold
    assert totals["failed"] == 5
    assert (totals["regressions"], totals["improvements"], totals["known_failures"]) == (2, 1, 2)
    assert totals["new"] == 1
    assert totals["errors"] == 0
    assert totals["flaky"] == 1
    assert totals["prompt_tokens"] == 20 * 9 + 31 + 120 + 80
    assert totals["completion_tokens"] == 3 * 9 + 6 + 90 + 10
    # 8 priced items at 0.000012 (the gemma ones and the judged suite are unpriced)
    assert Decimal(totals["cost"]) == Decimal("0.000012") * 8
    assert totals["unpriced"] == 4
    assert totals["judged"] == 2
    assert Decimal(totals["judge_cost"]) == Decimal("0.000150")
    assert totals["judge_unpriced"] == 1
    assert (totals["judge_prompt_tokens"], totals["judge_completion_tokens"]) == (500, 10)


def test_latency_percentiles_are_over_every_attempt() -> None:
    data = results_document()
    latencies = [0.21, 0.25, 0.4, 0.3, 0.22, 0.5, 0.18, 0.2, 0.9, 1.4, 0.6, 0.7, 0.8, 0.5, 0.4]
    totals = compute_totals(data["items"])
    assert totals["latency_p50"] == pytest.approx(percentile(latencies, 50))
    assert totals["latency_p50"] == pytest.approx(0.4)
    assert totals["latency_p95"] == pytest.approx(percentile(latencies, 95))
    assert 0.9 < totals["latency_p95"] < 1.4


def test_percentile_interpolates_and_is_none_when_empty() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([4.0, 1.0, 3.0, 2.0], 100) == 4.0


def test_cost_is_none_only_when_every_item_is_unpriced() -> None:
    items = [
        make_item("s", "a", "m", "pass", cost=None),
        make_item("s", "b", "m", "pass", cost=None),
    ]
    assert compute_totals(items)["cost"] is None
    assert compute_totals(items)["judge_cost"] == "0"  # no judge calls: nothing to price
    empty = compute_totals([])
    assert (empty["items"], empty["cost"], empty["latency_p50"], empty["pass_rate"]) == (
        0,
        "0",
        None,
        None,
    )


# ---- terminal --------------------------------------------------------------------------------


def _row(text: str, suite: str, model: str) -> list[str]:
    for line in text.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells[:2] == [suite, model]:
            return cells
    raise AssertionError(f"no row for {suite} x {model} in:\n{text}")


def test_terminal_has_a_row_per_suite_and_model_and_the_closing_line() -> None:
    text = render_terminal(results_document())
    lines = text.splitlines()
    assert lines[-1] == "2 regressions, 1 improvements, 2 known failures vs baseline"
    header = re.split(r"\s{2,}", lines[0].strip())
    assert header[:4] == ["suite", "model", "pass rate", "mean score"]
    assert "judge cost" in header and "p95" in header
    smol = dict(zip(header, _row(text, "factual-qa", "local-smollm2"), strict=True))
    assert smol["pass rate"] == "2/3 (67%)"
    assert (smol["regressions"], smol["improvements"], smol["known failures"]) == ("1", "1", "0")
    assert (smol["tokens in"], smol["tokens out"]) == ("60", "9")
    assert smol["cost (USD)"] == "$0.000036"
    assert smol["p50"] == "210 ms"
    gemma = dict(zip(header, _row(text, "factual-qa", "local-gemma"), strict=True))
    assert gemma["cost (USD)"] == "n/a"  # unpriced, never a silent $0
    judged = dict(zip(header, _row(text, "open-answers", "local-smollm2"), strict=True))
    assert judged["judge cost"] == "$0.000150 (+1 unpriced)"
    assert judged["flaky"] == "1"
    total = re.split(r"\s{2,}", next(x for x in lines if x.startswith("total ")))
    assert total[:3] == ["total", "7/12 (58%)", "0.56"]
    assert total[-4:] == ["$0.000096 (+4 unpriced)", "$0.000150 (+1 unpriced)", "400 ms", "1.05 s"]


def test_terminal_lists_regressions_with_their_reason() -> None:
    text = render_terminal(results_document())
    block = text[text.index("regressions (2):") :]
    assert "factual-qa::capital-of-japan[local-smollm2]: contains('Paris'): 'Paris' not in" in block
    assert "open-answers::haiku[local-smollm2]: passed 0 of 2 attempts; llm_judge(rubric)" in block
    assert (
        "failures (1):\n  instruction-following::one-word[local-smollm2]: "
        "word_count_between(1, 1): 4 words, expected 1..1 | not <b>one</b>\n"
    ) in text
    assert "improvements (1):\n  factual-qa::largest-planet[local-smollm2]" in text
    assert "open-answers::explain-recursion[local-smollm2]: passed 2 of 3 attempts" in text


def test_terminal_of_an_empty_run_still_closes_with_the_line() -> None:
    data = {"schema": "harness.evals/1", "items": []}
    assert render_terminal(data).splitlines()[-1] == (
        "0 regressions, 0 improvements, 0 known failures vs baseline"
    )


# ---- markdown --------------------------------------------------------------------------------


def test_markdown_puts_regressions_first_and_folds_known_failures() -> None:
    text = render_markdown(results_document())
    regressions = text.index("### Regressions (2)")
    failures = text.index("### Failures (1)")  # no baseline entry decided these
    improvements = text.index("### Improvements (1)")
    known = text.index("<details><summary>Known failures (2, 1 new)</summary>")
    assert regressions < failures < improvements < known
    folded = text[known : text.index("</details>", known)]
    assert "**factual-qa::largest-planet\\[local-smollm2-anthropic\\]** (new)" in folded
    assert "**factual-qa::capital-of-japan\\[local-gemma\\]**" in folded
    assert "**2 regressions, 1 improvements, 2 known failures vs baseline**" in text
    assert text.splitlines()[0] == "## ❌ harness evals: 7/12 (58%) passed"
    # the regression shows why and what the baseline said
    line = next(x for x in text.splitlines() if "capital-of-japan" in x and "local-smollm2" in x)
    assert "not in" in line and "(baseline: passed, score 1.00 → 0.00)" in line
    assert (
        "| factual-qa | local-smollm2 | 2/3 (67%) | 0.67 | **1** | 1 | 0 | 0 | $0.000036 |" in text
    )
    assert "**Totals:** 12 results · tokens 411 in / 133 out" in text


def test_markdown_escapes_html_and_table_breaking_text() -> None:
    text = render_markdown(results_document())
    assert "<script>" not in text and "<img" not in text and "<b>" not in text
    assert "&lt;script&gt;" in text
    reason_line = next(x for x in text.splitlines() if "one-word" in x)
    assert "4 words, expected 1..1 \\| not &lt;b&gt;one&lt;/b&gt;" in reason_line
    assert "\n\n" not in reason_line


def test_markdown_without_regressions_says_so() -> None:
    data = results_document()
    data["items"] = [i for i in data["items"] if i["status"] != "regression"]
    text = render_markdown(data)
    assert text.startswith("## ✅ ")
    assert "### Regressions" not in text
    assert "0 regressions" in text


# ---- HTML ------------------------------------------------------------------------------------


def test_html_matrix_has_a_cell_per_case_and_model_coloured_by_status() -> None:
    data = results_document()
    page = _parse(render_html(data))
    expected = {(i["suite"], i["case"], i["model"]): i["status"] for i in data["items"]}
    assert {key: cell["data-status"] for key, cell in page.cells.items()} == expected
    for key, cell in page.cells.items():  # the colour comes from the status class
        assert cell["link-class"].split() == [f"st-{expected[key]}"]
    # largest-planet was not run on gemma: an empty cell, not a missing column
    assert page.missing == ["factual-qa"]


def test_html_legend_names_every_status() -> None:
    page = _parse(render_html(results_document()))
    assert sorted(page.legend) == sorted(
        ["pass", "fail", "regression", "known_failure", "improvement", "flaky"]
    )


def test_html_cells_open_the_prompt_reply_grades_and_attempts() -> None:
    data = results_document()
    page = render_html(data)
    parsed = _parse(page)
    anchors = [a for tag, a in parsed.links if tag == "a" and "data-result" in a]
    assert len(anchors) == len(data["items"])
    for anchor in anchors:
        assert anchor["href"] == "#" + anchor["data-result"]
        assert anchor["data-result"] in parsed.ids
    # the flaky case's result lists its three attempts with their judge reasons
    index = next(n for n, i in enumerate(data["items"]) if i["case"] == "explain-recursion")
    start = page.index(f'id="r-{index}"')
    body = page[start : page.index("</details>", start)]
    assert "Attempts (3)" in body and body.count("<li>") == 3
    for reason in ("clear and correct", "circular explanation", "a good picture"):
        assert reason in body
    assert "Explain recursion to a child." in body
    assert "2 of 3 attempts" in body
    assert "pass@k" in body and "$0.000150" in body
    # a conversation prompt shows its roles
    index = next(n for n, i in enumerate(data["items"]) if i["case"] == "one-word")
    start = page.index(f'id="r-{index}"')
    body = page[start : page.index("</details>", start)]
    assert '<div class="role">system</div><pre>Be terse.</pre>' in body
    assert "word_count_between(1, 1)" in body
    # a multi-turn case shows each turn's prompt and the replies before the graded one
    index = next(
        n for n, i in enumerate(data["items"]) if i["id"] == "one-word[local-smollm2-anthropic]"
    )
    start = page.index(f'id="r-{index}"')
    body = page[start : page.index("</details>", start)]
    assert re.findall(r'<div class="role">([^<]*)</div><pre>([^<]*)</pre>', body) == [
        ("system", "Be terse."),
        ("turn 1 · user", "Hello"),
        ("turn 1 · reply", "Hi there! How can I help?"),
        ("turn 2 · user", "Name a colour in one word"),
    ]
    assert "<h4>Reply</h4><pre>Blue</pre>" in body
    assert (
        '<dd class="mono">cassettes/suites/instruction-following/local-smollm2-anthropic/' in body
    )


def test_html_escapes_model_text_so_a_reply_cannot_run_script() -> None:
    page = render_html(results_document())
    parsed = _parse(page)
    assert len(parsed.scripts) == 1  # the report's own script, nothing from a reply
    assert not any(tag == "img" for tag, _ in parsed.links)
    assert not any(k.startswith("on") for _, attrs in parsed.links for k in attrs)
    assert any(INJECTION in text for text in parsed.text)  # shown as text, verbatim
    assert "&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;" in page


def test_html_has_no_network_assets_and_only_its_own_script_may_run() -> None:
    page = render_html(results_document())
    parsed = _parse(page)
    for tag, attrs in parsed.links:
        for name in ("src", "href", "action", "data", "poster", "srcset"):
            value = attrs.get(name, "")
            assert not re.match(r"\s*(https?:)?//", value), (tag, name, value)
        assert tag not in ("link", "iframe", "object", "embed", "img")
    assert not parsed.scripts[0]  # inline, no src
    assert "@import" not in page and "url(" not in page
    csp = next(
        m["content"] for m in parsed.meta if m.get("http-equiv") == "Content-Security-Policy"
    )
    digest = base64.b64encode(hashlib.sha256("".join(parsed.script_text).encode()).digest())
    assert f"script-src 'sha256-{digest.decode()}'" in csp
    assert "default-src 'none'" in csp


def test_html_shows_totals_for_tokens_cost_judge_cost_and_latency() -> None:
    page = render_html(results_document())
    text = " ".join(" ".join(_parse(page).text).split())
    assert "passed 7/12 58%" in text
    assert "tokens 544 411 in / 133 out judge 510" in text
    assert "cost (USD) $0.000096 judge $0.000150 +1 unpriced 4 results unpriced" in text
    assert "latency p50 400 ms p95 1.05 s" in text
    # per suite x model, as in the terminal
    assert "open-answers local-smollm2 1/2 (50%) 0.33 1 0 0 1 200 / 100 n/a $0.000150" in text


# ---- files -----------------------------------------------------------------------------------


def test_write_reports_writes_three_files_that_round_trip(tmp_path: Path) -> None:
    data = results_document()
    paths = write_reports(data, tmp_path / "out")
    assert {k: p.name for k, p in paths.items()} == {
        "json": "results.json",
        "markdown": "summary.md",
        "html": "report.html",
    }
    assert json.loads(paths["json"].read_text(encoding="utf-8")) == data
    assert paths["markdown"].read_text(encoding="utf-8") == render_markdown(data)
    assert paths["html"].read_text(encoding="utf-8") == render_html(data)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "report.html",
        "results.json",
        "summary.md",
    ]  # no temporary files left behind
    for path in paths.values():
        assert path.stat().st_mode & 0o777 == 0o644  # readable by a CI artifact server


def test_write_reports_refuses_another_schema_and_writes_nothing(tmp_path: Path) -> None:
    data = results_document()
    data["schema"] = "harness.evals/0"
    with pytest.raises(ConfigError, match=r"schema.*'harness.evals/0'.*'harness.evals/1'"):
        write_reports(data, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda d: d.pop("items"), "items"),
        (lambda d: d["items"][3].pop("model"), "items[3].model"),
        (lambda d: d["items"][1].update(status="passed"), "items[1].status"),
    ],
)
def test_check_results_names_the_source_and_the_key(mutate: Any, key: str) -> None:
    data = copy.deepcopy(results_document())
    mutate(data)
    with pytest.raises(ConfigError) as caught:
        check_results(data, "shard-2.json")
    assert caught.value.source == "shard-2.json"
    assert caught.value.key == key


def test_html_links_each_suite_to_its_matrix_and_marks_rows_that_all_pass() -> None:
    page = render_html(results_document())
    parsed = _parse(page)
    links = [
        a["href"] for tag, a in parsed.links if tag == "a" and a.get("href", "").startswith("#s-")
    ]
    sections = [
        (a["id"], a["data-suite"])
        for tag, a in parsed.links
        if tag == "section" and "data-suite" in a
    ]
    assert sections == [
        ("s-1", "factual-qa"),
        ("s-2", "instruction-following"),
        ("s-3", "open-answers"),
    ]
    assert links == ["#s-1", "#s-2", "#s-3"]
    rows = re.findall(r'<tr class="([a-z-]+)"><th scope="row"[^>]*>([^<]+)</th>', page)
    assert rows == [
        ("all-pass", "capital-of-france"),
        ("has-problem", "capital-of-japan"),
        ("has-problem", "largest-planet"),
        ("has-problem", "one-word"),
        ("has-problem", "explain-recursion"),
        ("has-problem", "haiku"),
    ]


def test_tiny_costs_stay_fixed_point_and_are_not_shown_as_free() -> None:
    items = [make_item("s", "a", "m", "pass", cost="0.0000001")]
    totals = compute_totals(items)
    assert totals["cost"] == "0.0000001"  # not "1E-7"
    assert "<$0.000001" in render_terminal({"schema": "harness.evals/1", "items": items})


def test_html_shows_image_parts_without_their_data_and_odd_values_safely() -> None:
    data = results_document()
    data["items"] = [
        make_item(
            "vision",
            "describe",
            "local-smollm2",
            "pass",
            prompt=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this picture?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64," + "A" * 5000},
                        },
                        {"type": "image", "source": {"type": "base64", "data": "B" * 5000}},
                        {"type": "image_url", "image_url": {"url": "file:///pics/cat.png"}},
                    ],
                },
                {"role": "assistant", "content": None},
            ],
        )
    ]
    data["items"][0].update(usage={"prompt_tokens": None}, expected=0)
    page = render_html(data)
    assert "AAAA" not in page and "BBBB" not in page
    assert page.count("[image: data omitted]") == 2
    assert "[image: file:///pics/cat.png]" in page  # text, not a link
    assert "? in / ? out" in page
    assert "<h4>Expected</h4><pre>0</pre>" in page


def test_renderers_refuse_an_unknown_status_naming_it() -> None:
    data = results_document()
    data["items"][2]["status"] = "xfail"
    for render in (render_html, render_markdown, render_terminal):
        with pytest.raises(ConfigError, match=r"items\[2\]\.status.*'xfail'"):
            render(data)


def test_a_regression_that_sometimes_passes_is_tagged_flaky_in_its_cell() -> None:
    data = results_document()
    haiku = next(i for i in data["items"] if i["case"] == "haiku")
    haiku["attempts"][0].update(passed=True, score=1.0)
    haiku["flaky"] = True  # 1 of 2 passed, under a threshold of 1.0: still a regression
    page = render_html(data)
    cell = re.search(r'data-case="haiku"[^>]*><a class="st-regression"[^>]*>(.*?)</a>', page)
    assert cell is not None
    assert cell.group(1) == ('<span>▼</span><span>1/2</span> <span class="tag">flaky</span>')


def test_a_huge_run_still_fits_in_one_pull_request_comment() -> None:
    reason = "x" * 400
    items = [
        make_item(f"suite-{n % 7}", f"case-{n}", "local-smollm2", "regression", reply=reason)
        for n in range(2000)
    ]
    text = render_markdown({"schema": "harness.evals/1", "items": items})
    assert len(text) <= 65_536
    assert "### Regressions (2000)" in text
    assert "- … and " in text and "more (see report.html)" in text
    assert text.rstrip().splitlines()[-1].startswith("**Totals:** 2000 results")


def test_an_empty_run_renders_everywhere() -> None:
    data = {"schema": "harness.evals/1", "items": []}
    page = _parse(render_html(data))
    assert page.cells == {} and len(page.scripts) == 1
    assert "no regressions" in " ".join(page.text)
    assert render_markdown(data).startswith("## ✅ harness evals: no results\n")


def test_a_call_that_failed_with_no_answer_is_neither_unpriced_nor_a_zero_latency() -> None:
    missed = make_item("s", "missing", "m", "known_failure", cost=None, latency=0.0)
    missed.update(usage=None, error="no recorded cassette (cassettes/suites/s/m/missing.yaml)")
    missed["attempts"][0].update(usage=None, error=missed["error"])
    answered = make_item("s", "ok", "m", "pass", cost="0.000010", latency=0.3)
    totals = compute_totals([missed, answered])
    assert (totals["cost"], totals["unpriced"], totals["errors"]) == ("0.000010", 0, 1)
    assert totals["latency_p50"] == totals["latency_p95"] == 0.3
    assert compute_totals([missed])["cost"] == "0"
    unpriced_answer = make_item("s", "local", "m", "pass", cost=None)
    assert compute_totals([missed, unpriced_answer])["cost"] is None


def test_html_counts_passes_per_tag_in_each_suite() -> None:
    page = render_html(results_document())
    qa = page[page.index('data-suite="factual-qa"') : page.index('data-suite="instruction')]
    stats = re.findall(r'<span class="tag-stat"><span>([^<]+)</span><b>([^<]+)</b>', qa)
    assert stats == [("geo", "5/8")]  # every factual-qa case is tagged geo; 5 of 8 pass
    assert '<th scope="row" title="tags: geo">capital-of-france</th>' in qa
    ins = page[page.index('data-suite="instruction') :]
    assert 'class="tag-stat"' not in ins.split("</section>")[0]  # no tags, no block
