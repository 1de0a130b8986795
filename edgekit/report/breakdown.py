"""Aggregations every renderer shows the same way: top layers, time per module path, time per op type,
and the number formats (so the md, the html and the compare table print identical figures)."""
from __future__ import annotations

from dataclasses import dataclass

from edgekit.report import schema

UNATTRIBUTED = "(unattributed)"
MISSING = "—"  # what every table prints for a figure the run did not measure


@dataclass(frozen=True)
class Group:
    """Time summed over the layers that share a key (a module prefix or an op type)."""

    key: str
    layers: int
    ms: float
    share: float  # of the summed layer time of the measurement


def top_layers(layers: list[dict], n: int = 15) -> list[dict]:
    """The n slowest layers; ties keep the profiler's order so the output is stable."""
    return sorted(layers, key=lambda r: -r["mean_ms"])[:n]


def module_group(module: str | None, depth: int | None = None) -> str:
    """The module path cut to `depth` components; by default, cut just after the first numeric index, which
    lands on the repeated unit of every family (image_encoder.blocks.3, image_encoder.layers.1,
    mask_decoder.transformer.layers.0) and on depth 3 when the path has no index."""
    if not module:
        return UNATTRIBUTED
    parts = module.split(".")
    if depth is None:
        idx = next((i for i, p in enumerate(parts) if p.isdigit()), None)
        depth = idx + 1 if idx is not None else 3
    return ".".join(parts[:max(1, depth)])


def _groups(pairs: list[tuple[str, float]]) -> list[Group]:
    total = sum(ms for _, ms in pairs)
    acc: dict[str, list[float]] = {}
    for key, ms in pairs:
        acc.setdefault(key, []).append(ms)
    groups = [Group(k, len(v), sum(v), (sum(v) / total) if total > 0 else 0.0) for k, v in acc.items()]
    return sorted(groups, key=lambda g: -g.ms)


def by_module(layers: list[dict], depth: int | None = None) -> list[Group]:
    return _groups([(module_group(r["module"], depth), r["mean_ms"]) for r in layers])


def by_op_type(layers: list[dict]) -> list[Group]:
    return _groups([(r["op_type"] or "?", r["mean_ms"]) for r in layers])


def limit(groups: list[Group], n: int) -> list[Group]:
    """At most n groups: the n-1 largest and one "other (k groups)" row that keeps the total honest."""
    if len(groups) <= n:
        return groups
    head, tail = groups[: n - 1], groups[n - 1:]
    other = Group(f"other ({len(tail)} groups)", sum(g.layers for g in tail), sum(g.ms for g in tail),
                  sum(g.share for g in tail))
    return [*head, other]


def latency_grid(report: dict) -> tuple[list[str], list[list[str]]]:
    """Rows = parts, columns = mean/p50/p90 per measured precision side by side, then FP32/x speed-ups."""
    present = {m["precision"] for m in schema.measurements(report)}
    precisions = [p for p in schema.PRECISIONS if p in present]
    faster = [p for p in precisions if p != "fp32"] if "fp32" in precisions else []
    headers = ["part"] + [f"{p.upper()} {s}" for p in precisions for s in ("mean", "p50", "p90")]
    headers += [f"speed-up FP32/{p.upper()}" for p in faster]
    rows = []
    for part in schema.PARTS:
        found = [schema.find(report, part, p) for p in precisions]
        if not any(found):
            continue
        row = [part]
        for m in found:
            lat = m["latency_ms"] if m else {}
            row += [ms(lat.get("mean")), ms(lat.get("p50")), ms(lat.get("p90"))]
        rows.append(row + [ratio(schema.speedup(report, part, "fp32", p)) for p in faster])
    return headers, rows


# -- number formats ----------------------------------------------------------------------------------------------
def ms(value: float | None) -> str:
    """Milliseconds with 3 significant decimals below 10 ms, 2 above: latency spans 0.01 ms to seconds."""
    if value is None:
        return MISSING
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"


def pct(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.1f}%"


def ratio(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}x"


def db(value: float | None) -> str:
    return MISSING if value is None else f"{value:.1f} dB"


def num(value: float | None, digits: int = 3) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def count(value: int | None) -> str:
    """Parameter counts as survey tables print them (10.13M)."""
    if value is None:
        return MISSING
    return f"{value / 1e6:.2f}M" if value >= 1e5 else f"{value:,}"


def gflops(value: float | None) -> str:
    return MISSING if value is None else f"{value:.1f}"


def size(n_bytes: int) -> str:
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{n_bytes} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def runtime_detail(rt: dict) -> str:
    """How the runtime ran the primary artifact, beyond name and version: the execution providers (ONNX Runtime),
    the delegate and how much of the graph it took (LiteRT), and where the per-op rows came from."""
    parts = list(rt.get("providers") or [])
    if rt.get("delegate"):
        share = rt.get("delegated_share")
        parts.append(f"{rt['delegate']} delegate" + (f" ({share:.0%} of nodes)" if share is not None else ""))
    if rt.get("kernel_mode") == "builtin":
        parts.append("builtin kernels")
    if rt.get("op_profiler"):
        parts.append(f"per-op: {rt['op_profiler']}")
    if rt.get("gpu"):
        parts.append(f"GPU {rt['gpu']}")
    if rt.get("cuda_graph"):  # timed with --useCudaGraph; "fallback" when trtexec could not capture the engine
        parts.append(f"CUDA graph {rt['cuda_graph']}")
    engine = rt.get("engine")
    if engine:
        parts.append("engine reused from the device cache" if engine.get("reused") else
                     f"engine built in {engine.get('build_seconds') or 0:.1f} s")
    return ", ".join(parts)


def device_rows(report: dict) -> list[list[str]]:
    """[field, value] rows of what the device said about itself beyond the basics (a Jetson's module, software,
    power mode and clocks) and the warnings the deploy gave about it; empty for other devices."""
    dev = report["target"]["device"]
    jetson = dev.get("jetson") or {}
    rows = []
    if jetson:
        mode = jetson.get("power_mode")
        locked = jetson.get("clocks_locked")
        rows += [["module", jetson.get("module") or MISSING],
                 ["L4T / JetPack", f"{jetson.get('l4t') or MISSING} / {jetson.get('jetpack') or MISSING}"],
                 ["TensorRT / CUDA", f"{jetson.get('tensorrt') or MISSING} / {jetson.get('cuda') or MISSING}"],
                 ["power mode", f"{mode['name']} (id {mode['id']}{', the maximum' if mode['max'] else ', NOT the maximum'})"
                                if mode else MISSING],
                 ["clocks", {True: "locked (jetson_clocks)", False: "not locked (DVFS)", None: MISSING}[locked]]]
    rows += [["warning", w] for w in dev.get("warnings") or []]
    return rows


def power_rows(report: dict) -> list[list[str]]:
    """One row per measured artifact with a power block: input-rail power busy and idle, energy per inference,
    GPU load and clocks, hottest sensor, throttling."""
    rows = []
    for m in report["measurements"]:
        p = m.get("power")
        if not p:
            continue
        hottest = max(p["temps_max_c"].items(), key=lambda kv: kv[1]) if p.get("temps_max_c") else None
        rows.append([f"{m['part']} {m['precision']}", num(p.get("busy_input_mw"), 0), num(p.get("idle_input_mw"), 0),
                     num(p.get("energy_mj_per_inference"), 3), num(p.get("energy_total_mj_per_inference"), 3),
                     num(p.get("gpu_load_pct"), 0), num(p.get("gpu_mhz"), 0), num(p.get("emc_mhz"), 0),
                     f"{hottest[0]} {hottest[1]:.1f} C" if hottest else MISSING,
                     "; ".join(p.get("throttle_reasons") or []) or "no"])
    return rows


POWER_HEADERS = ["measurement", "busy mW", "idle mW", "mJ / inference", "mJ / inference incl. idle", "GPU load %",
                 "GPU MHz", "EMC MHz", "hottest", "throttled"]
