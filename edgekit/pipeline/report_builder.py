"""Assemble report.json (schema edgekit.report/1, see edgekit/report/schema.py) from a deploy's results."""
from __future__ import annotations

import platform
from typing import TYPE_CHECKING

from edgekit import __version__
from edgekit.report.schema import LATENCY_ONLY_NOTE, SCHEMA
from edgekit.store import path_bytes, sha256_path

if TYPE_CHECKING:
    from edgekit.pipeline.artifacts import Artifact
    from edgekit.pipeline.context import ModelContext
    from edgekit.pipeline.deploy import DeployConfig
    from edgekit.targets.measurement import Measurement
    from edgekit.targets.target import Target


def latency_block(m: "Measurement") -> dict:
    s = m.latency
    return {"runs": s.count, "warmup": m.warmup, "mean": s.mean_ms, "p50": s.median_ms,
            "p90": s.percentiles_ms.get("90", s.max_ms), "min": s.min_ms, "max": s.max_ms, "stdev": s.std_ms,
            "raw": [round(v, 4) for v in m.raw_ms],
            **({} if m.raw_ms else {"raw_note": m.runtime.get("raw_note") or "the device's tool gave no per-run times"})}


def _layers(m: "Measurement") -> list[dict]:
    # the common fields, plus the modules a fused engine layer covers (TensorRT) where there are several
    return [{"name": r["name"], "op_type": r["op_type"] or "?", "module": r["module"] or None,
             "mean_ms": r["mean_ms"] or 0.0, "share": r["share"] or 0.0,
             **({"modules": r["modules"]} if len(r.get("modules") or ()) > 1 else {}),
             **({"provider": r["provider"]} if r.get("provider") else {}),
             # Core ML: the planned device, and that the time is an estimate (cost share x measured mean)
             **({"device": r["device"]} if r.get("device") else {}),
             **({"estimated": True} if r.get("estimated") else {})} for r in m.layers]


def _runtime(m: "Measurement", cfg: "DeployConfig") -> dict:
    """What ran the artifact, as the device's runner reported it (LiteRT adds its delegate and kernel mode)."""
    runtime = m.runtime
    out = {"name": runtime.get("name", "onnxruntime"), "version": runtime.get("version", "?"),
           "threads": int(runtime.get("threads", cfg.measure.threads)), "providers": runtime.get("providers", [])}
    for key in ("delegate", "kernel_mode", "op_profiler", "module", "delegated_share", "fully_accelerated",
                "gpu", "cuda_graph", "engine", "gpu_compute_mean_ms", "warmup_ms", "time_by_provider_ms",
                "providers_requested", "compute_units", "by_compute_units", "device_validation", "macos", "compile",
                "threads_note"):
        if runtime.get(key) is not None:
            out[key] = runtime[key]
    return out


def _tools() -> dict:
    from importlib import metadata

    out = {"edgekit": __version__, "python": platform.python_version()}
    for dist in ("torch", "onnxruntime", "onnx", "ai-edge-litert", "litert-torch", "ai-edge-quantizer"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass  # an optional extra that is not installed
    return out


def _variant(ctx: "ModelContext", encoder_info: dict) -> dict:
    from edgekit.variants.stats import cached_gflops, count

    stats = count(ctx.spec.name)
    params, encoder, gflops = stats.params, stats.encoder_params, None
    if ctx.encoder_onnx is not None:  # an external encoder: its weights are counted from the file; FLOPs unknown
        encoder = encoder_info["params"]  # counted when the file was imported
        params = stats.params - (stats.encoder_params or 0) + encoder
    elif not ctx.spec.external_encoder:
        gflops = cached_gflops(ctx.spec.name)
    return {"family": ctx.spec.family, "params": params, "encoder_params": encoder, "encoder_gflops": gflops,
            "input_size": ctx.spec.input_size}


def _encoder_onnx(ctx: "ModelContext") -> dict:
    if ctx.encoder_onnx is None:
        return {}
    return {"encoder_onnx": {"path": str(ctx.encoder_onnx), "sha256": ctx.encoder_onnx_sha256}}


def build_report(cfg: "DeployConfig", ctx: "ModelContext", target: "Target",
                 measurements: list[tuple["Artifact", "Measurement"]], fidelity: dict | None) -> dict:
    from edgekit.pipeline.deploy import utc_now

    rows = []
    for artifact, m in measurements:
        rows.append({"part": artifact.part, "precision": artifact.precision, "format": artifact.format, "artifact": artifact.name,
                     "runtime": _runtime(m, cfg),
                     "latency_ms": latency_block(m), "layers": _layers(m), "coverage": m.coverage(),
                     **({"layers_note": m.layers_note} if m.layers_note else {}),
                     **({"power": m.power} if m.power else {})})
    primary = next(r for r in rows if r["part"] == "encoder" and r["precision"] == cfg.precision)
    artifacts = []
    for artifact, _ in measurements:
        warnings = artifact.info.get("ane_warnings") or []
        for path in artifact.files():
            artifacts.append({"path": path.name, "sha256": sha256_path(path), "bytes": path_bytes(path),
                              "part": artifact.part, "precision": artifact.precision, "reused": artifact.reused,
                              **({"warnings": list(warnings)} if warnings and path == artifact.path else {})})
    device = {k: v for k, v in target.device.items() if v is not None}
    device.setdefault("model", "unknown")
    device.setdefault("arch", "unknown")
    device.setdefault("cpus", 0)
    return {
        "schema": SCHEMA, "model": ctx.spec.name, "part": "encoder", "format": cfg.format or "onnx",
        "precision": cfg.precision,
        "weights": ({"kind": "synthetic", "path": None, "sha256": None, "note": LATENCY_ONLY_NOTE} if ctx.synthetic else
                    {"kind": "checkpoint", "path": str(cfg.checkpoint), "sha256": ctx.checkpoint_sha256, "note": None}),
        **_encoder_onnx(ctx),
        "variant": _variant(ctx, next(a.info for a, _ in measurements if a.part == "encoder")),
        "target": {"name": target.name, "transport": target.transport.name, "device": device},
        "runtime": primary["runtime"], **({"power": primary["power"]} if primary.get("power") else {}),
        "latency_ms": primary["latency_ms"], "layers": primary["layers"], "coverage": primary["coverage"],
        "fidelity": fidelity, "measurements": rows, "artifacts": artifacts, "steps": ctx.log.steps,
        "tools": _tools(), "created": utc_now(), **_quality(ctx, rows),
    }


def _quality(ctx: "ModelContext", rows: list[dict]) -> dict:
    """The sensitivity, mixed-precision and ground-truth blocks a deploy produced (absent when it did not)."""
    out = {k: v for k, v in ctx.quality.items() if k in ("sensitivity", "accuracy")}
    mixed = ctx.quality.get("mixed_precision")
    if mixed:
        # what keeping layers in float costs: each part's mean latency at fp32, full int8 and int8-mixed
        latency = {f"{r['part']}_{r['precision']}": r["latency_ms"]["mean"] for r in rows}
        out["mixed_precision"] = {**mixed, "latency_ms": latency}
    return out
