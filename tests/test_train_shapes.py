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
            "--eval-every", "1", "--eval-count", "1", "--target", "2", *extra]
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
    assert not torch.equal(model.state_dict()["mask_decoder.iou_token.weight"], trained.half().float())  # step 2 moved it
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["step"] == 2 and record["reached_target"] is False
    assert 0.0 <= record["held_out"]["point_miou"] <= 1.0 and len(json.loads((tmp_path / "work" / "log.jsonl").read_text().splitlines()[-1])) > 0
