"""The explicit table of device-tool parsers: KIND -> parse function, for `edgekit parse KIND FILE` and for the
targets that fetch raw output from a device.

Every parser is a pure function `str -> result` (a ProfileParse for profilers, a small frozen dataclass for device
facts; both have `to_dict()`), and raises edgekit.errors.ParseError, never anything else, on input it cannot
read. Functions are named as "module:function" and imported on first use, so listing the kinds stays cheap.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from edgekit.errors import UsageError

_PKG = "edgekit.targets"


@dataclass(frozen=True)
class ParserEntry:
    kind: str
    target: str  # "module:function", relative to edgekit.targets
    tool: str  # what produces the input, as the user would type it
    profiler: bool  # True: returns a ProfileParse (layers / runs / summary)

    def load(self) -> Callable[[str], Any]:
        module, _, func = self.target.partition(":")
        return getattr(importlib.import_module(f"{_PKG}.{module}"), func)


PARSERS: dict[str, ParserEntry] = {e.kind: e for e in (
    ParserEntry("trtexec", "tensorrt.parse_trtexec:parse_trtexec",
                "trtexec console log (--dumpProfile, --dumpLayerInfo, performance summary)", True),
    ParserEntry("trtexec-profile", "tensorrt.parse_trtexec_json:parse_export_profile",
                "trtexec --exportProfile=FILE (JSON)", True),
    ParserEntry("trtexec-layerinfo", "tensorrt.parse_trtexec_json:parse_export_layer_info",
                "trtexec --exportLayerInfo=FILE (JSON)", True),
    ParserEntry("trtexec-times", "tensorrt.parse_trtexec_json:parse_export_times",
                "trtexec --exportTimes=FILE (JSON)", True),
    ParserEntry("benchmark-model", "litert.parse_benchmark_model:parse_benchmark_model",
                "TFLite / LiteRT benchmark_model console output (op profiling optional, many runs per file)", True),
    ParserEntry("ort-profile", "ort.parse_ort_profile:parse_ort_profile",
                "ONNX Runtime profiling JSON (enable_profiling, onnxruntime_perf_test -p)", True),
    ParserEntry("ort-perf-test", "ort.parse_ort_perf_test:parse_ort_perf_test",
                "onnxruntime_perf_test console output", True),
    ParserEntry("coreml-plan", "coreml.parse_compute_plan:parse_compute_plan",
                "Core ML MLComputePlan dump, CoreMLInspect output, or E5RT analytics (text or CSV)", True),
    ParserEntry("tegrastats", "device.parse_tegrastats:parse_tegrastats", "Jetson tegrastats log", False),
    ParserEntry("jetson-release", "device.parse_jetson_release:parse_jetson_release",
                "jetson_release (jetson-stats)", False),
    ParserEntry("cpuinfo", "device.parse_proc:parse_cpuinfo", "cat /proc/cpuinfo", False),
    ParserEntry("meminfo", "device.parse_proc:parse_meminfo", "cat /proc/meminfo", False),
    ParserEntry("vcgencmd", "device.parse_vcgencmd:parse_vcgencmd",
                "Raspberry Pi vcgencmd measure_temp / get_throttled / measure_clock / measure_volts", False),
    ParserEntry("getprop", "device.parse_getprop:parse_getprop", "adb shell getprop", False),
    ParserEntry("build-prop", "device.parse_getprop:parse_build_prop", "Android /system/build.prop", False),
)}


def get_parser(kind: str) -> Callable[[str], Any]:
    """The parse function for `kind`; an unknown kind is a usage error that lists the known ones."""
    entry = PARSERS.get(kind)
    if entry is None:
        raise UsageError(f"unknown parser kind {kind!r}", hint=f"use one of: {', '.join(PARSERS)}")
    return entry.load()


def parse(kind: str, text: str) -> Any:
    """Parse `text` as the output of the tool `kind` names (see PARSERS)."""
    return get_parser(kind)(text)
