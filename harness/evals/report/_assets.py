"""The HTML report's inline style sheet and script (no network assets: system fonts only)."""

from __future__ import annotations

__all__ = ["SCRIPT", "STYLE"]

STYLE = """
:root {
  --bg: #f6f7f9; --panel: #fff; --ink: #1f2328; --muted: #59636e; --line: #d8dee4;
  --pass-bg: #dcf5e3; --pass-fg: #116329; --pass-bd: #4ac26b;
  --fail-bg: #ffe1de; --fail-fg: #a40e26; --fail-bd: #ff8182;
  --regression-bg: #cf222e; --regression-fg: #fff; --regression-bd: #a40e26;
  --known_failure-bg: #fff1c2; --known_failure-fg: #7d4e00; --known_failure-bd: #d4a72c;
  --improvement-bg: #dbeafe; --improvement-fg: #0b4fb3; --improvement-bd: #54aeff;
  --flaky-bg: #efe2ff; --flaky-fg: #6425b5; --flaky-bd: #c297ff;
  --missing-bg: #eef0f3; --missing-fg: #8c959f; --missing-bd: #d8dee4;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --panel: #161b22; --ink: #e6edf3; --muted: #9198a1; --line: #30363d;
    --pass-bg: #12361f; --pass-fg: #6fdd8b; --pass-bd: #2f8f4e;
    --fail-bg: #4a1619; --fail-fg: #ffa198; --fail-bd: #b62324;
    --regression-bg: #da3633; --regression-fg: #fff; --regression-bd: #ff7b72;
    --known_failure-bg: #3b2c08; --known_failure-fg: #e3b341; --known_failure-bd: #9e6a03;
    --improvement-bg: #0f2d5c; --improvement-fg: #79c0ff; --improvement-bd: #1f6feb;
    --flaky-bg: #301d4f; --flaky-fg: #d2a8ff; --flaky-bd: #8957e5;
    --missing-bg: #21262d; --missing-fg: #6e7681; --missing-bd: #30363d;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
    "Liberation Sans", "DejaVu Sans", "Noto Sans", "Noto Sans CJK SC", sans-serif;
}
main { max-width: 1320px; margin: 0 auto; padding: 20px 28px 48px; }
code, pre, .mono {
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono",
    "DejaVu Sans Mono", monospace; font-size: 12.5px;
}
header.top { display: flex; align-items: baseline; gap: 14px; flex-wrap: wrap; }
header.top h1 { margin: 0; font-size: 22px; letter-spacing: -0.01em; }
header.top .meta { color: var(--muted); }
.verdict { margin-left: auto; padding: 3px 12px; border-radius: 999px; font-weight: 600; }
.verdict.good { background: var(--pass-bg); color: var(--pass-fg); }
.verdict.bad { background: var(--regression-bg); color: var(--regression-fg); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(124px, 1fr)); gap: 10px;
  margin: 16px 0; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 12px; min-width: 0; }
.card .label { color: var(--muted); font-size: 11px; text-transform: uppercase;
  letter-spacing: 0.04em; white-space: nowrap; }
.card .value { font-size: 19px; font-weight: 650; margin-top: 2px; white-space: nowrap; }
.card .sub { color: var(--muted); font-size: 12px; }
.card.regression .value { color: var(--fail-fg); }
.card.improvement .value { color: var(--improvement-fg); }
.card.known_failure .value { color: var(--known_failure-fg); }
.card.flaky .value { color: var(--flaky-fg); }
.bar { display: flex; height: 8px; border-radius: 4px; overflow: hidden; margin-top: 6px;
  background: var(--missing-bg); min-width: 80px; }
.bar span { display: block; height: 100%; }
.bar .st-pass { background: var(--pass-bd); } .bar .st-fail { background: var(--fail-bd); }
.bar .st-regression { background: var(--regression-bg); }
.bar .st-known_failure { background: var(--known_failure-bd); }
.bar .st-improvement { background: var(--improvement-bd); }
.bar .st-flaky { background: var(--flaky-bd); }
nav.contents { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr));
  gap: 8px; margin-bottom: 12px; }
nav.contents a { display: grid; grid-template-columns: 1fr auto; gap: 0 8px; align-items: center;
  background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 7px 12px;
  color: var(--ink); text-decoration: none; }
nav.contents a:hover { border-color: var(--improvement-bd); }
nav.contents .name { font-weight: 600; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
nav.contents .rate { color: var(--muted); font-variant-numeric: tabular-nums; }
nav.contents .bar { grid-column: 1 / -1; margin-top: 5px; height: 6px; }
.legend { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center;
  background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
  padding: 8px 14px; margin-bottom: 18px; }
.legend .item { display: inline-flex; align-items: center; gap: 6px; }
.swatch { display: inline-block; min-width: 26px; text-align: center; border-radius: 4px;
  border: 1px solid; font-weight: 600; padding: 0 4px; }
.legend label { margin-left: auto; color: var(--muted); cursor: pointer; }
.suites { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(600px, 100%), 1fr));
  gap: 0 18px; align-items: start; }
section.suite, section.overview { background: var(--panel); border: 1px solid var(--line);
  border-radius: 10px; padding: 14px 18px 16px; margin-bottom: 18px; }
section h2 { margin: 0 0 10px; font-size: 17px; display: flex; gap: 10px; align-items: baseline;
  flex-wrap: wrap; }
section h2 small { color: var(--muted); font-weight: 400; font-size: 13px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; }
table.stats { width: 100%; }
table.stats th, table.stats td { padding: 5px 8px; border-bottom: 1px solid var(--line);
  text-align: right; white-space: nowrap; font-size: 13px; font-variant-numeric: tabular-nums; }
table.stats thead th { color: var(--muted); font-weight: 600; font-size: 12px;
  white-space: normal; vertical-align: bottom; }
table.stats thead th:first-child, table.stats td:first-child { text-align: left; }
table.stats tr.suite-row th { text-align: left; font-weight: 650; padding-top: 10px;
  border-bottom: 0; }
table.stats tr.suite-row + tr td { border-top: 0; }
table.stats td:first-child { padding-left: 22px; }
table.stats tr.regressed td:nth-child(4) { color: var(--fail-fg); font-weight: 700; }
.note { color: var(--muted); font-size: 11px; font-weight: 400; }
table.matrix { border-spacing: 0; }
table.matrix th, table.matrix td { padding: 3px; }
table.matrix thead th:first-child { text-align: left; }
table.matrix thead th { font-size: 12px; color: var(--muted); font-weight: 600; text-align: center;
  padding: 4px 6px 6px; max-width: 170px; overflow-wrap: anywhere; }
table.matrix tbody th { text-align: left; font-weight: 500; padding-right: 14px;
  max-width: 320px; overflow-wrap: anywhere; }
table.matrix tbody tr:hover th { color: var(--improvement-fg); }
td.cell a, td.cell span.empty { display: flex; justify-content: center; align-items: center;
  gap: 5px; min-width: 118px; height: 30px; border-radius: 6px; border: 1px solid;
  text-decoration: none; font-weight: 600; font-variant-numeric: tabular-nums; }
td.cell a:hover { filter: brightness(0.95); outline: 2px solid var(--ink); outline-offset: 1px; }
.st-pass { background: var(--pass-bg); color: var(--pass-fg); border-color: var(--pass-bd); }
.st-fail { background: var(--fail-bg); color: var(--fail-fg); border-color: var(--fail-bd); }
.st-regression { background: var(--regression-bg); color: var(--regression-fg);
  border-color: var(--regression-bd); }
.st-known_failure { background: var(--known_failure-bg); color: var(--known_failure-fg);
  border-color: var(--known_failure-bd); }
.st-improvement { background: var(--improvement-bg); color: var(--improvement-fg);
  border-color: var(--improvement-bd); }
.st-flaky { background: var(--flaky-bg); color: var(--flaky-fg); border-color: var(--flaky-bd); }
.st-missing, span.empty { background: var(--missing-bg); color: var(--missing-fg);
  border-color: var(--missing-bd); }
.tag { font-size: 10px; font-weight: 700; text-transform: uppercase; letter-spacing: 0.04em;
  border-radius: 3px; padding: 0 3px; border: 1px solid currentColor; opacity: 0.85; }
table.matrix tfoot th { text-align: left; color: var(--muted); font-weight: 500;
  font-size: 12px; vertical-align: top; padding-top: 6px; }
table.matrix tfoot td { font-size: 12px; color: var(--muted); text-align: center;
  padding-top: 6px; white-space: nowrap; }
body:has(#only-problems:checked) tr.all-pass { display: none; }
.by-tag { display: flex; flex-wrap: wrap; gap: 6px 8px; align-items: center; margin-top: 10px;
  font-size: 12px; }
.by-tag .label { color: var(--muted); margin-right: 2px; }
.tag-stat { display: inline-grid; grid-template-columns: auto auto; gap: 0 6px;
  border: 1px solid var(--line); border-radius: 6px; padding: 3px 8px; }
.tag-stat b { font-variant-numeric: tabular-nums; }
.tag-stat .bar { grid-column: 1 / -1; height: 4px; margin-top: 3px; min-width: 60px; }
details.all-results { margin-top: 12px; }
details.all-results > summary { cursor: pointer; color: var(--muted); }
details.result { border: 1px solid var(--line); border-left-width: 4px; border-radius: 6px;
  margin: 6px 0; background: var(--panel); }
details.result > summary { cursor: pointer; padding: 5px 10px; }
details.result[open] > summary { border-bottom: 1px solid var(--line); }
details.result:target { outline: 2px solid var(--improvement-bd); }
.result-body { padding: 10px 14px 14px; }
.result-head { display: flex; gap: 8px; align-items: center; flex-wrap: wrap;
  margin-bottom: 8px; }
.badge { border: 1px solid; border-radius: 999px; padding: 0 9px; font-weight: 600;
  font-size: 12px; }
.result-body h4 { margin: 14px 0 4px; font-size: 12px; text-transform: uppercase;
  letter-spacing: 0.05em; color: var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: var(--bg);
  border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; margin: 0;
  max-height: 340px; overflow: auto; }
pre.error { color: var(--fail-fg); border-color: var(--fail-bd); }
.turn { margin-bottom: 6px; } .turn .role { font-size: 12px; font-weight: 600;
  color: var(--muted); }
table.grades { width: 100%; } table.grades td { padding: 4px 8px; vertical-align: top;
  border-bottom: 1px solid var(--line); }
table.grades td.ok { color: var(--pass-fg); font-weight: 700; width: 1.5em; }
table.grades td.bad { color: var(--fail-fg); font-weight: 700; width: 1.5em; }
table.grades td.mono { white-space: nowrap; }
table.grades td:last-child { width: 100%; }
.muted { color: var(--muted); }
table.grades td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
ol.attempts { padding-left: 22px; } ol.attempts > li { margin-bottom: 10px; }
ol.tool-calls { padding-left: 22px; margin: 6px 0; } ol.tool-calls > li { margin-bottom: 6px; }
dialog#viewer { width: min(920px, 94vw); max-height: 88vh; padding: 0;
  border: 1px solid var(--line);
  border-radius: 10px; background: var(--panel); color: var(--ink);
  box-shadow: 0 12px 40px rgba(0, 0, 0, 0.35); }
dialog#viewer::backdrop { background: rgba(15, 20, 30, 0.45); }
dialog#viewer .viewer-bar { position: sticky; top: 0; display: flex; justify-content: flex-end;
  padding: 6px 8px 0; background: var(--panel); }
dialog#viewer button { border: 1px solid var(--line); background: var(--bg); color: var(--ink);
  border-radius: 6px; padding: 2px 10px; cursor: pointer; }
footer { color: var(--muted); font-size: 12px; text-align: center; margin-top: 24px; }
"""

# Reads the page only (no data in the script): a cell opens its result in a dialog; without
# the script, the cell's link still jumps to the result's <details> below the matrix.
SCRIPT = """
(function () {
  "use strict";
  var viewer = document.getElementById("viewer");
  var body = viewer.querySelector(".viewer-body");
  function setHash(hash) {
    try { history.replaceState(null, "", hash || location.pathname + location.search); }
    catch (error) { /* some file: URLs refuse it; the dialog works without */ }
  }
  function show(id) {
    var source = document.getElementById(id);
    var result = source && source.querySelector(".result-body");
    if (!result || typeof viewer.showModal !== "function") { return false; }
    body.replaceChildren(result.cloneNode(true));
    if (!viewer.open) { viewer.showModal(); }
    viewer.scrollTop = 0;
    return true;
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-result]");
    if (link && show(link.getAttribute("data-result"))) {
      event.preventDefault();
      setHash("#" + link.getAttribute("data-result"));
    }
  });
  viewer.addEventListener("click", function (event) {
    if (event.target === viewer) { viewer.close(); }
  });
  viewer.addEventListener("close", function () { setHash(""); });
  var target = location.hash && document.getElementById(location.hash.slice(1));
  if (target && show(target.id)) {
    // behind the dialog, show the result's cell rather than the list the link points into
    var cell = document.querySelector('a[data-result="' + target.id + '"]');
    window.addEventListener("load", function () {
      if (cell) { cell.scrollIntoView({block: "center"}); }
    });
  } else if (target) {
    for (var node = target; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") { node.open = true; }
    }
  }
  document.documentElement.setAttribute("data-report-ready", "1");
})();
"""
