"""TensorRT on a device (a Jetson): push the runner, the TensorRT-ready ONNX with its build spec and the inputs;
the runner builds the engine with trtexec (cached on the device), times and profiles it and samples power; fetch
everything raw and parse it here.

The device-side work is targets/device/trt_runner.py (standard library only). What comes back: trtexec's logs and
JSON exports (--exportTimes, --exportProfile, --exportLayerInfo) and the power samples, read by the pure parsers
(parse_trtexec_json.py, engine_layers.py, device/jetson_power.py). A failure the runner met (no trtexec, a failed
build) arrives as result.json's `error`, with the logs, and becomes one DeviceFailureError naming the fix.
"""
from __future__ import annotations

from pathlib import Path

from edgekit.errors import DeviceFailureError, InputError
from edgekit.exporters.layer_map import LayerMap
from edgekit.targets.base import MeasureConfig, Transport
from edgekit.targets.measurement import Measurement
from edgekit.targets.runner_job import RunnerJob, run_job
from edgekit.targets.timings import RunStats

RUNNER = Path(__file__).resolve().parents[1] / "device" / "trt_runner.py"
INSTALL = ("install TensorRT on the device (JetPack: sudo apt install nvidia-jetpack, which puts trtexec in "
           "/usr/src/tensorrt/bin), or name it with --trtexec")
_HINTS = {3: INSTALL,
          4: "the build log above names what TensorRT rejected; --precision fp32 or fp16 avoids INT8 QDQ problems, "
             "--format onnx measures the model under ONNX Runtime meanwhile",
          5: "the engine built but did not run: see the run log; `edgekit doctor` checks the device"}


def require_trtexec(target) -> str:
    """Where trtexec is on the target (the Jetson facts' answer, else one probe); DeviceFailureError naming the
    fix when it is nowhere (checked before any export, so a missing tool costs no waiting)."""
    known = (target.device.get("jetson") or {}).get("trtexec")
    if known:
        return known
    options = target.backend_options.get("tensorrt", {})
    probe = ["sh", "-c", 'for t in "$@"; do command -v "$t" && exit 0; test -x "$t" && echo "$t" && exit 0; done; exit 1',
             "sh", *([options["trtexec"]] if options.get("trtexec") else []), "trtexec", "/usr/src/tensorrt/bin/trtexec"]
    result = target.transport.run(probe, timeout=60)
    if result.ok and result.stdout.strip():
        return result.stdout.strip().splitlines()[0]
    raise DeviceFailureError(f"no trtexec on {target.transport.host}: TensorRT engines are built there with it",
                             hint=INSTALL)


class TensorRTBackend:
    name = "tensorrt"

    def __init__(self, python: str = "python3", trtexec: str | None = None, tegrastats: str = "auto",
                 cuda_graph: bool = True, idle_seconds: float = 2.0, engine_cache: str | None = None) -> None:
        self.python = python
        self.trtexec = trtexec  # the device's trtexec; None: PATH, then /usr/src/tensorrt/bin
        self.tegrastats = tegrastats  # path, "auto" (PATH) or "none" (the INA3221 rails in sysfs)
        self.cuda_graph = cuda_graph  # time with --useCudaGraph (trtexec falls back when capture fails: recorded)
        self.idle_seconds = idle_seconds
        self.engine_cache = engine_cache

    def runner_options(self) -> tuple[str, ...]:
        options = ["--tegrastats", self.tegrastats, "--idle-seconds", f"{self.idle_seconds:g}",
                   "--cuda-graph", "on" if self.cuda_graph else "off"]
        if self.trtexec:
            options += ["--trtexec", self.trtexec]
        if self.engine_cache:
            options += ["--engine-cache", self.engine_cache]
        return tuple(options)

    def measure(self, transport: Transport, model: Path, inputs: Path | None, layer_map: LayerMap | None,
                config: MeasureConfig, results_dir: Path) -> Measurement:
        from edgekit.formats.tensorrt import spec_path

        spec = spec_path(model)
        if not spec.is_file():
            raise InputError(f"{model.name} has no TensorRT build spec beside it ({spec.name})",
                             hint="make it with --format tensorrt (edgekit export / deploy)")
        data = model.with_name(model.name + ".data")
        job = RunnerJob(RUNNER, "TensorRT", self.python, self.runner_options())
        raw, files = run_job(job, transport, model, inputs, config, results_dir,
                             companions=[spec] + ([data] if data.exists() else []),
                             wanted=lambda raw: dict(raw.get("files", {})))
        error = raw.get("error")
        if error:
            logs = ", ".join(str(files[k]) for k in ("build_log", "run_log") if k in files)
            raise DeviceFailureError(f"TensorRT on {transport.host}: {error['message']}"
                                     + (f"\n(logs fetched to {logs})" if logs else ""),
                                     hint=_HINTS.get(int(error.get("code", 0)), "see the error above"))
        return parse_results(model.name, raw, files, layer_map)


def parse_results(artifact: str, raw: dict, files: dict[str, Path], layer_map: LayerMap | None) -> Measurement:
    """Pure apart from reading the fetched files: the runner's record + trtexec's exports + power -> Measurement."""
    from edgekit.targets.device.jetson_power import power_block
    from edgekit.targets.tensorrt.engine_layers import engine_rows
    from edgekit.targets.tensorrt.parse_trtexec_json import parse_export_times

    times = parse_export_times(files["times"].read_text())
    samples = list(times.runs[0].extra["latency_samples_ms"])
    latency = RunStats.from_samples(samples)
    rows: list[dict] = []
    note = "no per-layer profile: --profile-runs 0"
    if "profile" in files:
        joined = engine_rows(files["profile"].read_text(), files["layers"].read_text() if "layers" in files else None,
                             layer_map)
        rows, note = list(joined.rows), joined.note
    power = None
    source = (raw.get("power") or {}).get("source")
    if source and "power_idle" in files and "power_run" in files:
        power = power_block(source, files["power_idle"].read_text(), files["power_run"].read_text(), latency.mean_ms)
    engine = raw.get("engine") or {}
    gpu_extra = times.runs[0].extra
    runtime = {"name": "tensorrt", "version": raw.get("tensorrt", "?"), "threads": int(raw.get("threads", 1)),
               "gpu": raw.get("gpu"), "trtexec": raw.get("trtexec"), "cuda_graph": raw.get("cuda_graph"),
               "engine": {"key": engine.get("key"), "reused": bool(engine.get("reused")),
                          "build_seconds": engine.get("seconds"), "build_argv": engine.get("argv")},
               "run_argv": raw.get("run_argv"), "warmup_ms": raw.get("warmup_ms"),
               "gpu_compute_mean_ms": gpu_extra.get("gpu_compute_mean_ms"),
               "h2d_mean_ms": gpu_extra.get("h2d_mean_ms"), "d2h_mean_ms": gpu_extra.get("d2h_mean_ms")}
    return Measurement(artifact=artifact, latency=latency, raw_ms=samples, warmup=int(raw.get("warmup", 0)),
                       layers=rows, runtime=runtime, files=files, layers_note=note, power=power)
