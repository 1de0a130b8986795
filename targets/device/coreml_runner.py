#!/usr/bin/env python3
"""edgekit's Core ML runner, run on a Mac with the Mac's Python (coremltools >= 8.1 and numpy): compile a package,
check its prediction against torch's reference outputs, time it on each compute-unit setting and dump the compute
plan (which device each op is planned on, and its estimated share of the cost).

    python3 coreml_runner.py --model m.mlpackage.zip --out DIR [--inputs inputs.npz] [--reference reference.npz]
        [--tolerances JSON] [--compute-units ALL,CPU_AND_NE,CPU_AND_GPU,CPU_ONLY] [--runs N ...]

Steps (argv lists, never a shell string):
1. the Mac itself: macOS >= 14.4 (MLComputePlan), coremltools >= 8.1 importable; else error code 3 with the fix;
2. unzip the package (it travels as one zip; edgekit pushes files) and compile it: `xcrun coremlcompiler compile
   PKG DIR` (cached by the zip's sha256); a failed compile is code 4 with the compiler's log;
3. for each compute-unit setting: load the compiled model, predict on --inputs, compare with --reference
   (encoder outputs: max |diff| over max |reference|; masks: IoU of logits > 0; SQNR of every output), then warm
   up and time --runs predictions (at least --min-seconds);
4. the compute plan for ALL, written as text in CoreMLInspect's line form, which edgekit already parses:
       `<cost>% <preferred>|<supported>  <output> = <op>()` (C = CPU, G = GPU, N = Neural Engine)
Everything goes to --out with result.json naming each file; the host parses it. Failures are result.json's
`error` {code, message} and the runner still exits 0 so that logs come back with the error.
"""
import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import zipfile

RESULT_FILE = "result.json"
RUNNER = "edgekit-coreml-runner/1"
UNITS = ("ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY")
MIN_MACOS = (14, 4)
MIN_COREMLTOOLS = (8, 1)
DEVICE_LETTER = {"MLCPUComputeDevice": "C", "MLGPUComputeDevice": "G", "MLNeuralEngineComputeDevice": "N"}


class RunnerError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def version_tuple(text):
    """"14.4.1" -> (14, 4, 1); a pre-release piece ends it at its leading digits ("8.0b1" -> (8, 0))."""
    parts = []
    for piece in str(text).split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) < len(piece):
            break
    return tuple(parts)


def check_mac():
    """(macOS version, coremltools module); RunnerError 3 naming the fix otherwise."""
    if sys.platform != "darwin":
        raise RunnerError(3, "this is %s, not macOS: Core ML runs only on a Mac" % platform.system())
    mac = platform.mac_ver()[0]
    if version_tuple(mac) < MIN_MACOS:
        raise RunnerError(3, "macOS %s is too old: the per-op compute plan needs macOS 14.4 or later "
                             "(update macOS)" % mac)
    try:
        import coremltools
    except ImportError:
        raise RunnerError(3, "coremltools is not installed for %s: run `%s -m pip install 'coremltools>=8.1' numpy`"
                          % (sys.executable, sys.executable))
    if version_tuple(coremltools.__version__) < MIN_COREMLTOOLS:
        raise RunnerError(3, "coremltools %s is too old (MLComputePlan needs 8.1): run `%s -m pip install -U "
                             "coremltools`" % (coremltools.__version__, sys.executable))
    return mac, coremltools


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def compile_argv(package, out_dir):
    return ["xcrun", "coremlcompiler", "compile", package, out_dir]


def unpack_and_compile(zip_path, cache, out):
    """The compiled .mlmodelc of the zipped package (cached by content); RunnerError 4 when compiling fails."""
    key = sha256(zip_path)[:16]
    root = os.path.join(cache, key)
    with zipfile.ZipFile(zip_path) as z:
        top = sorted({n.split("/")[0] for n in z.namelist()})
        package = [t for t in top if t.endswith(".mlpackage")]
        if len(package) != 1:
            raise RunnerError(4, "the zip holds no single .mlpackage (found %s)" % ", ".join(top))
        package = os.path.join(root, package[0])
        compiled = os.path.join(root, "compiled")
        done = os.path.join(root, "compiled.ok")
        if os.path.exists(done):
            names = [n for n in os.listdir(compiled) if n.endswith(".mlmodelc")]
            return os.path.join(compiled, names[0]), True, 0.0
        os.makedirs(compiled, exist_ok=True)
        z.extractall(root)
    started = time.perf_counter()
    argv = compile_argv(package, compiled)
    proc = subprocess.run(argv, capture_output=True, text=True)
    with open(os.path.join(out, "compile.log"), "w") as log:
        log.write(" ".join(argv) + "\n" + proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RunnerError(4, "xcrun coremlcompiler failed (exit %d); see compile.log" % proc.returncode)
    names = [n for n in os.listdir(compiled) if n.endswith(".mlmodelc")]
    if not names:
        raise RunnerError(4, "xcrun coremlcompiler wrote no .mlmodelc; see compile.log")
    open(done, "w").close()
    return os.path.join(compiled, names[0]), False, time.perf_counter() - started


def compare(outputs, reference, tolerances, np):
    """Prediction vs torch's reference, per output; `passed` None where no tolerance applies."""
    result = {"outputs": {}, "passed": None}
    verdicts = []
    for name, ref in reference.items():
        got = np.asarray(outputs.get(name), dtype=np.float64) if name in outputs else None
        if got is None or got.shape != ref.shape:
            result["outputs"][name] = {"error": "missing or shape %s vs %s" % (
                None if got is None else list(got.shape), list(ref.shape))}
            verdicts.append(False)
            continue
        diff = np.abs(got - ref)
        noise = float(np.sum(diff ** 2))
        entry = {"max_abs": float(diff.max()), "rel_max": float(diff.max() / max(float(np.abs(ref).max()), 1e-12)),
                 "sqnr_db": None if noise == 0 else 10 * float(np.log10(float(np.sum(ref ** 2)) / noise))}
        if name == "low_res_masks":
            a, b = got > 0, ref > 0
            union = int(np.logical_or(a, b).sum())
            entry["mask_iou"] = 1.0 if union == 0 else float(np.logical_and(a, b).sum()) / union
            if tolerances.get("mask_iou") is not None:
                verdicts.append(entry["mask_iou"] >= tolerances["mask_iou"])
        elif name not in ("iou_predictions",) and tolerances.get("embedding_rel") is not None:
            verdicts.append(entry["rel_max"] <= tolerances["embedding_rel"])
        result["outputs"][name] = entry
    if verdicts:
        result["passed"] = all(verdicts)
    return result


def time_model(model, feeds, args):
    for _ in range(args.warmup):
        model.predict(feeds)
    samples = []
    started = time.perf_counter()
    while len(samples) < args.runs or (time.perf_counter() - started < args.min_seconds and len(samples) < args.max_runs):
        t = time.perf_counter()
        model.predict(feeds)
        samples.append((time.perf_counter() - t) * 1000.0)
    return samples


def plan_lines(ct, compiled):
    """MLComputePlan of the compiled model under ALL, one CoreMLInspect-form line per op."""
    from coremltools.models.compute_plan import MLComputePlan

    plan = MLComputePlan.load_from_path(path=compiled, compute_units=ct.ComputeUnit.ALL)
    program = plan.model_structure.program
    lines = []
    for fname, function in program.functions.items():
        lines.append("func %s(%s) {" % (fname, ", ".join(i.name for i in function.inputs)))
        for op in function.block.operations:
            out = op.outputs[0].name if op.outputs else "?"
            if op.operator_name == "const":
                lines.append("    %s = const()" % out)
                continue
            usage = plan.get_compute_device_usage_for_mlprogram_operation(op)
            cost = plan.get_estimated_cost_for_mlprogram_operation(op)
            if usage is None:
                continue
            pref = DEVICE_LETTER.get(type(usage.preferred_compute_device).__name__, "C")
            supp = "".join(sorted({DEVICE_LETTER.get(type(d).__name__, "C")
                                   for d in usage.supported_compute_devices}))
            share = 100.0 * (cost.weight if cost is not None else 0.0)
            lines.append("%.4f%% %s|%s  %s = %s()" % (share, pref, supp, out, op.operator_name))
        lines.append("}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the package as a .zip")
    parser.add_argument("--out", required=True)
    parser.add_argument("--inputs", default=None)
    parser.add_argument("--reference", default=None, help="torch's outputs (default: reference.npz beside --model)")
    parser.add_argument("--tolerances", default="{}")
    parser.add_argument("--compute-units", default=",".join(UNITS))
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/edgekit/coreml"))
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--min-seconds", type=float, default=5.0)
    parser.add_argument("--max-runs", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=0, help="accepted for the common interface: Core ML "
                        "chooses its own threads (recorded as 0)")
    parser.add_argument("--profile-runs", type=int, default=3, help="0 skips the compute plan")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    result = {"runner": RUNNER, "files": {}, "units": {}}
    try:
        units = [u.strip() for u in args.compute_units.split(",") if u.strip()]
        bad = [u for u in units if u not in UNITS]
        if bad:
            raise RunnerError(2, "unknown compute units %s (known: %s)" % (", ".join(bad), ", ".join(UNITS)))
        mac, ct = check_mac()
        import numpy as np

        result.update(macos=mac, coremltools=ct.__version__, machine=platform.machine(), python=sys.version.split()[0])
        compiled, reused, seconds = unpack_and_compile(args.model, args.cache, args.out)
        result["compile"] = {"argv": compile_argv("<package>", "<dir>"), "reused": reused, "seconds": seconds}
        if os.path.exists(os.path.join(args.out, "compile.log")):
            result["files"]["compile_log"] = "compile.log"
        feeds = {}
        if args.inputs:
            with np.load(args.inputs) as data:
                feeds = {k: data[k].astype(np.float32) for k in data.files}
        reference = {}
        beside = os.path.join(os.path.dirname(os.path.abspath(args.model)), "reference.npz")
        if args.reference is None and os.path.exists(beside):
            args.reference = beside  # pushed as the package's companion
        if args.reference:
            with np.load(args.reference) as data:
                reference = {k: data[k].astype(np.float64) for k in data.files}
        tolerances = json.loads(args.tolerances)
        for unit in units:
            started = time.perf_counter()
            model = ct.models.CompiledMLModel(compiled, compute_units=getattr(ct.ComputeUnit, unit))
            load_ms = (time.perf_counter() - started) * 1000.0
            outputs = model.predict(feeds)
            entry = {"load_ms": load_ms, "latency_ms": time_model(model, feeds, args)}
            if reference:
                entry["validation"] = compare(outputs, reference, tolerances, np)
            result["units"][unit] = entry
        if args.profile_runs > 0:
            with open(os.path.join(args.out, "compute_plan.txt"), "w") as handle:
                handle.write("Analyzing model for compute unit [ALL]\n" + "\n".join(plan_lines(ct, compiled)) + "\n")
            result["files"]["plan"] = "compute_plan.txt"
    except RunnerError as exc:
        result["error"] = {"code": exc.code, "message": str(exc)}
    except Exception as exc:  # noqa: BLE001 - anything else still comes home as an error with its type
        result["error"] = {"code": 5, "message": "%s: %s" % (type(exc).__name__, exc)}
    with open(os.path.join(args.out, RESULT_FILE), "w") as handle:
        json.dump(result, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
