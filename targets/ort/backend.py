"""ONNX Runtime on a device: push the runner, the model and its inputs, time and profile, fetch, parse.

One pipeline of named steps with an always-run cleanup (TVM's rpc_runner shape; the steps are in runner_job.py).
The device-side work is `targets/device/ort_runner.py`, the same file on this machine and on a Raspberry Pi; what
comes back is raw (every latency sample, ONNX Runtime's profile JSON) and parsed here by pure functions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgekit.attribution import attribute
from edgekit.exporters.layer_map import LayerMap
from edgekit.targets.base import MeasureConfig, Transport
from edgekit.targets.runner_job import RunnerJob, run_job
from edgekit.targets.timings import LayerTiming, RunStats
RUNNER = Path(__file__).resolve().parents[1] / "device" / "ort_runner.py"


@dataclass
class Measurement:
    """One artifact measured on one device."""

    artifact: str
    latency: RunStats
    raw_ms: list[float]
    warmup: int
    layers: list[dict] = field(default_factory=list)  # LayerTiming dicts + "module"
    runtime: dict = field(default_factory=dict)
    load_ms: float | None = None
    files: dict[str, Path] = field(default_factory=dict)  # raw outputs fetched home
    profiled_run_ms: float | None = None  # the profiler's own mean run span, over the runs the layers came from
    layers_note: str | None = None  # why `layers` is empty or partial (no per-op profiler on the device, ...)

    def coverage(self) -> dict[str, float]:
        total = sum(row["mean_ms"] or 0.0 for row in self.layers)
        attributed = sum(row["mean_ms"] or 0.0 for row in self.layers if row.get("module"))
        mean = self.latency.mean_ms or 0.0
        out = {"layer_sum_ms": total, "attributed_share": attributed / total if total else 0.0,
               "sum_vs_mean": total / mean if mean else 0.0}
        # Node events nest inside their run's span, so this ratio is at most 1 whatever the machine's load; well
        # below 1 means time the profile did not put on any layer. sum_vs_mean compares against separately timed
        # runs and is only indicative on a busy machine.
        if self.profiled_run_ms:
            out["sum_vs_profiled_run"] = total / self.profiled_run_ms
        return out


class OrtBackend:
    name = "onnxruntime"

    def __init__(self, python: str = "python3") -> None:
        self.python = python

    def measure(self, transport: Transport, model: Path, inputs: Path | None, layer_map: LayerMap | None,
                config: MeasureConfig, results_dir: Path) -> Measurement:
        job = RunnerJob(RUNNER, "ONNX Runtime", self.python)
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
    rows = [{"name": row.name, "op_type": row.op_type, "module": module, "mean_ms": row.mean_ms, "share": row.share}
            for row, module in zip(layers, modules)]
    return Measurement(artifact=artifact, latency=RunStats.from_samples(samples), raw_ms=samples,
                       warmup=int(raw.get("warmup", 0)), layers=rows, runtime=raw.get("runtime", {}),
                       load_ms=raw.get("load_ms"), files=files, profiled_run_ms=profiled_run_ms,
                       layers_note=None if "profile" in files else "no per-op profile: profiling was off (--profile-runs 0)")
