"""Core ML export as a user runs it: `edgekit export --format coreml`, checked from the MIL program.

Core ML cannot predict on Linux, so each package is read back with coremltools and checked: ops and compute
dtypes per precision, the decoder's enumerated prompt lengths, weights by dtype and size, int8 / palettized
weights expanding back to the fp16 package's within their step (and a mismatched pair failing that check), the
layer map putting ops on real modules, the preprocessing metadata, and the reference outputs that the Mac compares
with equal to torch's on the shipped inputs. MobileSAM on the shapes checkpoint (tests/data/shapes).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("coremltools", reason="coremltools is not installed (pip install -c constraints.txt -e '.[coreml]')")

from tests import support  # noqa: E402

CKPT = Path(__file__).resolve().parent / "data" / "shapes" / "mobilesam_shapes.pt"
CALIB = ["dog.jpg", "truck.jpg"]


def export(out: Path, store: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit", "export", "-m", "mobilesam", "-c", str(CKPT),
                           "--format", "coreml", "--store", str(store), "--out", str(out), *args],
                          capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    if not support.has_shared("images"):
        pytest.skip("../shared/images is absent (real photographs to validate and calibrate on)")
    root = tmp_path_factory.mktemp("coreml")
    store = root / "store"
    calib = root / "calib"
    calib.mkdir()
    for name in CALIB:
        (calib / name).symlink_to(support.shared_path("images", name))
    runs = {}
    for precision, extra in (("fp16", ()), ("int8", ()), ("w8a8", ("--part", "decoder", "--calib", str(calib))),
                             ("palette6", ("--part", "decoder"))):
        proc = export(root / precision, store, "--precision", precision, "--images", str(calib), *extra)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
        runs[precision] = proc
    return {"root": root, "store": store, "runs": runs, "calib": calib}


def details(made: dict, precision: str, part: str) -> dict:
    return json.loads((made["root"] / precision / f"mobilesam.{part}.{precision}.json").read_text())["details"]


def package(made: dict, precision: str, part: str) -> Path:
    return made["root"] / precision / f"mobilesam.{part}.{precision}.mlpackage"


def test_fp16_packages_are_ml_programs_with_the_named_float32_io(made: dict) -> None:
    enc, dec = details(made, "fp16", "encoder"), details(made, "fp16", "decoder")
    assert package(made, "fp16", "encoder").is_dir() and (package(made, "fp16", "encoder") / "Manifest.json").is_file()
    assert enc["mil"]["inputs"] == [{"name": "image", "shape": [1, 3, 1024, 1024], "dtype": "float32"}]
    assert [o["name"] for o in enc["mil"]["outputs"]] == ["image_embeddings"]
    assert enc["mil"]["outputs"][0]["shape"] == [1, 256, 64, 64]
    # every computing op in fp16: the only fp32 values are the casts at the edges
    assert set(enc["mil"]["compute_dtypes"]) == {"fp16"} and enc["mil"]["ops"]["cast"] == 2
    assert enc["mil"]["ops"]["conv"] >= 20 and enc["mil"]["ops"]["linear"] >= 30 and enc["mil"]["ops"]["softmax"] == 10
    assert set(enc["mil"]["weights"]) == {"fp16"}
    assert enc["deployment_target"] == "iOS 17 / macOS 14" and dec["deployment_target"] == "iOS 18 / macOS 15"
    coords = next(i for i in dec["mil"]["inputs"] if i["name"] == "point_coords")
    labels = next(i for i in dec["mil"]["inputs"] if i["name"] == "point_labels")
    assert coords["enumerated_shapes"] == [[1, n, 2] for n in (2, 4, 8, 16)] and coords["shape"] == [1, 2, 2]
    assert labels["enumerated_shapes"] == [[1, n] for n in (2, 4, 8, 16)]
    assert [i["name"] for i in dec["mil"]["inputs"]] == ["image_embeddings", "point_coords", "point_labels",
                                                          "mask_input", "has_mask_input"]


def test_weight_bytes_halve_at_int8_and_palette6_stores_six_bits(made: dict) -> None:
    fp16 = details(made, "fp16", "decoder")["mil"]
    int8 = details(made, "int8", "decoder")["mil"]
    pal = details(made, "palette6", "decoder")["mil"]
    f16 = fp16["weights"]["fp16"]["bytes"]
    # int8 data of the large weights; their scales and the small weights stay fp16
    assert 0.45 * f16 < int8["weights"]["int8"]["bytes"] < 0.52 * f16
    assert int8["weights"]["fp16"]["bytes"] < 0.02 * f16
    assert 0.35 * f16 < pal["weights"]["uint6"]["bytes"] < 0.39 * f16  # 6 of 16 bits
    assert pal["compressed_weights"]["constexpr_lut_to_dense"] >= 20
    assert pal["package_bytes"] < int8["package_bytes"] < 0.6 * fp16["package_bytes"]


@pytest.mark.parametrize("precision,part", [("int8", "encoder"), ("int8", "decoder"), ("palette6", "decoder"),
                                            ("w8a8", "decoder")])
def test_compressed_weights_expand_to_the_source_within_their_step(made: dict, precision: str, part: str) -> None:
    check = details(made, precision, part)["dequantize_check"]
    assert check["passed"] and check["unmatched"] == 0 and check["checked"] >= 20
    assert 0.5 < check["worst_ratio"] <= 1.0  # rounding uses most of the half step, never more


def test_a_package_checked_against_another_model_fails_the_step_check(made: dict, tmp_path: Path) -> None:
    """The check can fail: the int8 decoder against an fp16 decoder converted from other (synthetic) weights."""
    from edgekit.exporters.coreml_checks import check_dequantized

    proc = subprocess.run([sys.executable, "-m", "edgekit", "export", "-m", "mobilesam", "--weights", "synthetic",
                           "--format", "coreml", "--part", "decoder", "--precision", "fp16", "--store",
                           str(made["store"]), "--out", str(tmp_path / "synthetic")],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    bad = check_dequantized(package(made, "int8", "decoder"), tmp_path / "synthetic" / "mobilesam.decoder.fp16.mlpackage")
    assert not bad.passed and bad.worst_steps > 10


def test_w8a8_quantizes_the_activations_of_every_conv_and_linear(made: dict) -> None:
    from edgekit.exporters.coreml_checks import load_program

    mil = details(made, "w8a8", "decoder")["mil"]
    assert mil["activation_quantize"] >= 30 and set(mil["compute_dtypes"]) <= {"fp16", "int8", "bool"}  # bool: label tests
    _, program = load_program(package(made, "w8a8", "decoder"))
    layers = [op for op in program.functions["main"].operations if op.op_type in ("linear", "conv")]
    # every nn.Linear / nn.Conv2d (its wrapped weights are named `..._inner_...`) takes int8: x <- dequantize <-
    # quantize (identical pairs on one tensor are merged: q/k/v projections of one input share theirs); the only
    # others are products written as functions (the prompt encoder's coords @ gaussian matrix)
    modules = [op for op in layers if "_inner_" in op.weight.op.name or "_inner_" in (op.bias.op.name if op.bias else "")]
    assert len(modules) >= 40 and len(layers) - len(modules) <= 2
    assert all(op.x.op.op_type == "dequantize" and op.x.op.input.op.op_type == "quantize" for op in modules)
    big = [op for op in modules if int(np.prod(op.weight.shape)) >= 2048]  # smaller weights stay fp16
    assert len(big) >= 40 and all(op.weight.op.op_type.startswith("constexpr") for op in big)
    assert all(op.x.op is None or op.x.op.op_type != "dequantize" for op in layers if op not in modules)


def test_layer_map_puts_ops_on_real_modules(made: dict) -> None:
    from edgekit.variants.registry import get_spec

    names = {n for n, _ in get_spec("mobilesam").build().named_modules()}
    for part, prefix in (("encoder", "image_encoder."), ("decoder", "mask_decoder.")):
        layers = json.loads((made["root"] / "fp16" / f"mobilesam.{part}.fp16.layers.json").read_text())["nodes"]
        modules = [m for m in layers.values() if m != "<graph>"]
        assert len(modules) > 0.6 * len(layers)
        assert all(m in names for m in modules), sorted(set(modules) - names)[:5]
        assert sum(m.startswith(prefix) for m in modules) > 0.5 * len(modules)
    enc = json.loads((made["root"] / "fp16" / "mobilesam.encoder.fp16.layers.json").read_text())["nodes"]
    assert "image_encoder.layers.2.blocks.0.attn.qkv" in enc.values()
    assert "image_encoder.layers.0.blocks.0.conv1.bn" in enc.values()  # conv + BN fused, named after the BN


def test_preprocessing_and_names_are_in_the_package_metadata(made: dict) -> None:
    meta = details(made, "fp16", "encoder")["mil"]
    assert "metadata" not in meta  # kept in the package itself: read it from there
    from edgekit.exporters.coreml_checks import summarize

    got = summarize(package(made, "int8", "encoder"))["metadata"]  # compression keeps it
    pre = json.loads(got["edgekit.preprocess"])
    assert pre["input_size"] == 1024 and pre["mean"] == [123.675, 116.28, 103.53] and pre["pad"] == "bottom-right"
    assert pre["outside_model"] is True and json.loads(got["edgekit.inputs"]) == ["image"]
    assert got["edgekit.model"] == "mobilesam"


def test_reference_outputs_are_torchs_on_the_shipped_inputs(made: dict) -> None:
    from edgekit.checkpoints import load_into, read_checkpoint
    from edgekit.variants.registry import get_spec

    spec = get_spec("mobilesam")
    model = spec.build().eval()
    load_into(model, spec, read_checkpoint(CKPT), source=str(CKPT))
    folder = made["root"] / "fp16"
    with np.load(folder / "mobilesam.encoder.fp16.inputs.npz") as i, np.load(folder / "mobilesam.encoder.fp16.reference.npz") as r:
        with torch.inference_mode():
            emb = model.encode(torch.from_numpy(i["image"]))["image_embeddings"].numpy()
        np.testing.assert_allclose(r["image_embeddings"], emb, atol=1e-5)
    with np.load(folder / "mobilesam.decoder.fp16.inputs.npz") as i, np.load(folder / "mobilesam.decoder.fp16.reference.npz") as r:
        assert i["point_coords"].shape == (1, 2, 2)  # the default enumerated length: what the Mac times
        with torch.inference_mode():
            out = model.decode_all({"image_embeddings": torch.from_numpy(i["image_embeddings"])},
                                   torch.from_numpy(i["point_coords"]), torch.from_numpy(i["point_labels"]),
                                   torch.from_numpy(i["mask_input"]), torch.from_numpy(i["has_mask_input"]))
        np.testing.assert_allclose(r["low_res_masks"], out.low_res_masks.numpy(), atol=1e-4)


def test_ane_warnings_name_the_erf_gelu_and_the_decoders_cpu_ops(made: dict) -> None:
    enc, dec = details(made, "fp16", "encoder"), details(made, "fp16", "decoder")
    assert any("gelu x23 in EXACT" in w for w in enc["ane_warnings"])
    assert any(w.startswith("select x") for w in dec["ane_warnings"])
    assert details(made, "fp16", "encoder")["gelu"] == {"mode": "exact"}


def test_tanh_gelu_is_an_option_whose_cost_is_measured(made: dict) -> None:
    proc = export(made["root"] / "tanh", made["store"], "--part", "decoder", "--precision", "fp16",
                  "--coreml-gelu", "tanh", "--images", str(made["calib"]))
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads((made["root"] / "tanh" / "mobilesam.decoder.fp16.json").read_text())["details"]
    assert info["gelu"]["mode"] == "tanh" and info["gelu"]["modules"] >= 2
    assert 0.9 <= info["gelu"]["fidelity"]["mask_iou"] <= 1.0 and info["gelu"]["fidelity"]["prompts"] >= 2
    assert info["mil"]["gelu_modes"] == {"TANH_APPROXIMATION": info["mil"]["ops"]["gelu"]}
    assert not any("EXACT" in w for w in info["ane_warnings"])


def test_coreml_only_options_and_precisions_are_refused_elsewhere(made: dict, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "edgekit", "export", "-m", "mobilesam", "--weights", "synthetic",
                           "--coreml-gelu", "tanh", "--out", str(tmp_path / "x")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0 and "--coreml-gelu" in proc.stderr and "--format coreml" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "edgekit", "export", "-m", "mobilesam", "--weights", "synthetic",
                           "--format", "coreml", "--precision", "int8-dynamic", "--out", str(tmp_path / "y")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "fp16, fp32, int8, w8a8, palette6" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "edgekit", "export", "-m", "mobilesam", "--weights", "synthetic",
                           "--format", "coreml", "--precision", "w8a8", "--out", str(tmp_path / "z")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "--calib" in proc.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "z").exists()


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(__import__("edgekit.formats.coreml", fromlist=["SURVEYED"]).SURVEYED))
def test_every_surveyed_variant_converts_with_its_checks(variant: str, tmp_path: Path) -> None:
    """What `edgekit models` marks as converting to Core ML does (fp16 and int8, synthetic weights; deselected by
    default: one conversion per variant takes minutes on 2 cores, and MobileSAM's above runs the same code)."""
    for precision in ("fp16", "int8"):
        proc = subprocess.run([sys.executable, "-m", "edgekit", "export", "-m", variant, "--weights", "synthetic",
                               "--format", "coreml", "--precision", precision, "--store", str(tmp_path / "store"),
                               "--out", str(tmp_path / precision)], capture_output=True, text=True, timeout=3600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        for part in ("encoder", "decoder"):
            info = json.loads((tmp_path / precision / f"{variant}.{part}.{precision}.json").read_text())["details"]
            assert info["mil"]["ops"] and info["mil"]["package_bytes"] > 0
            if precision == "int8":
                assert info["dequantize_check"]["passed"]


def test_bicubic_resize_converts_as_two_matmuls_with_torchs_own_weights() -> None:
    """coremltools has no bicubic resize (EdgeSAM's and EfficientViT-SAM's necks use it): edgekit's converter makes
    it A_h @ x @ A_w^T, whose matrices reproduce F.interpolate exactly; the converted program holds them."""
    import torch.nn.functional as F

    from edgekit.exporters.coreml_ops import bicubic_matrix
    from edgekit.exporters.torch2coreml import convert

    x = torch.randn(1, 3, 16, 12, dtype=torch.float64)
    for kwargs, scale in (({"size": (64, 40)}, None), ({"scale_factor": 2.0}, 2.0)):
        ref = F.interpolate(x, mode="bicubic", align_corners=False, **kwargs).numpy()
        a_h = bicubic_matrix(16, ref.shape[2], False, scale)
        a_w = bicubic_matrix(12, ref.shape[3], False, scale)
        np.testing.assert_allclose(a_h @ x.numpy() @ a_w.T, ref, atol=1e-12)
    assert not np.allclose(bicubic_matrix(16, 64, True), bicubic_matrix(16, 64, False))  # align_corners counts

    class Resize(torch.nn.Module):
        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return F.interpolate(image, size=(64, 40), mode="bicubic", align_corners=False)

    made = convert(Resize().eval(), (torch.randn(1, 8, 16, 12),), ("image",), ("resized",), "fp32")
    ops = [op for op in made.model._mil_program.functions["main"].operations if op.op_type != "const"]
    assert [op.op_type for op in ops] == ["matmul", "matmul"]
    np.testing.assert_allclose(ops[0].y.val, bicubic_matrix(12, 40, False).T, atol=1e-7)
    np.testing.assert_allclose(ops[1].x.val, bicubic_matrix(16, 64, False), atol=1e-7)
    assert [int(d) for d in ops[1].outputs[0].shape] == [1, 8, 64, 40]
