"""ONNX Runtime's profiling JSON (SessionOptions.enable_profiling / onnxruntime_perf_test -p) -> ProfileParse.

The file is a Chrome-trace array of complete events `{"cat", "pid", "tid", "dur", "ts", "ph": "X", "name", "args"}`
with `ts`/`dur` in MICROseconds:
- `cat: "Session"`: `model_loading_uri` (or `_array`), `session_initialization`, and per run
  `SequentialExecutor::Execute` and `model_run`, each written after the run's node events;
- `cat: "Node"`: `<node name>_kernel_time` per executed node; ORT 2019 also writes `_fence_before` /
  `_fence_after` (2-6 us each), current ORT does not.
`args` changed over time: 2019 has only `op_name`; current ORT adds `provider`, `node_index` (or
`exec_plan_index` / `graph_index`), sizes as strings of integers, `input_type_shape` / `output_type_shape`, and
`thread_scheduling_stats`, an object (or, in some builds, an empty string).

Node names are the POST-optimisation graph's (`r_nchwc` for a fused Conv+Relu, inserted `ReorderOutput`,
`.../MatmulTransposeFusion/`), kept exactly (only the final `_kernel_time` is removed) so the local target can
join them to the exported graph and from there to module paths.

Nodes are assigned to runs by time (a node event inside a `model_run` span belongs to that run). With more than one
run the first is dropped from the layer means as warm-up: its first-touch allocations make it several times slower
(127 us against 20 us for the first Conv in the generated fixture). A caller that knows how many warm-up runs the
file holds says so (`warmup_runs`): on a 1-thread CPU session the second run of a fresh session is still ~2x slow. A file the process did not finish writing
(no closing `]`) is read event by event.
"""
from __future__ import annotations

import bisect
import math
import re
from typing import Any

from edgekit.errors import ParseError
from edgekit.targets.textparse import json_number, load_json, split_lines
from edgekit.targets.timings import LayerTiming, ProfileParse, RunStats, shares_from_means

_SIZE_KEYS = ("parameter_size", "activation_size", "output_size")


def parse_ort_profile(text: str, warmup_runs: int | None = None) -> ProfileParse:
    """Parse an ONNX Runtime profile (any version with the Chrome-trace layout).

    `warmup_runs`: how many leading runs to leave out of the means (default: one, when the file has more than one
    run); the last run is always kept, so a short file still gives layers."""
    events, complete = _events(text)
    sessions = [e for e in events if e["cat"] == "Session"]
    runs = [e for e in sessions if e["name"] == "model_run"]
    if not runs:  # older or trimmed files: the executor span marks a run as well
        runs = [e for e in sessions if e["name"] == "SequentialExecutor::Execute"]
    runs.sort(key=lambda e: e["ts"])
    nodes = [e for e in events if e["cat"] == "Node" and not e["name"].endswith(("_fence_before", "_fence_after"))]
    if not runs and not nodes:
        raise ParseError("the profile has no model_run or node events",
                         hint="enable profiling and run the session at least once before ending the profile")
    per_run = _assign(nodes, runs)
    skip = (1 if len(runs) > 1 else 0) if warmup_runs is None else max(0, min(warmup_runs, len(runs) - 1))
    kept = list(range(skip, len(runs))) or [None]
    layers = _layers(nodes, per_run, kept)
    run_stats = tuple(RunStats(mean_ms=r["dur"] / 1000.0, count=1,
                               extra={"index": k, "ts_us": r["ts"], "warmup": k < skip})
                      for k, r in enumerate(runs))
    kept_runs = [runs[k] for k in kept if k is not None]
    summary: dict[str, Any] = {
        "iterations": len(kept_runs) or None,
        "total_ms": math.fsum(r["dur"] for r in kept_runs) / 1000.0 if kept_runs else None,
        "warmup_runs_dropped": skip,
        "mean_run_ms": math.fsum(r["dur"] for r in kept_runs) / 1000.0 / len(kept_runs) if kept_runs else None,
        "by_op_type_ms": _group(layers, lambda layer: layer.op_type),
        "by_provider_ms": _group(layers, lambda layer: layer.extra.get("provider")),
    }
    for name in ("model_loading_uri", "model_loading_array", "session_initialization"):
        durations = [e["dur"] for e in sessions if e["name"] == name]
        if durations:
            summary[f"{name}_ms"] = durations[0] / 1000.0
    meta = {"tool": "onnxruntime", "complete_file": complete,
            "format": "current" if any("provider" in e["args"] for e in nodes) else "2019",
            "fence_events": sum(1 for e in events if e["name"].endswith(("_fence_before", "_fence_after")))}
    return ProfileParse(tuple(layers), run_stats, summary, meta)


def _events(text: str) -> tuple[list[dict[str, Any]], bool]:
    try:
        data = load_json(text, "ONNX Runtime profile")
        complete = True
    except ParseError as strict_error:
        data = []
        for line in split_lines(text):  # one event per line, `,` separated
            line = line.strip().rstrip(",")
            if line.startswith("{") and line.endswith("}"):
                try:
                    data.append(load_json(line, "profile event"))
                except ParseError:
                    continue
        if not data:
            raise strict_error
        complete = False
    if not isinstance(data, list):
        raise ParseError("an ONNX Runtime profile is a JSON list of trace events")
    return [_event(e, k) for k, e in enumerate(data)], complete


def _event(e: Any, index: int) -> dict[str, Any]:
    if not isinstance(e, dict) or not isinstance(e.get("name"), str) or not isinstance(e.get("cat"), str):
        raise ParseError(f"profile event {index} is not an object with `cat` and `name`")
    args = e.get("args")
    return {"cat": e["cat"], "name": e["name"], "ts": json_number(e.get("ts"), f"event {index} ts"),
            "dur": json_number(e.get("dur", 0), f"event {index} dur"), "args": args if isinstance(args, dict) else {}}


def _assign(nodes: list[dict[str, Any]], runs: list[dict[str, Any]]) -> list[int | None]:
    """The run index of each node event: the run whose span holds the node's start, else None."""
    starts = [run["ts"] for run in runs]  # runs are sorted by start
    out: list[int | None] = []
    for node in nodes:
        k = bisect.bisect_right(starts, node["ts"]) - 1
        out.append(k if k >= 0 and node["ts"] <= runs[k]["ts"] + runs[k]["dur"] else None)
    return out


def _layers(nodes: list[dict[str, Any]], per_run: list[int | None], kept: list[int | None]) -> list[LayerTiming]:
    """Mean time per run of each node, in first-execution order, over the kept runs (a node that runs several
    times in one run, e.g. inside a Loop, adds up within the run)."""
    keep = set(kept)
    order: list[str] = []
    totals: dict[str, float] = {}
    calls: dict[str, int] = {}
    first: dict[str, dict[str, Any]] = {}
    for node, run in zip(nodes, per_run):
        name = node["name"][: -len("_kernel_time")] if node["name"].endswith("_kernel_time") else node["name"]
        if name not in first:
            order.append(name)
            first[name] = node
            totals[name], calls[name] = 0.0, 0
        if run in keep or (run is None and None in keep):
            totals[name] += node["dur"]
            calls[name] += 1
    n_runs = max(1, len(keep))
    means = [totals[name] / 1000.0 / n_runs for name in order]
    layers = []
    for name, mean, share in zip(order, means, shares_from_means(means)):
        args = first[name]["args"]
        op = args.get("op_name")
        extra: dict[str, Any] = {"provider": args.get("provider"), "calls_per_run": calls[name] / n_runs}
        for key in ("node_index", "exec_plan_index", "graph_index"):
            if key in args:
                extra[key] = _int(args[key])
        for key in _SIZE_KEYS:
            if key in args:
                extra[key] = _int(args[key])
        for key in ("input_type_shape", "output_type_shape"):
            if (shapes := _type_shapes(args.get(key))) is not None:
                extra[key] = shapes
        layers.append(LayerTiming(name, op if isinstance(op, str) else None, mean, share, extra))
    return layers


def _group(layers: list[LayerTiming], key: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for layer in layers:
        k = key(layer)
        if k is not None and layer.mean_ms is not None:
            out[str(k)] = out.get(str(k), 0.0) + layer.mean_ms
    return out


def _type_shapes(value: Any) -> list[dict[str, list[int]]] | None:
    """`[{"float": [1, 3, 32, 32]}, ...]` as written by ORT; anything else in its place is dropped, not copied."""
    if not isinstance(value, list):
        return None
    out = []
    for item in value:
        if not isinstance(item, dict):
            return None
        entry = {}
        for dtype, dims in item.items():
            if not isinstance(dims, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
                return None
            entry[dtype] = dims
        out.append(entry)
    return out


def _int(value: Any) -> Any:
    """ORT writes sizes and indices as strings of integers; keep anything else as it came."""
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value):
        return int(value)
    return value
