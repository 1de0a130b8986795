"""`edgekit deploy --target android-arm64 --serial S --format litert --precision int8 --calib DIR` end to end over
the adb transport, against the stand-in phone (tests/adb_standin.py: a stand-in adb client and a stand-in
benchmark_model that prints a real captured Android output; no phone or adbd can run here). What is real: the
LiteRT exports and INT8, the adb argv, the verified uploads, the phone's facts from a real getprop capture, the
parsing of benchmark_model's real output into per-op rows, the report. What is not: the timings, which are the
captured model's.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.targets.base import MeasureConfig
from edgekit.targets.litert.android import benchmark_argv
from edgekit.targets.phone_tools import big_core_mask, parse_cpufreq
from tests import support
from tests.adb_standin import AdbStandin

pytest.importorskip("litert_torch", reason="litert-torch is not installed (the litert-export extra)")

CAPTURE = ("fixtures", "tflite", "litert_benchmark_model_android_sme2_kleidiai_use_profiler_newformat.txt")
CKPT = Path(__file__).resolve().parent / "data" / "shapes" / "mobilesam_shapes.pt"
# a Pixel-like big.LITTLE layout: 4 little, 2 mid, 2 big cores (cpuinfo_max_freq in kHz)
PIXEL_CPUFREQ = ("cpu0 1803000\ncpu1 1803000\ncpu2 1803000\ncpu3 1803000\ncpu4 2348000\ncpu5 2348000\n"
                 "cpu6 2850000\ncpu7 2850000\ncpu8 \n")


def test_the_big_cores_give_the_affinity_mask_and_the_argv() -> None:
    freqs = parse_cpufreq(PIXEL_CPUFREQ)
    assert freqs[7] == 2850000 and 8 not in freqs  # an offline core reads empty
    assert big_core_mask(freqs, 2) == "c0" and big_core_mask(freqs, 4) == "f0" and big_core_mask(freqs, 8) == "ff"
    assert big_core_mask({}, 4) is None
    config = MeasureConfig(warmup=3, runs=20, min_seconds=2.5, threads=4, profile_runs=1)
    assert benchmark_argv("/data/local/tmp/bm", "/w/m.tflite", config, "xnnpack", "f0") == [
        "taskset", "f0", "/data/local/tmp/bm", "--graph=/w/m.tflite", "--num_threads=4", "--warmup_runs=3",
        "--num_runs=20", "--min_secs=2.5", "--enable_op_profiling=true", "--use_xnnpack=true"]
    gpu = benchmark_argv("bm", "m", MeasureConfig(profile_runs=0), "gpu", None)
    assert gpu[0] == "bm" and gpu[-2:] == ["--enable_op_profiling=false", "--use_gpu=true"]


@pytest.mark.skipif(not support.has_shared(*CAPTURE) or not support.has_shared("images"),
                    reason="../shared (captured benchmark_model output, real images) is absent")
def test_deploy_to_an_android_phone_over_adb(tmp_path: Path) -> None:
    adb = AdbStandin(tmp_path / "adb")
    adb.install_benchmark_model(support.shared_path(*CAPTURE))
    profiles = tmp_path / "targets"  # android-arm64 with the stand-in phone's work folder (not /data/local/tmp)
    profiles.mkdir()
    builtin = Path(__file__).resolve().parents[1] / "profiles" / "android-arm64.yaml"
    (profiles / "android-arm64.yaml").write_text(builtin.read_text() + f"workdir: {adb.phone}\n")
    calib = tmp_path / "calib"
    calib.mkdir()
    for name in ("dog.jpg", "truck.jpg", "groceries.jpg"):
        (calib / name).symlink_to(support.shared_path("images", name))
    env = {**os.environ, "EDGEKIT_ADB": str(adb.adb), "EDGEKIT_TARGETS_DIR": str(profiles)}
    store = os.environ.get("EDGEKIT_STORE") or str(tmp_path / "store")
    proc = subprocess.run([sys.executable, "-m", "edgekit", "deploy", "-m", "mobilesam", "-c", str(CKPT),
                           "--target", "android-arm64", "--serial", "standin-phone-1", "--format", "litert",
                           "--precision", "int8", "--calib", str(calib), "--calib-count", "2", "--held-out", "1",
                           "--threads", "4", "--runs", "10", "--store", store, "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, env=env, timeout=3000)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["target"]["name"] == "android-arm64" and report["target"]["transport"] == "adb"
    runs = adb.benchmark_argv()
    graphs = sorted(Path(a.split("=", 1)[1]).name for call in runs for a in call if a.startswith("--graph="))
    assert graphs == sorted(f"mobilesam.{p}.{q}.tflite" for p in ("encoder", "decoder") for q in ("fp32", "int8"))
    for call in runs:  # no cpufreq on the stand-in phone: no taskset (a phone's mask: the test above)
        assert call[1:] == ["--num_threads=4", "--warmup_runs=5", "--num_runs=10", "--min_secs=5",
                            "--enable_op_profiling=true", "--use_xnnpack=true"]
    primary = report["measurements"][0]
    assert primary["runtime"]["op_profiler"] == "benchmark_model" and primary["runtime"]["delegate"] == "xnnpack"
    # the captured output's numbers and its op rows, parsed
    assert primary["latency_ms"]["mean"] == pytest.approx(0.464545, rel=1e-3)
    names = [row["name"] for row in primary["layers"]]
    assert "Delegate/Fully Connected (NC, PF32) GEMM:1" in names
    assert all(row["mean_ms"] >= 0 for row in primary["layers"])
    pushes = [c for c in adb.argv() if c[2:3] == ["push"]]
    assert len([c for c in pushes if c[3].endswith(".tflite")]) == 4  # each artifact once, then verified
    assert all(c[4].endswith(".part") for c in pushes)
    assert (tmp_path / "run" / "raw").is_dir()


PERF = ("fixtures", "onnxruntime", "onnxruntime_perf_test_android_vivo_x300_resnet50v2_no_sme2.txt")
PROFILE = ("fixtures", "onnxruntime", "generated_here_ort1.31.1_x86_64_cpu_tiny_graph_profile.json")


@pytest.mark.skipif(not support.has_shared(*PERF), reason="../shared (captured onnxruntime_perf_test output) is absent")
def test_onnx_on_an_android_phone_is_timed_by_onnxruntime_perf_test(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from edgekit.exporters.layer_map import LayerMap

    adb = AdbStandin(tmp_path / "adb")
    adb.install_perf_test(support.shared_path(*PERF), support.shared_path(*PROFILE))
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(model))
    transport = adb.transport()
    from edgekit.targets.ort.backend import OrtBackend

    config = MeasureConfig(runs=5, threads=2, profile_runs=1)
    m = OrtBackend().measure(transport, model, None, LayerMap(), config, tmp_path / "raw")
    call = adb.benchmark_argv()[-1]
    assert call[:9] == ["-e", "cpu", "-m", "times", "-r", "5", "-x", "2", "-I"]
    assert call[9] == "-p" and call[10].endswith("/profile") and call[11].endswith("/m.onnx")
    assert m.latency.mean_ms == pytest.approx(339.38112) and m.latency.count == 5
    assert m.layers and all(r["mean_ms"] is not None for r in m.layers)  # the profile's nodes
    assert m.runtime["raw_note"] and (tmp_path / "raw" / "profile.json").is_file()
    assert not list(Path(transport.workdir()).glob("runs/*"))  # the run folder is removed on the phone
