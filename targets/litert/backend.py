"""LiteRT (.tflite) on a device: push the runner, the model and its inputs, time, profile per op where the device
can, fetch, parse.

The device-side work is `targets/device/litert_runner.py` (the same file here and on a Raspberry Pi), run through
the steps every backend shares (runner_job.py). Per-op rows come only from a `benchmark_model` binary on the
device, whose raw console output is fetched and parsed here by the existing pure parser; where there is none the
Measurement has no layers and `layers_note` says why, so a report shows "no per-op profile" rather than an empty
table that looks like a profile.
"""
from __future__ import annotations

import re
from pathlib import Path

from edgekit.errors import ParseError
from edgekit.exporters.layer_map import LayerMap
from edgekit.targets.base import MeasureConfig, Transport
from edgekit.targets.measurement import Measurement
from edgekit.targets.runner_job import RunnerJob, run_job
from edgekit.targets.timings import RunStats

RUNNER = Path(__file__).resolve().parents[1] / "device" / "litert_runner.py"
_ROW_TENSOR = re.compile(r"^\[(.*)\]:\d+$")  # benchmark_model names a row `[<output tensor name>]:<node index>`


class LiteRTBackend:
    name = "litert"

    def __init__(self, python: str = "python3", benchmark_model: str | None = None, save_outputs: bool = False) -> None:
        self.python = python
        self.benchmark_model = benchmark_model  # the device's benchmark_model; None: the runner looks on PATH and ~
        self.save_outputs = save_outputs  # fetch the last run's outputs (outputs.npz) too

    def runner_options(self) -> tuple[str, ...]:
        options: list[str] = []
        if self.benchmark_model:
            options += ["--benchmark-model", self.benchmark_model]
        if self.save_outputs:
            options.append("--save-outputs")
        return tuple(options)

    def measure(self, transport: Transport, model: Path, inputs: Path | None, layer_map: LayerMap | None,
                config: MeasureConfig, results_dir: Path) -> Measurement:
        job = RunnerJob(RUNNER, "LiteRT", self.python, self.runner_options())
        raw, files = run_job(job, transport, model, inputs, config, results_dir, wanted=_wanted)
        return parse_results(model.name, raw, files, layer_map)


def _wanted(raw: dict) -> dict[str, str]:
    wanted = {}
    if raw.get("profile_file"):
        wanted["profile"] = raw["profile_file"]  # benchmark_model.txt
    if raw.get("outputs_file"):
        wanted["outputs"] = raw["outputs_file"]  # outputs.npz
    return wanted


def parse_results(artifact: str, raw: dict, files: dict[str, Path], layer_map: LayerMap | None) -> Measurement:
    """Pure apart from reading the fetched files: runner JSON + benchmark_model output -> Measurement."""
    from edgekit.targets.litert.parse_benchmark_model import parse_benchmark_model

    samples = [float(v) for v in raw["latency_ms"]]
    note = raw.get("profile_note")
    layers, profiled_run_ms = [], None
    if "profile" in files:
        profiler = raw.get("profiler") or {}
        try:
            parsed = parse_benchmark_model(files["profile"].read_text(errors="replace"))
        except ParseError:
            if profiler.get("returncode") == 0:
                raise  # the tool said it worked: output we cannot read is a real problem
            parsed = None  # it failed and printed nothing usable: the runner's note already says so
        if parsed is not None:
            layers = list(parsed.layers)
            timed = [r for r in parsed.runs if r.mean_ms is not None]
            profiled_run_ms = timed[-1].mean_ms if timed else None
            op_profile = parsed.summary.get("op_profile") or {}
            if op_profile.get("whole_graph_delegated"):
                note = "the delegate ran the whole graph as one node: benchmark_model has no per-layer detail"
            elif not layers and note is None:
                note = "benchmark_model printed no op table"
    modules = _modules([row.name for row in layers], layer_map)
    rows = [{"name": row.name, "op_type": row.op_type, "module": module, "mean_ms": row.mean_ms, "share": row.share}
            for row, module in zip(layers, modules)]
    return Measurement(artifact=artifact, latency=RunStats.from_samples(samples), raw_ms=samples,
                       warmup=int(raw.get("warmup", 0)), layers=rows, runtime=raw.get("runtime", {}),
                       load_ms=raw.get("load_ms"), files=files, profiled_run_ms=profiled_run_ms, layers_note=note)


def _modules(names: list[str], layer_map: LayerMap | None) -> list[str]:
    if not layer_map:
        return [""] * len(names)
    from edgekit.attribution import attribute

    # The map is keyed by tensor / node names; a row carries its output tensor's name inside `[...]:index`.
    return attribute([(m.group(1) if (m := _ROW_TENSOR.match(n)) else n) for n in names], layer_map)
