"""litert_ops.json (written by targets/device/litert_runner.py from the LiteRT C profiler) -> ProfileParse.

Pure: the text in, a value out; ParseError for anything it cannot read. The file holds the raw profiler events
grouped per profiled run and the TFLite node list of the model (index, op, output tensor names), so the rows can
be named and attributed here without the .tflite file:

    {"format": "edgekit-litert-ops/1", "profiler": "litert", "version": "2.3.0", "kernel_mode": "xnnpack",
     "delegate": "xnnpack", "threads": 1, "warmup_runs": 2, "fully_accelerated": true,
     "nodes": [{"index": 0, "op": "CONV_2D", "outputs": ["<tensor name>"]}, ...],
     "runs": [[{"tag": "Invoke", "type": "DEFAULT", "start_us": 0, "elapsed_us": 412, "meta1": 0, "meta2": 0}, ...]]}

One row per TFLite node that has operator time (the node's first output tensor names the row, which is what
the LiteRT layer map is keyed by), in execution order, plus one row per operator that matched no node (its time
still counts; no module). `mean_ms` is the node's time per profiled run; the run's own span is the `Invoke`
event (summary `profiled_run_ms`), inside which every operator event lies.
"""
from __future__ import annotations

import json
import math
from typing import Any, Mapping

from edgekit.errors import ParseError
from edgekit.targets.litert.xnnpack_align import OP_EVENT_TYPES, Alignment, Node, align
from edgekit.targets.timings import LayerTiming, ProfileParse, RunStats, shares_from_means

FORMAT = "edgekit-litert-ops/1"
_EVENT_KEYS = ("tag", "type", "elapsed_us")
_HINT = "pass the litert_ops.json that litert_runner.py wrote (--op-profiler litert)"


def parse_litert_ops(text: str | Mapping[str, Any]) -> ProfileParse:
    """Parse litert_ops.json (its text, or the already loaded object)."""
    data = _load(text)
    nodes = _nodes(data.get("nodes"))
    runs = _runs(data.get("runs"))
    if not runs:
        raise ParseError("litert_ops.json holds no profiled runs", hint=_HINT)
    invoke_ms: list[float] = []
    totals: dict[tuple, float] = {}  # row key -> summed microseconds over all runs
    order: list[tuple] = []
    tags: dict[tuple, list[str]] = {}
    counts: dict[tuple, int] = {}
    how: dict[tuple, str] = {}
    cache: dict[tuple, Alignment] = {}  # runs repeat the same operator sequence: align each distinct one once
    op_events, nested, unmatched_nodes = [], 0, None
    for run in runs:
        invoke = [e for e in run if e["tag"] == "Invoke" and e["type"] == "DEFAULT"]
        if invoke:
            invoke_ms.append(math.fsum(float(e["elapsed_us"]) for e in invoke) / 1000.0)
        ops = [e for e in run if e["type"] in OP_EVENT_TYPES]
        op_events.append(len(ops))
        signature = tuple((e["type"], e["tag"], e.get("meta1"), e.get("meta2")) for e in ops)
        if signature not in cache:
            cache[signature] = align(nodes, ops)
        alignment = cache[signature]
        if unmatched_nodes is None or len(alignment.unmatched_nodes) < len(unmatched_nodes):
            unmatched_nodes = alignment.unmatched_nodes
        for position, (event, assigned) in enumerate(zip(ops, alignment.assignments)):
            if assigned.how == "nested":
                nested += 1  # a builtin event of another subgraph: already inside its control-flow node's time
                continue
            key = ("node", assigned.node) if assigned.node is not None else ("op", position, event["tag"])
            if key not in totals:
                totals[key], tags[key], counts[key] = 0.0, [], 0
                order.append(key)
                how[key] = assigned.how
            totals[key] += float(event["elapsed_us"])
            counts[key] += 1
            if event["tag"] not in tags[key]:
                tags[key].append(event["tag"])
            if assigned.how in ("exact", "type"):
                how[key] = assigned.how  # a node's own operator names its match, not its helpers
    by_index = {node.index: node for node in nodes}
    means = [totals[key] / len(runs) / 1000.0 for key in order]
    layers = []
    for key, mean, share in zip(order, means, shares_from_means(means)):
        extra: dict[str, Any] = {"runtime_ops": tags[key], "events_per_run": counts[key] / len(runs),
                                 "match": how[key]}
        if key[0] == "node":
            node = by_index[key[1]]
            extra.update({"node_index": node.index, "node": f"node:{node.index}", "outputs": list(node.outputs)})
            name = next((o for o in node.outputs if o), f"node:{node.index}")
            layers.append(LayerTiming(name, node.op, mean, share, extra))
        else:
            extra.update({"node_index": None, "node": None, "outputs": []})
            layers.append(LayerTiming(f"{key[2]} #{key[1]}", key[2], mean, share, extra))
    summary = _summary(data, nodes, runs, invoke_ms, op_events, nested, unmatched_nodes or (), layers)
    meta = {"tool": "litert-profiler", "profiler": data.get("profiler"), "version": data.get("version"),
            "library": data.get("library"), "kernel_mode": data.get("kernel_mode"), "delegate": data.get("delegate"),
            "threads": data.get("threads")}
    stats = RunStats.from_samples(invoke_ms, extra={"source": "Invoke events of the profiled runs"})
    return ProfileParse(tuple(layers), (stats,), summary, meta)


def _summary(data: Mapping[str, Any], nodes: list[Node], runs: list[list[dict]], invoke_ms: list[float],
             op_events: list[int], nested: int, unmatched: tuple[int, ...], layers: list[LayerTiming]) -> dict:
    by_index = {node.index: node for node in nodes}
    builtin_nodes = {e["meta1"] for run in runs for e in run
                     if e["type"] == "OPERATOR_INVOKE" and not e.get("meta2") and e.get("meta1") in by_index}
    # A node is delegated when no builtin kernel ran it: XNNPACK ran it, or fused it into a neighbour.
    delegated = len(nodes) - len(builtin_nodes) if nodes else None
    return {"iterations": len(runs), "total_ms": math.fsum(invoke_ms) if invoke_ms else None,
            "profiled_run_ms": math.fsum(invoke_ms) / len(invoke_ms) if invoke_ms else None,
            "op_events": max(op_events) if op_events else 0, "nested_events": nested,
            "nodes": len(nodes), "delegated_nodes": delegated, "builtin_nodes": len(builtin_nodes),
            "delegated_share": delegated / len(nodes) if nodes else None,
            "unmatched_nodes": [{"index": i, "op": by_index[i].op,
                                 "output": by_index[i].outputs[0] if by_index[i].outputs else None} for i in unmatched],
            "unmatched_ops": sum(1 for layer in layers if layer.extra.get("node_index") is None),
            "unmatched_ms": math.fsum(layer.mean_ms or 0.0 for layer in layers if layer.extra.get("node_index") is None),
            "alignment": "exact" if all(layer.extra.get("match") in ("exact",) for layer in layers) else "heuristic",
            "kernel_mode": data.get("kernel_mode"), "fully_accelerated": data.get("fully_accelerated"),
            "warmup_runs": data.get("warmup_runs")}


def _load(text: str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(text, Mapping):
        data: Any = text
    else:
        try:
            data = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise ParseError(f"litert_ops.json is not JSON: {exc}", hint=_HINT) from None
    if not isinstance(data, Mapping):
        raise ParseError("litert_ops.json is not a JSON object", hint=_HINT)
    if data.get("format") != FORMAT:
        raise ParseError(f"litert_ops.json has format {data.get('format')!r}, not {FORMAT!r}", hint=_HINT)
    return data


def _nodes(raw: Any) -> list[Node]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ParseError("litert_ops.json: `nodes` is not a list", hint=_HINT)
    nodes = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("index"), int) or not isinstance(item.get("op"), str):
            raise ParseError(f"litert_ops.json: node {i} lacks an integer index or an op name", hint=_HINT)
        outputs = item.get("outputs") or []
        if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
            raise ParseError(f"litert_ops.json: node {i} has outputs that are not tensor names", hint=_HINT)
        ids = [item.get(key) for key in ("inputs", "output_ids")]  # tensor ids: recorded by newer runners
        if any(v is not None and (not isinstance(v, list) or not all(isinstance(t, int) and not isinstance(t, bool)
                                                                     for t in v)) for v in ids):
            raise ParseError(f"litert_ops.json: node {i} has tensor ids that are not integers", hint=_HINT)
        nodes.append(Node(item["index"], item["op"], tuple(outputs),
                          *(tuple(v) if v is not None else None for v in ids)))
    return sorted(nodes, key=lambda n: n.index)  # subgraph 0 runs in index order


def _runs(raw: Any) -> list[list[dict]]:
    if not isinstance(raw, list):
        raise ParseError("litert_ops.json: `runs` is not a list of runs", hint=_HINT)
    runs = []
    for r, run in enumerate(raw):
        if not isinstance(run, list):
            raise ParseError(f"litert_ops.json: run {r} is not a list of events", hint=_HINT)
        events = []
        for e, event in enumerate(run):
            if not isinstance(event, Mapping) or any(k not in event for k in _EVENT_KEYS):
                raise ParseError(f"litert_ops.json: run {r} event {e} lacks {', '.join(_EVENT_KEYS)}", hint=_HINT)
            if not isinstance(event["tag"], str) or not isinstance(event["type"], str):
                raise ParseError(f"litert_ops.json: run {r} event {e} has a tag or type that is not text", hint=_HINT)
            elapsed = event["elapsed_us"]
            if isinstance(elapsed, bool) or not isinstance(elapsed, (int, float)) or not math.isfinite(elapsed) \
                    or elapsed < 0:
                raise ParseError(f"litert_ops.json: run {r} event {e} has elapsed_us {elapsed!r}", hint=_HINT)
            for key in ("meta1", "meta2"):
                if key in event and (isinstance(event[key], bool) or not isinstance(event[key], int)):
                    raise ParseError(f"litert_ops.json: run {r} event {e} has a non-integer {key}", hint=_HINT)
            events.append(dict(event))
        runs.append(events)
    return runs
