"""Writing a run's report files: validated first, then all of them or none (edgekit.io.commit_all), so a
renderer that fails never leaves a report.json beside a stale or missing report.html."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from edgekit.io import commit_all
from edgekit.report import compare, render_html, render_md, schema, trace

REPORT_JSON, REPORT_MD, REPORT_HTML, TRACE_JSON = "report.json", "report.md", "report.html", "trace.json"
COMPARE_JSON, COMPARE_MD, COMPARE_HTML = "compare.json", "compare.md", "compare.html"


def to_json(data: dict) -> str:
    # allow_nan=False: NaN / Infinity are not JSON, and browsers' JSON.parse rejects them.
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _writer(render: Callable[[], str]) -> Callable[[Path], None]:
    """Render inside the write step, so a renderer error aborts the whole commit."""
    return lambda tmp: tmp.write_text(render(), encoding="utf-8")


def _commit(out_dir: Path, renders: dict[str, Callable[[], str]]) -> list[Path]:
    out_dir = Path(out_dir)
    files = {out_dir / name: _writer(render) for name, render in renders.items()}
    commit_all(files)
    return list(files)


def write_report(report: dict, run_dir: Path) -> list[Path]:
    """Validate `report` and write report.json, report.md, report.html and trace.json into `run_dir`:
    either all four appear (replacing older ones) or none changes. Returns the four paths."""
    schema.validate(report)
    return _commit(Path(run_dir), {
        REPORT_JSON: lambda: to_json(report),
        REPORT_MD: lambda: render_md.render_md(report),
        REPORT_HTML: lambda: render_html.render_html(report),
        TRACE_JSON: lambda: to_json(trace.build_trace(report)),
    })


def rerender(report: dict, out_dir: Path, top_n: int = 15, module_depth: int | None = None) -> list[Path]:
    """report.md, report.html and trace.json again (e.g. with another depth) from a stored report."""
    schema.validate(report)
    return _commit(Path(out_dir), {
        REPORT_MD: lambda: render_md.render_md(report, top_n, module_depth),
        REPORT_HTML: lambda: render_html.render_html(report, top_n, module_depth),
        TRACE_JSON: lambda: to_json(trace.build_trace(report)),
    })


def write_compare(runs: list[tuple[str, dict]], out_dir: Path) -> tuple[list[Path], list[dict]]:
    """compare.json, compare.md and compare.html for (label, report) pairs; returns the paths and the rows."""
    for _, report in runs:
        schema.validate(report)
    rows = compare.compare_rows(runs)
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    paths = _commit(Path(out_dir), {
        COMPARE_JSON: lambda: to_json(compare.compare_json(rows) | {"created": created}),
        COMPARE_MD: lambda: compare.render_compare_md(rows),
        COMPARE_HTML: lambda: compare.render_compare_html(rows),
    })
    return paths, rows
