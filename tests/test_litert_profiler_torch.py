"""The LiteRT C profiler on real converter output: a small torch module (conv, LayerNorm, multi-head attention,
linear) converted by litert-torch, about 7 ms per run on one core, profiled through the device runner.

Checked: every XNNPACK operator is aligned to a TFLite node (only the PAD that XNNPACK fuses into the strided
conv has no event of its own), the per-op sum is within 15% of the profiled runs' Invoke span, the profiled
model's outputs equal torch's, builtin kernels give exact node indices, and rows attribute to modules through
their output tensor names. Skipped where ai_edge_litert or litert_torch is not installed.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert", reason="ai_edge_litert is not installed (pip install -c constraints.txt -e '.[litert]')")
pytest.importorskip("litert_torch", reason="litert_torch is not installed (the litert-export extra): no model to convert")

from edgekit.exporters.layer_map import LayerMap  # noqa: E402
from edgekit.targets.device import litert_runner  # noqa: E402
from edgekit.targets.litert.backend import parse_results  # noqa: E402
from edgekit.targets.litert.parse_litert_ops import parse_litert_ops  # noqa: E402
from tests import tflite_models  # noqa: E402

RUNNER = Path(litert_runner.__file__)
INPUT = "serving_default_args_0"  # litert-torch's name for the first positional argument


@pytest.fixture(scope="module")
def torch_model(tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("torch_tflite")
    path, x, y = tflite_models.write_torch_model(folder / "tiny_attention.tflite")
    np.savez(folder / "inputs.npz", **{INPUT: x})
    return path, folder / "inputs.npz", y


def profile(model: Path, inputs: Path, out: Path, *args: str) -> tuple[dict, dict]:
    proc = subprocess.run([sys.executable, str(RUNNER), "--model", str(model), "--out", str(out), "--inputs", str(inputs),
                           "--min-seconds", "0", "--threads", "1", "--warmup", "2", "--save-outputs", *args],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads((out / "result.json").read_text()), json.loads((out / "litert_ops.json").read_text())


def test_xnnpack_ops_cover_the_invoke_time_and_all_align_to_nodes(torch_model, tmp_path) -> None:
    model, inputs, reference = torch_model
    result, ops = profile(model, inputs, tmp_path, "--runs", "5", "--profile-runs", "20")
    assert result["profiler"]["output_max_abs_diff"] < 1e-6  # profiled compiled model == timed Interpreter
    with np.load(tmp_path / "outputs.npz") as out:
        np.testing.assert_allclose(next(iter(out.values())), reference, rtol=1e-4, atol=1e-5)  # == torch
    parsed = parse_litert_ops(json.dumps(ops))
    summary = parsed.summary
    assert summary["iterations"] == 20 and summary["kernel_mode"] == "xnnpack" and summary["fully_accelerated"] is True
    assert summary["unmatched_ops"] == 0  # every XNNPACK operator went to a node
    assert [(n["op"], n["index"]) for n in summary["unmatched_nodes"]] == [("PAD", 1)]  # fused into the conv
    assert summary["nodes"] == len(ops["nodes"]) and summary["delegated_share"] == 1.0
    assert len(parsed.layers) == summary["nodes"] - 1
    matched = {row.op_type for row in parsed.layers}
    assert {"CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "SOFTMAX", "TRANSPOSE", "MEAN", "RESHAPE"} <= matched
    total = sum(row.mean_ms for row in parsed.layers)
    invoke = summary["profiled_run_ms"]
    assert 3.0 < invoke < 60.0  # a model of a few ms (slower on a loaded machine)
    assert total == pytest.approx(invoke, rel=0.15)
    assert sum(row.share for row in parsed.layers) == pytest.approx(1.0)
    heaviest = max(parsed.layers, key=lambda row: row.mean_ms)
    assert heaviest.op_type in ("BATCH_MATMUL", "SOFTMAX") and "MultiheadAttention_attn" in heaviest.name


def test_builtin_kernels_align_exactly_and_are_labelled(torch_model, tmp_path) -> None:
    model, inputs, reference = torch_model
    result, ops = profile(model, inputs, tmp_path, "--runs", "1", "--profile-runs", "2", "--kernel-mode", "builtin")
    assert result["kernel_mode"] == "builtin" and result["delegate"] == "builtin"
    assert result["profiler"]["fully_accelerated"] is False and result["profiler"]["output_max_abs_diff"] < 1e-5
    for run in ops["runs"]:
        events = [e for e in run if e["type"] == "OPERATOR_INVOKE"]
        assert [(e["meta1"], e["tag"]) for e in events] == [(n["index"], n["op"]) for n in ops["nodes"]]
    parsed = parse_litert_ops(json.dumps(ops))
    assert parsed.summary["alignment"] == "exact" and parsed.summary["unmatched_nodes"] == []
    assert [row.extra["node_index"] for row in parsed.layers] == [n["index"] for n in ops["nodes"]]
    assert [row.name for row in parsed.layers] == [n["outputs"][0] for n in ops["nodes"]]
    assert sum(row.mean_ms for row in parsed.layers) == pytest.approx(parsed.summary["profiled_run_ms"], rel=0.05)
    files = {"result": tmp_path / "result.json", "ops": tmp_path / "litert_ops.json"}
    m = parse_results(model.name, result, files, None)
    assert "TFLite's builtin kernels" in m.layers_note and "not of the XNNPACK path" in m.layers_note


def test_rows_attribute_to_modules_by_output_tensor(torch_model, tmp_path) -> None:
    model, inputs, _ = torch_model
    result, ops = profile(model, inputs, tmp_path, "--runs", "1", "--profile-runs", "3")
    # litert-torch names each output tensor after the modules that produced it: map them as the LiteRT layer map
    # does (tensor name -> module path), leaving the top-level ops to node:<index> entries
    modules = {"Conv2d_conv1": "conv1", "Conv2d_conv2": "conv2", "LayerNorm_norm": "norm",
               "MultiheadAttention_attn": "attn"}
    tensors, nodes = {}, {}
    for node in ops["nodes"]:
        found = [path for key, path in modules.items() if key in node["outputs"][0]]
        if found:
            tensors[node["outputs"][0]] = found[-1]
        else:
            nodes[f"node:{node['index']}"] = "<graph>"
    files = {"result": tmp_path / "result.json", "ops": tmp_path / "litert_ops.json"}
    m = parse_results(model.name, result, files, LayerMap(nodes=nodes, tensors=tensors))
    assert m.layers and all(row["module"] for row in m.layers)
    by_module: dict[str, float] = {}
    for row in m.layers:
        by_module[row["module"]] = by_module.get(row["module"], 0.0) + row["mean_ms"]
    assert max(by_module, key=by_module.get) == "attn"  # the 784-token attention dominates
    assert m.coverage()["attributed_share"] == pytest.approx(1.0)
    assert 0.85 <= m.coverage()["sum_vs_profiled_run"] <= 1.0


def test_static_int8_model_aligns_convert_ops_to_quantize_nodes(tmp_path) -> None:
    import torch

    model, x = tflite_models.write_torch_int8_model(tmp_path / "tiny_int8.tflite")
    np.savez(tmp_path / "inputs.npz", **{INPUT: x})  # float: the runner quantizes it to the int8 input
    result, ops = profile(model, tmp_path / "inputs.npz", tmp_path / "out", "--runs", "1", "--profile-runs", "3")
    assert result["quantized_inputs"] == [INPUT] and result["profiler"]["output_max_abs_diff"] == 0.0
    scale, zero_point = result["outputs"][0]["quantization"]
    with np.load(tmp_path / "out" / "outputs.npz") as out:
        real = (next(iter(out.values())).astype(np.float64) - zero_point) * scale
    with torch.no_grad():
        expected = tflite_models.torch_module(32)(torch.from_numpy(x)).numpy()
    # static INT8 of a 5-layer net: within a few output steps of float torch
    assert np.abs(real - expected).max() < 0.05 * max(1.0, np.abs(expected).max())
    parsed = parse_litert_ops(json.dumps(ops))
    assert parsed.summary["unmatched_ops"] == 0 and [n["op"] for n in parsed.summary["unmatched_nodes"]] == ["PAD"]
    converts = [row for row in parsed.layers if "Convert (NC)" in row.extra["runtime_ops"]]
    assert converts and {row.op_type for row in converts} == {"QUANTIZE", "DEQUANTIZE"}
    assert any("QS8" in tag for row in parsed.layers for tag in row.extra["runtime_ops"])  # quantized kernels ran
