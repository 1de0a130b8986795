"""ONNX Runtime on an Android phone over adb: `onnxruntime_perf_test` (ONNX Runtime's own benchmark binary, built
for Android) run directly, as the phone's shell has no Python for edgekit's runner; pinned to the big cores like
benchmark_model (targets/phone_tools.py), its console summary and its `-p` JSON profile fetched raw and parsed.

    taskset MASK onnxruntime_perf_test -e cpu -m times -r RUNS -x THREADS -I -p PREFIX MODEL

`-I` generates the inputs (the SAM graphs' cost does not depend on values); `-p` writes the per-node profile as
`PREFIX_<date>.json`, parsed by parse_ort_profile.py and mapped to module paths through the ONNX layer map.
"""
from __future__ import annotations

import posixpath
from pathlib import Path

from edgekit.errors import DeviceFailureError
from edgekit.exporters.layer_map import LayerMap
from edgekit.targets.base import MeasureConfig, Transport
from edgekit.targets.measurement import Measurement
from edgekit.targets.runner_job import remote_name

DEFAULT_BINARY = "/data/local/tmp/onnxruntime_perf_test"
INSTALL = ("build onnxruntime_perf_test for Android (onnxruntime's build.sh --android ... --build_shared_lib) and "
           "adb push it to /data/local/tmp/onnxruntime_perf_test, or deploy --format litert (benchmark_model)")


def perf_test_argv(binary: str, model: str, prefix: str | None, config: MeasureConfig, mask: str | None) -> list[str]:
    argv = [binary, "-e", "cpu", "-m", "times", "-r", str(config.runs), "-x", str(config.threads), "-I"]
    if prefix is not None:
        argv += ["-p", prefix]
    return (["taskset", mask] if mask else []) + argv + [model]


def measure_android_ort(transport: Transport, model: Path, layer_map: LayerMap | None, config: MeasureConfig,
                        results_dir: Path) -> Measurement:
    from edgekit.attribution import attribute
    from edgekit.targets.ort.parse_ort_perf_test import parse_ort_perf_test
    from edgekit.targets.ort.parse_ort_profile import parse_ort_profile
    from edgekit.targets.phone_tools import find_tool, read_big_cores

    binary = find_tool(transport, None, DEFAULT_BINARY, "onnxruntime_perf_test", INSTALL)
    work = transport.workdir()
    folder = posixpath.join(work, "models", remote_name(model))
    remote_model = posixpath.join(folder, model.name)
    transport.put(model, remote_model)
    data = model.with_name(model.name + ".data")
    if data.exists():  # external weights, found beside the model by the name the graph records
        transport.put(data, posixpath.join(folder, data.name))
    run_dir = posixpath.join(work, "runs", f"{remote_name(model)[:12]}-ort")
    prefix = posixpath.join(run_dir, "profile") if config.profile_runs > 0 else None
    _, mask = read_big_cores(transport, config.threads)
    argv = perf_test_argv(binary, remote_model, prefix, config, mask)
    results_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    try:
        transport.run(["mkdir", "-p", run_dir], timeout=60)
        result = transport.run(argv, timeout=config.timeout_s)
        files["summary"] = results_dir / "onnxruntime_perf_test.txt"
        files["summary"].write_text(result.stdout + (("\n" + result.stderr) if result.stderr.strip() else ""))
        if not result.ok:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-10:])
            raise DeviceFailureError(f"onnxruntime_perf_test failed on {transport.host} (exit {result.returncode}):"
                                     f"\n{tail}", hint=f"see {files['summary']}")
        if prefix is not None:
            listed = transport.run(["sh", "-c", 'ls -1 "$1"_*.json 2>/dev/null | tail -n 1', "sh", prefix], timeout=60)
            if listed.stdout.strip():
                files["profile"] = results_dir / "profile.json"
                transport.get(listed.stdout.strip(), files["profile"])
    finally:
        transport.run(["rm", "-rf", "--", run_dir], timeout=60)
    parsed = parse_ort_perf_test(files["summary"].read_text())
    latency = parsed.runs[-1]
    rows: list[dict] = []
    note = "no per-node profile: --profile-runs 0"
    if "profile" in files:
        profile = parse_ort_profile(files["profile"].read_text())
        modules = attribute([r.name for r in profile.layers], layer_map) if layer_map else [""] * len(profile.layers)
        rows = [{"name": r.name, "op_type": r.op_type, "module": m, "mean_ms": r.mean_ms, "share": r.share}
                for r, m in zip(profile.layers, modules)]
        note = None
    runtime = {"name": "onnxruntime", "version": "onnxruntime_perf_test", "threads": config.threads,
               "providers": ["CPUExecutionProvider"], "affinity_mask": mask, "run_argv": argv,
               "raw_note": "onnxruntime_perf_test reports statistics of its runs, not each run"}
    return Measurement(artifact=model.name, latency=latency, raw_ms=[], warmup=0, layers=rows, runtime=runtime,
                       files=files, layers_note=note)
