"""trtexec's `=== Performance summary ===` block and the `=== Trace details ===` averages.

From 8.0 the block is one `Key: value` line per metric:
    Throughput: 55.3927 qps
    Latency: min = 17.99 ms, max = 18.09 ms, mean = 18.03 ms, median = 18.04 ms, percentile(99%) = 18.08 ms
    Enqueue Time / H2D Latency / GPU Compute Time / D2H Latency: (same pattern)
    Total Host Walltime: 3.05094 s
    Total GPU Compute Time: 2.83968 s
Quirks:
- up to 8.4 one percentile (`percentile(99%)`); from 8.5 a list (`percentile(90%) = ..., percentile(95%) = ...`);
- 8.0-8.2 add `End-to-End Host Latency`, removed in 8.4;
- with --noDataTransfers, H2D and D2H print zeros; with --useCudaGraph, Enqueue Time is tiny;
- with --verbose the block is followed by `[V]` lines that explain each metric by the same names
  (`[V] Throughput: the observed throughput ...`), so only numbers that match the patterns are taken and the
  block ends at `Explanations of the performance metrics`;
- with --dumpProfile and no --separateProfileRun (8.4+), there is no block at all.
TRT 7's multi-line layout (`Host Latency` / `min: ...`) is not read: no capture of it was available.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

from edgekit.targets.textparse import NUM, to_float, to_int

_STAT_LINE = re.compile(r"^(?P<key>[A-Za-z][A-Za-z0-9 -]*?): (?P<body>min = .*)$")
_STAT = re.compile(rf"\b(min|max|mean|median) = ({NUM}) ms")
_PCT = re.compile(rf"percentile\(({NUM})%\) = ({NUM}) ms")
_THROUGHPUT = re.compile(rf"^Throughput: ({NUM}) qps$")
_WALL = re.compile(rf"^Total (Host Walltime|GPU Compute Time): ({NUM}) s$")
TRACE = re.compile(rf"^Average on (\d+) runs - GPU latency: ({NUM}) ms - Host latency: ({NUM}) ms "
                   rf"\((?:end to end ({NUM}) ms, )?enqueue ({NUM}) ms\)$")
TIMING_TRACE = re.compile(rf"^Timing trace has (\d+) queries over ({NUM}) s$")
WARMUP = re.compile(rf"^Warmup completed (\d+) queries over ({NUM}) ms$")
_KEYS = {"Latency": "latency", "End-to-End Host Latency": "end_to_end_host", "Enqueue Time": "enqueue",
         "H2D Latency": "h2d", "GPU Compute Time": "gpu_compute", "D2H Latency": "d2h"}


def stat_line(content: str, line: int) -> tuple[str, dict[str, Any]] | None:
    """`GPU Compute Time: min = ... ms, ...` -> ("gpu_compute", {min, max, mean, median, percentiles})."""
    m = _STAT_LINE.match(content)
    if not m:
        return None
    key = _KEYS.get(m.group("key"), re.sub(r"[^a-z0-9]+", "_", m.group("key").lower()).strip("_"))
    body = m.group("body")
    stats: dict[str, Any] = {name: to_float(value, line) for name, value in _STAT.findall(body)}
    stats["percentiles"] = {_pct_key(p): to_float(v, line) for p, v in _PCT.findall(body)}
    return key, stats


def parse_perf_block(contents: Sequence[tuple[str | None, str]], start: int) -> tuple[dict[str, Any], int]:
    """Read the block after the `=== Performance summary ===` line at `start`; returns (values, next index).

    `contents` holds (level, text) per line, the log prefix removed. Values: throughput_qps, the stat dicts by
    key, total_host_walltime_s, total_gpu_compute_time_s, warnings (the `[W] * ...` notes).
    """
    out: dict[str, Any] = {"warnings": []}
    i = start + 1
    while i < len(contents):
        level, text = contents[i]
        text = text.strip()
        if level == "V":  # metric explanations, never values
            i += 1
            continue
        if not text or text.startswith("===") or text.startswith("&&&&") or text.startswith("Explanations of"):
            break
        if (m := _THROUGHPUT.match(text)) is not None:
            out["throughput_qps"] = to_float(m.group(1), i + 1)
        elif (m := _WALL.match(text)) is not None:
            key = "total_host_walltime_s" if m.group(1) == "Host Walltime" else "total_gpu_compute_time_s"
            out[key] = to_float(m.group(2), i + 1)
        elif (stat := stat_line(text, i + 1)) is not None:
            out[stat[0]] = stat[1]
        elif level == "W" or text.startswith("*"):
            out["warnings"].append(text.lstrip("* ").strip())
        i += 1
    return out, i


def trace_average(text: str, line: int) -> dict[str, Any] | None:
    """`Average on 10 runs - GPU latency: X ms - Host latency: Y ms (end to end E ms, enqueue Z ms)` (<= 8.2 has
    the end-to-end figure, later versions only enqueue)."""
    m = TRACE.match(text)
    if not m:
        return None
    runs, gpu, host, e2e, enqueue = m.groups()
    out = {"runs": to_int(runs, line), "gpu_ms": to_float(gpu, line), "host_ms": to_float(host, line),
           "enqueue_ms": to_float(enqueue, line)}
    if e2e is not None:
        out["end_to_end_ms"] = to_float(e2e, line)
    return out


def _pct_key(p: str) -> str:
    value = to_float(p, what="percentile")
    return str(int(value)) if value == int(value) else repr(value)
