"""`edgekit bundle`: the bundles an app takes, and their reference consumer against `predict` on real photographs.

For `onnx` (ONNX Runtime Mobile .ort) and `android` (LiteRT .tflite), whose runtimes run here, the bundle's own
consume.py (manifest, numpy, PIL and the runtime only) must reproduce edgekit's predict: mask IoU >= 0.99 for
point and box prompts. `ios` (Core ML, which cannot run here) must hold the packages and a manifest that
describes them. MobileSAM on the shapes checkpoint (tests/data/shapes).
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit.store import sha256_path
from tests import support

CKPT = Path(__file__).resolve().parent / "data" / "shapes" / "mobilesam_shapes.pt"
IMAGES = ("dog.jpg", "truck.jpg")
PROMPTS = ({"point": [500, 375]}, {"point": [200, 300]}, {"box": [100, 100, 600, 500]})
PLATFORMS = [p for p, module in (("onnx", "onnxruntime"), ("android", "litert_torch"), ("ios", "coremltools"))
             if importlib.util.find_spec(module) is not None]


def bundle(root: Path, platform: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit", "bundle", "-m", "mobilesam", "-c", str(CKPT), "--platform",
                           platform, "--store", str(root / "store"), "--out", str(root / platform), *extra],
                          capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> Path:
    if not support.has_shared("images"):
        pytest.skip("../shared/images is absent (real photographs)")
    root = tmp_path_factory.mktemp("bundles")
    for platform in PLATFORMS:
        proc = bundle(root, platform, *(["--precision", "fp16"] if platform == "ios" else []))
        assert proc.returncode == 0, proc.stderr[-3000:]
    return root


@pytest.mark.parametrize("platform", PLATFORMS)
def test_manifest_describes_the_models_exactly(bundles: Path, platform: str) -> None:
    folder = bundles / platform
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["schema"] == "edgekit.bundle/1" and manifest["platform"] == platform
    pre = manifest["preprocess"]
    assert (pre["resize_longest"], pre["input_size"], pre["pad"], pre["layout"]) == (1024, 1024, "bottom-right", "NCHW")
    assert pre["mean"] == [123.675, 116.28, 103.53] and pre["std"] == [58.395, 57.12, 57.375]
    prompt = manifest["prompt"]
    assert prompt["coordinate_space"] == "input" and prompt["pad_label"] == -1 and prompt["box_labels"] == [2, 3]
    post = manifest["postprocess"]
    assert post["mask_threshold"] == 0.0 and post["low_res_size"] == 256 and len(post["steps"]) == 4
    assert manifest["variant"]["name"] == "mobilesam" and manifest["license"] == "Apache-2.0"
    assert manifest["weights"]["kind"] == "checkpoint" and len(manifest["weights"]["sha256"]) == 64
    for part in ("encoder", "decoder"):
        entry = manifest["models"][part]
        assert sha256_path(folder / entry["file"]) == entry["sha256"]
        for io in entry["inputs"] + entry["outputs"]:
            assert set(io) >= {"name", "shape", "dtype", "quantization"}
    enc_in = manifest["models"]["encoder"]["inputs"]
    assert [i["name"] for i in enc_in] == ["image"] and enc_in[0]["shape"] == [1, 3, 1024, 1024]
    assert enc_in[0]["dtype"] == "float32"
    dec_in = [i["name"] for i in manifest["models"]["decoder"]["inputs"]]
    assert {"image_embeddings", "point_coords", "point_labels"} <= set(dec_in)  # LiteRT lists them by name
    if platform == "onnx":
        assert manifest["models"]["decoder"]["file"].endswith(".ort") and prompt["point_counts"] is None
        coords = next(i for i in manifest["models"]["decoder"]["inputs"] if i["name"] == "point_coords")
        assert isinstance(coords["shape"][1], str)  # the dynamic prompt length
    else:
        assert prompt["point_counts"] == [2, 4, 8, 16] and prompt["max_points"] == 16
    if platform == "android":
        assert manifest["models"]["decoder"]["signatures"] == {"2": "points_2", "4": "points_4", "8": "points_8",
                                                               "16": "points_16"}
    if platform == "ios":
        coords = next(i for i in manifest["models"]["decoder"]["inputs"] if i["name"] == "point_coords")
        assert coords["enumerated_shapes"][-1] == [1, 16, 2]
        assert (folder / manifest["models"]["encoder"]["file"] / "Manifest.json").is_file()
    assert (folder / "consume.py").is_file() and any((folder / "samples").iterdir())


@pytest.mark.parametrize("platform", [p for p in PLATFORMS if p != "ios"])
def test_the_reference_consumer_reproduces_predict(bundles: Path, platform: str) -> None:
    from edgekit.predictor import load_predictor

    sys.path.insert(0, str(bundles / platform))
    try:
        consume = __import__("consume")
        predictor = load_predictor("mobilesam", CKPT)
        for name in IMAGES:
            rgb = support.read_image(name)
            predictor.set_image(rgb)
            for prompt in PROMPTS:
                if "box" in prompt:
                    ref = predictor.predict(box=prompt["box"], multimask_output=False).masks[0]
                    got, _ = consume.segment(str(bundles / platform), rgb, box=prompt["box"])
                else:
                    result = predictor.predict(point_coords=[prompt["point"]], point_labels=[1])
                    ref = result.masks[int(np.argmax(result.iou_predictions))]
                    got, _ = consume.segment(str(bundles / platform), rgb, [prompt["point"]], [1])
                iou = np.logical_and(ref, got).sum() / max(np.logical_or(ref, got).sum(), 1)
                assert got.shape == rgb.shape[:2] and iou >= 0.99, (platform, name, prompt, iou)
    finally:
        sys.path.remove(str(bundles / platform))
        sys.modules.pop("consume", None)


def test_the_consumer_runs_as_a_script(bundles: Path, tmp_path: Path) -> None:
    platform = PLATFORMS[0]
    proc = subprocess.run([sys.executable, str(bundles / platform / "consume.py"), str(bundles / platform),
                           str(support.shared_path("images", "dog.jpg")), "--point", "500,375", "--out",
                           str(tmp_path / "mask.png")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from PIL import Image

    mask = np.asarray(Image.open(tmp_path / "mask.png"))
    assert mask.shape == support.read_image("dog.jpg").shape[:2] and set(np.unique(mask)) <= {0, 255}


def test_bad_requests_write_nothing(bundles: Path, tmp_path: Path) -> None:
    proc = bundle(tmp_path, "onnx", "--precision", "int8")
    assert proc.returncode != 0 and "--calib" in proc.stderr and not (tmp_path / "onnx").exists()
    proc = bundle(tmp_path, "android", "--precision", "w8a8")
    assert proc.returncode != 0 and "litert makes: fp32, fp16, int8-dynamic, int8" in proc.stderr
    taken = tmp_path / "onnx"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep")
    proc = bundle(tmp_path, "onnx")
    assert proc.returncode != 0 and "not empty" in proc.stderr and sorted(p.name for p in taken.iterdir()) == ["mine.txt"]
    assert not (tmp_path / "onnx.part").exists()
