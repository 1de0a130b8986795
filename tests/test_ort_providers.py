"""ONNX Runtime's execution providers on a device (targets/device/ort_runner.py): `auto` takes the GPU providers
where the device's onnxruntime has them (onnxruntime-gpu on a Jetson), a named one that is missing is one clear
error, and the report says which provider ran each node. This machine's onnxruntime is the CPU build, so the GPU
choice is checked on the pure function with a GPU build's provider list, and the run on the CPU provider."""
from __future__ import annotations

import json
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np

from edgekit.targets.device import ort_runner

RUNNER = Path(ort_runner.__file__)
GPU_BUILD = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]  # onnxruntime-gpu's list


def tiny_onnx(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("Softmax", ["r"], ["y"], name="softmax")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_auto_prefers_tensorrt_then_cuda_then_cpu() -> None:
    assert ort_runner.choose_providers("auto", GPU_BUILD) == GPU_BUILD
    assert ort_runner.choose_providers("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert ort_runner.choose_providers("auto", ["CPUExecutionProvider", "AzureExecutionProvider"]) == ["CPUExecutionProvider"]
    assert ort_runner.choose_providers("CUDAExecutionProvider,CPUExecutionProvider", GPU_BUILD) == [
        "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_a_missing_provider_is_one_clear_error(tmp_path: Path) -> None:
    model = tiny_onnx(tmp_path / "m.onnx")
    proc = subprocess.run([sys.executable, str(RUNNER), "--model", str(model), "--out", str(tmp_path / "out"),
                           "--runs", "1", "--min-seconds", "0", "--warmup", "0", "--profile-runs", "0",
                           "--providers", "CUDAExecutionProvider"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "this onnxruntime has no CUDAExecutionProvider" in proc.stderr and "onnxruntime-gpu" in proc.stderr


def test_the_report_rows_name_the_provider_that_ran_each_node(tmp_path: Path) -> None:
    from edgekit.targets.base import MeasureConfig
    from edgekit.targets.registry import open_target

    model = tiny_onnx(tmp_path / "m.onnx")
    np.savez(tmp_path / "in.npz", x=np.linspace(-1, 1, 8, dtype=np.float32)[None])
    with closing(open_target("local")) as target:
        m = target.measure(model, tmp_path / "in.npz", None, MeasureConfig(warmup=2, runs=3, min_seconds=0, threads=1,
                                                                           profile_runs=2), tmp_path / "raw")
    result = json.loads(m.files["result"].read_text())
    assert result["runtime"]["providers"] == ["CPUExecutionProvider"] and result["runtime"]["providers_requested"] == "auto"
    assert {r["provider"] for r in m.layers} == {"CPUExecutionProvider"}
    assert set(m.runtime["time_by_provider_ms"]) == {"CPUExecutionProvider"}
