"""LiteRT on an Android phone over adb: the user's `benchmark_model` binary, run directly (a phone's shell has no
Python for edgekit's runner), pinned to the big cores, its console output fetched raw and parsed here.

- The binary: `--benchmark-model PATH` names a file on this machine (pushed once into the work folder, content-
  addressed, made executable) or a path on the phone; default /data/local/tmp/benchmark_model, then PATH.
- Cores: the `threads` fastest by cpufreq give the `taskset` mask (targets/phone_tools.py, shared with ONNX Runtime).
- The run: `taskset MASK benchmark_model --graph=M --num_threads=N --warmup_runs=W --num_runs=R --min_secs=S
  --enable_op_profiling=true` plus the delegate (`--use_xnnpack=true`, or `--use_gpu=true`). benchmark_model feeds
  random inputs: the SAM graphs' cost does not depend on values.
- Rows: the op table (parse_benchmark_model.py) mapped to module paths through the LiteRT layer map.
"""
from __future__ import annotations

import posixpath
from pathlib import Path

from edgekit.errors import DeviceFailureError, InputError
from edgekit.exporters.layer_map import LayerMap
from edgekit.targets.base import MeasureConfig, Transport
from edgekit.targets.measurement import Measurement
from edgekit.targets.phone_tools import find_tool, read_big_cores
from edgekit.targets.runner_job import remote_name

DEFAULT_BINARY = "/data/local/tmp/benchmark_model"
DELEGATES = {"xnnpack": ["--use_xnnpack=true"], "gpu": ["--use_gpu=true"]}
INSTALL = ("download android_aarch64_benchmark_model from the LiteRT releases and pass it with --benchmark-model "
           "FILE (edgekit pushes it), or adb push it to /data/local/tmp/benchmark_model")


def benchmark_argv(binary: str, model: str, config: MeasureConfig, delegate: str, mask: str | None) -> list[str]:
    if delegate not in DELEGATES:
        raise InputError(f"unknown LiteRT delegate {delegate!r}", hint="--delegate xnnpack or gpu")
    argv = [binary, f"--graph={model}", f"--num_threads={config.threads}", f"--warmup_runs={config.warmup}",
            f"--num_runs={config.runs}", f"--min_secs={config.min_seconds:g}",
            f"--enable_op_profiling={'true' if config.profile_runs > 0 else 'false'}", *DELEGATES[delegate]]
    return (["taskset", mask] if mask else []) + argv


def measure_android(transport: Transport, model: Path, layer_map: LayerMap | None, config: MeasureConfig,
                    results_dir: Path, benchmark_model: str | None, delegate: str = "xnnpack") -> Measurement:
    from edgekit.targets.litert.backend import _layers_of, _modules
    from edgekit.targets.litert.parse_benchmark_model import parse_benchmark_model
    from edgekit.targets.timings import RunStats

    binary = find_tool(transport, benchmark_model, DEFAULT_BINARY, "benchmark_model", INSTALL)
    work = transport.workdir()
    remote_model = posixpath.join(work, "models", remote_name(model), model.name)
    transport.put(model, remote_model)
    freqs, mask = read_big_cores(transport, config.threads)
    argv = benchmark_argv(binary, remote_model, config, delegate, mask)
    result = transport.run(argv, timeout=config.timeout_s)
    results_dir.mkdir(parents=True, exist_ok=True)
    raw = results_dir / "benchmark_model.txt"
    raw.write_text(result.stdout + (("\n" + result.stderr) if result.stderr.strip() else ""))
    if not result.ok:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-10:])
        raise DeviceFailureError(f"benchmark_model failed on {transport.host} (exit {result.returncode}):\n{tail}",
                                 hint=f"see {raw}; --delegate xnnpack is the plainest path")
    parsed = parse_benchmark_model(raw.read_text())  # once: timings and op table
    timed = [r for r in parsed.runs if r.mean_ms is not None]
    if not timed:
        raise DeviceFailureError(f"benchmark_model on {transport.host} printed no timings", hint=f"see {raw}")
    latency: RunStats = timed[-1]
    layers, profiled_run_ms, note = _layers_of(parsed, None)
    modules = _modules(layers, layer_map)
    rows = [{"name": row.name, "op_type": row.op_type, "module": module, "mean_ms": row.mean_ms, "share": row.share}
            for row, module in zip(layers, modules)]
    runtime = {"name": "litert", "version": parsed.meta.get("version", "benchmark_model"), "threads": config.threads,
               "op_profiler": "benchmark_model", "delegate": delegate, "affinity_mask": mask,
               "cpu_max_khz": {str(k): v for k, v in sorted(freqs.items())}, "run_argv": argv,
               "raw_note": "benchmark_model reports statistics of its runs, not each run"}
    return Measurement(artifact=model.name, latency=latency, raw_ms=[], warmup=config.warmup, layers=rows,
                       runtime=runtime, files={"profile": raw}, profiled_run_ms=profiled_run_ms,
                       layers_note=note)
