"""End to end on an emulated aarch64 Raspberry Pi 4 (tools/emulated_pi.py): `edgekit deploy --target
raspberry-pi-4 --host pi@<device>` over real SSH (host key pinned, never accepted blindly), the real aarch64
onnxruntime running the on-device runner under qemu, and a report whose device facts are the Pi's.

Under emulation one MobileSAM encoder run costs minutes of both cores (the whole deploy ~10-15 min), so the default
run deploys NanoSAM's shape (a small ResNet stand-in ONNX encoder + MobileSAM's real decoder, tests/resnet_encoder.py):
the same transport, runner, profiler and report, in about a minute. The MobileSAM deploy runs with `-m slow`.
Skipped where the machine cannot emulate (see tests/emulated_pi.py).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgekit.report.schema import validate
from tests.emulated_pi import FAST_DEPLOY, emulated_pis, emulated_store, emulator, ssh_env  # noqa: F401  (fixtures)


def _deploy(device, store: Path, env: dict, out: Path, *model: str) -> dict:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "edgekit", "deploy", *FAST_DEPLOY, *model, "--host", device.target,
                           "--store", str(store), "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=1800)
    seconds = time.monotonic() - started
    print(f"\nemulated Raspberry Pi deploy ({model[1]}): {seconds:.0f} s", file=sys.stderr)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {"device": device, "out": out, "proc": proc, "seconds": seconds, "model": model[1],
            "report": json.loads((out / "report.json").read_text())}


@pytest.fixture(scope="module", params=[
    "nanosam",
    pytest.param("mobilesam", marks=pytest.mark.slow(reason="MobileSAM under emulation: ~10-15 min of both cores")),
])
def pi_run(request, emulated_pis, emulated_store: Path, ssh_env: dict, tmp_path_factory) -> dict:
    (device,) = emulated_pis(1)
    root = tmp_path_factory.mktemp("emulated-pi")
    model: tuple[str, ...] = ("--model", request.param)
    if request.param == "nanosam":
        from tests.resnet_encoder import write_encoder

        model += ("--encoder-onnx", str(write_encoder(root / "encoder.onnx", width=8)))
    return _deploy(device, emulated_store, ssh_env, root / "run", *model)


def test_report_names_the_emulated_pi(pi_run: dict) -> None:
    report = validate(pi_run["report"])
    target = report["target"]
    assert target["name"] == "raspberry-pi-4" and target["transport"] == "ssh"
    assert target["device"]["arch"] == "aarch64"
    assert "Raspberry Pi 4" in target["device"]["model"]
    assert target["device"]["hostname"] == "raspberrypi"
    assert report["runtime"]["name"] == "onnxruntime" and report["model"] == pi_run["model"]
    assert {(m["part"], m["precision"]) for m in report["measurements"]} == {("encoder", "fp32"), ("decoder", "fp32")}
    for m in report["measurements"]:
        assert m["latency_ms"]["runs"] == 1 and m["latency_ms"]["mean"] > 0


def test_the_runner_ran_aarch64_onnxruntime_and_its_profiler(pi_run: dict) -> None:
    raw = pi_run["out"] / "raw"
    results = sorted(raw.glob("*/result.json"))
    assert len(results) == 2, list(raw.iterdir())
    for path in results:
        result = json.loads(path.read_text())
        assert result["machine"] == "aarch64"  # platform.machine() of the Python that ran the model
        assert result["runtime"]["name"] == "onnxruntime" and result["runtime"]["providers"] == ["CPUExecutionProvider"]
        assert (path.parent / "ort_profile.json").stat().st_size > 0
    # both parts' rows carry module paths: the encoder's from its node names, the decoder's from edgekit's export
    parts = {m["part"]: m for m in pi_run["report"]["measurements"]}
    encoder, decoder = parts["encoder"]["layers"], parts["decoder"]["layers"]
    assert len(encoder) >= 20 and all(row["module"].split(".")[0] == "image_encoder" for row in encoder)
    assert len(decoder) > 50 and any((row["module"] or "").startswith("mask_decoder.") for row in decoder)
    for m in parts.values():
        assert m["coverage"]["attributed_share"] >= 0.9, m["coverage"]
    assert pi_run["report"]["layers"]  # the report's own rows (its part's)


def test_the_device_is_left_clean(pi_run: dict) -> None:
    """The run folder on the device is removed; uploaded models stay (content-addressed, reused next time)."""
    listing = pi_run["device"].ssh("ls ~/.cache/edgekit/runs 2>/dev/null; echo --; ls ~/.cache/edgekit/models").stdout
    runs, models = listing.split("--")
    assert runs.strip() == "" and f"{pi_run['model']}.encoder.fp32.onnx" in models


def test_missing_support_names_what_is_missing(monkeypatch) -> None:
    """The skip reasons (checked without any device): not root, no binfmt_misc."""
    import os

    from tests.emulated_pi import load_tool

    tool = load_tool()
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "needs root" in tool.missing_support()
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    real_is_dir = Path.is_dir
    monkeypatch.setattr(Path, "is_dir", lambda self: False if "binfmt_misc" in str(self) else real_is_dir(self))
    assert "binfmt_misc" in tool.missing_support()
