"""LiteRT (.tflite) on a device: push the runner, the model and its inputs, time, profile per op where the device
can, fetch, parse.

The device-side work is `targets/device/litert_runner.py` with its companions `litert_profiler.py` and
`litert_capi.py` (the same files here and on a Raspberry Pi), run through the steps every backend shares
(runner_job.py). Per-op rows come from the LiteRT C profiler of the ai-edge-litert wheel (the raw events in
litert_ops.json, aligned to TFLite nodes here by parse_litert_ops.py) or, where that cannot run, from a
`benchmark_model` binary on the device (its raw console output, parsed by parse_benchmark_model.py). Where
there is neither, the Measurement has no layers and `layers_note` says why, so a report shows "no per-op
profile" rather than an empty table that looks like one.
"""
from __future__ import annotations

import re
from pathlib import Path

from edgekit.errors import ParseError
from edgekit.exporters.layer_map import LayerMap
from edgekit.targets.base import MeasureConfig, Transport
from edgekit.targets.measurement import Measurement
from edgekit.targets.runner_job import RunnerJob, run_job
from edgekit.targets.timings import LayerTiming, RunStats

RUNNER = Path(__file__).resolve().parents[1] / "device" / "litert_runner.py"
# imported by the runner: pushed beside it
COMPANIONS = (RUNNER.with_name("litert_profiler.py"), RUNNER.with_name("litert_capi.py"))
OP_PROFILERS = ("auto", "litert", "benchmark_model", "none")
KERNEL_MODES = ("xnnpack", "builtin")
_ROW_TENSOR = re.compile(r"^\[(.*)\]:\d+$")  # benchmark_model names a row `[<output tensor name>]:<node index>`


class LiteRTBackend:
    name = "litert"

    def __init__(self, python: str = "python3", benchmark_model: str | None = None, save_outputs: bool = False,
                 op_profiler: str = "auto", kernel_mode: str = "xnnpack", delegate: str = "xnnpack") -> None:
        if op_profiler not in OP_PROFILERS:
            raise ValueError(f"op_profiler must be one of {', '.join(OP_PROFILERS)}, not {op_profiler!r}")
        if kernel_mode not in KERNEL_MODES:
            raise ValueError(f"kernel_mode must be one of {', '.join(KERNEL_MODES)}, not {kernel_mode!r}")
        self.python = python
        self.benchmark_model = benchmark_model  # the device's benchmark_model; None: the runner looks on PATH and ~
        self.save_outputs = save_outputs  # fetch the last run's outputs (outputs.npz) too
        self.op_profiler = op_profiler  # auto: the LiteRT C profiler, else benchmark_model, else none
        self.kernel_mode = kernel_mode  # builtin: TFLite's builtin kernels (exact nodes, not the deployed path)
        from edgekit.targets.litert.android import DELEGATES

        if delegate not in DELEGATES:
            raise ValueError(f"delegate must be one of {', '.join(DELEGATES)}, not {delegate!r}")
        self.delegate = delegate  # Android over adb: benchmark_model's delegate (elsewhere the runner uses XNNPACK)

    def runner_options(self) -> tuple[str, ...]:
        options: list[str] = []
        if self.benchmark_model:
            options += ["--benchmark-model", self.benchmark_model]
        if self.save_outputs:
            options.append("--save-outputs")
        if self.op_profiler != "auto":
            options += ["--op-profiler", self.op_profiler]
        if self.kernel_mode != "xnnpack":
            options += ["--kernel-mode", self.kernel_mode]
        return tuple(options)

    def measure(self, transport: Transport, model: Path, inputs: Path | None, layer_map: LayerMap | None,
                config: MeasureConfig, results_dir: Path) -> Measurement:
        if transport.name == "adb":  # a phone's shell has no Python: benchmark_model itself (android.py)
            from edgekit.targets.litert.android import measure_android

            return measure_android(transport, model, layer_map, config, results_dir, self.benchmark_model,
                                   self.delegate)
        if self.delegate != "xnnpack":
            from edgekit.errors import InputError

            raise InputError("--delegate applies to Android phones over adb (benchmark_model); elsewhere edgekit's "
                             "runner times LiteRT on XNNPACK", hint="drop --delegate, or deploy with --serial")
        job = RunnerJob(RUNNER, "LiteRT", self.python, self.runner_options(), scripts=COMPANIONS)
        raw, files = run_job(job, transport, model, inputs, config, results_dir, wanted=_wanted)
        return parse_results(model.name, raw, files, layer_map)


def _wanted(raw: dict) -> dict[str, str]:
    wanted = {}
    if raw.get("profile_file"):
        wanted["profile"] = raw["profile_file"]  # benchmark_model.txt
    if raw.get("ops_file"):
        wanted["ops"] = raw["ops_file"]  # litert_ops.json
    if raw.get("outputs_file"):
        wanted["outputs"] = raw["outputs_file"]  # outputs.npz
    return wanted


def parse_results(artifact: str, raw: dict, files: dict[str, Path], layer_map: LayerMap | None) -> Measurement:
    """Pure apart from reading the fetched files: runner JSON + litert_ops.json or benchmark_model output ->
    Measurement."""
    samples = [float(v) for v in raw["latency_ms"]]
    note = raw.get("profile_note")
    layers: list[LayerTiming] = []
    profiled_run_ms = None
    runtime = dict(raw.get("runtime", {}))
    if "ops" in files:
        layers, profiled_run_ms, note, op_runtime = _from_litert_ops(files["ops"].read_text(errors="replace"), note)
        runtime.update(op_runtime)
    elif "profile" in files:
        layers, profiled_run_ms, note = _from_benchmark_model(files["profile"].read_text(errors="replace"),
                                                              raw.get("profiler") or {}, note)
        runtime["op_profiler"] = "benchmark_model"
    modules = _modules(layers, layer_map)
    rows = [{"name": row.name, "op_type": row.op_type, "module": module, "mean_ms": row.mean_ms, "share": row.share,
             **{k: row.extra[k] for k in _ROW_EXTRA if k in row.extra}}
            for row, module in zip(layers, modules)]
    return Measurement(artifact=artifact, latency=RunStats.from_samples(samples), raw_ms=samples,
                       warmup=int(raw.get("warmup", 0)), layers=rows, runtime=runtime,
                       load_ms=raw.get("load_ms"), files=files, profiled_run_ms=profiled_run_ms, layers_note=note)


# what a LiteRT C profiler row keeps beside the common fields: its node, and the runtime operators timed for it
_ROW_EXTRA = ("node_index", "runtime_ops", "match")


def _from_litert_ops(text: str, note: str | None) -> tuple[list[LayerTiming], float | None, str | None, dict]:
    from edgekit.targets.litert.parse_litert_ops import parse_litert_ops

    parsed = parse_litert_ops(text)  # the runner wrote it after the runs succeeded: unreadable is a real error
    summary = parsed.summary
    notes = [note] if note else []
    if summary.get("kernel_mode") == "builtin":
        notes.append("per-op times of TFLite's builtin kernels (--kernel-mode builtin), not of the XNNPACK path "
                     "that is deployed: they run several times slower")
    if summary.get("unmatched_ops"):
        notes.append(f"partial attribution: {summary['unmatched_ops']} runtime operators "
                     f"({summary['unmatched_ms']:.3f} ms per run) matched no TFLite node; they count in the sum "
                     "without a module")
    if not parsed.layers:
        notes.append("the LiteRT profiler recorded no operator events")
    op_runtime = {"op_profiler": "litert", "kernel_mode": summary.get("kernel_mode"),
                  "delegate": parsed.meta.get("delegate"), "op_profiler_threads": parsed.meta.get("threads"),
                  "nodes": summary.get("nodes"), "delegated_nodes": summary.get("delegated_nodes"),
                  "delegated_share": summary.get("delegated_share"),
                  "fully_accelerated": summary.get("fully_accelerated"),
                  "fused_nodes": [f"{n['op']}:{n['index']}" for n in summary.get("unmatched_nodes", [])]}
    return list(parsed.layers), summary.get("profiled_run_ms"), "; ".join(notes) or None, op_runtime


def _from_benchmark_model(text: str, profiler: dict, note: str | None) -> tuple[list[LayerTiming], float | None, str | None]:
    from edgekit.targets.litert.parse_benchmark_model import parse_benchmark_model

    try:
        parsed = parse_benchmark_model(text)
    except ParseError:
        if profiler.get("returncode") == 0:
            raise  # the tool said it worked: output we cannot read is a real problem
        return [], None, note  # it failed and printed nothing usable: the runner's note already says so
    return _layers_of(parsed, note)


def _layers_of(parsed, note: str | None) -> tuple[list[LayerTiming], float | None, str | None]:
    """A parsed benchmark_model output -> (op rows, the profiled run's mean, the note about its detail)."""
    layers = list(parsed.layers)
    timed = [r for r in parsed.runs if r.mean_ms is not None]
    profiled_run_ms = timed[-1].mean_ms if timed else None
    op_profile = parsed.summary.get("op_profile") or {}
    if op_profile.get("whole_graph_delegated"):
        note = "the delegate ran the whole graph as one node: benchmark_model has no per-layer detail"
    elif not layers and note is None:
        note = "benchmark_model printed no op table"
    return layers, profiled_run_ms, note


def _modules(layers: list[LayerTiming], layer_map: LayerMap | None) -> list[str]:
    if not layer_map:
        return [""] * len(layers)
    from edgekit.attribution import attribute

    # The map is keyed by tensor names and "node:<index>"; a benchmark_model row carries its output tensor's
    # name inside `[...]:index`, a LiteRT profiler row is named by it (and knows its node index).
    names = [(m.group(1) if (m := _ROW_TENSOR.match(row.name)) else row.name) for row in layers]
    modules = attribute(names, layer_map)
    for i, row in enumerate(layers):
        index = row.extra.get("node_index")
        if not modules[i] and index is not None:
            modules[i] = layer_map.nodes.get(f"node:{index}", "")
    return modules
