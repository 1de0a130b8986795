#!/usr/bin/env python3
"""edgekit's on-device ONNX Runtime runner: time a model, profile it, write raw results to a folder.

Pushed to devices as a single file and run with the device's own Python, so it uses only the standard library,
numpy and onnxruntime (nothing of edgekit is installed there); the local target runs the very same file.
Results are raw (every latency sample, ONNX Runtime's own profile JSON); edgekit parses them at home.

    python3 ort_runner.py --model m.onnx --inputs inputs.npz --out results/ --runs 50 --min-seconds 5 --threads 1
"""
import argparse
import hashlib
import json
import os
import platform
import sys
import time

RESULT_FILE = "result.json"
PROFILE_FILE = "ort_profile.json"
OPTIMIZED_FILE = "optimized.onnx"


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _session(ort, model, threads, providers, profile_prefix=None, optimized=None):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: keep the runner's stderr for real failures
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    if optimized:
        # The graph ONNX Runtime actually runs (fused, re-laid-out): edgekit reads its node inputs/outputs to
        # attribute fused nodes to modules. Weights go to a side file that is never fetched.
        options.optimized_model_filepath = optimized
        options.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                         os.path.basename(optimized) + ".data")
        options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    return ort.InferenceSession(model, options, providers=providers)


def _feeds(np, session, inputs_path):
    if inputs_path:
        with np.load(inputs_path) as data:
            feeds = {name: data[name] for name in data.files}
        missing = [i.name for i in session.get_inputs() if i.name not in feeds]
        if missing:
            raise SystemExit("inputs file lacks %s" % ", ".join(missing))
        return feeds
    feeds = {}
    for spec in session.get_inputs():  # no inputs given: zeros of the declared shape (dynamic axes -> 1)
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in spec.shape]
        dtype = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(uint8)": np.uint8,
                 "tensor(int8)": np.int8, "tensor(float16)": np.float16}.get(spec.type, np.float32)
        feeds[spec.name] = np.zeros(shape, dtype=dtype)
    return feeds


# --providers auto: the fastest execution providers this onnxruntime build has, in this order (onnxruntime-gpu on a
# Jetson or a PC has TensorRT and CUDA; the CPU one is always there and takes what the others cannot run)
PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def choose_providers(requested, available):
    """`auto` (or empty) -> PREFERRED filtered by what the build has; else the comma list, each one checked."""
    if requested in ("", "auto"):
        return [p for p in PREFERRED if p in available] or ["CPUExecutionProvider"]
    wanted = [p.strip() for p in requested.split(",") if p.strip()]
    missing = [p for p in wanted if p not in available]
    if missing:
        raise SystemExit("edgekit-ort-runner: this onnxruntime has no %s (it has %s): install onnxruntime-gpu, or "
                         "deploy with --providers auto" % (", ".join(missing), ", ".join(available)))
    return wanted


def run(args):
    import numpy as np
    import onnxruntime as ort

    os.makedirs(args.out, exist_ok=True)
    providers = choose_providers(args.providers, ort.get_available_providers())
    started = time.perf_counter()
    session = _session(ort, args.model, args.threads, providers)
    load_ms = (time.perf_counter() - started) * 1000.0
    feeds = _feeds(np, session, args.inputs)
    for _ in range(args.warmup):
        session.run(None, feeds)
    samples = []
    begin = time.perf_counter()
    # At least `runs` samples AND at least `min_seconds` of measuring (DESIGN's MeasureConfig): fast decoders
    # get enough samples for stable percentiles; `max_runs` caps the count for very fast graphs.
    while len(samples) < args.runs or (time.perf_counter() - begin < args.min_seconds and len(samples) < args.max_runs):
        t0 = time.perf_counter()
        session.run(None, feeds)
        samples.append((time.perf_counter() - t0) * 1000.0)
    profile = optimized = None
    profile_warmup = 0
    if args.profile_runs > 0:
        prefix = os.path.join(args.out, "ort_profile")
        optimized = os.path.join(args.out, OPTIMIZED_FILE)
        try:
            profiled = _session(ort, args.model, args.threads, providers, profile_prefix=prefix, optimized=optimized)
        except Exception:  # some builds cannot serialise their optimised graph: profile without it
            optimized = None
            profiled = _session(ort, args.model, args.threads, providers, profile_prefix=prefix)
        # A fresh session warms up again: its first two or three runs are slow (mobilesam encoder, 1 thread:
        # 1.2x then 2.0x the steady run; 2 threads: 1.5x, 2.4x, 1.1x), whatever --warmup the timed session had.
        # So 2-3 extra profiled runs, recorded so that the parser leaves them out; none when warm-up was turned
        # off, as on emulated devices where every run costs minutes.
        profile_warmup = 0 if args.warmup <= 0 else min(3, max(2, args.warmup))
        for _ in range(profile_warmup + args.profile_runs):
            profiled.run(None, feeds)
        written = profiled.end_profiling()
        profile = os.path.join(args.out, PROFILE_FILE)
        os.replace(written, profile)
    result = {
        "runner": "edgekit-ort-runner/1",
        "model": os.path.basename(args.model),
        "model_sha256": _sha256(args.model),
        "runtime": {"name": "onnxruntime", "version": ort.__version__, "threads": args.threads,
                    "providers": session.get_providers(), "providers_requested": args.providers or "auto",
                    "providers_available": ort.get_available_providers()},
        "load_ms": load_ms,
        "warmup": args.warmup,
        "latency_ms": samples,
        "profile_file": PROFILE_FILE if profile else None,
        "optimized_graph": OPTIMIZED_FILE if profile and optimized and os.path.exists(optimized) else None,
        "profile_runs": args.profile_runs,
        "profile_warmup_runs": profile_warmup if profile else 0,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    tmp = os.path.join(args.out, RESULT_FILE + ".part")
    with open(tmp, "w") as handle:
        json.dump(result, handle)
    os.replace(tmp, os.path.join(args.out, RESULT_FILE))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--inputs", default=None, help=".npz of input arrays by name (default: zeros)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--min-seconds", type=float, default=5.0)
    parser.add_argument("--max-runs", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--providers", default="auto",
                        help="auto (TensorRT, CUDA, then CPU, as this build has them) or a comma list of provider names")
    parser.add_argument("--profile-runs", type=int, default=3)
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
