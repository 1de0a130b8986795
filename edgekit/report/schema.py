"""The report contract, schema "edgekit.report/1": the one place that knows report.json's fields.

`deploy` builds a plain dict, `validate` checks it before anything is written, and the renderers read it
through the small accessors at the bottom. The top-level latency/layers/coverage describe the PRIMARY
measurement (the artifact named by part + precision); `measurements` holds every artifact measured.
Unknown extra keys are allowed so newer writers stay readable; missing or ill-typed known keys are not.
"""
from __future__ import annotations

import json
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from edgekit.errors import InputError

SCHEMA = "edgekit.report/1"
PARTS = ("encoder", "decoder")
PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8", "int8-mixed", "w8a8", "palette6")
WEIGHT_KINDS = ("synthetic", "checkpoint")
LATENCY_ONLY_NOTE = "latency-only: synthetic weights, outputs meaningless"


# -- a tiny declarative spec: plain types, dicts of fields, and four wrappers --------------------------------
class Opt:
    """A field that may be absent (when present it must match `spec`)."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec


class Null:
    """A field that must be present but may be null."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec


class OneOf:
    def __init__(self, *choices: str) -> None:
        self.choices = choices


class ListOf:
    def __init__(self, spec: Any, min_len: int = 0) -> None:
        self.spec, self.min_len = spec, min_len


NUM = float  # int or float, never bool, always finite (JSON has no NaN / Infinity)
STATS = {"runs": int, "mean": NUM, "p50": NUM, "p90": NUM, "min": NUM, "max": NUM, "stdev": NUM,
         # every timed run; empty only with raw_note, where the device's tool reports statistics alone
         # (Android's benchmark_model)
         "warmup": Opt(int), "raw": ListOf(NUM), "raw_note": Opt(str)}
LAYER = {"name": str, "op_type": str, "module": Null(str), "mean_ms": NUM, "share": NUM}
COVERAGE = {"layer_sum_ms": NUM, "attributed_share": NUM, "sum_vs_mean": NUM, "sum_vs_profiled_run": Opt(NUM)}
EVENT = {"name": str, "op_type": str, "module": Null(str), "start_us": NUM, "dur_us": NUM}
MEASUREMENT = {"part": OneOf(*PARTS), "precision": OneOf(*PRECISIONS), "format": str, "artifact": str,
               "latency_ms": STATS, "layers": ListOf(LAYER), "coverage": COVERAGE, "timeline": Opt(ListOf(EVENT)),
               "layers_note": Opt(Null(str)), "runtime": Opt(dict), "power": Opt(dict)}  # why layers is empty or partial (e.g. no per-op profiler on the device)
FIDELITY = {"reference": str, "images": int, "embedding_sqnr_db": Null(NUM), "logits_sqnr_db": Opt(Null(NUM)),
            "mask_iou": Null(NUM), "mask_iou_point": Opt(Null(NUM)), "mask_iou_box": Opt(Null(NUM)),
            "target": Opt(Null(NUM)), "passed": Null(bool)}
SENS_NODE = {"part": OneOf(*PARTS), "node": str, "op": str, "module": Null(str), "alone_sqnr_db": Null(NUM),
             "in_graph_sqnr_db": Null(NUM)}
SENSITIVITY = {"images": int, "nodes": ListOf(SENS_NODE)}
MIXED = {"targets": {"mask_iou": Null(NUM), "embedding_sqnr_db": Null(NUM)}, "passed": bool,
         "float_nodes": ListOf(SENS_NODE), "fidelity": {"mask_iou": Null(NUM), "embedding_sqnr_db": Null(NUM)},
         "artifacts": ListOf(str), "latency_ms": Opt(dict),
         "trials": ListOf({"float_nodes": int, "mask_iou": Null(NUM), "embedding_sqnr_db": Null(NUM), "passed": bool})}
MIOU = {"point_miou": NUM, "box_miou": NUM}
ACCURACY = {"dataset": str, "images": int, "masks": int, "fp32": MIOU, "int8": Opt(MIOU), "int8-mixed": Opt(MIOU)}
REPORT = {
    "schema": OneOf(SCHEMA), "model": str, "part": OneOf(*PARTS), "format": str, "precision": OneOf(*PRECISIONS),
    "weights": {"kind": OneOf(*WEIGHT_KINDS), "path": Opt(Null(str)), "sha256": Opt(Null(str)), "note": Opt(Null(str))},
    "variant": {"family": str, "params": int, "encoder_params": Null(int), "encoder_gflops": Null(NUM),
                "input_size": int},
    "target": {"name": str, "transport": str,
               "device": {"model": str, "arch": str, "cpus": int, "memory_gb": Opt(Null(NUM)), "os": Opt(Null(str))}},
    "runtime": {"name": str, "version": str, "threads": int, "providers": Opt(ListOf(str))},
    "latency_ms": STATS, "layers": ListOf(LAYER), "coverage": COVERAGE, "fidelity": Null(FIDELITY), "power": Opt(dict),
    "measurements": ListOf(MEASUREMENT, 1),
    "artifacts": ListOf({"path": str, "sha256": str, "bytes": int, "part": Opt(OneOf(*PARTS)),
                         "precision": Opt(OneOf(*PRECISIONS)), "reused": Opt(bool),
                         # what the device may not run as planned (Core ML: ops the Neural Engine is not known to run)
                         "warnings": Opt(ListOf(str))}),
    "steps": ListOf({"name": str, "seconds": NUM, "reused": Opt(bool)}),
    "tools": dict, "created": str,
    "sensitivity": Opt(SENSITIVITY), "mixed_precision": Opt(MIXED), "accuracy": Opt(ACCURACY),
}


def _fail(path: str, problem: str) -> None:
    raise InputError(f"report field {path or '<root>'}: {problem}",
                     hint=f"write reports that follow schema {SCHEMA} (edgekit/report/schema.py)")


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check(value: Any, spec: Any, path: str) -> None:
    if isinstance(spec, Null):
        if value is not None:
            _check(value, spec.spec, path)
    elif value is None:
        _fail(path, "is null")
    elif isinstance(spec, OneOf):
        if value not in spec.choices:
            _fail(path, f"{value!r} is not one of {', '.join(map(repr, spec.choices))}")
    elif isinstance(spec, ListOf):
        if not isinstance(value, list):
            _fail(path, f"expected a list, got {_type_name(value)}")
        if len(value) < spec.min_len:
            _fail(path, f"needs at least {spec.min_len} item(s)")
        for i, item in enumerate(value):
            _check(item, spec.spec, f"{path}[{i}]")
    elif isinstance(spec, dict):
        if not isinstance(value, dict):
            _fail(path, f"expected an object, got {_type_name(value)}")
        for key, sub in spec.items():
            where = f"{path}.{key}" if path else key
            if key not in value:
                if not isinstance(sub, Opt):
                    _fail(where, "is missing")
                continue
            _check(value[key], sub.spec if isinstance(sub, Opt) else sub, where)
    elif spec is NUM:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(path, f"expected a number, got {_type_name(value)}")
        if not math.isfinite(value):
            _fail(path, f"{value} is not finite (JSON cannot hold it; write null or a bounded figure)")
    elif spec is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(path, f"expected an integer, got {_type_name(value)}")
    elif not isinstance(value, spec):
        _fail(path, f"expected {spec.__name__}, got {_type_name(value)}")


def _check_stats(stats: dict, path: str) -> None:
    """Statistics that contradict each other or their raw samples are a measuring bug: say so here."""
    if not stats["raw"]:
        if not stats.get("raw_note"):
            _fail(f"{path}.raw", "needs at least 1 item(s), or raw_note saying why the tool gave no samples")
        if stats["runs"] < 1:
            _fail(f"{path}.runs", "needs at least one timed run")
    elif stats["runs"] != len(stats["raw"]):
        _fail(f"{path}.runs", f"{stats['runs']} runs but {len(stats['raw'])} raw samples")
    tol = 1e-6 * max(1.0, abs(stats["max"]))
    if not stats["min"] - tol <= stats["p50"] <= stats["p90"] + tol <= stats["max"] + 2 * tol:
        _fail(path, "needs min <= p50 <= p90 <= max")
    if not stats["min"] - tol <= stats["mean"] <= stats["max"] + tol:
        _fail(f"{path}.mean", "lies outside [min, max]")
    if stats["min"] < 0 or stats["stdev"] < 0:
        _fail(path, "has negative times")


def validate(report: Any) -> dict:
    """Check `report` against edgekit.report/1; raise InputError naming the first bad field; return it."""
    if isinstance(report, dict) and "schema" in report and report["schema"] != SCHEMA:
        _fail("schema", f"{report['schema']!r} is not {SCHEMA!r} (written by another edgekit version?)")
    _check(report, REPORT, "")
    _check_stats(report["latency_ms"], "latency_ms")
    for i, m in enumerate(report["measurements"]):
        _check_stats(m["latency_ms"], f"measurements[{i}].latency_ms")
    for path, layers in [("layers", report["layers"])] + [
            (f"measurements[{i}].layers", m["layers"]) for i, m in enumerate(report["measurements"])]:
        for j, layer in enumerate(layers):
            if layer["mean_ms"] < 0 or not 0 <= layer["share"] <= 1.0 + 1e-6:
                _fail(f"{path}[{j}]", "needs mean_ms >= 0 and share within [0, 1]")
    main = primary(report)
    if main is None:
        _fail("measurements", f"no measurement for the primary {report['part']} at {report['precision']}")
    for key in ("runs", "mean", "p50"):  # the top level is a copy of the primary: a mismatch is a writer bug
        if report["latency_ms"][key] != main["latency_ms"][key]:
            _fail(f"latency_ms.{key}", f"differs from the primary measurement's ({main['latency_ms'][key]})")
    for key, value in report["tools"].items():
        if value is not None and not isinstance(value, str):
            _fail(f"tools.{key}", f"expected a version string or null, got {_type_name(value)}")
    for i, art in enumerate(report["artifacts"]):
        if not re.fullmatch(r"[0-9a-f]{64}", art["sha256"]):
            _fail(f"artifacts[{i}].sha256", "is not 64 lowercase hex digits")
    try:
        datetime.fromisoformat(report["created"])
    except ValueError:
        _fail("created", f"{report['created']!r} is not an ISO 8601 time")
    return report


def load_report(path: str | Path) -> dict:
    """A run directory (or its report.json) -> the validated report dict."""
    path = Path(path)
    file = path / "report.json" if path.is_dir() else path
    if not file.is_file():
        raise InputError(f"no report.json at {path}", hint="pass a folder written by `edgekit deploy --out DIR`")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{file} is not valid JSON: {exc}", hint="re-run `edgekit deploy` to rewrite it") from None
    try:
        return validate(data)
    except InputError as exc:
        raise InputError(f"{file}: {exc.message}", hint=exc.hint) from None


# -- accessors: renderers go through these rather than re-deriving meaning from raw keys ------------------------
def measurements(report: dict) -> list[dict]:
    return list(report["measurements"])


def find(report: dict, part: str, precision: str) -> dict | None:
    """The measurement of `part` at `precision`, or None when that artifact was not measured."""
    return next((m for m in report["measurements"] if m["part"] == part and m["precision"] == precision), None)


def primary(report: dict) -> dict | None:
    return find(report, report["part"], report["precision"])


def is_latency_only(report: dict) -> bool:
    """Synthetic weights: the timings are real, every output (and so any fidelity figure) means nothing."""
    return report["weights"]["kind"] == "synthetic"


def latency_note(report: dict) -> str:
    """What the renderers print beside the LATENCY-ONLY flag (empty for real weights)."""
    if not is_latency_only(report):
        return ""
    note = report["weights"].get("note") or LATENCY_ONLY_NOTE
    return re.sub(r"^\s*latency[- ]only\s*[:,-]?\s*", "", note, flags=re.IGNORECASE) or note


def speedup(report: dict, part: str, slow: str = "fp32", fast: str = "int8") -> float | None:
    """Mean-latency ratio slow/fast for `part` (e.g. 2.5 means INT8 runs 2.5x faster); None if either is missing."""
    a, b = find(report, part, slow), find(report, part, fast)
    if a is None or b is None or b["latency_ms"]["mean"] <= 0:
        return None
    return a["latency_ms"]["mean"] / b["latency_ms"]["mean"]


def label(measurement: dict) -> str:
    return f"{measurement['part']} {measurement['precision']}"
