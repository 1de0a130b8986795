"""tools/train_shapes.py trains the registered mobilesam architecture and resumes where it stopped; what it writes
is MobileSAM's official layout (loaded strictly), fp16, with a record of the step and held-out mIoU beside it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
pytest.importorskip("pycocotools", reason="the eval extra (pycocotools) is not installed")


def train(work: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, str(REPO / "tools" / "train_shapes.py"), "--work", str(work), "--out", str(out),
            "--eval-every", "1", "--eval-count", "1", "--target", "2", "--bn-scenes", "1", *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=900)


def test_one_step_resume_and_official_layout(tmp_path: Path) -> None:
    from edgekit.checkpoints import build_variant

    out = tmp_path / "ckpt.pt"
    first = train(tmp_path / "work", out, "--steps", "1")
    assert first.returncode == 1, first.stderr[-2000:]  # a target of 2 is never reached: exit 1, weights written
    assert "below the target" in first.stdout
    state = torch.load(tmp_path / "work" / "state.pt", weights_only=True)
    assert state["step"] == 1
    second = train(tmp_path / "work", out, "--steps", "2")
    assert "resumed at step 1" in second.stdout, second.stdout
    assert torch.load(tmp_path / "work" / "state.pt", weights_only=True)["step"] == 2
    saved = torch.load(out, weights_only=True)
    assert all(v.dtype == torch.float16 for v in saved.values() if v.is_floating_point())
    model = build_variant("mobilesam", checkpoint=out)  # strict: the official layout, every key
    trained = state["model"]["mask_decoder.iou_token.weight"]
    # step 2 moved it
    assert not torch.equal(model.state_dict()["mask_decoder.iou_token.weight"], trained.half().float())
    # trained on whole 1024 frames: the BatchNorm running statistics it trained with are the ones written
    final = torch.load(tmp_path / "work" / "state.pt", weights_only=True)["model"]
    stat = next(k for k in saved if k.endswith("running_mean"))
    assert torch.equal(saved[stat], final[stat].half())
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["step"] == 2 and record["reached_target"] is False
    assert 0.0 <= record["held_out"]["point_miou"] <= 1.0
    assert len(json.loads((tmp_path / "work" / "log.jsonl").read_text().splitlines()[-1])) > 0


def _tools():
    sys.path.insert(0, str(REPO / "tools"))
    import shape_windows

    return shape_windows


def test_a_window_model_has_the_official_keys_and_shapes() -> None:
    t = _tools()
    small, official = t.build_at(256).state_dict(), t.build_at(1024).state_dict()
    assert {k: v.shape for k, v in small.items()} == {k: v.shape for k, v in official.items()}
    for bad in (300, 2048):
        with pytest.raises(SystemExit, match="multiple of 64 up to 1024"):
            t.build_at(bad)


def test_a_window_sees_its_place_in_the_official_frame() -> None:
    """A window's positional encoding is the 1024 frame's, cut at the window; its image and targets are the
    official preprocessing's, cut at the same place."""
    import numpy as np

    from edgekit.preprocess import SAM_PREPROCESS, preprocess_image

    t = _tools()
    official = t.build_at(1024)
    small = t.build_at(256)
    small.load_state_dict(official.state_dict())
    whole = official.prompt_encoder.get_dense_pe()
    assert torch.equal(t.window_pe(official, (0, 0), 1024), whole)
    assert torch.allclose(t.window_pe(small, (320, 512), 256), whole[:, :, 20:36, 32:48], atol=1e-6)
    scene = t.render_scene(5)
    x, geo = preprocess_image(SAM_PREPROCESS, scene.rgb)
    windows = t.training_windows(scene, 256, 4, np.random.default_rng(0))
    assert windows
    for w in windows:
        y0, x0 = w.origin
        assert y0 % 16 == 0 and x0 % 16 == 0 and w.image.shape == (1, 3, 256, 256)
        assert np.array_equal(w.image.numpy(), x[:, :, y0:y0 + 256, x0:x0 + 256])
        assert w.targets.shape[1:] == (64, 64) and (w.targets.flatten(1).sum(1) > 0).all()
        coords, labels = t.window_prompts(w.targets, w.origin, np.random.default_rng(1))
        k = len(w.targets)
        for i in range(k):  # each point lies on its target, in the 1024 frame
            u, v = int((coords[i, 0, 0] - x0) // 4), int((coords[i, 0, 1] - y0) // 4)
            assert w.targets[i, v, u] == 1
        assert labels[:k].tolist() == [[1.0, -1.0]] * k and labels[k:].tolist() == [[2.0, 3.0]] * k


def test_batchnorm_statistics_are_re_estimated_not_blended() -> None:
    t = _tools()
    model = t.build_at(1024).train()
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    t.recalibrate_batchnorm(model, 1)
    first = bn.running_mean.clone()
    assert first.abs().sum() > 0 and bn.momentum == 0.1 and model.training
    with torch.no_grad():
        bn.running_mean.add_(5.0)  # stale statistics must not survive a re-estimate
    t.recalibrate_batchnorm(model, 1)
    assert torch.allclose(bn.running_mean, first)


def test_training_on_windows_writes_the_official_model(tmp_path: Path) -> None:
    from edgekit.checkpoints import build_variant

    out = tmp_path / "small.pt"
    proc = train(tmp_path / "work", out, "--steps", "1", "--size", "256", "--batch", "2")
    assert proc.returncode == 1, proc.stderr[-2000:]
    build_variant("mobilesam", checkpoint=out)  # strict load into the 1024 model
    assert json.loads(out.with_suffix(".json").read_text())["last_train_size"] == 256
    # trained on windows: the statistics written are re-estimated on whole 1024 inputs, not the windows'
    saved = torch.load(out, weights_only=True)
    final = torch.load(tmp_path / "work" / "state.pt", weights_only=True)["model"]
    stat = next(k for k in saved if k.endswith("running_mean"))
    assert not torch.equal(saved[stat], final[stat].half())
    bad = train(tmp_path / "work2", out, "--steps", "1", "--size", "200")
    assert bad.returncode != 0 and "multiple of 64" in bad.stderr


def _trainer():
    sys.path.insert(0, str(REPO / "tools"))
    import train_shapes

    return train_shapes


def test_geometric_targets_are_made_from_the_prompts_alone() -> None:
    sys.path.insert(0, str(REPO / "tools"))
    import shape_step as t
    coords = torch.tensor([[[500.0, 300.0], [0.0, 0.0]], [[100.0, 120.0], [300.0, 200.0]]])  # a point, then a box
    targets = t.geometric_targets(coords, (0, 0), 256)
    assert targets.shape == (2, 256, 256)
    disk, box = targets[0].bool(), targets[1].bool()
    assert disk[300 // 4, 500 // 4] and not disk[300 // 4, (500 + 2 * int(t.GEOMETRIC_RADIUS)) // 4]
    assert abs(int(disk.sum()) - 3.14159 * (t.GEOMETRIC_RADIUS / 4) ** 2) < 0.02 * int(disk.sum())
    ys, xs = box.nonzero(as_tuple=True)
    assert (int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())) == (25, 74, 30, 49)  # 100..300 x 120..200
    shifted = t.geometric_targets(coords, (64, 64), 256)  # a window at (y, x) = (64, 64): the same box in the frame
    assert torch.equal(shifted[1], torch.roll(targets[1], (-16, -16), (0, 1)))


def test_reset_prompt_path_keeps_the_encoder_and_restarts_the_decoder() -> None:
    t = _trainer()
    model = t.build_at(256)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    t.reset_prompt_path(model, 3.0)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in after if k.startswith("image_encoder."))
    assert not torch.equal(before["mask_decoder.iou_token.weight"], after["mask_decoder.iou_token.weight"])
    gaussian = after["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"]
    assert 2.4 < float(gaussian.std()) < 3.6  # drawn N(0, 1), scaled by 3


def test_freeze_bn_trains_with_the_running_statistics_and_keeps_them(tmp_path: Path) -> None:
    t = _trainer()
    model = t.build_at(256)
    t.set_training(model, freeze_bn=True)
    bns = _tools().batchnorms(model)
    assert bns and model.training and not any(m.training for m in bns)
    assert model.mask_decoder.training and model.image_encoder.training
    # through the CLI, one whole-frame step: the statistics a fresh model starts with (0 and 1) are the ones saved,
    # while the BatchNorm's own scale trained
    proc = train(tmp_path / "work", tmp_path / "out.pt", "--steps", "1", "--freeze-bn")
    assert proc.returncode == 1, proc.stderr[-2000:]
    state = torch.load(tmp_path / "work" / "state.pt", weights_only=True)["model"]
    means = [k for k in state if k.endswith("running_mean")]
    assert means and all(torch.equal(state[k], torch.zeros_like(state[k])) for k in means)
    assert all(torch.equal(state[k.replace("mean", "var")], torch.ones_like(state[k])) for k in means)
    scale = means[0].replace("running_mean", "weight")
    assert not torch.equal(state[scale], t.build_at(1024).state_dict()[scale])
    bad = train(tmp_path / "work2", tmp_path / "out.pt", "--steps", "1", "--size", "256", "--freeze-bn")
    assert bad.returncode == 2 and "--freeze-bn" in bad.stderr and "--size 1024" in bad.stderr
