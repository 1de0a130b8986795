"""Which parser kind reads which fixture in ../shared/fixtures (discovered by name, so a new capture is picked up),
and inline samples for kinds that have no fixture file yet. Shared by the parser tests and the fuzz tests."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from tests import support

FIXTURES = support.SHARED / "fixtures"

# kind -> glob patterns relative to fixtures/
KIND_GLOBS: dict[str, tuple[str, ...]] = {
    "trtexec": ("tensorrt/trtexec_*.log",),
    "trtexec-profile": ("tensorrt/profile_*.json",),
    "trtexec-layerinfo": ("tensorrt/layerinfo_*.json",),
    "trtexec-times": ("tensorrt/times_*.json",),
    "benchmark-model": ("tflite/benchmark_model_*", "tflite/litert_benchmark_model_*"),
    "ort-profile": ("onnxruntime/*.json",),
    "ort-perf-test": ("onnxruntime/onnxruntime_perf_test_*",),
    "coreml-plan": ("coreml/*",),
    "tegrastats": ("jetson/tegrastats_*",),
    "jetson-release": ("jetson/jetson_release*",),
    "cpuinfo": ("raspberrypi/proc_cpuinfo_*",),
    "meminfo": ("android/proc_meminfo_*", "raspberrypi/proc_meminfo_*", "jetson/proc_meminfo_*"),
    "vcgencmd": ("raspberrypi/vcgencmd_*",),
    "getprop": ("android/getprop_*",),
    "build-prop": ("android/build_prop_*",),
}

# Files under fixtures/ that are not raw output of a device tool (documentation; trex's own parse of a log).
NOT_TOOL_OUTPUT = ("FORMATS.md", "SOURCES.md", "tensorrt/trex_profile_metadata_*.json")

# jetson_release has no fixture file: the first sample is the command output quoted in rbonghi/jetson_stats#603
# (jetson-stats 4.3.0 on an Orin NX, "Jetpack missing" form), with the CRLF endings FORMATS.md reports; the second
# is written from FORMATS.md's description of the 4.2.x layout (Model / Jetpack / L4T on one line).
JETSON_RELEASE_SAMPLES = {
    "issue603_orin_nx_jetpack_missing": (
        "Software part of jetson-stats 4.3.0 - (c) 2024, Raffaello Bonghi\r\n"
        "Jetpack missing!\r\n"
        " - Model: NVIDIA Jetson Orin NX Engineering Reference Developer Kit\r\n"
        " - L4T: 36.4.3\r\n"
        "NV Power Mode[2]: 15W\r\n"
        "Serial Number: [XXX Show with: jetson_release -s XXX]\r\n"
        "Hardware:\r\n - P-Number: p3767-0001\r\n - Module: NVIDIA Jetson Orin NX (8GB ram)\r\n"
        "Platform:\r\n - Distribution: Ubuntu 22.04 Jammy Jellyfish\r\n - Release: 5.15.148-tegra\r\n"
        "jtop:\r\n - Version: 4.3.0\r\n - Service: Active\r\n"
        "Libraries:\r\n - CUDA: 12.6.68\r\n - cuDNN: 9.3.0.75\r\n - TensorRT: 10.3.0.30\r\n - VPI: 3.2.4\r\n"
        " - Vulkan: 1.3.204\r\n - OpenCV: 4.8.0 - with CUDA: NO\r\n"),
    "formats_md_4_2_layout": (
        "Software part of jetson-stats 4.2.3 - (c) 2023, Raffaello Bonghi\r\n"
        "Model: NVIDIA Jetson Xavier NX Developer Kit - Jetpack 5.1.1 [L4T 35.3.1]\r\n"
        "NV Power Mode[2]: MODE_15W_6CORE\r\n"
        "Serial Number: [XXX Show with: jetson_release -s XXX]\r\n"
        "Libraries:\r\n - CUDA: 11.4.315\r\n - TensorRT: 8.5.2.2\r\n"),
}


def fixture_files(kind: str) -> list[Path]:
    if not FIXTURES.exists():
        return []
    found: set[Path] = set()
    for pattern in KIND_GLOBS[kind]:
        found.update(p for p in FIXTURES.glob(pattern) if p.is_file())
    return sorted(found)


@lru_cache(maxsize=None)
def read_fixture(relative: str) -> str:
    return (FIXTURES / relative).read_text(encoding="utf-8", errors="replace")


def samples(kind: str) -> list[tuple[str, str]]:
    """(id, text) of every fixture of `kind`, plus its inline samples."""
    out = [(p.relative_to(FIXTURES).as_posix(), read_fixture(p.relative_to(FIXTURES).as_posix()))
           for p in fixture_files(kind)]
    if kind == "jetson-release":
        out += sorted(JETSON_RELEASE_SAMPLES.items())
    return out
