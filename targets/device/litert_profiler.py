"""Per-operator LiteRT timings from the ai-edge-litert wheel alone: its libLiteRt.so C API, through ctypes.

Pushed to devices beside litert_runner.py (with litert_capi.py, the ctypes binding) and imported by it, so it uses
only the standard library and numpy (nothing of edgekit is installed on a device). The Python wrappers of the wheel expose no profiler, but the
library exports the C profiler API (`LiteRtCompiledModelGetProfiler`, `LiteRtGetProfilerEvents`, ...). Nothing
exported turns profiling on, though: the runtime reads it from an opaque option `runtime_options_string` whose
payload is TOML (`enable_profiling = true`), and the CPU settings from an opaque option `xnnpack` (TOML keys
`num_threads`, `kernel_mode`). Those TOML payloads arrived in ai-edge-litert 2.1.6; older wheels take a binary
struct instead and would silently ignore ours, so the version is checked and a NULL profiler is an error.

What the events are (per profiled run): `LiteRT::Run[buffer registration]`, `Invoke` (the whole interpreter
invoke), then one event per XNNPACK operator (type DELEGATE_PROFILED_OPERATOR_INVOKE, tag = XNNPACK operator
name, meta1 = operator index within its partition, integer microseconds) or, with `kernel_mode = "builtin"`, one
per TFLite node (OPERATOR_INVOKE, tag = builtin op name, meta1 = node index, meta2 = subgraph index).
"""
import ctypes
import os
import time

if __package__:
    from . import litert_capi as capi
else:
    import litert_capi as capi  # pushed beside this file: its folder is on sys.path

LiteRtProfilerError, FIX, EVENT_TYPES = capi.LiteRtProfilerError, capi.FIX, capi.EVENT_TYPES
load_library = capi.load_library
KERNEL_MODES = ("xnnpack", "builtin")
# The runtime's profiler holds 512 * 1024 events and wraps when full; events are read out before half of that.
PROFILER_CAPACITY = 512 * 1024
RUN_START_TAG = "LiteRT::Run[buffer registration]"


class ProfiledModel:
    """One .tflite model compiled for the CPU with the LiteRT profiler armed (not started).

    Build with enable_profiling and start the profiler only around the measured runs: armed but stopped it
    costs ~0-2%, started ~0.1-0.3 ms per run (tag copies, extra events)."""

    def __init__(self, model_path, num_threads=1, kernel_mode="xnnpack", library_dir=None):
        if kernel_mode not in KERNEL_MODES:
            raise ValueError("kernel_mode must be one of %s, not %r" % (", ".join(KERNEL_MODES), kernel_mode))
        self.lib, self.library, self.version = load_library(library_dir)
        self.kernel_mode, self.num_threads = kernel_mode, int(num_threads)
        self._env = self._model = self._options = self._compiled = self._profiler = None
        self._inputs, self._outputs = [], []  # dicts: name, tensor, dtype, shape, buffer
        try:
            self._open(model_path)
        except BaseException:
            self.close()
            raise

    # --- setup -------------------------------------------------------------------------------------------
    def _check(self, status, what):
        if status != 0:
            raise LiteRtProfilerError("%s failed (LiteRtStatus %d)" % (what, status))

    def _open(self, model_path):
        lib = self.lib
        options = (capi.EnvOption * 2)(capi.EnvOption(capi.ENV_AUTO_REGISTER_ACCELERATORS, capi.LiteRtAny(capi.ANY_INT, capi.HW_CPU)),
                                   capi.EnvOption(capi.ENV_MIN_LOG_SEVERITY, capi.LiteRtAny(capi.ANY_INT, capi.LOG_WARNING)))
        handle = ctypes.c_void_p()
        self._check(lib.LiteRtCreateEnvironment(2, options, ctypes.byref(handle)), "LiteRtCreateEnvironment")
        self._env = handle.value
        handle = ctypes.c_void_p()
        self._check(lib.LiteRtCreateModelFromFile(self._env, os.fsencode(model_path), ctypes.byref(handle)),
                    "LiteRtCreateModelFromFile(%s)" % model_path)
        self._model = handle.value
        handle = ctypes.c_void_p()
        self._check(lib.LiteRtCreateOptions(ctypes.byref(handle)), "LiteRtCreateOptions")
        self._options = handle.value
        self._check(lib.LiteRtSetOptionsHardwareAccelerators(self._options, capi.HW_CPU), "setting the CPU accelerator")
        cpu = "num_threads = %d\n" % self.num_threads
        if self.kernel_mode == "builtin":
            cpu += 'kernel_mode = "builtin"\n'
        self._add_opaque(b"runtime_options_string", "enable_profiling = true\n")
        self._add_opaque(b"xnnpack", cpu)  # the CPU options' identifier in 2.x wheels ("cpu_delegate" is ignored)
        handle = ctypes.c_void_p()
        self._check(lib.LiteRtCreateCompiledModel(self._env, self._model, self._options, ctypes.byref(handle)),
                    "LiteRtCreateCompiledModel")
        self._compiled = handle.value
        handle = ctypes.c_void_p()
        self._check(lib.LiteRtCompiledModelGetProfiler(self._compiled, ctypes.byref(handle)),
                    "LiteRtCompiledModelGetProfiler")
        if not handle.value:
            raise LiteRtProfilerError("LiteRT gave no profiler although enable_profiling was set: ai-edge-litert %s "
                                      "does not read the runtime_options_string TOML option; fix: %s"
                                      % (self.version or "(unknown version)", FIX))
        self._profiler = handle.value
        self._read_signature()

    def _add_opaque(self, identifier, toml):
        # The payload must outlive this call and be freed by the runtime: a malloc'd copy with libc's free.
        libc = capi.libc()
        payload = libc.strdup(toml.encode())
        handle = ctypes.c_void_p()
        status = self.lib.LiteRtCreateOpaqueOptions(identifier, payload, ctypes.cast(libc.free, ctypes.c_void_p),
                                                    ctypes.byref(handle))
        if status != 0:
            ctypes.CDLL(None).free(ctypes.c_void_p(payload))
            self._check(status, "LiteRtCreateOpaqueOptions(%s)" % identifier.decode())
        status = self.lib.LiteRtAddOpaqueOptions(self._options, handle.value)  # takes ownership on success
        if status != 0:
            self.lib.LiteRtDestroyOpaqueOptions(handle.value)
            self._check(status, "LiteRtAddOpaqueOptions(%s)" % identifier.decode())

    def _read_signature(self):
        lib = self.lib
        signature = ctypes.c_void_p()
        self._check(lib.LiteRtGetModelSignature(self._model, 0, ctypes.byref(signature)), "LiteRtGetModelSignature")
        for kind, entries in (("Input", self._inputs), ("Output", self._outputs)):
            count = capi.SIZE()
            self._check(getattr(lib, "LiteRtGetNumSignature%ss" % kind)(signature, ctypes.byref(count)), kind)
            for i in range(count.value):
                name, tensor, tname = ctypes.c_char_p(), ctypes.c_void_p(), ctypes.c_char_p()
                self._check(getattr(lib, "LiteRtGetSignature%sName" % kind)(signature, i, ctypes.byref(name)), kind)
                self._check(getattr(lib, "LiteRtGetSignature%sTensorByIndex" % kind)(signature, i, ctypes.byref(tensor)),
                            kind)
                self._check(lib.LiteRtGetTensorName(tensor, ctypes.byref(tname)), "LiteRtGetTensorName")
                ttype = capi.RankedTensorType()
                self._check(lib.LiteRtGetRankedTensorType(tensor, ctypes.byref(ttype)), "LiteRtGetRankedTensorType")
                entries.append({"name": name.value.decode(), "tensor": (tname.value or b"").decode(), "type": ttype,
                                "dtype": capi.ELEMENT_TYPES.get(ttype.element_type), "buffer": None,
                                "shape": [int(ttype.layout.dimensions[d]) for d in range(ttype.layout.rank)]})

    def _make_buffers(self):
        lib = self.lib
        for kind, entries in (("Input", self._inputs), ("Output", self._outputs)):
            for i, entry in enumerate(entries):
                if entry["buffer"] is not None:
                    continue
                requirements, buffer = ctypes.c_void_p(), ctypes.c_void_p()
                # requirements stay owned by the compiled model
                self._check(getattr(lib, "LiteRtGetCompiledModel%sBufferRequirements" % kind)(
                    self._compiled, 0, i, ctypes.byref(requirements)), "%s buffer requirements" % kind)
                self._check(lib.LiteRtCreateManagedTensorBufferFromRequirements(
                    self._env, ctypes.byref(entry["type"]), requirements, ctypes.byref(buffer)),
                    "creating the %s buffer of %s" % (kind.lower(), entry["name"]))
                entry["buffer"] = buffer.value

    def _resize(self, index, shape):
        # A dynamic input given another shape: resize, then take the output shapes the runtime derives.
        dims = (ctypes.c_int * len(shape))(*shape)
        self._check(self.lib.LiteRtCompiledModelResizeInputTensor(self._compiled, 0, index, dims, len(shape)),
                    "resizing input %s to %s" % (self._inputs[index]["name"], shape))
        entry = self._inputs[index]
        entry["shape"] = list(shape)
        entry["type"].layout.rank = len(shape)
        for d, size in enumerate(shape):
            entry["type"].layout.dimensions[d] = size
        layouts = (capi.Layout * len(self._outputs))()
        self._check(self.lib.LiteRtGetCompiledModelOutputTensorLayouts(self._compiled, 0, len(self._outputs),
                                                                        layouts, True), "output layouts")
        for out, layout in zip(self._outputs, layouts):
            out["type"].layout = layout
            out["shape"] = [int(layout.dimensions[d]) for d in range(layout.rank)]

    # --- use ---------------------------------------------------------------------------------------------
    @property
    def inputs(self):
        return [{k: e[k] for k in ("name", "tensor", "dtype", "shape")} for e in self._inputs]

    @property
    def outputs(self):
        return [{k: e[k] for k in ("name", "tensor", "dtype", "shape")} for e in self._outputs]

    def set_inputs(self, feeds):
        """Write arrays keyed by signature input name or tensor name (the classic Interpreter's names); the
        arrays must already have the model's dtype (the runner quantizes float inputs of INT8 models)."""
        import numpy as np

        arrays = []
        for index, entry in enumerate(self._inputs):
            value = feeds.get(entry["name"], feeds.get(entry["tensor"]))
            if value is None:
                raise LiteRtProfilerError("no value for input %s (tensor %s); given: %s"
                                          % (entry["name"], entry["tensor"], ", ".join(sorted(feeds)) or "nothing"))
            value = np.ascontiguousarray(value)
            if entry["dtype"] and value.dtype != np.dtype(entry["dtype"]):
                raise LiteRtProfilerError("input %s is %s but the model takes %s" % (entry["name"], value.dtype,
                                                                                     entry["dtype"]))
            if list(value.shape) != entry["shape"]:
                if entry["buffer"] is not None:
                    raise LiteRtProfilerError("input %s changed shape after its buffer was made" % entry["name"])
                self._resize(index, [int(d) for d in value.shape])
            arrays.append(value)
        self._make_buffers()
        for entry, value in zip(self._inputs, arrays):
            self._write(entry, value)

    def _write(self, entry, value):
        size, address = capi.SIZE(), ctypes.c_void_p()
        self._check(self.lib.LiteRtGetTensorBufferPackedSize(entry["buffer"], ctypes.byref(size)), "buffer size")
        if size.value != value.nbytes:
            raise LiteRtProfilerError("input %s: %d bytes given, the buffer holds %d" % (entry["name"], value.nbytes,
                                                                                      size.value))
        self._check(self.lib.LiteRtLockTensorBuffer(entry["buffer"], ctypes.byref(address), capi.LOCK_WRITE), "lock")
        try:
            ctypes.memmove(address.value, value.ctypes.data, value.nbytes)
        finally:
            self.lib.LiteRtUnlockTensorBuffer(entry["buffer"])

    def run(self):
        self._make_buffers()  # no set_inputs: whatever the fresh buffers hold
        ins = (ctypes.c_void_p * len(self._inputs))(*[e["buffer"] for e in self._inputs])
        outs = (ctypes.c_void_p * len(self._outputs))(*[e["buffer"] for e in self._outputs])
        self._check(self.lib.LiteRtRunCompiledModel(self._compiled, 0, len(self._inputs), ins, len(self._outputs),
                                                    outs), "LiteRtRunCompiledModel")

    def get_outputs(self):
        """{tensor name: array} of the last run (the names the classic Interpreter's output details use)."""
        import numpy as np

        result = {}
        for entry in self._outputs:
            size, address = capi.SIZE(), ctypes.c_void_p()
            self._check(self.lib.LiteRtGetTensorBufferPackedSize(entry["buffer"], ctypes.byref(size)), "buffer size")
            self._check(self.lib.LiteRtLockTensorBuffer(entry["buffer"], ctypes.byref(address), capi.LOCK_READ), "lock")
            try:
                raw = ctypes.string_at(address.value, size.value)
            finally:
                self.lib.LiteRtUnlockTensorBuffer(entry["buffer"])
            array = np.frombuffer(raw, dtype=entry["dtype"] or np.uint8)
            result[entry["tensor"] or entry["name"]] = array.reshape(entry["shape"]) if entry["dtype"] else array
        return result

    def fully_accelerated(self):
        flag = ctypes.c_bool()
        status = self.lib.LiteRtCompiledModelIsFullyAccelerated(self._compiled, ctypes.byref(flag))
        return bool(flag.value) if status == 0 else None

    def start(self):
        self._check(self.lib.LiteRtStartProfiler(self._profiler), "LiteRtStartProfiler")

    def stop(self):
        self._check(self.lib.LiteRtStopProfiler(self._profiler), "LiteRtStopProfiler")

    def reset(self):
        self._check(self.lib.LiteRtResetProfiler(self._profiler), "LiteRtResetProfiler")

    def event_count(self):
        count = ctypes.c_int()
        self._check(self.lib.LiteRtGetNumProfilerEvents(self._profiler, ctypes.byref(count)), "event count")
        return count.value

    def events(self):
        """The recorded events as dicts: tag, type (name), start_us, elapsed_us, meta1, meta2."""
        count = self.event_count()
        if count <= 0:
            return []
        array = (capi.Event * count)()  # sized to the count: a smaller array is refused (status 1)
        self._check(self.lib.LiteRtGetProfilerEvents(self._profiler, count, array), "LiteRtGetProfilerEvents")
        return [{"tag": (e.tag or b"").decode("utf-8", "replace"), "type": EVENT_TYPES.get(e.event_type, str(e.event_type)),
                 "start_us": int(e.start_us), "elapsed_us": int(e.elapsed_us), "meta1": int(e.meta1),
                 "meta2": int(e.meta2)} for e in array]

    def close(self):
        """Destroy everything this object made, in reverse order; safe to call twice."""
        lib = getattr(self, "lib", None)
        if lib is None:
            return
        for entry in self._inputs + self._outputs:
            if entry["buffer"] is not None:
                lib.LiteRtDestroyTensorBuffer(entry["buffer"])
                entry["buffer"] = None
        self._profiler = None  # owned by the compiled model
        for attr, destroy in (("_compiled", lib.LiteRtDestroyCompiledModel), ("_options", lib.LiteRtDestroyOptions),
                              ("_model", lib.LiteRtDestroyModel), ("_env", lib.LiteRtDestroyEnvironment)):
            if getattr(self, attr, None):
                destroy(getattr(self, attr))
                setattr(self, attr, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def profile(model_path, feeds, runs, warmup=2, num_threads=1, kernel_mode="xnnpack", library_dir=None):
    """Compile `model_path` with the profiler armed, write `feeds`, run `warmup` unprofiled runs, then `runs`
    profiled ones. Returns {"events", "outputs" (of the last run), "fully_accelerated", "library", "version",
    "seconds", "kernel_mode", "threads"}; everything is destroyed before it returns, whatever happened."""
    started = time.perf_counter()
    model = ProfiledModel(model_path, num_threads=num_threads, kernel_mode=kernel_mode, library_dir=library_dir)
    try:
        model.set_inputs(feeds)
        for _ in range(warmup):
            model.run()
        model.reset()  # nothing was recorded while stopped; reset anyway so only the profiled runs count
        events = []
        model.start()
        for _ in range(runs):
            model.run()
            if model.event_count() > PROFILER_CAPACITY // 2:  # read out before the ring buffer wraps
                model.stop()
                events.extend(model.events())
                model.reset()
                model.start()
        model.stop()
        events.extend(model.events())
        model.reset()
        accelerated = model.fully_accelerated()
        if kernel_mode == "builtin" and (accelerated or any(e["type"] == "DELEGATE_PROFILED_OPERATOR_INVOKE"
                                                            for e in events)):
            # the CPU options were not read (another identifier or payload in this wheel): say so rather than
            # label XNNPACK times as builtin ones
            raise LiteRtProfilerError("kernel_mode builtin did not take effect in ai-edge-litert %s (XNNPACK still "
                                      "ran); fix: %s, or profile with kernel_mode xnnpack" % (model.version, FIX))
        return {"events": events, "outputs": model.get_outputs(), "fully_accelerated": accelerated,
                "library": model.library, "version": model.version, "seconds": time.perf_counter() - started,
                "kernel_mode": kernel_mode, "threads": num_threads}
    finally:
        model.close()


def split_runs(events):
    """The event stream cut into one list per profiled run: at each `LiteRT::Run[buffer registration]`
    event, or at each `Invoke` where the runtime wrote none (events before the first marker open run 0)."""
    marker = RUN_START_TAG if any(e["tag"] == RUN_START_TAG for e in events) else "Invoke"
    runs, opened = [], False
    for event in events:
        if event["tag"] == marker and event["type"] == "DEFAULT":
            if opened or not runs:  # stray events before the first marker stay with the first run
                runs.append([])
            opened = True
        elif not runs:
            runs.append([])
        runs[-1].append(event)
    return runs
