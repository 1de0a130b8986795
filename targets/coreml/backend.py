"""Core ML on a Mac over SSH: push the package (zipped: transports move files), its inputs and torch's reference
outputs; the runner (targets/device/coreml_runner.py) compiles it with `xcrun coremlcompiler`, compares its
prediction with the reference, times it on each compute-unit setting and dumps MLComputePlan; everything raw comes
back and is parsed here.

Per-layer rows come from the compute plan (the runner writes it in CoreMLInspect's line form, parsed by
parse_compute_plan.py): each op's planned device and estimated share of the cost, mapped to module paths through
the layer map (MIL op output names keep the torch names). Core ML exposes no measured per-op time, so a row's
`mean_ms` is its estimated share times the measured mean latency, flagged `estimated`.
"""
from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

from edgekit.errors import DeviceFailureError, InputError
from edgekit.exporters.layer_map import LayerMap
from edgekit.targets.base import MeasureConfig, Transport
from edgekit.targets.measurement import Measurement
from edgekit.targets.runner_job import RunnerJob, run_job
from edgekit.targets.timings import RunStats

RUNNER = Path(__file__).resolve().parents[1] / "device" / "coreml_runner.py"
REFERENCE = "reference.npz"
UNITS = ("ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY")
MAC_FIX = ("Core ML runs on a Mac: --target mac-apple-silicon --host <a Mac with Remote Login on>; the Mac needs "
           "macOS 14.4+, Xcode's command line tools (xcode-select --install) and python3 -m pip install "
           "'coremltools>=8.1' numpy")
_HINTS = {3: MAC_FIX,
          4: "xcrun coremlcompiler rejected the package: see compile.log; install Xcode's command line tools "
             "(xcode-select --install) or update macOS",
          5: "the package compiled but did not run: see the error above; --precision fp16 is the plainest package"}


def require_mac(target) -> str:
    """The host's macOS version; DeviceFailureError naming the fix when it is not a Mac or lacks xcrun (checked
    before any export, so a wrong host costs no waiting)."""
    transport = target.transport
    result = transport.run(["uname", "-s"], timeout=60)
    system = result.stdout.strip() if result.ok else "unknown"
    if system != "Darwin":
        raise DeviceFailureError(f"{transport.host} runs {system or 'an unknown system'}, not macOS: Core ML packages "
                                 "compile and run only on a Mac", hint=MAC_FIX)
    tool = transport.run(["xcrun", "--find", "coremlcompiler"], timeout=60)
    if not tool.ok:
        raise DeviceFailureError(f"{transport.host} has no coremlcompiler (xcrun --find coremlcompiler failed)",
                                 hint="on the Mac: xcode-select --install")
    version = transport.run(["sw_vers", "-productVersion"], timeout=60)
    return version.stdout.strip() if version.ok else "?"


def zip_package(package: Path, folder: Path) -> Path:
    """The .mlpackage folder as one deterministic zip (sorted entries, fixed times), so the same package gives
    the same bytes and the device's content-addressed upload skips it on a re-run."""
    out = folder / (package.name + ".zip")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(p for p in package.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(Path(package.name) / f.relative_to(package)), date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, f.read_bytes())
    return out


def runner_arguments(tolerances: dict, units: tuple[str, ...] = UNITS) -> tuple[str, ...]:
    return ("--tolerances", json.dumps(tolerances, sort_keys=True), "--compute-units", ",".join(units))


class CoreMLBackend:
    name = "coreml"

    def __init__(self, python: str = "python3", compute_units: tuple[str, ...] = UNITS) -> None:
        self.python = python
        bad = [u for u in compute_units if u not in UNITS]
        if bad:
            raise InputError(f"unknown Core ML compute units {', '.join(bad)}", hint="known: " + ", ".join(UNITS))
        self.compute_units = tuple(compute_units)

    def measure(self, transport: Transport, model: Path, inputs: Path | None, layer_map: LayerMap | None,
                config: MeasureConfig, results_dir: Path) -> Measurement:
        if not model.is_dir() or model.suffix != ".mlpackage":
            raise InputError(f"{model.name} is not a Core ML package (.mlpackage folder)",
                             hint="make one with --format coreml (edgekit export / deploy)")
        reference = model.parent / REFERENCE
        info = model.parent / "info.json"
        tolerances = json.loads(info.read_text()).get("tolerances", {}) if info.is_file() else {}
        with tempfile.TemporaryDirectory(prefix="edgekit-coreml-") as tmp:
            packed = zip_package(model, Path(tmp))
            # the reference travels as the package's companion; the runner finds it beside the package
            job = RunnerJob(RUNNER, "Core ML", self.python, runner_arguments(tolerances, self.compute_units))
            raw, files = run_job(job, transport, packed, inputs, config, results_dir,
                                 companions=[reference] if reference.is_file() else [],
                                 wanted=lambda raw: dict(raw.get("files", {})))
        error = raw.get("error")
        if error:
            log = f"\n(compile log fetched to {files['compile_log']})" if "compile_log" in files else ""
            raise DeviceFailureError(f"Core ML on {transport.host}: {error['message']}{log}",
                                     hint=_HINTS.get(int(error.get("code", 0)), "see the error above"))
        return parse_results(model.name, raw, files, layer_map)


def parse_results(artifact: str, raw: dict, files: dict[str, Path], layer_map: LayerMap | None) -> Measurement:
    """Pure apart from reading the fetched files: the runner's record + the compute plan -> Measurement. The
    headline latency is compute units ALL (what an app gets by default); every setting is in `runtime`."""
    from edgekit.attribution import attribute
    from edgekit.targets.coreml.parse_compute_plan import parse_compute_plan

    units = raw.get("units") or {}
    if not units:
        raise DeviceFailureError(f"the Core ML runner timed no compute-unit setting of {artifact}",
                                 hint="see result.json in the run's raw folder")
    primary = "ALL" if "ALL" in units else next(iter(units))
    samples = [float(v) for v in units[primary]["latency_ms"]]
    latency = RunStats.from_samples(samples)
    by_unit = {}
    for unit, entry in units.items():
        stats = RunStats.from_samples([float(v) for v in entry["latency_ms"]])
        by_unit[unit] = {"mean_ms": stats.mean_ms, "median_ms": stats.median_ms,
                         "runs": len(entry["latency_ms"]), "load_ms": entry.get("load_ms"),
                         "validation": entry.get("validation")}
    rows: list[dict] = []
    note = "no compute plan: --profile-runs 0"
    if "plan" in files:
        plan = parse_compute_plan(files["plan"].read_text())
        names = [layer.name for layer in plan.layers]
        modules = attribute(names, layer_map) if layer_map else [""] * len(names)
        mean = latency.mean_ms or 0.0
        for layer, module in zip(plan.layers, modules):
            rows.append({"name": layer.name, "op_type": layer.op_type, "module": module,
                         "mean_ms": None if layer.share is None else layer.share * mean, "share": layer.share,
                         "device": layer.extra.get("device"), "supported": layer.extra.get("supported"),
                         "estimated": True})
        note = ("Core ML measures no per-op time: each op's MLComputePlan cost share (an estimate) times the "
                f"measured mean latency under compute units {primary}")
    validation = units[primary].get("validation")
    runtime = {"name": "coreml", "version": raw.get("coremltools", "?"), "threads": 0,
               "threads_note": "Core ML schedules its own threads", "macos": raw.get("macos"),
               "compute_units": primary, "by_compute_units": by_unit, "compile": raw.get("compile"),
               "device_validation": validation}
    return Measurement(artifact=artifact, latency=latency, raw_ms=samples, warmup=int(raw.get("warmup", 0)),
                       layers=rows, runtime=runtime, load_ms=units[primary].get("load_ms"), files=files,
                       layers_note=note)
