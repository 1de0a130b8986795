#!/usr/bin/env python3
"""edgekit's TensorRT runner: build an engine from TensorRT-ready ONNX with `trtexec` (cached on the device), time
and profile it, and sample the board's power while it runs. Standard library only: it is pushed to a Jetson as one
file beside the model and run with the device's Python.

    python3 trt_runner.py --model m.onnx --out DIR [--spec m.onnx.trt.json] [--inputs inputs.npz] [--runs N ...]

Steps, each an argv list (never a shell string):
1. find trtexec (--trtexec, PATH, /usr/src/tensorrt/bin) and read the TensorRT version and the GPU;
2. the engine cache (--engine-cache, default ~/.cache/edgekit/engines): the key is the sha256 of the ONNX (and its
   external weights), TensorRT version, GPU, precision and build flags; a hit builds nothing;
3. build: `trtexec --onnx --saveEngine --timingCacheFile [--fp16 | --stronglyTyped] [--minShapes --optShapes
   --maxShapes] --profilingVerbosity=detailed --skipInference`, its log kept beside the engine;
4. idle power for --idle-seconds (tegrastats, else the INA3221 rails in sysfs), then the run: `trtexec
   --loadEngine [--shapes] --warmUp --iterations --duration [--useCudaGraph] --separateProfileRun
   --profilingVerbosity=detailed --exportProfile --exportLayerInfo --exportTimes [--loadInputs]` with power
   sampled throughout.
Everything raw (logs, JSON exports, power samples) goes to --out with result.json naming each file; the host
parses it. A failure (no trtexec, a failed build or run) is written to result.json as `error` {code, message}
with the logs beside it, and the runner still exits 0, so that the host fetches the logs with the error; codes:
3 no trtexec, 4 the build failed, 5 the run failed (2, argparse's, for bad arguments).
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import zipfile

RESULT_FILE = "result.json"
RUNNER = "edgekit-trt-runner/1"
TRTEXEC_DIRS = ("/usr/src/tensorrt/bin", "/usr/local/tensorrt/bin")
_ERROR_LINE = re.compile(r"\[E\]|\bERROR\b", re.I)
# TensorRT's ONNX parser dumps the node it failed on: `While parsing node number 16 [OneHot -> "out"]:`, then
# `--- Begin node ---` with the NodeProto's text (`name: "/OneHot"`) up to `--- End node ---`
_NODE_NUMBER = re.compile(r"(?:While parsing node number|In node) (-?\d+)(?: \[(\w+) -> \"([^\"]*)\"\])?")
_NODE_NAME = re.compile(r'^\s*name:\s*"([^"]+)"', re.M)


class RunnerError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_trtexec(given):
    if given:
        return given if os.access(given, os.X_OK) else None
    found = shutil.which("trtexec")
    if found:
        return found
    for folder in TRTEXEC_DIRS:
        path = os.path.join(folder, "trtexec")
        if os.access(path, os.X_OK):
            return path
    return None


def tensorrt_version():
    """The installed TensorRT: its Python module, else the Debian package, else NvInferVersion.h."""
    try:
        import tensorrt  # noqa: F401 - the bindings JetPack installs
        return str(tensorrt.__version__)
    except Exception:  # noqa: BLE001 - absent or broken: try the next source
        pass
    for package in ("tensorrt", "libnvinfer-bin", "libnvinfer10", "libnvinfer8"):
        try:
            out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True,
                                 timeout=30)
        except (OSError, subprocess.SubprocessError):
            break
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().split("+")[0].split("-")[0]
    for root in ("/usr/include/aarch64-linux-gnu", "/usr/include/x86_64-linux-gnu", "/usr/include"):
        try:
            text = open(os.path.join(root, "NvInferVersion.h")).read()
        except OSError:
            continue
        parts = [re.search(r"#define\s+NV_TENSORRT_%s\s+(\d+)" % key, text) for key in ("MAJOR", "MINOR", "PATCH")]
        if all(parts):
            return ".".join(p.group(1) for p in parts)
    return "unknown"


def gpu_name():
    try:
        with open("/proc/device-tree/model", "rb") as handle:
            return handle.read().replace(b"\x00", b"").decode(errors="replace").strip() or "unknown"
    except OSError:
        pass
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def shape_flag(shapes):
    """{name: [dims]} -> 'name:1x4x2,other:1x4' (trtexec's shape syntax)."""
    return ",".join("%s:%s" % (name, "x".join(str(d) for d in dims)) for name, dims in sorted(shapes.items()))


def npz_to_bins(npz, folder):
    """Each array of an .npz as a raw little-endian .bin (trtexec --loadInputs); {name: (path, shape)}."""
    out = {}
    with zipfile.ZipFile(npz) as archive:
        for member in archive.namelist():
            name = member[:-4] if member.endswith(".npy") else member
            data = archive.read(member)
            if data[:6] != b"\x93NUMPY":
                raise RunnerError(2, "%s: %s is not a .npy array" % (npz, member))
            major = data[6]
            header_len = int.from_bytes(data[8:10] if major == 1 else data[8:12], "little")
            start = (10 if major == 1 else 12) + header_len
            header = data[(10 if major == 1 else 12):start].decode("latin1")
            if "'fortran_order': True" in header or "'<" not in header and "'|" not in header:
                raise RunnerError(2, "%s: %s must be C-ordered little-endian" % (npz, member))
            shape = [int(d) for d in re.search(r"'shape':\s*\(([^)]*)\)", header).group(1).split(",") if d.strip()]
            path = os.path.join(folder, "input_%s.bin" % re.sub(r"[^\w.-]", "_", name))
            with open(path, "wb") as handle:
                handle.write(data[start:])
            out[name] = (path, shape)
    return out


class PowerSampler:
    """Power samples while a phase runs: tegrastats' own lines, or the INA3221 rails read from sysfs."""

    def __init__(self, tegrastats, out_path, interval_ms=100):
        self.tegrastats, self.out_path, self.interval = tegrastats, out_path, interval_ms / 1000.0
        self.proc = self.thread = None
        self.stop_flag = threading.Event()

    def __enter__(self):
        if self.tegrastats:
            self.handle = open(self.out_path, "w")
            self.proc = subprocess.Popen([self.tegrastats, "--interval", str(int(self.interval * 1000))],
                                         stdout=self.handle, stderr=subprocess.DEVNULL)
        else:
            self.thread = threading.Thread(target=self._sysfs, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.handle.close()
        if self.thread is not None:
            self.stop_flag.set()
            self.thread.join(timeout=10)
        return False

    def _sysfs(self):
        rails = ina3221_rails()
        with open(self.out_path, "w") as handle:
            while not self.stop_flag.is_set():
                sample = {"t": time.time(), "mw": {}}
                for name, volt, curr in rails:
                    try:
                        sample["mw"][name] = int(open(volt).read()) * int(open(curr).read()) / 1000.0
                    except (OSError, ValueError):
                        continue
                handle.write(json.dumps(sample) + "\n")
                self.stop_flag.wait(self.interval)


def ina3221_rails():
    """[(rail name, voltage file mV, current file mA)] of the INA3221 monitors (hwmon layout, JetPack 5/6)."""
    rails = []
    base = "/sys/bus/i2c/drivers/ina3221"
    if not os.path.isdir(base):
        return rails
    for device in sorted(os.listdir(base)):
        hwmon_root = os.path.join(base, device, "hwmon")
        if not os.path.isdir(hwmon_root):
            continue
        for hwmon in sorted(os.listdir(hwmon_root)):
            folder = os.path.join(hwmon_root, hwmon)
            for channel in range(1, 4):
                label = os.path.join(folder, "in%d_label" % channel)
                if os.path.exists(label):
                    rails.append((open(label).read().strip(), os.path.join(folder, "in%d_input" % channel),
                                  os.path.join(folder, "curr%d_input" % channel)))
    return rails


def run_logged(argv, log_path, timeout):
    """Run argv with stdout and stderr into log_path; (exit code, seconds)."""
    started = time.time()
    with open(log_path, "w") as log:
        log.write("$ %s\n" % " ".join(argv))
        log.flush()
        try:
            code = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            code = -1
    return code, time.time() - started


def failure_summary(log_path):
    """The error lines of a trtexec log (from its first [E] line, at most 14) and the ONNX node it names."""
    try:
        text = open(log_path, errors="replace").read()
    except OSError:
        return "", None
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if _ERROR_LINE.search(line)), None)
    errors = lines[first:first + 14] if first is not None else []
    node = None
    dump = text.split("--- Begin node ---", 1)
    if len(dump) == 2:
        name = _NODE_NAME.search(dump[1].split("--- End node ---", 1)[0])
        node = name.group(1) if name else None
    if node is None:
        number = _NODE_NUMBER.search(text)
        if number:
            node = "number %s" % number.group(1) + (" (%s -> %s)" % (number.group(2), number.group(3))
                                                     if number.group(2) else "")
    return "\n".join(errors), node


def build_engine(args, trtexec, spec, engine, build_log):
    shapes = spec.get("shapes") or {}
    part = engine + ".part"
    argv = [trtexec, "--onnx=%s" % args.model, "--saveEngine=%s" % part,
            "--timingCacheFile=%s" % os.path.join(args.engine_cache, "timing.cache")] + list(spec["build_flags"])
    for level, flag in (("min", "--minShapes"), ("opt", "--optShapes"), ("max", "--maxShapes")):
        if shapes.get(level):
            argv.append("%s=%s" % (flag, shape_flag(shapes[level])))
    argv += ["--profilingVerbosity=detailed", "--skipInference"]
    code, seconds = run_logged(argv, build_log, args.build_timeout)
    if code != 0 or not os.path.exists(part):
        errors, node = failure_summary(build_log)
        if os.path.exists(part):
            os.remove(part)
        message = "trtexec could not build the engine (exit %s)%s" % (
            code, " at ONNX node %s" % node if node else "")
        raise RunnerError(4, message + (":\n" + errors if errors else "") + "\nbuild log: " + build_log)
    os.replace(part, engine)
    return argv, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--spec", default=None, help="the artifact's .trt.json: precision, build flags, shapes "
                                                     "(default: beside the model, MODEL.trt.json)")
    parser.add_argument("--inputs", default=None)
    parser.add_argument("--warmup", type=int, default=5, help="warm-up: trtexec --warmUp gets 100 ms per run asked")
    parser.add_argument("--runs", type=int, default=50, help="trtexec --iterations")
    parser.add_argument("--min-seconds", type=float, default=5.0, help="trtexec --duration")
    parser.add_argument("--threads", type=int, default=1, help="recorded only: TensorRT runs on the GPU")
    parser.add_argument("--profile-runs", type=int, default=3, help="0: no per-layer profile (no --separateProfileRun)")
    parser.add_argument("--trtexec", default=None)
    parser.add_argument("--tegrastats", default="auto", help="path, auto (PATH) or none (INA3221 sysfs rails)")
    parser.add_argument("--engine-cache", default=os.path.expanduser("~/.cache/edgekit/engines"))
    parser.add_argument("--idle-seconds", type=float, default=2.0)
    parser.add_argument("--cuda-graph", choices=("on", "off"), default="on")
    parser.add_argument("--build-timeout", type=float, default=3600.0)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.engine_cache, exist_ok=True)
    try:
        result = run(args)
    except RunnerError as exc:
        sys.stderr.write("edgekit-trt-runner: %s\n" % exc)
        logs = {key: name for key, name in (("build_log", "build.log"), ("run_log", "run.log"))
                if os.path.exists(os.path.join(args.out, name))}
        result = {"runner": RUNNER, "model": os.path.basename(args.model), "error": {"code": exc.code,
                                                                                       "message": str(exc)},
                  "files": logs}
    tmp = os.path.join(args.out, RESULT_FILE + ".part")
    with open(tmp, "w") as handle:
        json.dump(result, handle)
    os.replace(tmp, os.path.join(args.out, RESULT_FILE))
    return 0


def run(args):
    with open(args.spec or args.model + ".trt.json") as handle:
        spec = json.load(handle)
    trtexec = find_trtexec(args.trtexec)
    if trtexec is None:
        raise RunnerError(3, "trtexec not found (looked at --trtexec, on PATH and in %s): install TensorRT "
                             "(JetPack: sudo apt install nvidia-jetpack, or tensorrt; trtexec lives in "
                             "/usr/src/tensorrt/bin)" % ", ".join(TRTEXEC_DIRS))
    version, gpu = tensorrt_version(), gpu_name()
    data = args.model + ".data"
    identity = {"onnx": sha256(args.model), "data": sha256(data) if os.path.exists(data) else None,
                "tensorrt": version, "gpu": gpu, "precision": spec["precision"], "flags": spec["build_flags"],
                "shapes": spec.get("shapes") or {}}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]
    engine = os.path.join(args.engine_cache, key + ".engine")
    cached_log = os.path.join(args.engine_cache, key + ".build.log")
    build = {"key": key, "identity": identity, "path": engine, "reused": os.path.exists(engine), "argv": None,
             "seconds": None, "log": None}
    if not build["reused"]:
        build_log = os.path.join(args.out, "build.log")
        try:
            build["argv"], build["seconds"] = build_engine(args, trtexec, spec, engine, build_log)
        finally:
            if os.path.exists(build_log):
                shutil.copyfile(build_log, cached_log)  # kept beside the engine (or the failure) on the device
        build["log"] = "build.log"
    feeds = npz_to_bins(args.inputs, args.out) if args.inputs else {}
    argv = [trtexec, "--loadEngine=%s" % engine]
    run_shapes = {name: shape for name, (_, shape) in feeds.items() if name in ((spec.get("shapes") or {}).get("opt") or {})}
    if (spec.get("shapes") or {}).get("opt"):
        argv.append("--shapes=%s" % shape_flag({**spec["shapes"]["opt"], **run_shapes}))
    argv += ["--warmUp=%d" % (100 * max(args.warmup, 0)), "--iterations=%d" % args.runs,
             "--duration=%g" % args.min_seconds]
    if args.cuda_graph == "on":
        argv.append("--useCudaGraph")
    files = {"times": "times.json", "run_log": "run.log"}
    argv.append("--exportTimes=%s" % os.path.join(args.out, files["times"]))
    if args.profile_runs > 0:
        files.update(profile="profile.json", layers="layers.json")
        argv += ["--separateProfileRun", "--profilingVerbosity=detailed",
                 "--exportProfile=%s" % os.path.join(args.out, files["profile"]),
                 "--exportLayerInfo=%s" % os.path.join(args.out, files["layers"])]
    if feeds:
        argv.append("--loadInputs=%s" % ",".join("%s:%s" % (name, path) for name, (path, _) in sorted(feeds.items())))
    tegrastats = None if args.tegrastats == "none" else (
        shutil.which("tegrastats") if args.tegrastats == "auto" else args.tegrastats)
    power_source = "tegrastats" if tegrastats else ("ina3221" if ina3221_rails() else None)
    power = {"source": power_source, "idle_seconds": args.idle_seconds, "interval_ms": 100}
    if power_source:
        suffix = ".log" if tegrastats else ".jsonl"
        files["power_idle"], files["power_run"] = "power_idle" + suffix, "power_run" + suffix
        with PowerSampler(tegrastats, os.path.join(args.out, files["power_idle"])):
            time.sleep(args.idle_seconds)
        with PowerSampler(tegrastats, os.path.join(args.out, files["power_run"])):
            code, seconds = run_logged(argv, os.path.join(args.out, files["run_log"]), args.build_timeout)
    else:
        code, seconds = run_logged(argv, os.path.join(args.out, files["run_log"]), args.build_timeout)
    if code != 0:
        errors, node = failure_summary(os.path.join(args.out, files["run_log"]))
        raise RunnerError(5, "trtexec failed to run the engine (exit %s):\n%s" % (code, errors))
    log = open(os.path.join(args.out, files["run_log"]), errors="replace").read()
    cuda_graph = None
    if args.cuda_graph == "on":
        cuda_graph = "fallback" if re.search(r"CUDA graph.*(fail|not supported)", log, re.I) else "on"
    return {"runner": RUNNER, "model": os.path.basename(args.model), "trtexec": trtexec, "tensorrt": version,
            "gpu": gpu, "precision": spec["precision"], "engine": build, "run_argv": argv, "run_seconds": seconds,
            "cuda_graph": cuda_graph, "warmup": args.warmup, "warmup_ms": 100 * max(args.warmup, 0),
            "iterations": args.runs, "duration_s": args.min_seconds, "threads": args.threads,
            "profile_runs": args.profile_runs, "inputs": {n: s for n, (_, s) in feeds.items()}, "files": files,
            "power": power}


if __name__ == "__main__":
    sys.exit(main())
