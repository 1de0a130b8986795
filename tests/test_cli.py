"""The `edgekit` command as users run it: real subprocesses, real exit codes, no tracebacks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekit.errors import ExitStatus
from tests import support

ISSUE2_VARIANTS = {"sam-vit-b", "sam-vit-l", "sam-vit-h", "slimsam-50", "slimsam-77", "mobilesam", "tinysam"}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def assert_clean_error(proc: subprocess.CompletedProcess, status: ExitStatus, *fragments: str) -> None:
    assert proc.returncode == int(status), proc.stderr
    assert "Traceback" not in proc.stderr
    # one error message, at the end (warnings may precede it)
    assert proc.stderr.count("edgekit: error: ") == 1 or proc.stderr.startswith("Usage:"), proc.stderr
    if "edgekit: error: " in proc.stderr:
        assert "edgekit: warning" not in proc.stderr.split("edgekit: error: ", 1)[1]
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr


def test_help_teaches_with_examples() -> None:
    proc = run("--help")
    assert proc.returncode == 0 and "predict" in proc.stdout and "Examples" in proc.stdout
    proc = run("predict", "--help")
    assert proc.returncode == 0 and "edgekit predict -m mobilesam" in proc.stdout


def test_models_lists_the_variants_with_counted_params() -> None:
    proc = run("models", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert ISSUE2_VARIANTS <= set(rows)
    # Parameter counts come from the module code; the published figures are facts to meet.
    assert rows["mobilesam"]["params"] == 10_130_092
    assert rows["sam-vit-b"]["params"] == 93_735_472
    assert rows["sam-vit-h"]["params"] == 641_090_608
    assert rows["slimsam-77"]["params"] == 9_723_528
    assert rows["mobilesam"]["checkpoint"] == "mobile_sam.pt" and rows["mobilesam"]["input_size"] == 1024
    assert rows["mobilesam"]["formats"] == {"onnx": True, "litert": True, "tensorrt": True, "coreml": True}
    assert rows["nanosam"]["formats"]["litert"] is False and "ONNX only" in rows["nanosam"]["format_notes"]["litert"]
    text = run("models").stdout
    assert "mobilesam" in text and "10.13M" in text and "onnx,litert,tensorrt†,coreml" in text


def test_unknown_variant_lists_known_ones(tmp_path: Path) -> None:
    proc = run("predict", "-m", "mobilesamm", "--weights", "synthetic", "-i", "x.jpg", "-p", "1,1", "-o", str(tmp_path / "o.npz"))
    assert_clean_error(proc, ExitStatus.USAGE, "unknown variant 'mobilesamm'", "mobilesam, tinysam")
    assert not (tmp_path / "o.npz").exists()


@pytest.fixture(scope="module")
def synthetic_mobilesam_file(tmp_path_factory) -> Path:
    from edgekit.checkpoints import build_variant

    path = tmp_path_factory.mktemp("ckpt") / "mobile_sam.pt"
    torch.save(build_variant("mobilesam", weights="synthetic").state_dict(), path)
    return path


def test_predict_writes_official_npz_and_overlay(tmp_path: Path, synthetic_mobilesam_file: Path) -> None:
    image = support.shared_path("images", "dog.jpg")
    out, png = tmp_path / "dog.npz", tmp_path / "dog.png"
    proc = run("predict", "-m", "mobilesam", "-c", str(synthetic_mobilesam_file), "-i", str(image),
               "-p", "400,267", "-o", str(out), "--overlay", str(png), "--json")
    assert proc.returncode == 0, proc.stderr
    data = np.load(out)
    assert data["image_embeddings"].shape == (1, 256, 64, 64) and data["image_embeddings"].dtype == np.float32
    assert data["low_res_masks"].shape == (1, 3, 256, 256)
    assert data["iou_predictions"].shape == (1, 3)
    assert data["masks"].shape == (1, 3, 534, 800) and data["masks"].dtype == bool
    # The npz reproduces the official reference for the same prompt (P1 of the dog reference is (400, 267)).
    ref = np.load(support.shared_path("parity", "mobile_sam_vit_t", "dog.npz"))
    assert ref["P1_point_coords"].tolist() == [[400.0, 267.0]]
    assert np.abs(data["low_res_masks"][0] - ref["P1_low_res_logits"]).max() < support.LOGITS_MAX_ABS
    summary = json.loads(proc.stdout)
    assert summary["image_hw"] == [534, 800] and len(summary["iou_predictions"]) == 3
    from PIL import Image

    assert Image.open(png).size == (800, 534)
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.parametrize("args,status,fragment", [
    (["-p", "5000,10"], ExitStatus.INPUT, "outside the 800x534 image"),
    (["-p", "10"], ExitStatus.INPUT, "has 1 numbers"),
    (["-p", "10,10,7"], ExitStatus.INPUT, "labels are 1 (foreground) or 0"),
    (["-b", "300,300,10,10"], ExitStatus.INPUT, "x1 < x0"),
    ([], ExitStatus.INPUT, "no prompt given"),
])
def test_bad_prompts(tmp_path: Path, args: list[str], status: ExitStatus, fragment: str) -> None:
    image = support.shared_path("images", "dog.jpg")
    proc = run("predict", "-m", "mobilesam", "--weights", "synthetic", "-i", str(image), *args, "-o", str(tmp_path / "o.npz"))
    assert_clean_error(proc, status, fragment)
    assert list(tmp_path.iterdir()) == []


def test_bad_image_and_checkpoint_files(tmp_path: Path) -> None:
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("not an image")
    proc = run("predict", "-m", "mobilesam", "--weights", "synthetic", "-i", str(not_image), "-p", "1,1", "-o", str(tmp_path / "o.npz"))
    assert_clean_error(proc, ExitStatus.INPUT, "cannot read image")
    proc = run("predict", "-m", "mobilesam", "--weights", "synthetic", "-i", str(tmp_path / "nope.jpg"), "-p", "1,1", "-o", str(tmp_path / "o.npz"))
    assert_clean_error(proc, ExitStatus.INPUT, "image not found")
    image = support.shared_path("images", "dog.jpg")
    bad = tmp_path / "mobile_sam.pt"
    bad.write_bytes(b"\x80\x02garbage")
    proc = run("predict", "-m", "mobilesam", "-c", str(bad), "-i", str(image), "-p", "1,1", "-o", str(tmp_path / "o.npz"))
    assert_clean_error(proc, ExitStatus.CHECKPOINT, "cannot read checkpoint")
    proc = run("predict", "-m", "mobilesam", "-c", str(tmp_path / "missing.pt"), "-i", str(image), "-p", "1,1", "-o", str(tmp_path / "o.npz"))
    assert_clean_error(proc, ExitStatus.INPUT, "checkpoint not found")
    assert not (tmp_path / "o.npz").exists()


def test_wrong_variant_checkpoint_is_refused(tmp_path: Path, synthetic_mobilesam_file: Path) -> None:
    image = support.shared_path("images", "dog.jpg")
    proc = run("predict", "-m", "slimsam-77", "-c", str(synthetic_mobilesam_file), "-i", str(image), "-p", "1,1", "-o", str(tmp_path / "o.npz"))
    assert_clean_error(proc, ExitStatus.CHECKPOINT, "does not have the slimsam-77 layout", "use --model mobilesam")
    assert not (tmp_path / "o.npz").exists()


@pytest.mark.parametrize("args,fragment", [(["--runs", "0"], "--runs"), (["--threads", "-3"], "--threads"),
                                           (["--timeout", "0"], "--timeout"), (["--warmup", "-1"], "--warmup")])
def test_deploy_refuses_out_of_range_numbers_before_any_work(tmp_path: Path, args: list[str], fragment: str) -> None:
    proc = run("deploy", "-m", "mobilesam", *args, "--out", str(tmp_path / "run"))
    assert proc.returncode == int(ExitStatus.USAGE) and fragment in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_deploy_refuses_an_unwritable_run_folder_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for out, fragment in ((blocker, "is not a folder"), (blocker / "run", "is a file, not a folder"),
                          (Path("/proc/edgekit-test/run"), "cannot write to --out")):
        proc = run("deploy", "-m", "mobilesam", "--out", str(out))
        assert_clean_error(proc, ExitStatus.INPUT, fragment, "pass --out a folder you can write to")
        assert "export" not in proc.stdout  # refused before the first step
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing written, no probe left behind


def test_timeout_bounds_a_runner_job_and_names_the_option(tmp_path: Path) -> None:
    """--timeout reaches the device job: a runner that outlives it is stopped with an error that names the option."""
    from contextlib import closing

    pytest.importorskip("ai_edge_litert", reason="ai_edge_litert is not installed (the litert extra)")
    from edgekit.errors import DeviceFailureError
    from edgekit.targets.base import MeasureConfig
    from edgekit.targets.registry import open_target
    from tests import tflite_models

    model = tflite_models.write_fp32_model(tmp_path / "tiny.tflite")
    config = MeasureConfig(warmup=0, runs=10**9, min_seconds=600, threads=1, profile_runs=0, timeout_s=3)
    with closing(open_target("local")) as target, pytest.raises(DeviceFailureError) as err:
        target.measure(model, None, None, config, tmp_path / "raw")
    assert "within 3 s" in err.value.message and "--timeout" in err.value.hint
    assert "--timeout SECONDS" in run("deploy", "--help").stdout


def test_litert_profiling_options_are_refused_for_other_formats(tmp_path: Path) -> None:
    proc = run("deploy", "-m", "mobilesam", "--format", "onnx", "--kernel-mode", "builtin", "--out", str(tmp_path / "r"))
    assert_clean_error(proc, ExitStatus.INPUT, "--kernel-mode set how LiteRT runs its artifacts",
                       "--format onnx makes none for it", "add --format litert")
    assert not (tmp_path / "r").exists()
