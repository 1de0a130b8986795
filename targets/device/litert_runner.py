#!/usr/bin/env python3
"""edgekit's on-device LiteRT runner: time a .tflite model, profile it per op where the device can, write raw results.

Pushed to devices as a single file and run with the device's own Python, so it uses only the standard library,
numpy and LiteRT (`ai_edge_litert`, or the older `tflite_runtime` wheel); nothing of edgekit is installed there,
and the local target runs the very same file. Same command line and result.json shape as ort_runner.py.

Per-op timings: LiteRT's Python Interpreter has no op profiler (and the wheel's benchmark_litert_model.py only
times whole runs), so they come from the `benchmark_model` binary with --enable_op_profiling=true when the device
has one (--benchmark-model PATH, else on PATH, else ~/benchmark_model). Its console output is saved raw and parsed
at home; without it, result.json says that no per-op profile was taken and why.

    python3 litert_runner.py --model m.tflite --inputs inputs.npz --out results/ --runs 50 --min-seconds 5 --threads 1
"""
import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time

RESULT_FILE = "result.json"
PROFILE_FILE = "benchmark_model.txt"
OUTPUTS_FILE = "outputs.npz"
BENCHMARK_TOOL = "benchmark_model"
# A SAM encoder runs thousands of ops per inference; benchmark_model's default buffer (1024 events) drops the rest
# with only a warning, which would make the layer table silently incomplete.
PROFILING_BUFFER_ENTRIES = 65536
# benchmark_model stops starting runs after --max_secs (default 150 s): on a slow board that cuts the profiled runs
# of a big encoder short without an error. The backend's own timeout bounds the whole job instead.
BENCHMARK_MAX_SECS = 86400


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_runtime():
    """(Interpreter class, {"name", "version", "module"}): ai_edge_litert, else tflite_runtime, else exit."""
    try:
        from ai_edge_litert import interpreter as module
        import ai_edge_litert as package
    except ImportError as first:
        try:
            from tflite_runtime import interpreter as module
            import tflite_runtime as package
        except ImportError as second:
            # both reasons: "No module named 'numpy'" under a present wheel needs a different fix than no wheel
            raise SystemExit("no LiteRT runtime on this device: neither ai_edge_litert (%s) nor tflite_runtime (%s) "
                             "imports under %s; install one: %s -m pip install ai-edge-litert"
                             % (first, second, sys.executable, sys.executable))
    version = getattr(package, "__version__", None) or "unknown"
    return module.Interpreter, {"name": "litert", "version": str(version), "module": package.__name__}


def find_benchmark_tool(configured=None):
    """The benchmark_model binary to profile with, or None: --benchmark-model, then PATH, then ~/benchmark_model
    (where the device profiles' install hint puts it)."""
    if configured:
        path = os.path.expanduser(configured)
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    found = shutil.which(BENCHMARK_TOOL)
    if found:
        return found
    home = os.path.expanduser("~/" + BENCHMARK_TOOL)
    return home if os.path.isfile(home) and os.access(home, os.X_OK) else None


def benchmark_argv(tool, model, threads, warmup_runs, runs):
    """The benchmark_model command for `runs` op-profiled inferences after `warmup_runs` unprofiled ones.

    --warmup_min_secs=0 and --min_secs=0: exactly the counts asked for (the defaults, 0.5 s and 1 s, would add
    runs on fast models); benchmark_model feeds its own random inputs, which do not change the ops that run."""
    return [tool, "--graph=%s" % model, "--num_threads=%d" % threads,
            "--warmup_runs=%d" % warmup_runs, "--warmup_min_secs=0",
            "--num_runs=%d" % runs, "--min_secs=0", "--max_secs=%d" % BENCHMARK_MAX_SECS,
            "--enable_op_profiling=true", "--max_profiling_buffer_entries=%d" % PROFILING_BUFFER_ENTRIES]


def _describe(details):
    scale, zero_point = details.get("quantization", (0.0, 0))
    return {"name": details["name"], "shape": [int(d) for d in details["shape"]], "dtype": details["dtype"].__name__,
            "quantization": [float(scale), int(zero_point)] if scale else None}


def _quantize(np, value, details):
    """A float array for an integer input of a quantized model: real -> q with the input's scale / zero point, so
    the float inputs.npz made for the fp32 model drives its static-INT8 twin too."""
    scale, zero_point = details["quantization"]
    info = np.iinfo(details["dtype"])
    q = np.round(value.astype(np.float64) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(details["dtype"])


def _feeds(np, interpreter, inputs_path):
    """{tensor index: array} for every input, plus the names that were quantized from float."""
    details = interpreter.get_input_details()
    feeds, quantized = {}, []
    if inputs_path:
        with np.load(inputs_path) as data:
            given = {name: data[name] for name in data.files}
        missing = [d["name"] for d in details if d["name"] not in given]
        if missing:
            raise SystemExit("inputs file lacks %s (it has %s)" % (", ".join(missing), ", ".join(sorted(given)) or "nothing"))
        for d in details:
            value = given[d["name"]]
            if value.dtype != d["dtype"]:
                if np.issubdtype(d["dtype"], np.integer) and np.issubdtype(value.dtype, np.floating) and d["quantization"][0]:
                    value = _quantize(np, value, d)
                    quantized.append(d["name"])
                else:
                    raise SystemExit("input %s is %s in the inputs file but the model takes %s"
                                     % (d["name"], value.dtype, d["dtype"].__name__))
            if list(value.shape) != [int(x) for x in d["shape"]]:
                interpreter.resize_tensor_input(d["index"], list(value.shape))  # dynamic axes take the given shape
            feeds[d["index"]] = value
    else:
        for d in details:  # no inputs given: zeros of the declared shape (dynamic axes -> 1)
            shape = [int(x) if int(x) > 0 else 1 for x in d.get("shape_signature", d["shape"])]
            if list(shape) != [int(x) for x in d["shape"]]:
                interpreter.resize_tensor_input(d["index"], shape)
            # a quantized input's real zero is its zero point, so "zeros" means the same as for the float model
            fill = d["quantization"][1] if d["quantization"][0] else 0
            feeds[d["index"]] = np.full(shape, fill, dtype=d["dtype"])
    interpreter.allocate_tensors()
    return feeds, quantized


def _invoke(interpreter, feeds):
    # Inputs are copied in on every run, as ONNX Runtime's session.run copies its feeds: the two runners time the
    # same work.
    for index, value in feeds.items():
        interpreter.set_tensor(index, value)
    interpreter.invoke()


def _profile(args, tool, out_dir):
    """Run benchmark_model (argv list, no shell); its console output, stdout and stderr merged because the tool
    logs to stderr, is written raw to PROFILE_FILE. Returns the record for result.json."""
    warmup = min(args.warmup, 2)  # as ort_runner.py: a fresh interpreter's first runs are slow, none when warm-up is off
    argv = benchmark_argv(tool, args.model, args.threads, warmup, args.profile_runs)
    started = time.perf_counter()
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        returncode, text = proc.returncode, proc.stdout.decode("utf-8", "replace")
    except OSError as exc:
        returncode, text = None, "cannot run %s: %s\n" % (tool, exc)
    with open(os.path.join(out_dir, PROFILE_FILE), "w") as handle:
        handle.write(text)
    return {"tool": BENCHMARK_TOOL, "path": tool, "argv": argv, "returncode": returncode, "warmup_runs": warmup,
            "runs": args.profile_runs, "seconds": time.perf_counter() - started}


def run(args):
    Interpreter, runtime = load_runtime()  # first: its error is the one that names the fix
    import numpy as np

    os.makedirs(args.out, exist_ok=True)
    started = time.perf_counter()
    interpreter = Interpreter(model_path=args.model, num_threads=args.threads)
    feeds, quantized = _feeds(np, interpreter, args.inputs)
    load_ms = (time.perf_counter() - started) * 1000.0
    for _ in range(args.warmup):
        _invoke(interpreter, feeds)
    samples = []
    begin = time.perf_counter()
    # At least `runs` samples AND at least `min_seconds` of measuring, capped by `max_runs` (as ort_runner.py).
    while len(samples) < args.runs or (time.perf_counter() - begin < args.min_seconds and len(samples) < args.max_runs):
        t0 = time.perf_counter()
        _invoke(interpreter, feeds)
        samples.append((time.perf_counter() - t0) * 1000.0)
    outputs = interpreter.get_output_details()
    if args.save_outputs:
        if not samples and not args.warmup:
            _invoke(interpreter, feeds)
        arrays = {d["name"]: interpreter.get_tensor(d["index"]) for d in outputs}
        np.savez(os.path.join(args.out, OUTPUTS_FILE), **arrays)
    profiler, note = None, None
    if args.profile_runs > 0:
        tool = find_benchmark_tool(args.benchmark_model)
        if tool:
            profiler = _profile(args, tool, args.out)
            if profiler["returncode"] != 0:
                note = "benchmark_model failed (exit %s): see %s" % (profiler["returncode"], PROFILE_FILE)
        else:
            where = args.benchmark_model or "PATH or ~/" + BENCHMARK_TOOL
            note = ("no per-op profile: LiteRT's Python interpreter has no op profiler and no benchmark_model "
                    "was found (%s); timings only" % where)
    else:
        note = "no per-op profile: --profile-runs 0"
    result = {
        "runner": "edgekit-litert-runner/1",
        "model": os.path.basename(args.model),
        "model_sha256": _sha256(args.model),
        "runtime": dict(runtime, threads=args.threads),
        "load_ms": load_ms,
        "warmup": args.warmup,
        "latency_ms": samples,
        "inputs": [_describe(d) for d in interpreter.get_input_details()],
        "outputs": [_describe(d) for d in outputs],
        "quantized_inputs": quantized,
        "outputs_file": OUTPUTS_FILE if args.save_outputs else None,
        "profile_file": PROFILE_FILE if profiler else None,
        "profiler": profiler,
        "profile_note": note,
        "profile_runs": args.profile_runs if profiler else 0,
        "profile_warmup_runs": profiler["warmup_runs"] if profiler else 0,
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
    parser.add_argument("--inputs", default=None, help=".npz of input arrays by tensor name (default: zeros)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--min-seconds", type=float, default=5.0)
    parser.add_argument("--max-runs", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile-runs", type=int, default=3, help="op-profiled runs under benchmark_model")
    parser.add_argument("--benchmark-model", default=None, help="benchmark_model binary (default: PATH, ~/benchmark_model)")
    parser.add_argument("--save-outputs", action="store_true", help="write the last run's outputs to " + OUTPUTS_FILE)
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
