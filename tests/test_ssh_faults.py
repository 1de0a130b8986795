"""Faults on a real loopback sshd: sshd killed mid-upload (clear error, then resume), the device's disk full
(clear error, nothing half-written), the runner failing (its stderr in the error), the link cut while the
device profiles (an error, and the transport recovers)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgekit.errors import DeviceFailureError, DeviceUnreachableError
from edgekit.targets.base import MeasureConfig
from tests.sshd import LoopbackSshd


@pytest.fixture
def sshd(tmp_path):
    with LoopbackSshd(tmp_path / "sshd") as server:
        yield server


def _wait_for(predicate, within: float = 30.0, step: float = 0.005) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.part")) if folder.is_dir() else []


def test_sshd_killed_mid_upload_is_a_clear_error_and_the_next_put_resumes(sshd, tmp_path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(64 << 20))
    t = sshd.transport(retries=1, backoff_s=0.1, connect_timeout=3)
    remote = f"{t.workdir()}/models/big.bin"
    folder = Path(remote).parent

    def killer() -> None:  # the "device" is this machine: watch the .part grow, then pull the plug
        if _wait_for(lambda: any(p.stat().st_size > (8 << 20) for p in _parts(folder))):
            sshd.crash()

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        with pytest.raises(DeviceUnreachableError) as info:
            t.put(big, remote)
    finally:
        thread.join()
    assert "upload big.bin" in info.value.message and "resume" in info.value.hint
    assert not Path(remote).exists()  # nothing at the final name
    (part,) = _parts(folder)
    kept = part.stat().st_size
    assert 0 < kept < big.stat().st_size

    sshd.start()  # the device comes back (same port, same host key)
    before = t.stats.bytes_sent
    t.put(big, remote)
    assert t.stats.resumed == 1 and t.stats.bytes_sent - before == big.stat().st_size - kept  # only the rest
    assert hashlib.sha256(Path(remote).read_bytes()).digest() == hashlib.sha256(big.read_bytes()).digest()
    assert _parts(folder) == []
    t.close()


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs as the device's disk needs root")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_device_disk_full_is_a_clear_error_and_nothing_is_half_written(sshd, small_disk, tmp_path) -> None:
    t = sshd.transport(workdir=str(small_disk / "edgekit"))
    (small_disk / "edgekit").mkdir()
    (small_disk / "edgekit" / "model.onnx").write_bytes(b"the old model")
    local = tmp_path / "model.onnx"
    local.write_bytes(os.urandom(6 << 20))
    with pytest.raises(DeviceFailureError) as info:
        t.put(local, "model.onnx")  # relative: inside the work directory
    assert "ran out of disk space" in info.value.message and "No space left" in info.value.message
    assert "free space" in info.value.hint and int(info.value.status) == 6
    assert (small_disk / "edgekit" / "model.onnx").read_bytes() == b"the old model"  # untouched
    assert _parts(small_disk / "edgekit") == []  # and the partial file is gone
    t.close()


def _tiny_model(path: Path) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.eye(64, dtype=np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x" if i == 0 else f"h{i}", "w"], [f"h{i + 1}"], name=f"mm{i}") for i in range(4)]
    nodes.append(helper.make_node("Relu", ["h4"], ["y"], name="relu"))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def test_runner_exiting_non_zero_puts_its_stderr_in_the_error(sshd, tmp_path) -> None:
    from edgekit.targets.ort.backend import OrtBackend

    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not a protobuf")
    with sshd.transport() as t:
        with pytest.raises(DeviceFailureError) as info:
            OrtBackend(python=sys.executable).measure(t, bad, None, None, MeasureConfig(warmup=0, runs=1, min_seconds=0,
                                                                                          profile_runs=0), tmp_path / "raw")
    assert "runner failed" in info.value.message and "INVALID_PROTOBUF" in info.value.message
    assert "edgekit doctor" in info.value.hint


def test_link_cut_while_the_device_profiles_is_an_error_and_the_transport_recovers(sshd, tmp_path) -> None:
    from edgekit.targets.ort.backend import OrtBackend

    model = _tiny_model(tmp_path / "tiny.onnx")
    t = sshd.transport(retries=0)
    config = MeasureConfig(warmup=0, runs=10**6, min_seconds=300, profile_runs=0)  # would run for minutes

    def cut() -> None:
        def runner_running() -> bool:
            for entry in Path("/proc").iterdir():
                try:
                    args = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
                    if len(args) > 2 and args[1].endswith(b"/ort_runner.py") and b"--model" in args:
                        return True
                except OSError:
                    pass
            return False

        if _wait_for(runner_running, within=60, step=0.05):
            time.sleep(0.5)
            sshd.kill_sessions()  # the daemon stays: the device is reachable again right away

    thread = threading.Thread(target=cut)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(DeviceUnreachableError) as info:
            OrtBackend(python=sys.executable).measure(t, model, None, None, config, tmp_path / "raw")
    finally:
        thread.join()
    assert time.monotonic() - started < 60
    assert "lost the connection" in info.value.message and "while running" in info.value.message
    assert t.run(["echo", "back"]).stdout == "back\n"  # reconnects on the next use
    t.close()
