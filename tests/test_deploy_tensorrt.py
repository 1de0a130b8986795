"""`edgekit deploy --target jetson-orin` end to end against a stand-in Jetson (tests/jetson_standin.py): a real
loopback sshd, the real device runner, stand-in trtexec / tegrastats / nvpmodel / jetson_clocks that record their
argv and answer in the real tools' formats. TensorRT itself cannot be installed here, so nothing below says how
fast an engine is; it proves the argv each precision builds and runs with, the engine cache, the join of engine
layers to modules, the power block and every error a user meets.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.report.schema import validate
from tests import support
from tests.jetson_standin import JetsonStandin

FAST = ["--runs", "20", "--min-seconds", "0", "--warmup", "2", "--profile-runs", "1"]
CALIB = ["dog.jpg", "truck.jpg", "groceries.jpg"]


def edgekit(device: JetsonStandin, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    env = {**os.environ, "EDGEKIT_SSH_CONFIG": str(device.client_config)}
    return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def deploy(device: JetsonStandin, out: Path, store: Path, *extra: str) -> subprocess.CompletedProcess:
    return edgekit(device, "deploy", "-m", "mobilesam", "--target", "jetson-orin", "--host", device.spec, *FAST,
                   "--store", str(store), "--out", str(out), *extra)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("deploy-trt")
    store = Path(os.environ.get("EDGEKIT_STORE") or root / "store")
    calib = root / "calib"
    calib.mkdir()
    for name in CALIB:
        (calib / name).symlink_to(support.shared_path("images", name))
    with JetsonStandin(root / "jetson") as jetson:
        first = deploy(jetson, root / "fp16", store, "--precision", "fp16")
        assert first.returncode == 0, first.stderr[-3000:]
        built = list(jetson.argv())
        again = deploy(jetson, root / "fp16-again", store, "--precision", "fp16")
        assert again.returncode == 0, again.stderr[-3000:]
        rebuilt = jetson.argv()[len(built):]
        int8 = deploy(jetson, root / "int8", store, "--precision", "int8", "--calib", str(calib), "--calib-count", "2",
                      "--held-out", "1")
        assert int8.returncode == 0, int8.stderr[-3000:]
        yield {"root": root, "jetson": jetson, "first": first, "again": again, "built": built, "rebuilt": rebuilt,
               "int8_argv": jetson.argv()[len(built) + len(rebuilt):],
               "fp16": json.loads((root / "fp16" / "report.json").read_text()),
               "fp16_again": json.loads((root / "fp16-again" / "report.json").read_text()),
               "int8": json.loads((root / "int8" / "report.json").read_text())}


def builds(calls: list[list[str]]) -> list[list[str]]:
    return [c for c in calls if any(a.startswith("--saveEngine=") for a in c)]


def flags(call: list[str]) -> list[str]:
    """An argv with the device paths replaced by their file names (the cache key and run folder vary)."""
    return [a.split("=", 1)[0] + "=" + Path(a.split("=", 1)[1]).name if a.split("=", 1)[0] in (
        "--onnx", "--saveEngine", "--timingCacheFile", "--loadEngine", "--exportTimes", "--exportProfile",
        "--exportLayerInfo") else a for a in call]


def test_fp16_engines_are_built_with_the_exact_argv(runs: dict) -> None:
    made = [flags(c) for c in builds(runs["built"])]
    names = [c[0] for c in made]
    assert names == ["--onnx=mobilesam.encoder.fp32.onnx", "--onnx=mobilesam.decoder.fp32.onnx",
                     "--onnx=mobilesam.encoder.fp16.onnx", "--onnx=mobilesam.decoder.fp16.onnx"]
    encoder16, decoder16 = made[2], made[3]
    assert encoder16[1].endswith(".engine.part") and encoder16[2] == "--timingCacheFile=timing.cache"
    assert encoder16[3:] == ["--fp16", "--profilingVerbosity=detailed", "--skipInference"]
    assert decoder16[3:] == ["--fp16", "--minShapes=point_coords:1x1x2,point_labels:1x1",
                             "--optShapes=point_coords:1x4x2,point_labels:1x4",
                             "--maxShapes=point_coords:1x16x2,point_labels:1x16",
                             "--profilingVerbosity=detailed", "--skipInference"]
    assert made[0][3:] == ["--profilingVerbosity=detailed", "--skipInference"]  # fp32: TensorRT chooses nothing else


def test_engines_run_with_the_profiling_argv(runs: dict) -> None:
    run = [flags(c) for c in runs["built"] if any(a.startswith("--loadEngine=") for a in c)]
    assert len(run) == 4
    decoder = run[1]
    assert decoder[0].endswith(".engine") and decoder[1] == "--shapes=point_coords:1x2x2,point_labels:1x2"
    assert decoder[2:8] == ["--warmUp=200", "--iterations=20", "--duration=0", "--useCudaGraph",
                            "--exportTimes=times.json", "--separateProfileRun"]
    assert decoder[8:11] == ["--profilingVerbosity=detailed", "--exportProfile=profile.json", "--exportLayerInfo=layers.json"]
    assert decoder[11].startswith("--loadInputs=has_mask_input:") and "point_coords:" in decoder[11]
    assert runs["jetson"].argv("tegrastats")[:2] == [["--interval", "100"], ["--interval", "100"]]


def test_int8_is_explicit_quantization_built_strongly_typed(runs: dict) -> None:
    made = [flags(c) for c in builds(runs["int8_argv"])]
    assert [c[0] for c in made] == ["--onnx=mobilesam.encoder.int8.onnx", "--onnx=mobilesam.decoder.int8.onnx"]
    for call in made:
        assert "--stronglyTyped" in call and "--int8" not in call and "--best" not in call and "--fp16" not in call
    fid = runs["int8"]["fidelity"]
    assert fid["precision"] == "int8" and fid["format"] == "tensorrt" and fid["mask_iou"] is not None
    import onnx

    quantized = next(runs["root"].glob("int8/mobilesam.encoder.int8.onnx"))
    graph = onnx.load(str(quantized), load_external_data=False).graph
    zero_points = [i for i in graph.initializer if i.name.endswith("zero_point")]
    assert zero_points and all(not any(onnx.numpy_helper.to_array(z).ravel()) for z in zero_points)  # symmetric


def test_a_second_deploy_builds_nothing_and_says_so(runs: dict) -> None:
    assert builds(runs["rebuilt"]) == [] and len(runs["rebuilt"]) == 4  # four runs, no build
    assert runs["again"].stdout.count("engine reused from the device's cache") == 4
    for m in runs["fp16_again"]["measurements"]:
        assert m["runtime"]["engine"]["reused"] is True
    assert all(m["runtime"]["engine"]["reused"] is False for m in runs["fp16"]["measurements"])


def test_report_attributes_engine_layers_to_modules(runs: dict) -> None:
    report = validate(runs["fp16"])
    assert report["format"] == "tensorrt" and report["precision"] == "fp16" and report["runtime"]["name"] == "tensorrt"
    for m in report["measurements"]:
        assert m["coverage"]["attributed_share"] >= 0.9, (m["artifact"], m["coverage"])
    layers = report["layers"]
    fused = [r for r in layers if " + " in r["name"]]
    assert fused and all(r["module"] for r in fused)
    assert any(r["module"].startswith("image_encoder.layers.") for r in layers if r["module"])
    assert any(r["op_type"] == "Reformat" and r["module"] is None for r in layers)  # no ONNX node: no module
    assert report["fidelity"]["mask_iou"] is None and "half-precision" in report["fidelity"]["note"]


def test_power_block_with_energy_per_inference(runs: dict) -> None:
    report = runs["fp16"]
    power = report["power"]
    assert power["source"] == "tegrastats" and power["input_rail"] == "VDD_IN"
    assert power["idle_input_mw"] == 4980 and power["busy_input_mw"] == 9120  # the stand-in's idle and busy lines
    mean = report["latency_ms"]["mean"]
    assert power["energy_mj_per_inference"] == pytest.approx((9120 - 4980) * mean / 1000, abs=1e-3)
    assert power["gpu_mhz"] == 624 and power["gpu_load_pct"] == 87 and power["throttled"] is False
    assert power["samples"]["busy"] >= 1 and power["samples"]["idle"] >= 1
    md = (runs["root"] / "fp16" / "report.md").read_text()
    assert "## Power" in md and "mJ / inference" in md


def test_device_facts_and_warnings_are_recorded(runs: dict) -> None:
    device = runs["fp16"]["target"]["device"]
    jetson = device["jetson"]
    assert jetson["power_mode"] == {"name": "MAXN_SUPER", "id": 2, "max": True} and jetson["clocks_locked"] is True
    assert jetson["trtexec"].endswith("standin-bin/trtexec") and jetson["module"] is None
    assert any("cannot read the module's name" in w and "deploying anyway" in w for w in device["warnings"])
    assert "cannot read the module's name" in runs["first"].stderr


def test_power_mode_and_clocks_warn_when_not_at_the_maximum(tmp_path: Path) -> None:
    from edgekit.targets.registry import open_target

    with JetsonStandin(tmp_path / "jetson") as jetson:
        jetson.mark("MODE", "7W 1")
        jetson.mark("UNLOCKED")
        target = open_target("jetson-orin", jetson.spec, ssh_options={"ssh_config": jetson.client_config})
        target.close()
        doctor = edgekit(jetson, "doctor", "--target", "jetson-orin", "--host", jetson.spec)
    assert doctor.returncode == 0, doctor.stderr
    assert "WARN power mode       7W (id 1)" in doctor.stdout and "sudo nvpmodel -m 0" in doctor.stdout
    assert "WARN clocks           not locked" in doctor.stdout and "ok   trtexec" in doctor.stdout
    assert target.device["jetson"]["power_mode"] == {"name": "7W", "id": 1, "max": False}
    assert target.device["jetson"]["clocks_locked"] is False
    warnings = target.device["warnings"]
    assert any("power mode 7W (id 1) is not the maximum: `sudo nvpmodel -m 0`" in w for w in warnings)
    assert any("clocks are not locked" in w and "sudo jetson_clocks" in w for w in warnings)


def test_unknown_target_missing_trtexec_and_failed_build_are_clear_errors(tmp_path: Path, runs: dict) -> None:
    with JetsonStandin(tmp_path / "no-trt", tools=("tegrastats", "nvpmodel", "jetson_clocks")) as bare:
        proc = deploy(bare, tmp_path / "a", tmp_path / "empty-store", "--precision", "fp16")
        assert proc.returncode == 6 and "no trtexec on" in proc.stderr and "sudo apt install nvidia-jetpack" in proc.stderr
        assert "Traceback" not in proc.stderr and not (tmp_path / "empty-store").exists()  # nothing exported first
        proc = edgekit(bare, "deploy", "-m", "mobilesam", "--target", "jetson-orion", "--host", bare.spec,
                       "--out", str(tmp_path / "b"))
        assert proc.returncode == 2 and "unknown target 'jetson-orion'" in proc.stderr and "jetson-orin" in proc.stderr
    store = Path(os.environ.get("EDGEKIT_STORE") or runs["root"] / "store")
    import onnx

    exported = runs["root"] / "fp16" / "mobilesam.encoder.fp32.onnx"
    node = onnx.load(str(exported), load_external_data=False).graph.node[5].name  # the node the "parser" rejects
    with JetsonStandin(tmp_path / "failing") as failing:
        failing.mark("FAIL_BUILD", node)
        proc = deploy(failing, tmp_path / "c", store, "--precision", "fp32")
        assert proc.returncode == 6, proc.stderr[-2000:]
        err = proc.stderr
        assert "could not build the engine" in err and f"at ONNX node {node}" in err
        assert "While parsing node number" in err and "UNSUPPORTED_NODE" in err  # trtexec's own error lines
        assert "build.log" in err and "Traceback" not in err
        log = next((tmp_path / "c" / "raw").glob("*/build.log"))
        assert "Failed to parse onnx file" in log.read_text()
        assert not (tmp_path / "c" / "report.json").exists()
