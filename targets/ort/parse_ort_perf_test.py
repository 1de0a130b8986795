"""onnxruntime_perf_test's console summary -> ProfileParse (runs only; per-node times are in its -p JSON profile).

The summary is `Key: value unit` lines with MIXED units, so every value is converted by its own unit:
    Session creation time cost: 0.217932 s
    First inference time cost: 196 ms
    Total inference time cost: 0.49481 s
    Total inference requests: 5
    Average inference time cost total: 98.961997 ms
    Number of inferences per second: 10.104
    Avg CPU usage: 11 %
    Peak working set size: 271122432 bytes
    Min Latency / Max Latency / P50 / P90 / P95 / P99 / P999 Latency: 0.0958204 s
The CPU and memory keys are printed a second time without the space (`Peak working set size:271122432`, then
`Runs:5`); the repeat is read the same way and does not start a new run. A new run starts at each
`Session creation time cost` line, so several invocations captured into one file give one entry each.
"""
from __future__ import annotations

import re
from typing import Any

from edgekit.errors import ParseError
from edgekit.targets.textparse import NUM, split_lines, to_float
from edgekit.targets.timings import ProfileParse, RunStats

_LINE = re.compile(rf"^(?P<key>[A-Za-z][A-Za-z0-9 /()_-]*?)\s*:\s*(?P<value>{NUM})\s*(?P<unit>s|ms|us|bytes|%)?\s*$")
_TO_MS = {"s": 1000.0, "ms": 1.0, "us": 0.001}
_LATENCY = re.compile(r"^(Min|Max|P(\d+)) Latency$")


def parse_ort_perf_test(text: str) -> ProfileParse:
    """Parse the console output of onnxruntime_perf_test."""
    runs: list[dict[str, Any]] = []
    notes: list[str] = []
    for lineno, line in enumerate(split_lines(text), 1):
        stripped = line.strip()
        m = _LINE.match(stripped)
        if m is None:
            if stripped and not runs:
                notes.append(stripped)  # `Setting intra_op_num_threads to 1` and the like
            continue
        key, unit = m.group("key").strip(), m.group("unit")
        value = to_float(m.group("value"), lineno)
        if key == "Session creation time cost" or not runs:
            runs.append({"values": {}, "line": lineno})
        # round() drops the float noise of the unit change (0.101519 s -> 101.519 ms, not 101.51899999999999).
        runs[-1]["values"][key] = round(value * _TO_MS[unit], 9) if unit in _TO_MS else value
    runs = [r for r in runs if "Average inference time cost total" in r["values"]
            or any(_LATENCY.match(k) for k in r["values"])]
    if not runs:
        raise ParseError("no onnxruntime_perf_test summary found (no average or latency lines)",
                         hint="pass the console output of onnxruntime_perf_test")
    stats = tuple(_run(r) for r in runs)
    counted = [s for s in stats if s.count and s.mean_ms is not None]
    summary = {"iterations": sum(s.count for s in counted) if counted else None,
               "total_ms": sum(s.extra["total_inference_ms"] or 0.0 for s in stats) or None}
    return ProfileParse((), stats, summary, {"tool": "onnxruntime_perf_test", "notes": notes})


def _run(run: dict[str, Any]) -> RunStats:
    v = run["values"]
    percentiles = {}
    for key, value in v.items():
        m = _LATENCY.match(key)
        if m and m.group(2):
            digits = m.group(2)  # P999 is the 99.9th percentile
            percentiles[digits if len(digits) <= 2 else f"{digits[:2]}.{digits[2:]}"] = value
    requests = v.get("Total inference requests", v.get("Runs"))
    extra = {"session_creation_ms": v.get("Session creation time cost"),
             "first_inference_ms": v.get("First inference time cost"),
             "total_inference_ms": v.get("Total inference time cost"),
             "throughput_per_s": v.get("Number of inferences per second"),
             "cpu_usage_pct": v.get("Avg CPU usage"), "peak_working_set_bytes": _whole(v.get("Peak working set size")),
             "line": run["line"]}
    return RunStats(mean_ms=v.get("Average inference time cost total"), count=_whole(requests),
                    min_ms=v.get("Min Latency"), max_ms=v.get("Max Latency"), median_ms=percentiles.get("50"),
                    percentiles_ms={k: p for k, p in percentiles.items() if k != "50"}, extra=extra)


def _whole(value: float | None) -> int | None:
    return int(value) if value is not None and value.is_integer() else None
