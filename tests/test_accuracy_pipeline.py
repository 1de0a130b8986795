"""Accuracy you can act on, end to end through the real CLI on the trained shapes checkpoint
(tests/data/shapes/mobilesam_shapes.pt): a deploy measures ground-truth mIoU for FP32 and INT8 and ranks every
quantized layer; a deploy with a target that full INT8 misses keeps the most sensitive layers in float until it
is met and says what that costs; `edgekit eval` reproduces the report's figures from the artifact files."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit.report.schema import validate

REPO = Path(__file__).resolve().parents[1]
CKPT = REPO / "tests" / "data" / "shapes" / "mobilesam_shapes.pt"
pytest.importorskip("pycocotools", reason="the eval extra (pycocotools) is not installed")
sys.path.insert(0, str(REPO / "tools"))
import shapes  # noqa: E402

EVAL_IMAGES = 3
TRAINING = json.loads(CKPT.with_suffix(".json").read_text())  # written by tools/train_shapes.py with the weights


SEGMENTS = 0.6  # held-out mIoU (point and box) from which the checkpoint segments: INT8 has something to keep


def trained_to_segment() -> None:
    """Skip, with the reason, the checks that hold only for a checkpoint that really segments (its record says
    so); they do not need the training target itself."""
    held = TRAINING["held_out"]
    if min(held["point_miou"], held["box_miou"]) < SEGMENTS:
        pytest.skip(f"the shipped checkpoint stopped at step {TRAINING['step']} (held-out point mIoU "
                    f"{held['point_miou']:.3f}, box {held['box_miou']:.3f}, below {SEGMENTS}): "
                    "tools/train_shapes.py --init continues it")


def edgekit(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit", *argv], capture_output=True, text=True, timeout=3000)


def deploy(root: Path, out: str, *extra: str) -> subprocess.CompletedProcess:
    return edgekit("deploy", "-m", "mobilesam", "-c", str(CKPT), "--precision", "int8", "--calib", str(root / "calib"),
                   "--calib-count", "6", "--held-out", "2", "--eval", str(root / "eval"), "--runs", "2",
                   "--min-seconds", "0", "--warmup", "1", "--profile-runs", "1", "--store", str(root / "store"),
                   "--out", str(root / out), *extra)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("accuracy")
    shapes.write_dataset(root / "eval", EVAL_IMAGES, seed=1_000_000)
    calib = root / "calib"
    shapes.write_dataset(calib, 8, seed=2_000_000)  # scenes of the model's own domain, never trained on
    for meta in calib.glob("*.json"):
        meta.unlink()
    first = deploy(root, "run1", "--sensitivity")
    assert first.returncode == 0, first.stderr[-3000:]
    r1 = json.loads((root / "run1" / "report.json").read_text())
    # a target just above what full INT8 reaches: the deploy must keep layers in float to meet it (a small step
    # needs few layers, hence few trials: this file is in the default run)
    target = r1["fidelity"]["embedding_sqnr_db"] + 0.25
    second = deploy(root, "run2", "--sqnr-target", f"{target:.3f}")
    assert second.returncode == 0, second.stderr[-3000:]
    return {"root": root, "r1": r1, "r2": json.loads((root / "run2" / "report.json").read_text()), "target": target,
            "second": second}


def test_ground_truth_miou_for_each_precision(runs) -> None:
    acc = runs["r1"]["accuracy"]
    validate(runs["r1"])
    assert acc["images"] == EVAL_IMAGES and acc["masks"] >= EVAL_IMAGES
    for precision in ("fp32", "int8"):
        assert 0.0 <= acc[precision]["point_miou"] <= 1.0 and 0.0 <= acc[precision]["box_miou"] <= 1.0
    md = (runs["root"] / "run1" / "report.md").read_text()
    assert "## Accuracy against ground truth" in md and "## INT8 sensitivity per layer" in md
    assert f"{acc['int8']['box_miou']:.4f}" in md


def test_trained_checkpoint_segments_and_int8_keeps_it(runs) -> None:
    trained_to_segment()
    acc = runs["r1"]["accuracy"]
    assert min(acc["fp32"]["point_miou"], acc["fp32"]["box_miou"]) > 0.6, acc
    for kind in ("point_miou", "box_miou"):  # issue 10: INT8 within a point or two of FP32 on the same masks
        assert abs(acc["int8"][kind] - acc["fp32"][kind]) < 0.03, acc


def test_sensitivity_ranks_both_parts_with_module_paths(runs) -> None:
    nodes = runs["r1"]["sensitivity"]["nodes"]
    assert {n["part"] for n in nodes} == {"encoder", "decoder"}
    alone = [n["alone_sqnr_db"] for n in nodes if n["alone_sqnr_db"] is not None]
    assert alone == sorted(alone) and len(alone) > 100  # MobileSAM: ~90 encoder + ~60 decoder layers
    assert sum(n["module"] is not None for n in nodes) >= 0.9 * len(nodes)
    html = (runs["root"] / "run1" / "report.html").read_text()
    assert 'id="sensitivity"' in html and "most sensitive layers" in html


def test_mixed_precision_meets_the_target_it_was_given(runs) -> None:
    r2, target = runs["r2"], runs["target"]
    mixed = r2["mixed_precision"]
    assert r2["fidelity"]["passed"] is False  # full INT8 misses it
    assert mixed["passed"] is True and mixed["fidelity"]["embedding_sqnr_db"] >= target
    ranking = r2["sensitivity"]["nodes"]
    k = len(mixed["float_nodes"])
    assert 1 <= k < len(ranking) and mixed["float_nodes"] == ranking[:k]  # the most sensitive, in rank order
    passing = [t["float_nodes"] for t in mixed["trials"] if t["passed"]]
    assert min(passing) == k and all(t["passed"] is False for t in mixed["trials"] if t["float_nodes"] < k)
    measured = {(m["part"], m["precision"]) for m in r2["measurements"]}
    assert any(p == "int8-mixed" for _, p in measured)
    for key in ("encoder_fp32", "encoder_int8"):
        assert mixed["latency_ms"][key] > 0
    assert "int8-mixed" in r2["accuracy"]
    assert "kept in float" in runs["second"].stdout
    md = (runs["root"] / "run2" / "report.md").read_text()
    assert "## Mixed precision" in md and ranking[0]["node"] in md


def test_eval_reproduces_the_report_from_the_artifact_files(runs) -> None:
    run = runs["root"] / "run1"
    out = runs["root"] / "eval-int8.json"
    proc = edgekit("eval", "-m", "mobilesam", "-c", str(CKPT), "--data", str(runs["root"] / "eval"),
                   "--encoder", str(run / "mobilesam.encoder.int8.onnx"),
                   "--decoder", str(run / "mobilesam.decoder.int8.onnx"), "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(out.read_text())
    want = runs["r1"]["accuracy"]["int8"]
    assert got["point_miou"] == pytest.approx(want["point_miou"], abs=1e-12)
    assert got["box_miou"] == pytest.approx(want["box_miou"], abs=1e-12)


def test_eval_of_torch_matches_the_fp32_artifacts(runs) -> None:
    out = runs["root"] / "eval-torch.json"
    proc = edgekit("eval", "-m", "mobilesam", "-c", str(CKPT), "--data", str(runs["root"] / "eval"), "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    got, want = json.loads(out.read_text()), runs["r1"]["accuracy"]["fp32"]
    # ONNX Runtime FP32 vs PyTorch: the same masks up to a few boundary pixels
    assert got["point_miou"] == pytest.approx(want["point_miou"], abs=0.01)
    assert got["box_miou"] == pytest.approx(want["box_miou"], abs=0.01)


def test_eval_refuses_bad_input(tmp_path: Path) -> None:
    proc = edgekit("eval", "-m", "mobilesam", "-c", str(CKPT), "--data", str(tmp_path / "none"))
    assert proc.returncode == 3 and "evaluation folder not found" in proc.stderr
    proc = edgekit("eval", "-m", "mobilesam", "-c", str(CKPT), "--data", str(tmp_path), "--encoder", "x.onnx")
    assert proc.returncode == 3 and "--encoder and --decoder go together" in proc.stderr


def test_synthetic_weights_amplify_noise_far_more_than_trained_ones() -> None:
    """Why MobileSAM's synthetic-weight INT8 scores about -1 dB although each layer quantizes at 24 dB or better:
    the untrained network turns 30 dB of float noise after its patch embedding into a few dB at the embedding; the
    trained one keeps most of it."""
    from edgekit.accuracy.noise_gain import noise_gain
    from edgekit.checkpoints import build_variant
    from edgekit.preprocess import SAM_PREPROCESS, preprocess_image

    trained_to_segment()
    x, _ = preprocess_image(SAM_PREPROCESS, shapes.render_scene(1_000_000).rgb)
    synthetic = noise_gain(build_variant("mobilesam", weights="synthetic"), x, "image_encoder.patch_embed")
    trained = noise_gain(build_variant("mobilesam", checkpoint=CKPT), x, "image_encoder.patch_embed")
    # measured: 4.0 dB synthetic, 31.3 dB on the shipped checkpoint (30 dB injected; 18.5 dB before --freeze-bn)
    assert synthetic < 10.0, synthetic
    assert trained > 15.0 and trained > synthetic + 10.0, (synthetic, trained)
    assert np.isfinite([synthetic, trained]).all()
