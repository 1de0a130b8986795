"""The op-profiling tables benchmark_model prints with --enable_op_profiling (LiteRT: --use_profiler).

They come from TensorFlow's stats_calculator: each field is a tab followed by the value right-aligned to a fixed
width, then a tab and the name. Two layouts, told apart by the header:
- old (TF 2.4-2.8, i.MX): `[node type](24) [start] [first] [avg ms] [%] [cdf%] [mem KB] [times called] [Name]`
- new (LiteRT 2025, current xla/tsl): no `[start]` column, and a 40-wide node type.
Node types and names hold spaces and commas (`Fully Connected (NC, PF32) GEMM`,
`[TFLite_Detection_PostProcess, ...:1]:63`) and an over-long node type is not cut, it just pushes the
alignment, so rows are split on tabs, never on spaces. `%` values end in `%`. `times called` is
total_calls / num_runs in integer division, so a node that ran fewer times than there were runs shows 0.

A table is one of `Run Order` (every node, in execution order: the per-layer timings), `Top by Computation
Time` / `Top by Memory Use` (the same rows re-sorted and cut; ignored), or `Summary by node type`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from edgekit.targets.textparse import NUM, to_float

TABLE_TITLE = re.compile(r"^=+ (Run Order|Top by Computation Time|Top by Memory Use|Summary by node type) =+$")
_COLUMNS = {"[node type]": "node_type", "[Node type]": "node_type", "[start]": "start_ms", "[first]": "first_ms",
            "[avg ms]": "avg_ms", "[%]": "percent", "[cdf%]": "cdf_percent", "[mem KB]": "mem_kb",
            "[times called]": "times_called", "[Name]": "name", "[count]": "count", "[avg %]": "percent",
            "[cdf %]": "cdf_percent"}
_TEXT_COLUMNS = {"node_type", "name"}
_COUNT_COLUMNS = {"times_called", "count"}
_NUMBER = re.compile(rf"^({NUM})%?$")


@dataclass
class OpTable:
    """One table as read: its title, its column keys (from the header) and its rows (dicts keyed by column)."""

    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    malformed_rows: int = 0

    @property
    def layout(self) -> str:
        return "with_start" if "start_ms" in self.columns else "without_start"


def header_columns(line: str) -> list[str] | None:
    """Column keys of a header line (`\\t[node type]\\t[start]...`), or None if the line is not a header."""
    if "\t" not in line:
        return None
    cells = [c.strip() for c in line.split("\t")]
    if cells and cells[0] == "":
        cells = cells[1:]
    if not cells or cells[0] not in ("[node type]", "[Node type]"):
        return None
    keys = [_COLUMNS.get(c) for c in cells]
    return None if any(k is None for k in keys) else keys  # type: ignore[return-value]


def add_row(table: OpTable, line: str, lineno: int) -> bool:
    """Append one tab-separated row to `table`; False (and counted as malformed) if the cells do not fit."""
    cells = line.split("\t")
    if cells and cells[0].strip() == "":
        cells = cells[1:]
    if len(cells) > len(table.columns) and table.columns and table.columns[-1] == "name":
        # A tab inside the name: keep it whole rather than dropping the row.
        cells = cells[:len(table.columns) - 1] + ["\t".join(cells[len(table.columns) - 1:])]
    if len(cells) != len(table.columns):
        table.malformed_rows += 1
        return False
    row: dict[str, Any] = {"line": lineno}
    for key, cell in zip(table.columns, cells):
        cell = cell.strip() if key != "name" else cell.strip(" ")
        if key in _TEXT_COLUMNS:
            row[key] = cell
            continue
        m = _NUMBER.match(cell)
        if m is None:
            table.malformed_rows += 1
            return False
        value = to_float(m.group(1), lineno)
        row[key] = int(value) if key in _COUNT_COLUMNS and value.is_integer() else value
    table.rows.append(row)
    return True
