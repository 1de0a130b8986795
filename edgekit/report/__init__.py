"""Deploy reports: the report.json contract (schema.py) and what is rendered from it — report.md,
a self-contained report.html, a Chrome/Perfetto trace.json — plus the several-runs comparison.

    from edgekit.report import validate, write_report
    validate(report)                     # InputError naming the bad field
    write_report(report, run_dir)        # the four files, all or none

Everything here is standard library only, so `edgekit report` runs where torch is not installed.
"""
from __future__ import annotations

from edgekit.report.schema import SCHEMA, load_report, validate
from edgekit.report.write import rerender, write_compare, write_report

__all__ = ["SCHEMA", "load_report", "rerender", "validate", "write_compare", "write_report"]
