"""The LiteRT runner on an emulated aarch64 Raspberry Pi 4 (tools/emulated_pi.py): LiteRTBackend pushes it over real
SSH (host key pinned) and the Pi's own aarch64 ai-edge-litert wheel runs the tiny .tflite models under qemu; the
outputs fetched home equal the numpy reference.

Under emulation every run is ~300x slower, so the runs are the smallest that still measure (no warm-up, one timed
run). The image has no benchmark_model: the per-op rows come from the LiteRT C profiler of the Pi's own aarch64
wheel (libLiteRt.so through ctypes), one row per TFLite node with the XNNPACK operator that ran it. Skipped where
the machine cannot emulate (see tests/emulated_pi.py) or ai_edge_litert is not installed here (the test models
are written with its schema module).
"""
from __future__ import annotations

import json
from contextlib import closing

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert", reason="ai_edge_litert is not installed (pip install -c constraints.txt -e '.[litert]')")

from edgekit.targets.base import MeasureConfig  # noqa: E402
from tests import tflite_models  # noqa: E402
from tests.emulated_pi import emulated_pis, emulated_store, emulator, ssh_env  # noqa: E402,F401  (fixtures)

TINY = MeasureConfig(warmup=0, runs=1, min_seconds=0, threads=1, profile_runs=1, timeout_s=900)


def test_litert_runner_on_the_emulated_pi(emulated_pis, emulator, tmp_path) -> None:
    from edgekit.targets.registry import open_target

    (device,) = emulated_pis(1)
    fp32 = tflite_models.write_fp32_model(tmp_path / "tiny_fp32.tflite")
    int8 = tflite_models.write_int8_model(tmp_path / "tiny_int8.tflite")
    rng = np.random.default_rng(3)
    image = rng.standard_normal((1, 4, 4, 3)).astype(np.float32)
    offset = rng.standard_normal((1, 2, 2, 2)).astype(np.float32)
    x = rng.integers(-128, 128, size=(1, 8)).astype(np.int8)
    np.savez(tmp_path / "fp32.npz", image=image, offset=offset)
    np.savez(tmp_path / "int8.npz", x=x)
    with closing(open_target("raspberry-pi-4", device.target, ssh_options={"ssh_config": emulator.ssh_config()})) as target:
        target.backend_options["litert"] = {"save_outputs": True}
        m32 = target.measure(fp32, tmp_path / "fp32.npz", None, TINY, tmp_path / "raw" / "fp32")
        m8 = target.measure(int8, tmp_path / "int8.npz", None, TINY, tmp_path / "raw" / "int8")
    for m in (m32, m8):
        result = json.loads(m.files["result"].read_text())
        assert result["machine"] == "aarch64"  # platform.machine() of the Pi's Python that ran the model
        assert result["runtime"]["name"] == "litert" and result["runtime"]["module"] == "ai_edge_litert"
        assert m.latency.count == 1 and m.latency.mean_ms > 0
        assert result["op_profiler"] == "litert" and result["profiler"]["version"][0].isdigit()
    # every node of each model has its row, named by its output tensor, timed by the XNNPACK operator that ran it
    assert [(r["name"], r["op_type"]) for r in m32.layers] == [("conv", "CONV_2D"), ("add", "ADD"), ("probs", "SOFTMAX")]
    assert [r["runtime_ops"] for r in m32.layers] == [["Convolution (NHWC, F32) IGEMM"], ["Add (ND)"], ["Softmax (NC, F32)"]]
    assert [r["op_type"] for r in m8.layers] == ["FULLY_CONNECTED"]
    for m in (m32, m8):
        assert all(r["match"] == "type" for r in m.layers) and sum(r["mean_ms"] for r in m.layers) > 0
        assert abs(sum(r["share"] for r in m.layers) - 1.0) < 1e-6
    with np.load(m32.files["outputs"]) as out:
        np.testing.assert_allclose(out["probs"], tflite_models.fp32_reference(image, offset), rtol=1e-5, atol=1e-6)
    with np.load(m8.files["outputs"]) as out:
        assert out["y"].dtype == np.int8
        assert np.abs(out["y"].astype(int) - tflite_models.int8_reference(x).astype(int)).max() <= 1
    listing = device.ssh("ls ~/.cache/edgekit/runs 2>/dev/null; true").stdout
    assert listing.strip() == ""  # run folders removed on the device


@pytest.mark.slow(reason="a MobileSAM LiteRT deploy under emulation: ~10 min of both cores (run with -m slow)")
def test_litert_int8_deploy_on_the_emulated_pi(emulated_pis, emulated_store, ssh_env, tmp_path) -> None:
    """The issue's deploy line on the emulated Pi: MobileSAM, LiteRT static INT8 calibrated on real photographs, run
    by the Pi's aarch64 LiteRT and profiled per op by its C profiler, rows attributed to modules."""
    import subprocess
    import sys

    pytest.importorskip("litert_torch", reason="litert-torch is not installed (the litert-export extra)")
    from tests import support

    (device,) = emulated_pis(1)
    calib = tmp_path / "calib"
    calib.mkdir()
    for name in ("dog.jpg", "truck.jpg", "groceries.jpg", "sam-demo-dogs.jpg", "mobilesam-picture2.jpg",
                 "efficientvit-bear.jpeg"):
        (calib / name).symlink_to(support.shared_path("images", name))
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "edgekit", "deploy", "-m", "mobilesam", "--target", "raspberry-pi-4",
                           "--host", device.target, "--weights", "synthetic", "--format", "litert", "--precision", "int8",
                           "--calib", str(calib), "--calib-count", "4", "--held-out", "2", "--warmup", "0", "--runs", "1",
                           "--min-seconds", "0", "--profile-runs", "1", "--threads", "2", "--store", str(emulated_store),
                           "--out", str(out)], capture_output=True, text=True, env=ssh_env, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads((out / "report.json").read_text())
    for name in ("report.json", "report.md", "report.html", "trace.json"):
        assert (out / name).is_file(), name
    assert report["target"]["device"]["arch"] == "aarch64" and report["runtime"]["name"] == "litert"
    assert report["runtime"]["delegate"] == "xnnpack" and report["runtime"]["op_profiler"] == "litert"
    for m in report["measurements"]:
        assert m["coverage"]["attributed_share"] >= 0.9, (m["artifact"], m["coverage"])
        assert 0.85 <= m["coverage"]["sum_vs_profiled_run"] <= 1.0 + 1e-6, (m["artifact"], m["coverage"])
    for result in (out / "raw").glob("*/result.json"):
        assert json.loads(result.read_text())["machine"] == "aarch64"
