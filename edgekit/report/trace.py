"""trace.json: the Chrome trace event format (loads in Perfetto and chrome://tracing).

One process per measurement (named "encoder int8 (file.onnx)"), one thread of complete ("ph": "X") events,
one event per layer. When the profiler kept one run's timeline, events are that run as recorded (shifted to
start at 0); otherwise they are laid end to end from the per-layer means, and every such event says so in
its args, because a made-up timeline must never pass for a recording.
"""
from __future__ import annotations

from edgekit.report import schema

SYNTHETIC_NOTE = "synthetic timeline: per-layer means laid end to end, not a recorded run"


def _meta(pid: int, name: str, args: dict, tid: int | None = None) -> dict:
    event = {"ph": "M", "pid": pid, "name": name, "args": args}
    if tid is not None:
        event["tid"] = tid
    return event


def _recorded(m: dict, pid: int) -> list[dict]:
    timeline = m["timeline"]
    origin = min((e["start_us"] for e in timeline), default=0.0)
    return [{"ph": "X", "pid": pid, "tid": 1, "name": e["name"], "cat": e["op_type"] or "layer",
             "ts": e["start_us"] - origin, "dur": e["dur_us"],
             "args": {"op_type": e["op_type"], "module": e["module"], "recorded": True}} for e in timeline]


def _synthetic(m: dict, pid: int) -> list[dict]:
    events, ts = [], 0.0
    for layer in m["layers"]:
        dur = layer["mean_ms"] * 1000.0
        events.append({"ph": "X", "pid": pid, "tid": 1, "name": layer["name"], "cat": layer["op_type"] or "layer",
                       "ts": ts, "dur": dur,
                       "args": {"op_type": layer["op_type"], "module": layer["module"], "share": layer["share"],
                                "recorded": False, "note": SYNTHETIC_NOTE}})
        ts += dur
    return events


def build_trace(report: dict) -> dict:
    """The trace document for a validated report."""
    events: list[dict] = []
    for i, m in enumerate(schema.measurements(report)):
        pid = i + 1
        recorded = bool(m.get("timeline"))
        name = f"{schema.label(m)} ({m['artifact']})"
        thread = "layers (recorded run)" if recorded else "layers (synthetic, from means)"
        events += [_meta(pid, "process_name", {"name": name}), _meta(pid, "process_sort_index", {"sort_index": i}),
                   _meta(pid, "thread_name", {"name": thread}, tid=1)]
        events += _recorded(m, pid) if recorded else _synthetic(m, pid)
    t = report["target"]
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"schema": schema.SCHEMA, "model": report["model"], "target": t["name"],
                          "device": t["device"]["model"], "runtime": f"{report['runtime']['name']} "
                          f"{report['runtime']['version']}", "created": report["created"],
                          "weights": report["weights"]["kind"]}}
