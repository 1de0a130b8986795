"""NanoSAM and the plug-in path: an external ONNX image encoder paired with a registered decoder."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from edgekit.errors import InputError
from edgekit.variants.onnx_encoder import check_encoder_io, load_encoder_proto
from edgekit.variants.registry import get_spec
from tests.resnet_encoder import write_encoder
from tests.support import read_image, shared_path


@pytest.fixture(scope="module")
def encoders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("encoders")
    return {"nanosam": write_encoder(root / "resnet18_image_encoder.onnx"),
            "renamed": write_encoder(root / "renamed.onnx", input_name="input", output_name="output", seed=1),
            "small": write_encoder(root / "small.onnx", size=512)}


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True, cwd=cwd)


def test_interface_is_checked_and_names_are_found(encoders: dict[str, Path]) -> None:
    spec = get_spec("nanosam")
    io = check_encoder_io(load_encoder_proto(encoders["renamed"]), spec, "renamed.onnx")
    assert (io.input_name, io.output_name) == ("input", "output") and io.output_shape == (1, 256, 64, 64)
    with pytest.raises(InputError, match=r"shape \[1, 3, 512, 512\]; nanosam feeds \[1, 3, 1024, 1024\]"):
        check_encoder_io(load_encoder_proto(encoders["small"]), spec, "small.onnx")
    two = load_encoder_proto(encoders["nanosam"])
    two.graph.input.append(onnx.helper.make_tensor_value_info("extra", onnx.TensorProto.FLOAT, [1]))
    with pytest.raises(InputError, match="one input, this graph has 2"):
        check_encoder_io(two, spec, "two.onnx")
    wrong = load_encoder_proto(encoders["nanosam"])
    wrong.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 128
    with pytest.raises(InputError, match="no single output is the image embedding"):
        check_encoder_io(_renamed_output(wrong), spec, "w.onnx")


def _renamed_output(model: onnx.ModelProto) -> onnx.ModelProto:
    model.graph.output[0].name = "features"  # not the canonical name, and not the embedding's shape
    return model


def test_cli_refuses_what_cannot_work(encoders: dict[str, Path], tmp_path: Path) -> None:
    image = shared_path("images", "dog.jpg")
    base = ["predict", "--weights", "synthetic", "-i", str(image), "-p", "400,300", "-o", str(tmp_path / "x.npz")]
    missing = _cli(*base, "-m", "nanosam")
    assert missing.returncode == 3 and "--encoder-onnx" in missing.stderr and "nanosam" in missing.stderr
    small = _cli(*base, "-m", "nanosam", "--encoder-onnx", str(encoders["small"]))
    assert small.returncode == 3 and "1024" in small.stderr
    sam2 = _cli(*base, "-m", "sam2.1-hiera-t", "--encoder-onnx", str(encoders["nanosam"]))
    assert sam2.returncode == 3 and "high-resolution features" in sam2.stderr
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    bad = _cli(*base, "-m", "nanosam", "--encoder-onnx", str(junk))
    assert bad.returncode == 3 and "not a readable ONNX model" in bad.stderr
    assert not (tmp_path / "x.npz").exists()


def test_nanosam_is_the_onnx_encoder_and_mobilesams_decoder(encoders: dict[str, Path]) -> None:
    """Embeddings are exactly what the ONNX file computes; masks are MobileSAM's decoder on those embeddings."""
    import onnxruntime as ort

    from edgekit.checkpoints import build_variant
    from edgekit.predictor import Predictor, load_predictor

    rgb = read_image("nanosam-john_1.jpg")
    nano = load_predictor("nanosam", weights="synthetic", encoder_onnx=encoders["renamed"])
    nano.set_image(rgb)
    session = ort.InferenceSession(str(encoders["renamed"]), providers=["CPUExecutionProvider"])
    want = session.run(None, {"input": nano.input_image})[0]
    np.testing.assert_array_equal(nano.get_image_embedding(), want)
    h, w = rgb.shape[:2]
    got = nano.predict(point_coords=[[w * 0.5, h * 0.4]], point_labels=[1], box=[w * 0.2, h * 0.1, w * 0.8, h * 0.9])

    mobile = Predictor(get_spec("mobilesam"), build_variant("mobilesam", weights="synthetic"))
    mobile.set_image(rgb)
    mobile._features = {"image_embeddings": torch.from_numpy(want)}  # MobileSAM's decoder, the ONNX embedding
    ref = mobile.predict(point_coords=[[w * 0.5, h * 0.4]], point_labels=[1], box=[w * 0.2, h * 0.1, w * 0.8, h * 0.9])
    np.testing.assert_allclose(got.low_res_masks, ref.low_res_masks, atol=1e-5)
    np.testing.assert_allclose(got.iou_predictions, ref.iou_predictions, atol=1e-6)
    assert np.array_equal(got.masks, ref.masks)


def test_release_file_decoder_loads_strictly_without_its_encoder(encoders: dict[str, Path], tmp_path: Path) -> None:
    from edgekit.checkpoints import build_variant

    release = build_variant("mobilesam", weights="synthetic").state_dict()
    with torch.no_grad():
        release["mask_decoder.iou_prediction_head.layers.0.bias"] += 1.0  # a value the synthetic decoder lacks
    torch.save(release, tmp_path / "mobile_sam.pt")
    model = build_variant("nanosam", checkpoint=tmp_path / "mobile_sam.pt", encoder_onnx=encoders["nanosam"])
    assert torch.equal(model.state_dict()["mask_decoder.iou_prediction_head.layers.0.bias"],
                       release["mask_decoder.iou_prediction_head.layers.0.bias"])
    assert not any(k.startswith("image_encoder.") for k in model.state_dict())
    del release["mask_decoder.iou_token.weight"]
    torch.save(release, tmp_path / "broken.pt")
    from edgekit.errors import CheckpointError

    with pytest.raises(CheckpointError, match="1 missing: mask_decoder.iou_token.weight"):
        build_variant("nanosam", checkpoint=tmp_path / "broken.pt", encoder_onnx=encoders["nanosam"])


def test_nanosam_deploys_int8_and_compares_with_mobilesam(encoders: dict[str, Path], tmp_path: Path) -> None:
    """nanosam through the whole pipeline: its ONNX encoder imported (renamed, checked on real images), quantized,
    profiled per layer with module paths from the node names; then a comparison run where it fails."""
    calib = shared_path("images")
    out = tmp_path / "run"
    store = tmp_path / "store"
    args = ["deploy", "-m", "nanosam", "--encoder-onnx", str(encoders["renamed"]), "--calib", str(calib),
            "--calib-count", "4", "--held-out", "2", "--runs", "3", "--min-seconds", "0", "--warmup", "1",
            "--profile-runs", "1", "--threads", "1", "--store", str(store), "--out", str(out)]
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == "nanosam" and report["variant"]["family"] == "nanosam"
    assert report["encoder_onnx"]["sha256"].startswith(
        __import__("hashlib").sha256(encoders["renamed"].read_bytes()).hexdigest())
    enc_params = sum(int(np.prod(i.dims)) for i in onnx.load(str(encoders["renamed"])).graph.initializer)
    assert report["variant"]["encoder_params"] == enc_params and report["variant"]["encoder_gflops"] is None
    names = {a["path"] for a in report["artifacts"]}
    assert {"nanosam.encoder.fp32.onnx", "nanosam.encoder.int8.onnx", "nanosam.decoder.fp32.onnx",
            "nanosam.decoder.int8.onnx"} <= names
    imported = onnx.load(str(out / "nanosam.encoder.fp32.onnx"))
    assert [i.name for i in imported.graph.input] == ["image"] and [o.name for o in imported.graph.output] == ["image_embeddings"]
    info = next(json.loads(p.read_text()) for p in store.glob("*/info.json")
                if json.loads(p.read_text()).get("exporter") == "external")
    assert info["validation"]["passed"] and info["validation"]["max_abs"] == {"image_embeddings": 0.0}
    encoder_rows = [m for m in report["measurements"] if m["part"] == "encoder"]
    for m in encoder_rows:
        assert m["coverage"]["attributed_share"] >= 0.95
        assert any(r["module"].startswith("image_encoder.layers.") for r in m["layers"] if r["module"])
    f = report["fidelity"]
    assert f["images"] == 2 and 0.0 <= f["mask_iou"] <= 1.0 and f["embedding_sqnr_db"] is not None

    # a second identical run reuses everything, the import included
    again = _cli(*args)
    assert again.returncode == 0 and "reused from the artifact store: export encoder" in again.stdout

    # a comparison run where one model fails at run time (its encoder returns NaN on real images): the other
    # finishes and keeps its report, and the exit status says "partial"
    nan_encoder = onnx.load(str(encoders["nanosam"]))
    bias = next(t for t in nan_encoder.graph.initializer if t.name == "proj.bias")
    bias.CopyFrom(onnx.numpy_helper.from_array(np.full(onnx.numpy_helper.to_array(bias).shape, np.nan, np.float32),
                                               "proj.bias"))
    onnx.save(nan_encoder, str(tmp_path / "nan.onnx"))
    cmp_out = tmp_path / "cmp"
    mixed = _cli("deploy", "-m", "nanosam", "-m", "mobilesam", "--encoder-onnx", str(tmp_path / "nan.onnx"),
                 "--precision", "fp32", "--runs", "2", "--min-seconds", "0", "--warmup", "0", "--profile-runs", "1",
                 "--threads", "1", "--store", str(store), "--out", str(cmp_out))
    assert mixed.returncode == 8, mixed.stderr[-2000:]
    assert "nanosam: failed (exit 7)" in mixed.stderr and "NaN" in mixed.stderr and "1 of 2 models failed" in mixed.stderr
    assert json.loads((cmp_out / "mobilesam" / "report.json").read_text())["model"] == "mobilesam"
    assert not (cmp_out / "nanosam" / "report.json").exists()
