"""The LiteRT runner on an emulated aarch64 Raspberry Pi 4 (tools/emulated_pi.py): LiteRTBackend pushes it over real
SSH (host key pinned) and the Pi's own aarch64 ai-edge-litert wheel runs the tiny .tflite models under qemu; the
outputs fetched home equal the numpy reference.

Under emulation every run is ~300x slower, so the runs are the smallest that still measure (no warm-up, one timed
run). The image has no benchmark_model, so the result must say that no per-op profile was taken. Skipped where
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
from tests.emulated_pi import emulated_pis, emulator  # noqa: E402,F401  (fixtures)

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
        assert m.layers == [] and "no per-op profile" in m.layers_note
    with np.load(m32.files["outputs"]) as out:
        np.testing.assert_allclose(out["probs"], tflite_models.fp32_reference(image, offset), rtol=1e-5, atol=1e-6)
    with np.load(m8.files["outputs"]) as out:
        assert out["y"].dtype == np.int8
        assert np.abs(out["y"].astype(int) - tflite_models.int8_reference(x).astype(int)).max() <= 1
    listing = device.ssh("ls ~/.cache/edgekit/runs 2>/dev/null; true").stdout
    assert listing.strip() == ""  # run folders removed on the device
