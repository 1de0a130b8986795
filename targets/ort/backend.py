"""ONNX Runtime on a device: push the runner, the model and its inputs, time and profile, fetch, parse.

One pipeline of named steps with an always-run cleanup (TVM's rpc_runner shape; the steps are in runner_job.py).
The device-side work is `targets/device/ort_runner.py`, the same file on this machine and on a Raspberry Pi; what
comes back is raw (every latency sample, ONNX Runtime's profile JSON) and parsed here by pure functions.
"""
from __future__ import annotations

from pathlib import Path

from edgekit.attribution import attribute
from edgekit.exporters.layer_map import LayerMap
from edgekit.targets.base import MeasureConfig, Transport
from edgekit.targets.runner_job import RunnerJob, run_job
from edgekit.targets.measurement import Measurement
from edgekit.targets.timings import LayerTiming, RunStats

RUNNER = Path(__file__).resolve().parents[1] / "device" / "ort_runner.py"


class OrtBackend:
    name = "onnxruntime"

    def __init__(self, python: str = "python3", providers: str = "auto") -> None:
        self.python = python
        self.providers = providers  # auto: the GPU providers where the device's onnxruntime has them, else the CPU

    def measure(self, transport: Transport, model: Path, inputs: Path | None, layer_map: LayerMap | None,
                config: MeasureConfig, results_dir: Path) -> Measurement:
        if transport.name == "adb":  # a phone's shell has no Python: onnxruntime_perf_test itself (android.py)
            from edgekit.targets.ort.android import measure_android_ort

            return measure_android_ort(transport, model, layer_map, config, results_dir)
        job = RunnerJob(RUNNER, "ONNX Runtime", self.python, ("--providers", self.providers))
        data = model.with_name(model.name + ".data")  # external weights, beside the model under the same name
        raw, files = run_job(job, transport, model, inputs, config, results_dir,
                             companions=[data] if data.exists() else [], wanted=_wanted)
        return parse_results(model.name, raw, files, layer_map)


def _wanted(raw: dict) -> dict[str, str]:
    """The raw files the runner wrote, by the keys parse_results reads."""
    wanted = {}
    if raw.get("profile_file"):
        wanted["profile"] = raw["profile_file"]  # ort_profile.json
    if raw.get("optimized_graph"):
        wanted["optimized"] = raw["optimized_graph"]  # optimized.onnx
    return wanted


def runtime_graph(path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """{node name: (inputs, outputs)} of the graph the runtime ran (its weights are not needed)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {n.name: (list(n.input), list(n.output)) for n in model.graph.node}


def parse_results(artifact: str, raw: dict, files: dict[str, Path], layer_map: LayerMap | None) -> Measurement:
    """Pure apart from reading the fetched files: runner JSON + ORT profile -> Measurement."""
    from edgekit.targets.ort.parse_ort_profile import parse_ort_profile

    samples = [float(v) for v in raw["latency_ms"]]
    layers: list[LayerTiming] = []
    profiled_run_ms = None
    if "profile" in files:
        # runners before profile_warmup_runs existed ran one warm-up run: the parser's default
        profile = parse_ort_profile(files["profile"].read_text(), warmup_runs=raw.get("profile_warmup_runs"))
        layers = list(profile.layers)
        profiled_run_ms = profile.summary.get("mean_run_ms")
    graph = runtime_graph(files["optimized"]) if "optimized" in files else None
    modules = attribute([row.name for row in layers], layer_map, graph) if layer_map else [""] * len(layers)
    rows = [{"name": row.name, "op_type": row.op_type, "module": module, "mean_ms": row.mean_ms, "share": row.share,
             **({"provider": row.extra["provider"]} if row.extra.get("provider") else {})}
            for row, module in zip(layers, modules)]
    runtime = dict(raw.get("runtime", {}))
    if rows and any("provider" in r for r in rows):  # which execution provider ran how much of the graph
        by: dict[str, float] = {}
        for r in rows:
            by[r.get("provider", "?")] = by.get(r.get("provider", "?"), 0.0) + (r["mean_ms"] or 0.0)
        runtime["time_by_provider_ms"] = {k: round(v, 4) for k, v in by.items()}
    return Measurement(artifact=artifact, latency=RunStats.from_samples(samples), raw_ms=samples,
                       warmup=int(raw.get("warmup", 0)), layers=rows, runtime=runtime,
                       load_ms=raw.get("load_ms"), files=files, profiled_run_ms=profiled_run_ms,
                       layers_note=None if "profile" in files else "no per-op profile: profiling was off (--profile-runs 0)")
