"""LiteRT export as a user runs it: `edgekit export --format litert` on real images, checked numerically.

EfficientViT-SAM-L0 (the issue's example) with synthetic weights: the .tflite files are named by the artifact
rule, LiteRT's outputs on real photographs match torch within the FP32 tolerances (1e-4 embeddings, 1e-3
logits), the decoder has one signature per prompt count with the ONNX decoder's input names, and the layer map
puts the encoder's ops on real modules. Skipped where litert-torch (the litert-export extra) is not installed.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("litert_torch", reason="litert-torch is not installed (pip install -c constraints.txt -e '.[litert-export]')")

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    if not IMAGES.is_dir():
        pytest.skip("../shared/images is absent (real photographs to validate on)")
    out = tmp_path_factory.mktemp("litert")
    proc = subprocess.run([sys.executable, "-m", "edgekit", "export", "-m", "efficientvit-sam-l0", "--weights", "synthetic",
                           "--format", "litert", "--images", str(IMAGES), "--store", str(out / "store"),
                           "--out", str(out / "exported")],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    return out / "exported"


def test_export_writes_named_tflite_files_validated_against_torch(exported: Path) -> None:
    for part, tolerance in (("encoder", 1e-4), ("decoder", 1e-3)):
        tflite = exported / f"efficientvit-sam-l0.{part}.fp32.tflite"
        assert tflite.is_file() and tflite.stat().st_size > 100_000
        side = json.loads((exported / f"efficientvit-sam-l0.{part}.fp32.json").read_text())
        assert side["format"] == "litert" and side["precision"] == "fp32"
        check = side["details"]["validation"]
        assert check["passed"] and check["samples"] >= 2
        for name, err in check["max_abs"].items():
            assert err <= tolerance + 2 * check["noise_floor"].get(name, 0.0), (part, name, err)


def test_decoder_signatures_take_the_onnx_input_names_and_pad_prompts(exported: Path) -> None:
    from edgekit.formats.litert_session import LiteRTSession

    session = LiteRTSession(exported / "efficientvit-sam-l0.decoder.fp32.tflite")
    assert list(session.point_counts) == [2, 4, 8, 16]
    inputs = set(session.signatures["points_2"]["inputs"])
    assert inputs == {"image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"}
    assert set(session.signatures["points_2"]["outputs"]) == {"low_res_masks", "iou_predictions"}
    rng = np.random.default_rng(0)
    feeds = {"image_embeddings": rng.standard_normal((1, 256, 64, 64)).astype(np.float32),
             "point_coords": np.array([[[500.0, 400.0], [10.0, 10.0], [900.0, 700.0]]], np.float32),
             "point_labels": np.array([[1.0, 0.0, 1.0]], np.float32),
             "mask_input": np.zeros((1, 1, 256, 256), np.float32), "has_mask_input": np.zeros(1, np.float32)}
    assert session.signature_for(feeds) == "points_4"  # 3 points run padded to 4
    out = session.run(feeds)
    assert out["low_res_masks"].shape == (1, 4, 256, 256) and np.all(np.isfinite(out["low_res_masks"]))


def test_layer_map_attributes_the_encoder_ops_to_modules(exported: Path) -> None:
    layers = json.loads((exported / "efficientvit-sam-l0.encoder.fp32.layers.json").read_text())
    modules = list(layers["nodes"].values())
    assert len(modules) > 100
    inside = [m for m in modules if m.startswith("image_encoder.")]
    assert len(inside) / len(modules) >= 0.9
    assert any(".stages." in m or "backbone" in m for m in inside)  # real depth, not just the encoder's root


def test_static_int8_is_made_from_the_stored_fp32_and_quantizes_the_weighted_ops(exported: Path) -> None:
    """`--precision int8 --calib`: the FP32 .tflite comes from the store (validated on the same --images: nothing is
    converted again), ai-edge-quantizer calibrates on real photographs and writes int8 weights for the weighted ops
    only (quant/litert_quant.py says why), and LiteRT runs the result here."""
    from ai_edge_litert import schema_py_generated as schema

    from edgekit.formats.litert_session import LiteRTSession
    from edgekit.variants.registry import get_spec

    out = exported.parent / "int8"
    store = exported.parent / "store"
    fp32_made = {f: f.stat().st_mtime_ns for f in store.glob("*/efficientvit-sam-l0.encoder.fp32.tflite")}
    assert len(fp32_made) == 1
    proc = subprocess.run([sys.executable, "-m", "edgekit", "export", "-m", "efficientvit-sam-l0", "--weights", "synthetic",
                           "--format", "litert", "--precision", "int8", "--part", "encoder", "--images", str(IMAGES),
                           "--calib", str(IMAGES), "--calib-count", "2", "--store", str(exported.parent / "store"),
                           "--out", str(out)], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the stored FP32 was reused, not converted again
    assert {f: f.stat().st_mtime_ns for f in store.glob("*/efficientvit-sam-l0.encoder.fp32.tflite")} == fp32_made
    int8 = out / "efficientvit-sam-l0.encoder.int8.tflite"
    fp32 = exported / "efficientvit-sam-l0.encoder.fp32.tflite"
    assert int8.stat().st_size < 0.4 * fp32.stat().st_size
    side = json.loads((out / "efficientvit-sam-l0.encoder.int8.json").read_text())
    assert side["details"]["samples"] == 2 and side["details"]["recipe"]["activations"] == 8
    model = schema.Model.GetRootAs(int8.read_bytes(), 0)
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    sub = model.Subgraphs(0)
    weighted = {schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.DEPTHWISE_CONV_2D,
                schema.BuiltinOperator.FULLY_CONNECTED}
    weight_types = set()
    for i in range(sub.OperatorsLength()):
        op = sub.Operators(i)
        code = codes[op.OpcodeIndex()]
        if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) in weighted:
            weight_types.add(sub.Tensors(op.Inputs(1)).Type())
    assert weight_types == {schema.TensorType.INT8}
    size = get_spec("efficientvit-sam-l0").preprocess.input_size  # 512 for L0
    session = LiteRTSession(int8)
    image = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    (name,) = session.signatures[next(iter(session.signatures))]["inputs"]
    embedding = session.run({name: image})["image_embeddings"]
    assert embedding.shape == (1, 256, 64, 64) and np.isfinite(embedding).all()


def test_mixed_precision_meets_a_target_through_the_deploy_steps(exported: Path) -> None:
    """The deploy's own steps on LiteRT, reusing the FP32 exports above: the INT8 pair's fidelity, the sensitivity
    of every quantized op of both parts (each measured alone, mapped to modules), then the search for a target
    just above full INT8's embedding SQNR: it keeps the most sensitive ops in float, in rank order, and the
    `int8-mixed` .tflite files compute exactly those ops in float in every signature."""
    from edgekit.formats import get_format
    from edgekit.formats.base import PARTS
    from edgekit.pipeline.artifacts import BuildSettings, ensure_artifact
    from edgekit.pipeline.context import ModelContext
    from edgekit.pipeline.fidelity import cached_fidelity
    from edgekit.pipeline.mixed import MIXED, Targets, layer_sensitivity, search_mixed
    from edgekit.quant.calibration import list_images, split
    from edgekit.quant.litert_ops import float_keys, read
    from edgekit.quant.presets import PRESETS
    from edgekit.store import Store
    from edgekit.variants.registry import get_spec

    images = list_images(IMAGES)
    calib, held = split(images, 2, 2)
    settings = BuildSettings(validation=images[:2], calib=calib, preset=PRESETS["x86"])  # as `export` made them
    ctx = ModelContext(spec=get_spec("efficientvit-sam-l0"), checkpoint=None, store=Store(exported.parent / "store"))
    fmt = get_format("litert")
    fp32 = {p: ensure_artifact(ctx, fmt, p, "fp32", settings) for p in PARTS}
    assert all(a.entry.reused for a in fp32.values())  # the exports of the fixture, not made again
    int8 = {p: ensure_artifact(ctx, fmt, p, "int8", settings, source=fp32[p], encoder_fp32=fp32["encoder"])
            for p in PARTS}
    fidelity, _ = cached_fidelity(ctx, (fp32["encoder"], int8["encoder"]), (fp32["decoder"], int8["decoder"]), held)
    ranking = layer_sensitivity(ctx, fmt, fp32, int8, settings, held)["nodes"]
    assert {n["part"] for n in ranking} == set(PARTS)
    assert all(n["alone_sqnr_db"] is not None for n in ranking)  # every op's torch twin matched the FP32 model
    assert sum(n["module"] is not None for n in ranking) >= 0.9 * len(ranking)
    target = fidelity["embedding_sqnr_db"] + 0.25
    found = search_mixed(ctx, fmt, fp32, int8, ranking, Targets(None, target), settings, held)
    assert found["passed"] and found["fidelity"]["embedding_sqnr_db"] >= target
    k = len(found["float_nodes"])
    assert 1 <= k < len(ranking) and found["float_nodes"] == ranking[:k]
    for part in PARTS:
        names = {n["node"] for n in found["float_nodes"] if n["part"] == part}
        artifact = found["artifacts"][part]
        assert artifact.precision == (MIXED if names else "int8")
        if names:
            model = read(artifact.path)
            assert float_keys(model) == [names] * len(model.subgraphs)
