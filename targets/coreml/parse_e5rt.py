"""Core ML's E5RT per-op analytics (an undocumented API), as NSLog text or as CSV -> ProfileParse of estimates.

The text form is one NSLog line per op, `... at <bundle>/analytics.mil:107:12, {`, followed by an NSDictionary in
old-style plist syntax (see nsplist.py): `BackendSupport`, `DebugName = "ios17.conv:107:12"`,
`EstimatedRunTime = { ane = "0.0036..."; classic_cpu = "..."; mps_graph = "..."; }` (strings; units are not
stated), `OpIndex`, `OpPath` (its last element names the op's output), `OpType`, `SelectedBackend = "\\"ane\\""`
(a quoted string holding quotes) and `ValidationMessages` (why a backend was refused). Ops are printed out of
order, so they are sorted by OpIndex.

The CSV form carries the same data, one row per op: `DebugName, OpType, SelectedBackend, backend_0..3,
est_time_0..3, invalid_0..3` with a trailing empty column; a refused backend leaves its name and estimate empty
and puts the reason (`Unsupported tensor format: fp32.`) in its `invalid_` column.

Estimates are not measurements: `mean_ms` stays None, `share` is the op's estimate on its selected backend over
the sum of those, and the raw estimates per backend are kept.
"""
from __future__ import annotations

import csv
import re
from typing import Any

from edgekit.errors import ParseError
from edgekit.targets.coreml.nsplist import parse_value
from edgekit.targets.textparse import NUM, split_lines, to_float
from edgekit.targets.timings import LayerTiming, ProfileParse, shares_from_means

BACKEND_DEVICE = {"ane": "ANE", "bnns": "CPU", "classic_cpu": "CPU", "mps_graph": "GPU"}
_ENTRY = re.compile(r" at (?P<path>\S+?):(?P<line>\d+):(?P<col>\d+), \{")
CSV_HEADER = re.compile(r"^\s*DebugName\s*,\s*OpType\s*,\s*SelectedBackend\s*,")


def parse_e5rt_text(text: str) -> ProfileParse:
    """Parse the NSLog'd E5RT analytics dictionaries."""
    ops: list[dict[str, Any]] = []
    pos = 0
    while (m := _ENTRY.search(text, pos)) is not None:
        value, pos = parse_value(text, m.end() - 1)
        if not isinstance(value, dict):
            raise ParseError("an E5RT analytics entry is not a dictionary")
        ops.append(_op_from_dict(value, m))
    if not ops:
        raise ParseError("no E5RT analytics entries (`... at <file>.mil:L:C, {`) found")
    ops.sort(key=lambda op: (op["index"] is None, op["index"] or 0))
    return _result(ops, "e5rt_text")


def _op_from_dict(d: dict[str, Any], m: re.Match[str]) -> dict[str, Any]:
    estimates = {k: _number(v) for k, v in d.get("EstimatedRunTime", {}).items()} \
        if isinstance(d.get("EstimatedRunTime"), dict) else {}
    support = d.get("BackendSupport") if isinstance(d.get("BackendSupport"), dict) else {}
    path = d.get("OpPath") if isinstance(d.get("OpPath"), list) else []
    output = next((p.get("Output") for p in reversed(path) if isinstance(p, dict) and "Output" in p), None)
    messages = d.get("ValidationMessages") if isinstance(d.get("ValidationMessages"), dict) else {}
    index = d.get("OpIndex")
    return {"name": _text(d.get("DebugName")) or f"{m.group('path').rsplit('/', 1)[-1]}:{m.group('line')}",
            "op_type": _text(d.get("OpType")), "backend": _text(d.get("SelectedBackend"), unquote=True),
            "estimates": {k: v for k, v in estimates.items() if v is not None},
            "supported": sorted(k for k, v in support.items() if v == "1"),
            "output": output if isinstance(output, str) else None,
            "index": int(index) if isinstance(index, str) and re.fullmatch(r"[0-9]{1,9}", index) else None,
            "rejected": {k: v for k, v in messages.items() if isinstance(v, str)}}


def parse_e5rt_csv(text: str) -> ProfileParse:
    """Parse the CSV export of the same analytics."""
    try:
        rows = list(csv.reader(split_lines(text), skipinitialspace=True))
    except csv.Error as exc:
        raise ParseError(f"E5RT CSV: {exc}") from None
    if not rows or not rows[0] or rows[0][0].strip() != "DebugName":
        raise ParseError("E5RT CSV has no `DebugName, OpType, SelectedBackend, ...` header")
    header = [h.strip() for h in rows[0]]
    col = {name: k for k, name in enumerate(header)}
    ops = []
    for lineno, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue
        cells = [c.strip() for c in row]

        def cell(name: str) -> str:
            k = col.get(name)
            return cells[k] if k is not None and k < len(cells) else ""

        if not cell("DebugName"):
            raise ParseError("E5RT CSV row without a DebugName", line=lineno)
        op: dict[str, Any] = {"name": cell("DebugName"), "op_type": cell("OpType") or None,
                              "backend": cell("SelectedBackend").strip('"') or None,
                              "estimates": {}, "supported": [], "output": None, "index": lineno - 2, "rejected": {}}
        for slot in range(16):
            if f"backend_{slot}" not in col:
                break
            name, estimate, reason = cell(f"backend_{slot}"), _number(cell(f"est_time_{slot}")), cell(f"invalid_{slot}")
            if name:
                op["supported"].append(name)
                if estimate is not None:
                    op["estimates"][name] = estimate
            if reason:
                op["rejected"][name or f"slot_{slot}"] = reason
        ops.append(op)
    if not ops:
        raise ParseError("E5RT CSV has a header but no ops")
    return _result(ops, "e5rt_csv")


def _result(ops: list[dict[str, Any]], form: str) -> ProfileParse:
    selected = [op["estimates"].get(op["backend"]) if op["backend"] else None for op in ops]
    layers = []
    for op, estimate, share in zip(ops, selected, shares_from_means(selected)):
        extra = {"device": BACKEND_DEVICE.get(op["backend"] or "", op["backend"]), "backend": op["backend"],
                 "estimate": estimate, "estimates": op["estimates"], "supported": op["supported"],
                 "rejected": op["rejected"], "output": op["output"], "op_index": op["index"]}
        layers.append(LayerTiming(op["name"], op["op_type"], None, share, extra))
    by_device: dict[str, int] = {}
    for layer in layers:
        device = str(layer.extra["device"])
        by_device[device] = by_device.get(device, 0) + 1
    summary = {"iterations": None, "total_ms": None, "ops": len(layers), "ops_by_device": by_device,
               "estimated": True}
    return ProfileParse(tuple(layers), (), summary, {"tool": "coreml", "form": form})


def _number(value: Any) -> float | None:
    """An estimate (written as a string) as a float; None when empty or not a sane number."""
    if isinstance(value, str) and re.fullmatch(NUM, value.strip()):
        try:
            return to_float(value.strip())
        except ParseError:
            return None
    return None


def _text(value: Any, unquote: bool = False) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip('"') if unquote else value
