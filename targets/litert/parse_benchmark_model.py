"""TFLite / LiteRT `benchmark_model` console output -> ProfileParse (both the classic tool and LiteRT's newer
CompiledModel tool, with or without op profiling, one or many runs per file).

Quirks handled here (the op tables are in op_table.py):
- Line prefixes: TF <= 2.12 prints bare lines; TF 2.18 prefixes nearly all with `INFO: ` (also `ERROR: `,
  `VERBOSE: `), but not all (`Error in cpuinfo: prctl(PR_SVE_GET_VL) failed` comes from the cpuinfo library);
  LiteRT adds `INFO: [file.h:NN] ` which may stand alone on the line before its content; the Android benchmark
  APK writes to logcat (`05-31 10:31:13.023 21767 21767 I tflite  : Num threads: [4]`). All are stripped.
- Several runs per file (a shell loop over models and thread counts): each `STARTING!` opens a run, with its
  own parameter echo (`Num threads: [4]`, `Graph: [...]`). A file without `STARTING!` (LiteRT) is one run.
- Units: `count=` lines and `Inference timings in us` are microseconds and may be in %g form (`2.95034e+06`);
  LiteRT's `BENCHMARK RESULTS` block and every table column are milliseconds.
- The two `count=` lines of a run are the warm-up and then the timed loop; LiteRT 2025 adds p5/median/p95.
- Memory: `Peak memory footprint (MB)` (TF 2.3/2.4) or `Memory footprint delta from the start of the tool (MB)`
  (later); LiteRT prints `Init footprint` / `Overall footprint`.
- Delegates: `... completely executed by the delegate`, `... partially executed ... w/ N delegate kernels`,
  `... will not be executed by the delegate`. In the op table, a single row at 100% whose node type is a
  delegate (`Vx Delegate`, `TfLiteNnapiDelegate`, pre-2.9.1 `TfLiteXNNPackDelegate`) means the delegate swallowed
  the whole graph: there is no per-layer detail, and the summary says so instead of calling it one slow layer.
- LiteRT's table has no `Operator-wise Profiling Info` heading and mixes in `AllocateTensors` with times called
  0 (it ran once, not per inference); rows with times called 0 are set aside as init rows, not layers.
- Failures (`failed to prepare`, `Failed to apply NNAPI delegate`, `Benchmarking failed`), truncated lines and
  a trailing shell prompt are tolerated; a failed run is reported with status "failed".
"""
from __future__ import annotations

import math
import re
from typing import Any

from edgekit.errors import ParseError
from edgekit.targets.litert.op_table import TABLE_TITLE, OpTable, add_row, header_columns
from edgekit.targets.textparse import NUM, split_lines, strip_ansi, to_float, to_int
from edgekit.targets.timings import LayerTiming, ProfileParse, RunStats, share_from_percent

_LOGCAT = re.compile(r"^\d{2}-\d{2}\s+\d{2}:\d{2}:\d{2}\.\d+\s+\d+\s+\d+\s+[VDIWEF]\s+[^:\s]+\s*:\s?")
_LEVEL = re.compile(r"^(INFO|ERROR|WARNING|VERBOSE|DEBUG): ?")
_SOURCE = re.compile(r"^\[[\w./+-]+:\d+\] ?")
_PARAM = re.compile(r"^([^\[\]:\t]+): \[(.*)\]$")
_KV = re.compile(rf"(\w+)=({NUM})")
_TIMINGS = re.compile(rf"([A-Za-z][A-Za-z ()]*?): ({NUM})")
_MEMORY = re.compile(rf"^(Peak memory footprint|Memory footprint delta from the start of the tool) \(MB\): "
                     rf"init=({NUM}) overall=({NUM})")
_LITERT = re.compile(rf"^(Model initialization|Warmup \(first\)|Warmup \(avg\)|Inference \(avg\)|Inference \(min\)|"
                     rf"Inference \(max\)|Inference \(std\)|Throughput|Init footprint|Overall footprint|"
                     rf"Peak memory usage):\s+({NUM})(?:\s*(ms|MB/s|MB|us))?(?:\s*\((\d+) runs\))?")
_DELEGATE = [
    (re.compile(r"^Explicitly applied (.+?) delegate, and the model graph will be completely executed"), "complete"),
    (re.compile(r"^Explicitly applied (.+?) delegate, and the model graph will be partially executed by the "
                r"delegate w/ (\d{1,9}) delegate kernels"), "partial"),
    (re.compile(r"^Though (.+?) delegate is explicitly applied, the model graph will not be executed"), "none"),
]
_REPLACING = re.compile(r"^Replacing (\d{1,9}) out of (\d{1,9}) node\(s\) with delegate \((\S+)\) node, "
                        r"yielding (\d{1,9}) partitions")
_LAYER_COLUMNS = {"node_type", "avg_ms", "percent", "name"}  # a Run Order header without these is not one
_FAILURE = re.compile(r"failed to prepare|Failed to apply|Benchmarking failed|Failed to invoke|"
                      r"Failed to allocate|Failed to (?:load|construct)", re.IGNORECASE)


def parse_benchmark_model(text: str) -> ProfileParse:
    """Parse the console output of benchmark_model (TF Lite 2.x or LiteRT), op tables included."""
    segments: list[dict[str, Any]] = [_segment(1)]
    section = "regular"
    table: OpTable | None = None
    prefixes: set[str] = set()
    for lineno, raw in enumerate(split_lines(text), 1):
        line, style = _clean(raw)
        prefixes.add(style)
        seg = segments[-1]
        if table is not None:
            if not table.columns:
                columns = header_columns(line)
                if columns is not None:
                    table.columns = columns
                    continue
                table = None
            elif "\t" in line and line.strip():
                add_row(table, line, lineno)
                continue
            else:
                table = None
        stripped = line.strip()
        if not stripped:
            continue
        if stripped == "STARTING!":
            segments.append(_segment(lineno))
            section = "regular"
        elif stripped.startswith("Profiling Info for Benchmark Initialization"):
            section = "init"
        elif stripped.startswith("Operator-wise Profiling Info for Regular Benchmark Runs"):
            section = "regular"
        elif (m := TABLE_TITLE.match(stripped)) is not None:
            table = OpTable(m.group(1))
            seg["tables"].setdefault(section, []).append(table)
        elif stripped.startswith("count="):
            seg["counts"].append({k: to_float(v, lineno) for k, v in _KV.findall(stripped)})
        elif stripped.startswith("Timings (microseconds):"):
            seg["op_timings_us"][section] = {k: to_float(v, lineno) for k, v in _KV.findall(stripped)}
        elif stripped.startswith("Inference timings in us:"):
            seg["timings_us"] = {k.strip(): to_float(v, lineno) for k, v in _TIMINGS.findall(stripped[24:2048])}
        elif (m := re.match(rf"^Initialized session in ({NUM})ms", stripped)) is not None:
            seg["init_ms"] = to_float(m.group(1), lineno)
        elif (m := _MEMORY.match(stripped)) is not None:
            seg["memory_mb"] = {"init": to_float(m.group(2), lineno), "overall": to_float(m.group(3), lineno),
                                "measure": "peak" if m.group(1).startswith("Peak") else "delta"}
        elif (m := _LITERT.match(stripped)) is not None:
            seg["litert"][m.group(1)] = (to_float(m.group(2), lineno), m.group(4) and to_int(m.group(4), lineno))
        elif stripped.startswith("========== BENCHMARK RESULTS"):
            seg["litert_results"] = True
        elif (m := re.match(rf"^The input model file size \(MB\): ({NUM})", stripped)) is not None:
            seg["model_size_mb"] = to_float(m.group(1), lineno)
        elif (m := _PARAM.match(stripped)) is not None:
            seg["params"][m.group(1).strip()] = m.group(2)
        elif any(p.match(stripped) for p, _ in _DELEGATE):
            seg["delegates"].append(_delegate(stripped))
        elif (m := _REPLACING.match(stripped)) is not None:  # LiteRT/TF 2.18 verbose partitioning note
            replaced, nodes, name, parts = m.groups()
            seg["delegates"].append({"name": name, "coverage": "complete" if replaced == nodes else "partial",
                                     "replaced_nodes": int(replaced), "nodes": int(nodes), "partitions": int(parts)})
        elif _FAILURE.search(stripped):
            seg["errors"].append(stripped)
    runs = [_run(seg) for seg in segments if _has_results(seg)]
    layers, profile = _layers(segments)
    if not runs and not layers:
        raise ParseError("no benchmark_model results found (no timings, op table or errors)",
                         hint="pass the console output of benchmark_model (TF Lite) or litert benchmark_model")
    timed = [r for r in runs if r.mean_ms is not None and r.count]
    summary = {"iterations": sum(r.count for r in timed) if timed else None,
               "total_ms": math.fsum(r.mean_ms * r.count for r in timed) if timed else None,
               "runs": len(runs), "failed_runs": sum(1 for r in runs if r.extra.get("status") == "failed"),
               "op_profile": profile}
    meta = {"tool": "benchmark_model", "flavor": "litert" if any(s.get("litert") for s in segments) else "tflite",
            "log_prefixes": sorted(prefixes - {"bare"})}
    return ProfileParse(tuple(layers), tuple(runs), summary, meta)


def _segment(line: int) -> dict[str, Any]:
    return {"line": line, "params": {}, "delegates": [], "counts": [], "timings_us": {}, "litert": {},
            "op_timings_us": {}, "tables": {}, "errors": []}


def _clean(raw: str) -> tuple[str, str]:
    """The line without logcat / `INFO: ` / `[file:line] ` prefixes, and which prefix style it had."""
    line = strip_ansi(raw).rstrip("\n")
    style = "bare"
    if (m := _LOGCAT.match(line)) is not None:
        line, style = line[m.end():], "logcat"
    if (m := _LEVEL.match(line)) is not None:
        line, style = line[m.end():], "level"
        if (m := _SOURCE.match(line)) is not None:
            line = line[m.end():]
    return line.rstrip(" \r"), style


def _delegate(line: str) -> dict[str, Any]:
    for pattern, coverage in _DELEGATE:
        if (m := pattern.match(line)) is not None:
            out: dict[str, Any] = {"name": m.group(1), "coverage": coverage}
            if coverage == "partial":
                out["kernels"] = int(m.group(2))
            return out
    return {"name": None, "coverage": None}  # unreachable: callers check a pattern matched


def _has_results(seg: dict[str, Any]) -> bool:
    return bool(seg["counts"] or seg["timings_us"] or seg["litert"] or seg["errors"] or seg["tables"])


def _run(seg: dict[str, Any]) -> RunStats:
    timed = seg["counts"][1] if len(seg["counts"]) > 1 else {}  # [0] is the warm-up loop
    warm = seg["counts"][0] if seg["counts"] else {}
    lit = {k: v[0] for k, v in seg["litert"].items()}  # LiteRT's BENCHMARK RESULTS block, already in ms

    def ms(d: dict[str, float], key: str) -> float | None:  # count= lines are microseconds
        return d[key] / 1000.0 if key in d else None

    mean = seg["timings_us"].get("Inference (avg)")
    mean_ms = mean / 1000.0 if mean is not None else ms(timed, "avg")
    if mean_ms is None:
        mean_ms = lit.get("Inference (avg)")
    count = int(timed["count"]) if "count" in timed else seg["litert"].get("Inference (avg)", (None, None))[1]
    threads = seg["params"].get("Num threads")
    memory = seg.get("memory_mb")
    if memory is None and "Overall footprint" in lit:
        memory = {"init": lit.get("Init footprint"), "overall": lit["Overall footprint"], "measure": "footprint"}
    extra: dict[str, Any] = {
        "graph": seg["params"].get("Graph"),
        "threads": int(threads) if threads and re.fullmatch(r"[0-9]{1,6}", threads) else threads,
        "params": seg["params"], "delegates": seg["delegates"], "status": _status(seg, mean_ms),
        "first_ms": ms(timed, "first"), "init_ms": seg.get("init_ms", lit.get("Model initialization")),
        "warmup": _warmup(warm, ms) if warm else None, "memory_mb": memory,
        "model_size_mb": seg.get("model_size_mb"), "errors": seg["errors"], "line": seg["line"]}
    if lit:
        extra["litert"] = lit
    return RunStats(mean_ms=mean_ms, count=count,
                    min_ms=ms(timed, "min") if timed else lit.get("Inference (min)"),
                    max_ms=ms(timed, "max") if timed else lit.get("Inference (max)"),
                    median_ms=ms(timed, "median"), std_ms=ms(timed, "std"),
                    percentiles_ms={k[1:]: timed[k] / 1000.0 for k in ("p5", "p95") if k in timed}, extra=extra)


def _status(seg: dict[str, Any], mean_ms: float | None) -> str:
    """failed: the tool said so; incomplete: no timed loop (cut-off capture); else ok."""
    if seg["errors"]:
        return "failed"
    return "incomplete" if mean_ms is None else "ok"


def _warmup(warm: dict[str, float], ms: Any) -> dict[str, Any]:
    """The warm-up `count=` line; with one iteration it prints only `curr`, which is then first and mean."""
    curr = ms(warm, "curr")
    return {"count": int(warm["count"]) if "count" in warm else None, "first_ms": ms(warm, "first") or curr,
            "avg_ms": ms(warm, "avg") or curr}


def _layers(segments: list[dict[str, Any]]) -> tuple[list[LayerTiming], dict[str, Any] | None]:
    """Layers from the Run Order table of the last run that printed one (regular section)."""
    for index in range(len(segments) - 1, -1, -1):
        seg = segments[index]
        run_order = [t for t in seg["tables"].get("regular", [])
                     if t.title == "Run Order" and t.rows and _LAYER_COLUMNS <= set(t.columns)]
        if not run_order:
            continue
        table = run_order[-1]
        layers, init_rows = [], []
        for row in table.rows:
            if row.get("times_called") == 0:
                init_rows.append(row["name"])
                continue
            m = re.search(r":([0-9]{1,9})$", row["name"])
            extra = {k: row[k] for k in ("first_ms", "start_ms", "cdf_percent", "mem_kb", "times_called") if k in row}
            extra["node_index"] = int(m.group(1)) if m else None
            extra["delegate_partition"] = "delegate" in row["node_type"].lower()
            share = share_from_percent(row["percent"])
            layers.append(LayerTiming(row["name"], row["node_type"], row["avg_ms"], share, extra))
        by_type = [t for t in seg["tables"].get("regular", []) if t.title == "Summary by node type" and t.rows]
        whole = (len(layers) == 1 and layers[0].extra["delegate_partition"] and (layers[0].share or 0) >= 0.999)
        profile = {"layout": table.layout, "run_line": seg["line"], "init_rows": init_rows,
                   "whole_graph_delegated": whole,
                   "delegate_partitions": sum(1 for layer in layers if layer.extra["delegate_partition"]),
                   "timings_us": seg["op_timings_us"].get("regular"),
                   "malformed_rows": sum(t.malformed_rows for ts in seg["tables"].values() for t in ts),
                   "by_node_type": [{k: v for k, v in r.items() if k != "line"} for r in by_type[-1].rows]
                   if by_type else []}
        return layers, profile
    return [], None
