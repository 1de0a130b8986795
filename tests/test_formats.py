"""Export formats are plug-ins: a toy format registered inside this test flows through `deploy` to a report with
nothing else changed, and the registry refuses what it cannot make with the list of what it can.

The toy format writes two real, tiny ONNX graphs with the decoder's interface (so ONNX Runtime, picked by the
.onnx suffix, measures them for real) and its own layer map; nothing of ONNX's exporter is used.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import InputError
from edgekit.formats import Format, format_names, get_format, register, unregister
from edgekit.formats.base import MakeJob


def _encoder_graph(path: Path, size: int) -> None:
    import onnx
    from onnx import TensorProto, helper

    # image (1,3,S,S) -> average pool 16x16 -> 1x1 conv to 256 channels = (1,256,S/16,S/16)
    w = np.full((256, 3, 1, 1), 0.01, np.float32)
    nodes = [helper.make_node("AveragePool", ["image"], ["pooled"], name="toy_pool", kernel_shape=[16, 16], strides=[16, 16]),
             helper.make_node("Conv", ["pooled", "w"], ["image_embeddings"], name="toy_proj")]
    graph = helper.make_graph(nodes, "toy_encoder",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("image_embeddings", TensorProto.FLOAT, [1, 256, size // 16, size // 16])],
                              [onnx.numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _decoder_graph(path: Path, low: int) -> None:
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("ReduceMean", ["image_embeddings"], ["m"], name="toy_mean", keepdims=1, axes=[1]),
             helper.make_node("Resize", ["m", "", "scales"], ["low_res_masks"], name="toy_up", mode="nearest"),
             helper.make_node("ReduceMean", ["point_labels"], ["iou_predictions"], name="toy_iou", keepdims=1, axes=[1])]
    inputs = [helper.make_tensor_value_info("image_embeddings", TensorProto.FLOAT, [1, 256, 64, 64]),
              helper.make_tensor_value_info("point_labels", TensorProto.FLOAT, [1, "n"])]
    graph = helper.make_graph(nodes, "toy_decoder", inputs,
                              [helper.make_tensor_value_info("low_res_masks", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("iou_predictions", TensorProto.FLOAT, None)],
                              [onnx.numpy_helper.from_array(np.array([1, 1, low / 64, low / 64], np.float32), "scales")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


class ToyFormat(Format):
    name = "toy"
    suffix = ".onnx"  # ONNX Runtime measures it: the backend is chosen by suffix
    precisions = ("fp32",)
    runtime = "onnxruntime"
    made: list[str] = []

    def make(self, job: MakeJob) -> dict:
        from edgekit.exporters.layer_map import LayerMap

        path = job.folder / job.file
        size, low = job.ctx.spec.input_size, job.ctx.spec.low_res_size
        if job.part == "encoder":
            _encoder_graph(path, size)
            np.savez(job.folder / "inputs.npz", image=np.ones((1, 3, size, size), np.float32))
            layer_map = LayerMap(nodes={"toy_pool": "image_encoder.pool", "toy_proj": "image_encoder.proj"})
        else:
            _decoder_graph(path, low)
            np.savez(job.folder / "inputs.npz", image_embeddings=np.ones((1, 256, 64, 64), np.float32),
                     point_labels=np.ones((1, 2), np.float32))
            layer_map = LayerMap(nodes={"toy_mean": "mask_decoder.mean", "toy_up": "mask_decoder.up",
                                        "toy_iou": "mask_decoder.iou"})
        layer_map.write(job.folder / "layer_map.json")
        self.made.append(job.file)
        return {"exporter": "toy"}


@pytest.fixture
def toy():
    fmt = ToyFormat()
    register(fmt)
    yield fmt
    unregister("toy")


def test_a_format_registered_in_the_test_flows_through_deploy_to_a_report(toy, tmp_path) -> None:
    from edgekit.pipeline.deploy import DeployConfig, run_deploy
    from edgekit.targets.base import MeasureConfig

    assert "toy" in format_names()
    out = tmp_path / "run"
    cfg = DeployConfig(model="mobilesam", out=out, format="toy", precision="fp32", store=tmp_path / "store",
                       measure=MeasureConfig(warmup=2, runs=3, min_seconds=0, threads=1, profile_runs=2),
                       progress=False)
    report = run_deploy(cfg)
    assert toy.made == ["mobilesam.encoder.fp32.onnx", "mobilesam.decoder.fp32.onnx"]
    for name in ("report.json", "report.md", "report.html", "trace.json"):
        assert (out / name).is_file(), name
    written = json.loads((out / "report.json").read_text())
    assert written["format"] == "toy" and report["format"] == "toy"
    assert {m["format"] for m in written["measurements"]} == {"toy"}
    modules = {row["module"] for row in written["layers"]}
    assert modules and modules <= {"image_encoder.pool", "image_encoder.proj"}  # the toy layer map, via ORT
    assert written["coverage"]["attributed_share"] > 0.9
    # a second deploy finds both artifacts in the store and makes nothing
    run_deploy(DeployConfig(**{**cfg.__dict__, "out": tmp_path / "again"}))
    assert len(toy.made) == 2


def test_a_precision_a_format_cannot_make_is_refused_with_those_it_can(toy) -> None:
    with pytest.raises(InputError) as err:
        get_format("toy").check_precision("int8")
    assert "toy makes: fp32" in err.value.hint
    with pytest.raises(InputError) as err:
        get_format("onnx").check_precision("fp16")
    assert "fp32, int8" in err.value.hint
    with pytest.raises(InputError) as err:
        get_format("no-such-format")
    assert "onnx" in err.value.hint and "litert" in err.value.hint


def test_builtin_formats_name_their_suffix_and_precisions() -> None:
    assert get_format("onnx").suffix == ".onnx" and get_format("onnx").precisions == ("fp32", "int8")
    litert = get_format("litert")
    assert litert.suffix == ".tflite" and litert.precisions == ("fp32", "fp16", "int8-dynamic", "int8")
    assert litert.artifact_name("mobilesam", "encoder", "int8") == "mobilesam.encoder.int8.tflite"


def test_litert_survey_lists_name_registered_variants() -> None:
    """`edgekit models` marks LiteRT support from these lists: a misspelt name would silently mark nothing."""
    from edgekit.formats.litert import UNSUPPORTED, VERIFIED
    from edgekit.variants.registry import REGISTRY

    assert VERIFIED <= set(REGISTRY) and set(UNSUPPORTED) <= set(REGISTRY)
    assert not VERIFIED & set(UNSUPPORTED)
    from edgekit.formats.coreml import SURVEYED

    assert SURVEYED <= set(REGISTRY)


def test_a_format_with_mixed_precision_implements_both_of_its_methods() -> None:
    """deploy searches mixed precision for every format whose `mixed_precision` is set: such a format must rank its
    layers and make `int8-mixed` itself, not fall through to the base class's NotImplementedError mid-deploy."""
    from edgekit.formats import format_names, get_format
    from edgekit.formats.base import Format

    mixed = [get_format(n) for n in format_names() if get_format(n).mixed_precision]
    assert {f.name for f in mixed} >= {"onnx", "litert"}
    for fmt in mixed:
        assert "int8" in fmt.calibrated
        for method in ("layer_sensitivity", "make_mixed"):
            assert getattr(type(fmt), method) is not getattr(Format, method), f"{fmt.name} lacks {method}"
