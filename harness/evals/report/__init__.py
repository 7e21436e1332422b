"""Reports of an eval run, rendered from its "harness.evals/1" results document.

They read the plain JSON dict (``SuiteResult.to_json()``, a ``results.json``, or shards joined
by :func:`harness.evals.compare.merge`), so every report can be made again from a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.evals.report.data import SCHEMA, check_results, compute_totals
from harness.evals.report.html import render_html
from harness.evals.report.markdown import render_markdown
from harness.evals.report.terminal import render_terminal
from harness.replay.cassette import atomic_write

__all__ = [
    "REPORT_FILES",
    "SCHEMA",
    "compute_totals",
    "render_html",
    "render_markdown",
    "render_terminal",
    "write_reports",
]

# write_reports' keys and the file each names
REPORT_FILES: Mapping[str, str] = {
    "json": "results.json",
    "markdown": "summary.md",
    "html": "report.html",
}


def write_reports(data: Mapping[str, Any], directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``results.json``, ``summary.md`` and ``report.html`` into ``directory``, atomically.

    Returns the paths by kind: ``{"json": ..., "markdown": ..., "html": ...}``.
    """
    check_results(data)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        "json": json.dumps(data, indent=2, ensure_ascii=False) + "\n",
        "markdown": render_markdown(data),
        "html": render_html(data),
    }
    paths = {}
    for kind, text in texts.items():
        path = out / REPORT_FILES[kind]
        atomic_write(path, text)  # the mode a plain open gives (0644 under the usual umask)
        paths[kind] = path
    return paths
