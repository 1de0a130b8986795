#!/usr/bin/env python3
"""edgekit's on-device LiteRT runner: time a .tflite model, profile it per op where the device can, write raw results.

Pushed to devices with its companions litert_profiler.py and litert_capi.py beside it and run with the device's own Python, so it
uses only the standard library, numpy and LiteRT (`ai_edge_litert`, or the older `tflite_runtime` wheel);
nothing of edgekit is installed there, and the local target runs the very same files. Same command line and
result.json shape as ort_runner.py.

Latency: the classic Interpreter, timed with no profiler attached (unchanged whatever --op-profiler says).
Per-op timings (--op-profiler):
- `litert`: the LiteRT C profiler of the ai-edge-litert wheel (>= 2.1.6) through ctypes (litert_profiler.py), on a
  separate compiled model, 2 warm-up runs then --profile-runs profiled ones. The raw events, per run, and the
  model's TFLite node list go to litert_ops.json, aligned to nodes at home. --kernel-mode builtin profiles TFLite's
  builtin kernels instead of XNNPACK: exact node attribution, but not the path that is deployed (7-12x slower).
- `benchmark_model`: the benchmark_model binary with --enable_op_profiling=true (--benchmark-model PATH, else on
  PATH, else ~/benchmark_model); its console output is saved raw and parsed at home.
- `auto` (default): the C profiler where it works, else benchmark_model where found, else none, with a note
  saying why; `none`: timings only.

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
OPS_FILE = "litert_ops.json"
OPS_FORMAT = "edgekit-litert-ops/1"
OP_PROFILERS = ("auto", "litert", "benchmark_model", "none")
# A fresh compiled model's first runs are slow (buffer registration, XNNPACK setup): as for benchmark_model
PROFILE_WARMUP_RUNS = 2
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


def benchmark_argv(tool, model, threads, warmup_runs, runs, xnnpack=True):
    """The benchmark_model command for `runs` op-profiled inferences after `warmup_runs` unprofiled ones.

    --warmup_min_secs=0 and --min_secs=0: exactly the counts asked for (the defaults, 0.5 s and 1 s, would add
    runs on fast models); benchmark_model feeds its own random inputs, which do not change the ops that run.
    xnnpack=False (--kernel-mode builtin) adds --use_xnnpack=false: TFLite's builtin kernels."""
    argv = [tool, "--graph=%s" % model, "--num_threads=%d" % threads,
            "--warmup_runs=%d" % warmup_runs, "--warmup_min_secs=0",
            "--num_runs=%d" % runs, "--min_secs=0", "--max_secs=%d" % BENCHMARK_MAX_SECS,
            "--enable_op_profiling=true", "--max_profiling_buffer_entries=%d" % PROFILING_BUFFER_ENTRIES]
    return argv if xnnpack else argv + ["--use_xnnpack=false"]


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
    argv = benchmark_argv(tool, args.model, args.threads, warmup, args.profile_runs, args.kernel_mode == "xnnpack")
    started = time.perf_counter()
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        returncode, text = proc.returncode, proc.stdout.decode("utf-8", "replace")
    except OSError as exc:
        returncode, text = None, "cannot run %s: %s\n" % (tool, exc)
    with open(os.path.join(out_dir, PROFILE_FILE), "w") as handle:
        handle.write(text)
    return {"tool": BENCHMARK_TOOL, "path": tool, "argv": argv, "returncode": returncode, "warmup_runs": warmup,
            "runs": args.profile_runs, "seconds": time.perf_counter() - started, "kernel_mode": args.kernel_mode,
            "threads": args.threads}


def _profiler_module():
    """litert_profiler.py, the companion pushed beside this file (a sibling module when imported as a package)."""
    if __package__:
        from . import litert_profiler
    else:
        import litert_profiler  # the script's own folder is sys.path[0]
    return litert_profiler


def _nodes(interpreter):
    """Subgraph 0's TFLite nodes, [{"index", "op", "outputs": [tensor names], "inputs" / "output_ids": [tensor
    ids]}], for aligning events at home (the ids tell which nodes each XNNPACK partition holds). The
    Interpreter's default delegate appends DELEGATE nodes after the model's own: those are left out."""
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    return [{"index": int(op["index"]), "op": op["op_name"], "outputs": [names.get(int(i), "") for i in op["outputs"]],
             "inputs": [int(i) for i in op["inputs"]], "output_ids": [int(i) for i in op["outputs"]]}
            for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE"]


def _max_abs_diff(np, reference, got):
    """Largest |difference| between the Interpreter's and the profiled model's outputs, None if not comparable."""
    worst = 0.0
    for name, value in reference.items():
        other = got.get(name)
        if other is None or other.shape != value.shape:
            return None
        if value.size:
            worst = max(worst, float(np.max(np.abs(value.astype(np.float64) - other.astype(np.float64)))))
    return worst


def _profile_litert(args, np, interpreter, feeds, reference):
    """Profile on a separate compiled model with the LiteRT C profiler; writes OPS_FILE, returns the record for
    result.json. Raises litert_profiler.LiteRtProfilerError when the wheel cannot do it."""
    lp = _profiler_module()
    by_name = {d["name"]: feeds[d["index"]] for d in interpreter.get_input_details()}
    # the profiled model is compiled afresh: it warms up again, unless warm-up was turned off (emulated devices)
    warmup = PROFILE_WARMUP_RUNS if args.warmup > 0 else 0
    got = lp.profile(args.model, by_name, args.profile_runs, warmup=warmup, num_threads=args.threads,
                     kernel_mode=args.kernel_mode)
    try:
        nodes, nodes_error = _nodes(interpreter), None
    except Exception as exc:  # tflite_runtime builds without _get_ops_details: events stay, names are lost
        nodes, nodes_error = [], "%s: %s" % (type(exc).__name__, exc)
    runs = lp.split_runs([e for e in got["events"] if not e["type"].startswith("TELEMETRY")])
    delegate = "xnnpack" if args.kernel_mode == "xnnpack" else "builtin"
    ops = {"format": OPS_FORMAT, "profiler": "litert", "library": got["library"], "version": got["version"],
           "kernel_mode": args.kernel_mode, "delegate": delegate, "threads": args.threads,
           "warmup_runs": warmup, "fully_accelerated": got["fully_accelerated"], "nodes": nodes,
           "nodes_error": nodes_error, "runs": runs}
    tmp = os.path.join(args.out, OPS_FILE + ".part")
    with open(tmp, "w") as handle:
        json.dump(ops, handle)
    os.replace(tmp, os.path.join(args.out, OPS_FILE))
    op_types = ("OPERATOR_INVOKE", "DELEGATE_PROFILED_OPERATOR_INVOKE")
    return {"tool": "litert", "library": got["library"], "version": got["version"], "kernel_mode": args.kernel_mode,
            "delegate": delegate, "threads": args.threads, "warmup_runs": warmup,
            "runs": args.profile_runs, "profiled_runs_found": len(runs), "seconds": got["seconds"],
            "events": len(got["events"]), "op_events": sum(1 for e in got["events"] if e["type"] in op_types),
            "nodes": len(nodes), "fully_accelerated": got["fully_accelerated"],
            "output_max_abs_diff": _max_abs_diff(np, reference, got["outputs"])}


def _op_profile(args, np, interpreter, feeds, reference):
    """(profiler record or None, ops file or None, profile file or None, note) for --op-profiler."""
    if args.profile_runs <= 0:
        return None, None, None, "no per-op profile: --profile-runs 0"
    if args.op_profiler == "none":
        return None, None, None, "no per-op profile: --op-profiler none"
    reason = None
    if args.op_profiler in ("auto", "litert"):
        try:
            return _profile_litert(args, np, interpreter, feeds, reference), OPS_FILE, None, None
        except ImportError as exc:  # an old runner job that pushed no companion script
            reason = "litert_profiler.py is not beside the runner (%s)" % exc
        except Exception as exc:  # LiteRtProfilerError names the fix; anything else is said as it is
            reason = str(exc) if type(exc).__name__ == "LiteRtProfilerError" else "%s: %s" % (type(exc).__name__, exc)
        if args.op_profiler == "litert":
            raise SystemExit("--op-profiler litert: the LiteRT C profiler failed: %s" % reason)
    tool = find_benchmark_tool(args.benchmark_model)
    if tool:
        record = _profile(args, tool, args.out)
        note = None
        if record["returncode"] != 0:
            note = "benchmark_model failed (exit %s): see %s" % (record["returncode"], PROFILE_FILE)
        return record, None, PROFILE_FILE, note
    where = args.benchmark_model or "PATH or ~/" + BENCHMARK_TOOL
    if reason is None:
        return None, None, None, ("no per-op profile: LiteRT's Python interpreter has no op profiler and no "
                                  "benchmark_model was found (%s); timings only" % where)
    return None, None, None, ("no per-op profile: the LiteRT C profiler is unavailable (%s) and no benchmark_model "
                              "was found (%s); timings only" % (reason, where))


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
    if not samples and not args.warmup:
        _invoke(interpreter, feeds)  # outputs to save or to check the profiled model against
    arrays = {d["name"]: interpreter.get_tensor(d["index"]) for d in outputs}
    if args.save_outputs:
        np.savez(os.path.join(args.out, OUTPUTS_FILE), **arrays)
    profiler, ops_file, profile_file, note = _op_profile(args, np, interpreter, feeds, arrays)
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
        "profile_file": profile_file,
        "ops_file": ops_file,
        "op_profiler": profiler["tool"] if profiler else None,
        "kernel_mode": args.kernel_mode,
        "delegate": "xnnpack" if args.kernel_mode == "xnnpack" else "builtin",
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
    parser.add_argument("--profile-runs", type=int, default=3, help="op-profiled runs (after 2 warm-up runs)")
    parser.add_argument("--op-profiler", choices=OP_PROFILERS, default="auto",
                        help="per-op profiler: the LiteRT C profiler (litert), benchmark_model, auto (the first that "
                             "works) or none")
    parser.add_argument("--kernel-mode", choices=("xnnpack", "builtin"), default="xnnpack",
                        help="CPU kernels to profile: XNNPACK (deployed) or TFLite builtin (exact nodes, slower)")
    parser.add_argument("--benchmark-model", default=None, help="benchmark_model binary (default: PATH, ~/benchmark_model)")
    parser.add_argument("--save-outputs", action="store_true", help="write the last run's outputs to " + OUTPUTS_FILE)
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
