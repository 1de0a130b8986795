"""ONNX Runtime on a device: push the runner, the model and its inputs, time and profile, fetch, parse.

One pipeline of named steps with an always-run cleanup (TVM's rpc_runner shape). The device-side work is
`targets/device/ort_runner.py`, the same file on this machine and on a Raspberry Pi; what comes back is raw
(every latency sample, ONNX Runtime's profile JSON) and parsed here by pure functions.
"""
from __future__ import annotations

import json
import logging
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.attribution import attribute
from edgekit.errors import DeviceFailureError, EdgekitError
from edgekit.exporters.layer_map import LayerMap
from edgekit.store import sha256_file
from edgekit.targets.base import MeasureConfig, Transport
from edgekit.targets.timings import LayerTiming, RunStats

log = logging.getLogger(__name__)
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


def _remote_name(path: Path) -> str:
    # Content-addressed on the device too: a re-run with the same bytes skips the upload.
    return f"{sha256_file(path)[:16]}-{path.name}"


class OrtBackend:
    name = "onnxruntime"

    def __init__(self, python: str = "python3") -> None:
        self.python = python

    def measure(self, transport: Transport, model: Path, inputs: Path | None, layer_map: LayerMap | None,
                config: MeasureConfig, results_dir: Path) -> Measurement:
        work = transport.workdir()
        run_dir = posixpath.join(work, "runs", f"{sha256_file(model)[:12]}-{model.stem}")
        try:
            # prepare: the runner, the model (and its external data beside it, same name), the inputs
            remote_runner = posixpath.join(work, "ort_runner.py")
            transport.put(RUNNER, remote_runner)
            model_dir = posixpath.join(work, "models", _remote_name(model))
            remote_model = posixpath.join(model_dir, model.name)
            transport.put(model, remote_model)
            data = model.with_name(model.name + ".data")
            if data.exists():
                transport.put(data, posixpath.join(model_dir, data.name))
            argv = [self.python, remote_runner, "--model", remote_model, "--out", run_dir, *config.runner_args()]
            if inputs is not None:
                remote_inputs = posixpath.join(work, "inputs", _remote_name(inputs))
                transport.put(inputs, remote_inputs)
                argv += ["--inputs", remote_inputs]
            # profile
            result = transport.run(argv, timeout=config.timeout_s)
            if not result.ok:
                tail = "\n".join(result.stderr.strip().splitlines()[-15:])
                raise DeviceFailureError(f"the ONNX Runtime runner failed on {transport.host} (exit {result.returncode}):\n{tail}",
                                         hint="see the runner's error above; `edgekit doctor` checks the device's runtime")
            # fetch
            results_dir.mkdir(parents=True, exist_ok=True)
            local_result = results_dir / "result.json"
            transport.get(posixpath.join(run_dir, "result.json"), local_result)
            raw = json.loads(local_result.read_text())
            files = {"result": local_result}
            if raw.get("profile_file"):
                files["profile"] = results_dir / "ort_profile.json"
                transport.get(posixpath.join(run_dir, raw["profile_file"]), files["profile"])
            if raw.get("optimized_graph"):
                files["optimized"] = results_dir / "optimized.onnx"
                transport.get(posixpath.join(run_dir, raw["optimized_graph"]), files["optimized"])
        finally:
            try:
                transport.run(["rm", "-rf", "--", run_dir], timeout=60)  # cleanup, always
            except EdgekitError as exc:  # a dead link must not hide the error that is already on its way
                log.warning("could not clean %s on %s: %s", run_dir, transport.host, exc.message)
        return parse_results(model.name, raw, files, layer_map)


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
                       load_ms=raw.get("load_ms"), files=files, profiled_run_ms=profiled_run_ms)
