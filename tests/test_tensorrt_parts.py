"""The pure parts of the Jetson / TensorRT path, on real captured outputs where they exist: the engine-layer join
(TRT 10.16 detailed layer info), the power block (a real L4T 35 tegrastats capture), the Jetson fact parsers, the
runner's .npz -> .bin inputs, the OneHot check and the tensorrt format's build spec."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.exporters.layer_map import LayerMap
from tests import support


def test_engine_layers_join_the_layer_infos_onnx_nodes_to_modules() -> None:
    from edgekit.targets.tensorrt.engine_layers import engine_rows

    info = support.shared_path("fixtures", "tensorrt", "layerinfo_trt10.16_detailed_myelin_metadata.json").read_text()
    names = [layer["Name"] for layer in json.loads(info)["Layers"]]
    # an --exportProfile over the same engine's layers, as trtexec writes it (FORMATS.md 1.2)
    profile = [{"count": 10}] + [{"name": n, "timeMs": 1.0 * (i + 1), "averageMs": 0.1 * (i + 1),
                                  "medianMs": 0.1 * (i + 1), "percentage": 0.0} for i, n in enumerate(names)]
    layer_map = LayerMap(nodes={"node_conv2d": "backbone.conv1", "node_relu": "backbone.act1",
                                "node_linear": "head.fc1", "node_relu_2": "head.fc1", "node_linear_1": "head.fc2"})
    got = engine_rows(json.dumps(profile), info, layer_map)
    rows = {r["name"]: r for r in got.rows}
    assert got.iterations == 10 and got.note is None and len(got.rows) == len(names)
    fused = rows["node_conv2d + node_relu"]
    assert fused["onnx_nodes"] == ["node_conv2d", "node_relu"] and fused["modules"] == ["backbone.conv1", "backbone.act1"]
    assert fused["module"] == "backbone" and fused["op_type"] == "CaskConvolution"  # the modules' common path
    assert rows["node_linear_myl4_0"]["module"] == "head.fc1"  # a Myelin kernel's U+001F-separated nodes
    assert rows["node_max_pool2d"]["module"] == ""  # a node the map does not know stays unattributed
    names_only = engine_rows(json.dumps(profile), json.dumps({"Layers": names, "Bindings": []}), layer_map)
    assert "built without --profilingVerbosity=detailed" in names_only.note
    assert all(r["module"] == "" for r in names_only.rows)


def test_layer_module_prefers_real_modules_over_the_graph_body() -> None:
    from edgekit.targets.tensorrt.engine_layers import layer_module

    assert layer_module(["<graph>", "prompt_encoder.mask_downscaling.0"]) == "prompt_encoder.mask_downscaling.0"
    assert layer_module(["a.b.c", "a.b.d"]) == "a.b" and layer_module(["x.y", "z"]) == "x.y"
    assert layer_module(["<graph>"]) == "<graph>" and layer_module([]) == ""


def test_power_block_on_a_real_tegrastats_capture() -> None:
    from edgekit.targets.device.jetson_power import power_block

    lines = support.shared_path("fixtures", "jetson", "tegrastats_xavier_nx_l4t35_timestamped_mW.log").read_text().splitlines()
    busy = [ln for ln in lines if "GR3D_FREQ 0%" not in ln and "RAM" in ln]
    idle = [ln for ln in lines if "GR3D_FREQ 0%" in ln]
    assert busy and idle
    block = power_block("tegrastats", "\n".join(idle), "\n".join(lines), latency_ms=20.0)
    assert block["samples"] == {"idle": len(idle), "run": len(lines), "busy": len(busy)}
    assert block["input_rail"] == "VDD_IN" and set(block["busy_mw"]) == {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}
    expected_busy = np.mean([int(ln.split("VDD_IN ")[1].split("mW")[0]) for ln in busy])
    assert block["busy_input_mw"] == pytest.approx(expected_busy, abs=0.1)
    active = max(block["busy_input_mw"] - block["idle_input_mw"], 0.0)
    assert block["energy_mj_per_inference"] == pytest.approx(active * 20.0 / 1000, abs=1e-3)
    assert block["energy_total_mj_per_inference"] == pytest.approx(block["busy_input_mw"] * 20.0 / 1000, abs=1e-3)
    assert "GPU" in block["temps_max_c"] and "PMIC" not in block["temps_max_c"]  # the placeholder sensor is no reading


def test_power_block_flags_heat_and_reads_sysfs_samples() -> None:
    from edgekit.errors import ParseError
    from edgekit.targets.device.jetson_power import power_block

    hot = "RAM 2000/7620MB (lfb 1x4MB) CPU [10%@1510] GR3D_FREQ 90%@[624,624] gpu@96.5C VDD_IN 9000mW/9000mW"
    cold = "RAM 2000/7620MB (lfb 1x4MB) CPU [10%@1510] GR3D_FREQ 0%@[306,306] gpu@40.0C VDD_IN 5000mW/5000mW"
    block = power_block("tegrastats", cold, f"{cold}\n{hot}", 10.0)
    assert block["throttled"] is True and "gpu at or above 95 C" in block["throttle_reasons"][0]
    sysfs = "\n".join(json.dumps({"t": i, "mw": {"VDD_GPU_SOC": 3000.0 + 100 * i, "VDD_CPU_CV": 1000.0}}) for i in range(3))
    idle = json.dumps({"t": 0, "mw": {"VDD_GPU_SOC": 2000.0, "VDD_CPU_CV": 800.0}})
    block = power_block("ina3221", idle, sysfs, 10.0)
    assert block["input_rail"] == "sum of rails" and block["busy_input_mw"] == pytest.approx(4100.0)
    assert block["energy_mj_per_inference"] == pytest.approx((4100.0 - 2800.0) * 10.0 / 1000)
    with pytest.raises(ParseError):
        power_block("tegrastats", cold, cold, 10.0)  # never busy: no energy to give


def test_jetson_facts_from_their_real_shapes() -> None:
    from edgekit.targets.device.parse_jetson import clocks, cuda_version, jetson_block, l4t_release, package_version, power_mode

    assert l4t_release("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan 8")\
        == {"l4t": "36.4.3", "jetpack": "6"}
    assert power_mode("NV Power Mode: MAXN\n0\n") == {"name": "MAXN", "id": 0, "max": True}
    assert power_mode("NV Power Mode: 15W\n1\n") == {"name": "15W", "id": 1, "max": False}
    shown = ("cpu0: Online=1 Governor=schedutil MinFreq=729600 MaxFreq=2201600 CurrentFreq=2201600 IdleStates: WFI=1\n"
             "GPU MinFreq=306000000 MaxFreq=1300500000 CurrentFreq=1300500000\n"
             "EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=3199000000 FreqOverride=0\n")
    assert clocks(shown)["locked"] is False and clocks(shown)["gpu_mhz"] == pytest.approx(1300.5)
    assert clocks(shown.replace("MinFreq=729600", "MinFreq=2201600").replace("MinFreq=306000000", "MinFreq=1300500000"))["locked"]
    assert cuda_version('{"cuda": {"name": "CUDA SDK", "version": "12.6.68"}}') == "12.6.68"
    assert cuda_version("CUDA Version 10.2.89") == "10.2.89" and package_version("10.3.0.30-1+cuda12.5") == "10.3.0.30"
    block, warnings = jetson_block({"model": "NVIDIA Jetson AGX Orin Developer Kit\x00", "power_mode": "NV Power Mode: MAXN\n0",
                                    "clocks": shown, "trtexec": "/usr/src/tensorrt/bin/trtexec"})
    assert block["module"] == "NVIDIA Jetson AGX Orin Developer Kit" and block["power_mode"]["max"]
    assert warnings == ["clocks are not locked (jetson_clocks is off): `sudo jetson_clocks` keeps DVFS from making "
                        "latencies drift"]


def test_the_runner_writes_npz_inputs_as_raw_little_endian_bins(tmp_path: Path) -> None:
    from edgekit.targets.device import trt_runner

    arrays = {"image": np.random.default_rng(0).standard_normal((1, 3, 4, 5)).astype(np.float32),
              "point_labels": np.array([[1.0, -1.0]], np.float32), "has_mask_input": np.zeros(1, np.float32)}
    np.savez(tmp_path / "in.npz", **arrays)
    bins = trt_runner.npz_to_bins(str(tmp_path / "in.npz"), str(tmp_path))
    assert {k: v[1] for k, v in bins.items()} == {k: list(a.shape) for k, a in arrays.items()}
    for name, (path, _) in bins.items():
        assert Path(path).read_bytes() == arrays[name].astype("<f4").tobytes()
    assert trt_runner.shape_flag({"point_labels": [1, 2], "point_coords": [1, 2, 2]}) == \
        "point_coords:1x2x2,point_labels:1x2"


def test_onehot_feeding_a_shape_input_is_refused_and_the_build_spec_is_written(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from edgekit.formats.tensorrt import decoder_shapes, onehot_shape_problems

    nodes = [helper.make_node("OneHot", ["labels", "depth", "values"], ["hot"], name="/prompt/OneHot"),
             helper.make_node("Cast", ["hot"], ["hot64"], name="/prompt/Cast", to=TensorProto.INT64),
             helper.make_node("Reshape", ["x", "hot64"], ["y"], name="/prompt/Reshape")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("labels", TensorProto.INT64, [2]),
                                           helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "n", 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [onnx.numpy_helper.from_array(np.array(2, np.int64), "depth"),
                               onnx.numpy_helper.from_array(np.array([0, 1], np.int64), "values")])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert onehot_shape_problems(path) == ["OneHot '/prompt/OneHot' feeds the shape input of Reshape '/prompt/Reshape'"]
    assert decoder_shapes(path) == {"min": {"x": [1, 1, 2]}, "opt": {"x": [1, 4, 2]}, "max": {"x": [1, 16, 2]}}


def test_the_tensorrt_format_makes_three_precisions() -> None:
    from edgekit.errors import InputError
    from edgekit.formats import get_format

    trt = get_format("tensorrt")
    assert trt.precisions == ("fp32", "fp16", "int8") and trt.runtime == "tensorrt" and trt.int8_preset == "tensorrt"
    assert trt.derives_from("fp16") == "fp32" and trt.unmeasured_fidelity("fp16") and trt.unmeasured_fidelity("int8") is None
    with pytest.raises(InputError) as err:
        trt.check_precision("int8-dynamic")
    assert "tensorrt makes: fp32, fp16, int8" in err.value.hint
