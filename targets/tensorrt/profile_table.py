"""trtexec's `--dumpProfile` text table, in its three layouts.

It starts with `=== Profile (N iterations ) ===` (a space before the parenthesis), then a header that tells the
layout, then one row per layer and a final `Total` row:

| TRT        | header                                                                  | row                          |
|------------|-------------------------------------------------------------------------|------------------------------|
| <= 8.2     | `Layer   Time (ms)   Avg. Time (ms)   Time %` (name right-aligned)      | name, total, avg, %          |
| 8.4 - 8.5  | `Layer   Time (ms)   Avg. Time (ms)   Median Time (ms)   Time %`       | name, total, avg, median, %  |
| >= 8.6     | `Time(ms)   Avg.(ms)   Median(ms)   Time(%)   Layer`                    | total, avg, median, %, name  |

Names contain spaces, `+`, `||`, brackets and braces, so the numbers are taken from the side opposite the name,
by count, and whatever is left (stripped) is the name. From 8.4, rows whose time is 0 are not printed (they are
in --exportProfile JSON). In <= 8.2 a narrow terminal wraps the header (TensorRT#3842): the extra header lines
hold no digits, which is how they are told from rows.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from edgekit.errors import ParseError
from edgekit.targets.textparse import NUM, to_float

PROFILE_START = re.compile(r"^=== Profile \((\d+) iterations ?\) ===$")
_N = rf"({NUM})"
_ROW = {
    "name_first": re.compile(rf"^(?P<name>.*?)\s+{_N}\s+{_N}\s+{_N}$"),
    "name_first_median": re.compile(rf"^(?P<name>.*?)\s+{_N}\s+{_N}\s+{_N}\s+{_N}$"),
    "name_last": re.compile(rf"^{_N}\s+{_N}\s+{_N}\s+{_N}\s+(?P<name>\S.*)$"),
}


@dataclass(frozen=True)
class ProfileRow:
    name: str
    total_ms: float
    avg_ms: float
    median_ms: float | None
    percent: float


@dataclass(frozen=True)
class ProfileTable:
    iterations: int
    layout: str
    rows: tuple[ProfileRow, ...]
    total: ProfileRow | None  # None when the table was cut off before its `Total` row
    header_line: int  # 1-based


def detect_layout(header: str) -> str | None:
    words = header.split()
    if words[:1] == ["Time(ms)"] and words[-1:] == ["Layer"]:
        return "name_last"
    if "Median Time (ms)" in header:
        return "name_first_median"
    if "Avg. Time (ms)" in header and words[:1] == ["Layer"]:
        return "name_first"
    return None


def parse_profile_table(contents: Sequence[str], start: int, iterations: int) -> tuple[ProfileTable, int]:
    """Read the table whose header follows index `start` (the `=== Profile` line) in `contents` (log lines with
    their prefixes removed). Returns the table and the index of the first line after it."""
    i = start + 1
    while i < len(contents) and not contents[i].strip():
        i += 1
    if i >= len(contents):  # the capture stops right after the title: an empty, incomplete table
        return ProfileTable(iterations, "truncated", (), None, start + 1), i
    header = contents[i].strip()
    layout = detect_layout(header)
    if layout is None:
        raise ParseError(f"unrecognised profile header {header[:80]!r}", line=i + 1,
                         hint="expected `Layer  Time (ms)  Avg. Time (ms) ...` or `Time(ms)  Avg.(ms) ... Layer`")
    header_line = i + 1
    i += 1
    # A wrapped header continues on lines without digits (a row always has numbers).
    wrapped = 0
    while wrapped < 2 and i < len(contents) and contents[i].strip() and not re.search(r"\d", contents[i]):
        i += 1
        wrapped += 1
    rows: list[ProfileRow] = []
    total: ProfileRow | None = None
    pattern = _ROW[layout]
    while i < len(contents):
        text = contents[i].strip()
        m = pattern.match(text) if text else None
        if m is None:
            break
        row = _row(m, layout, i + 1)
        i += 1
        if row.name == "Total":
            total = row
            break
        rows.append(row)
    return ProfileTable(iterations, layout, tuple(rows), total, header_line), i


def _row(m: re.Match[str], layout: str, line: int) -> ProfileRow:
    numbers = [to_float(m.group(k), line) for k in range(1, (m.re.groups or 0) + 1)
               if k != m.re.groupindex["name"]]
    name = m.group("name").strip()
    if not name:
        raise ParseError("profile row without a layer name", line=line)
    if layout == "name_first":
        total, avg, pct = numbers
        median = None
    else:
        total, avg, median, pct = numbers
    return ProfileRow(name, total, avg, median, pct)
