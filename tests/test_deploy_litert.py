"""`edgekit deploy --format litert --precision int8` on the local target through the real CLI: litert-torch
exports of MobileSAM validated against torch, static INT8 by ai-edge-quantizer calibrated on real photographs,
every artifact timed by the LiteRT runner and profiled per op by the LiteRT C profiler (XNNPACK), rows attributed
to module paths, then `edgekit report --compare` against an ONNX run of the same model.

Skipped where litert-torch (the litert-export extra) or the real images (../shared) are absent.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.report.schema import validate
from tests import support

pytest.importorskip("litert_torch", reason="litert-torch is not installed (pip install -c constraints.txt -e '.[litert-export]')")

# ~7 min of both cores (MobileSAM's four LiteRT artifacts, calibration, profiling, an ONNX run): `-m slow`. The
# default run covers its parts: conversion and static INT8 (test_litert_export.py), the runner and per-op profiler
# on real .tflite models (test_litert_runner.py, test_litert_profiler*.py), the Pi's LiteRT (test_litert_emulated_pi.py).
pytestmark = pytest.mark.slow(reason="a MobileSAM LiteRT INT8 deploy: ~7 min of both cores")

CALIB = ["dog.jpg", "truck.jpg", "groceries.jpg", "sam-demo-dogs.jpg", "mobilesam-picture2.jpg", "efficientvit-bear.jpeg"]


def deploy(out: Path, store: Path, calib: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "edgekit", "deploy", "--model", "mobilesam", "--target", "local",
            "--calib", str(calib), "--calib-count", "4", "--held-out", "2", "--runs", "3", "--min-seconds", "0",
            "--warmup", "2", "--profile-runs", "3", "--threads", "2", "--store", str(store), "--out", str(out), *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=2400)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("deploy-litert")
    calib = root / "calib"
    calib.mkdir()
    for name in CALIB:
        (calib / name).symlink_to(support.shared_path("images", name))
    litert = deploy(root / "litert", root / "store", calib, "--format", "litert", "--precision", "int8")
    assert litert.returncode == 0, litert.stderr[-3000:]
    # the ONNX side may reuse CI's shared store (the fp32 mobilesam exports other deploy tests made)
    shared = Path(os.environ.get("EDGEKIT_STORE") or root / "onnx-store")
    onnx = deploy(root / "onnx", shared, calib, "--format", "onnx", "--precision", "fp32")
    assert onnx.returncode == 0, onnx.stderr[-3000:]
    return {"root": root, "litert": json.loads((root / "litert" / "report.json").read_text()),
            "onnx": json.loads((root / "onnx" / "report.json").read_text())}


def test_four_report_files_with_litert_runtime_facts(runs: dict) -> None:
    run = runs["root"] / "litert"
    for name in ("report.json", "report.md", "report.html", "trace.json"):
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    report = validate(runs["litert"])
    assert report["format"] == "litert" and report["precision"] == "int8"
    assert {(m["part"], m["precision"], m["format"]) for m in report["measurements"]} == {
        ("encoder", "fp32", "litert"), ("decoder", "fp32", "litert"),
        ("encoder", "int8", "litert"), ("decoder", "int8", "litert")}
    names = {a["path"] for a in report["artifacts"]}
    assert {"mobilesam.encoder.int8.tflite", "mobilesam.decoder.int8.tflite"} <= names
    rt = report["runtime"]
    assert rt["name"] == "litert" and rt["version"][0].isdigit() and rt["threads"] == 2
    assert rt["delegate"] == "xnnpack" and rt["op_profiler"] == "litert"
    # static INT8 of the weighted ops keeps every op in XNNPACK (the "find a recipe whose ops stay delegated")
    assert rt["delegated_share"] == 1.0 and rt["fully_accelerated"] is True
    md = (run / "report.md").read_text()
    assert "litert" in md and "xnnpack delegate (100% of nodes)" in md


def test_litert_layers_cover_the_encoder_and_add_up(runs: dict) -> None:
    for m in runs["litert"]["measurements"]:
        cov = m["coverage"]
        # every operator event aligned to its node, every node's output tensor named by its module
        assert cov["attributed_share"] >= 0.9, (m["artifact"], cov)
        # op events nest inside the Invoke of the very runs they were profiled in
        assert 0.85 <= cov["sum_vs_profiled_run"] <= 1.0 + 1e-6, (m["artifact"], cov)
        assert m["layers"], m["artifact"]
    modules = {row["module"] for row in runs["litert"]["layers"] if row["module"]}
    assert any(m.startswith("image_encoder.layers.") for m in modules)
    assert any(m.startswith("image_encoder.neck") for m in modules)


def test_int8_fidelity_is_measured_by_running_litert_here(runs: dict) -> None:
    f = runs["litert"]["fidelity"]
    assert f["reference"] == "fp32" and f["format"] == "litert" and f["precision"] == "int8" and f["images"] == 2
    assert 0.0 <= f["mask_iou_point"] <= 1.0 and 0.0 <= f["mask_iou_box"] <= 1.0


def test_exports_were_validated_against_torch(runs: dict) -> None:
    infos = [json.loads(p.read_text()) for p in (runs["root"] / "store").glob("*/info.json")]
    litert = [i for i in infos if i.get("exporter") == "litert-torch"]
    assert {i["validation"]["part"] for i in litert} == {"encoder", "decoder"}
    for info in litert:
        v = info["validation"]
        assert v["passed"] and v["samples"] >= 1
        for name, err in v["max_abs"].items():
            assert err <= v["tolerance"] + 2 * v["noise_floor"].get(name, 0.0), (name, err)
    assert [i for i in infos if i.get("exporter") == "ai-edge-quantizer"]


def test_compare_sets_the_onnx_and_litert_runs_side_by_side(runs: dict) -> None:
    out = runs["root"] / "compare"
    proc = subprocess.run([sys.executable, "-m", "edgekit", "report", str(runs["root"] / "onnx"),
                           str(runs["root"] / "litert"), "--compare", "--out", str(out), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)["runs"]
    assert [(r["format"], r["precision"]) for r in rows] == [("onnx", "fp32"), ("litert", "int8")]
    assert rows[0]["fp32_encoder_ms"] > 0 and rows[0]["int8_encoder_ms"] is None
    assert rows[1]["fp32_encoder_ms"] > 0 and rows[1]["int8_encoder_ms"] > 0 and rows[1]["speedup"] > 0
    for name in ("compare.md", "compare.html", "compare.json"):
        assert (out / name).is_file()
    md = (out / "compare.md").read_text()
    assert "litert" in md and "onnx" in md
