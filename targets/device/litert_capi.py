"""ctypes binding of the LiteRT C API in the ai-edge-litert wheel's libLiteRt.so: the structs, the functions
litert_profiler.py calls (bound, and so checked, at load time) and the checks that name the fix.

A device-side companion of litert_runner.py (standard library only; pushed beside it). The wheel ships no C
headers; the layouts below are those of litert/c/*.h (LiteRT 2.x), whose profiler part has not changed since
2025-12. The version check matters because the options litert_profiler.py sets are TOML payloads, which
ai-edge-litert reads only since 2.1.6 (earlier wheels take a binary struct and would ignore them).
"""
import ctypes
import importlib.util
import os
import re

MIN_VERSION = (2, 1, 6)
FIX = 'pip install "ai-edge-litert>=2.1.6"'
LIBRARY = "libLiteRt.so"

EVENT_TYPES = {1: "DEFAULT", 2: "OPERATOR_INVOKE", 4: "DELEGATE_OPERATOR_INVOKE",
               8: "DELEGATE_PROFILED_OPERATOR_INVOKE", 16: "GENERAL_RUNTIME_INSTRUMENTATION", 32: "TELEMETRY",
               64: "TELEMETRY_REPORT_SETTINGS", 128: "TELEMETRY_DELEGATE", 256: "TELEMETRY_DELEGATE_REPORT_SETTINGS"}
# LiteRtElementType -> numpy dtype name (the codes are TfLiteType's)
ELEMENT_TYPES = {1: "float32", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16", 9: "int8", 10: "float16",
                 11: "float64", 13: "uint64", 16: "uint32", 17: "uint16"}
HW_CPU = 1
ENV_AUTO_REGISTER_ACCELERATORS, ENV_MIN_LOG_SEVERITY = 24, 25
ANY_INT = 2
LOG_WARNING = 2
LOCK_READ, LOCK_WRITE = 0, 1


class LiteRtProfilerError(RuntimeError):
    """The C profiler cannot be used here; the message says why and how to fix it."""


class LiteRtAny(ctypes.Structure):  # a type tag and an 8-byte union (int64 used here)
    _fields_ = [("type", ctypes.c_int), ("value", ctypes.c_int64)]


class EnvOption(ctypes.Structure):
    _fields_ = [("tag", ctypes.c_int), ("value", LiteRtAny)]


class Layout(ctypes.Structure):
    _fields_ = [("rank", ctypes.c_uint, 7), ("has_strides", ctypes.c_uint, 1),
                ("dimensions", ctypes.c_int32 * 8), ("strides", ctypes.c_uint32 * 8)]


class RankedTensorType(ctypes.Structure):
    _fields_ = [("element_type", ctypes.c_int), ("layout", Layout)]


class _MemoryUsage(ctypes.Structure):
    _fields_ = [("total", ctypes.c_size_t), ("in_use", ctypes.c_size_t), ("private_footprint", ctypes.c_size_t)]


class Event(ctypes.Structure):  # ProfiledEventData (104 bytes on 64-bit)
    _fields_ = [("tag", ctypes.c_char_p), ("event_type", ctypes.c_int), ("start_us", ctypes.c_uint64),
                ("elapsed_us", ctypes.c_uint64), ("begin_mem", _MemoryUsage), ("end_mem", _MemoryUsage),
                ("meta1", ctypes.c_uint64), ("meta2", ctypes.c_uint64), ("source", ctypes.c_int)]


_P = ctypes.c_void_p
_PP = ctypes.POINTER(ctypes.c_void_p)
SIZE = ctypes.c_size_t
# name -> (restype, argtypes); every function the module calls, bound (and so checked) at load time
_SIGNATURES = {
    "LiteRtCreateEnvironment": (ctypes.c_int, [ctypes.c_int, ctypes.POINTER(EnvOption), _PP]),
    "LiteRtDestroyEnvironment": (None, [_P]),
    "LiteRtCreateModelFromFile": (ctypes.c_int, [_P, ctypes.c_char_p, _PP]),
    "LiteRtDestroyModel": (None, [_P]),
    "LiteRtGetModelSignature": (ctypes.c_int, [_P, SIZE, _PP]),
    "LiteRtGetNumSignatureInputs": (ctypes.c_int, [_P, ctypes.POINTER(SIZE)]),
    "LiteRtGetNumSignatureOutputs": (ctypes.c_int, [_P, ctypes.POINTER(SIZE)]),
    "LiteRtGetSignatureInputName": (ctypes.c_int, [_P, SIZE, ctypes.POINTER(ctypes.c_char_p)]),
    "LiteRtGetSignatureOutputName": (ctypes.c_int, [_P, SIZE, ctypes.POINTER(ctypes.c_char_p)]),
    "LiteRtGetSignatureInputTensorByIndex": (ctypes.c_int, [_P, SIZE, _PP]),
    "LiteRtGetSignatureOutputTensorByIndex": (ctypes.c_int, [_P, SIZE, _PP]),
    "LiteRtGetTensorName": (ctypes.c_int, [_P, ctypes.POINTER(ctypes.c_char_p)]),
    "LiteRtGetRankedTensorType": (ctypes.c_int, [_P, ctypes.POINTER(RankedTensorType)]),
    "LiteRtCreateOptions": (ctypes.c_int, [_PP]),
    "LiteRtDestroyOptions": (None, [_P]),
    "LiteRtSetOptionsHardwareAccelerators": (ctypes.c_int, [_P, ctypes.c_int]),
    "LiteRtCreateOpaqueOptions": (ctypes.c_int, [ctypes.c_char_p, _P, _P, _PP]),
    "LiteRtDestroyOpaqueOptions": (None, [_P]),
    "LiteRtAddOpaqueOptions": (ctypes.c_int, [_P, _P]),
    "LiteRtCreateCompiledModel": (ctypes.c_int, [_P, _P, _P, _PP]),
    "LiteRtDestroyCompiledModel": (None, [_P]),
    "LiteRtCompiledModelIsFullyAccelerated": (ctypes.c_int, [_P, ctypes.POINTER(ctypes.c_bool)]),
    "LiteRtCompiledModelResizeInputTensor": (ctypes.c_int, [_P, SIZE, SIZE, ctypes.POINTER(ctypes.c_int), SIZE]),
    "LiteRtGetCompiledModelOutputTensorLayouts": (ctypes.c_int, [_P, SIZE, SIZE, ctypes.POINTER(Layout), ctypes.c_bool]),
    "LiteRtGetCompiledModelInputBufferRequirements": (ctypes.c_int, [_P, SIZE, SIZE, _PP]),
    "LiteRtGetCompiledModelOutputBufferRequirements": (ctypes.c_int, [_P, SIZE, SIZE, _PP]),
    "LiteRtCreateManagedTensorBufferFromRequirements": (ctypes.c_int, [_P, ctypes.POINTER(RankedTensorType), _P, _PP]),
    "LiteRtDestroyTensorBuffer": (None, [_P]),
    "LiteRtGetTensorBufferPackedSize": (ctypes.c_int, [_P, ctypes.POINTER(SIZE)]),
    "LiteRtLockTensorBuffer": (ctypes.c_int, [_P, _PP, ctypes.c_int]),
    "LiteRtUnlockTensorBuffer": (ctypes.c_int, [_P]),
    "LiteRtRunCompiledModel": (ctypes.c_int, [_P, SIZE, SIZE, _PP, SIZE, _PP]),
    "LiteRtCompiledModelGetProfiler": (ctypes.c_int, [_P, _PP]),
    "LiteRtStartProfiler": (ctypes.c_int, [_P]),
    "LiteRtStopProfiler": (ctypes.c_int, [_P]),
    "LiteRtResetProfiler": (ctypes.c_int, [_P]),
    "LiteRtGetNumProfilerEvents": (ctypes.c_int, [_P, ctypes.POINTER(ctypes.c_int)]),
    "LiteRtGetProfilerEvents": (ctypes.c_int, [_P, ctypes.c_int, ctypes.POINTER(Event)]),
}


def package_dir():
    """The installed ai_edge_litert folder, found without importing the package (its __init__ would dlopen
    the library and import vendor SDKs); None when the wheel is not installed."""
    try:
        spec = importlib.util.find_spec("ai_edge_litert")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def wheel_version(folder):
    """The wheel's version from its __init__.py (`__version__ = "2.3.0"`), or None if it does not say."""
    try:
        with open(os.path.join(folder, "__init__.py")) as handle:
            text = handle.read(65536)
    except OSError:
        return None
    m = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.MULTILINE)
    return m.group(1) if m else None


def _version_tuple(version):
    parts = re.findall(r"\d+", version)[:3]
    return tuple(int(p) for p in parts) + (0,) * (3 - len(parts))


def load_library(folder=None):
    """(ctypes.CDLL with every used function bound, library path, wheel version); LiteRtProfilerError naming
    the fix when the wheel, the library or a symbol is missing or the wheel predates the TOML options."""
    folder = folder or package_dir()
    if folder is None:
        raise LiteRtProfilerError("the LiteRT C profiler needs the ai-edge-litert wheel, which is not installed; "
                                  "fix: " + FIX)
    version = wheel_version(folder)
    if version is not None and _version_tuple(version) < MIN_VERSION:
        raise LiteRtProfilerError("ai-edge-litert %s is too old for the LiteRT C profiler (its options are TOML "
                                  "since 2.1.6); fix: %s" % (version, FIX))
    path = os.path.join(folder, LIBRARY)
    if not os.path.isfile(path):
        raise LiteRtProfilerError("no %s in %s: this ai-edge-litert build has no LiteRT C API; fix: %s"
                                  % (LIBRARY, folder, FIX))
    try:
        # RTLD_GLOBAL as the package's own __init__ loads it: one runtime instance whichever loads it first
        lib = ctypes.CDLL(path, mode=getattr(os, "RTLD_LAZY", 1) | ctypes.RTLD_GLOBAL)
    except OSError as exc:
        raise LiteRtProfilerError("cannot load %s: %s; fix: %s" % (path, exc, FIX))
    missing = [name for name in _SIGNATURES if not hasattr(lib, name)]
    if missing:
        raise LiteRtProfilerError("%s (ai-edge-litert %s) lacks %s; fix: %s"
                                  % (path, version or "unknown", ", ".join(missing), FIX))
    for name, (restype, argtypes) in _SIGNATURES.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    return lib, path, version


def libc():
    libc = ctypes.CDLL(None)
    libc.strdup.restype, libc.strdup.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    return libc
