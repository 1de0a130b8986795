"""Fleets (targets/fleet.py): many devices in parallel, a failing one reported while the others finish.

The unit tests drive run_parallel with fake jobs; the last test deploys to three emulated Raspberry Pis in
network namespaces (tools/emulated_pi.py), one of them with a broken onnxruntime, through the real CLI.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from edgekit.errors import DeviceFailureError, DeviceUnreachableError, ExitStatus
from edgekit.report.schema import validate
from edgekit.targets.fleet import FLEET_JSON, FleetError, labels, run_parallel, write_summary
from edgekit.targets.inventory import InventoryHost
from tests.emulated_pi import emulated_pis, emulated_store, emulator, ssh_env  # noqa: F401  (fixtures)
from tests.test_report import make_report

HOSTS = [InventoryHost("pi-a", "10.0.0.2", "pi"), InventoryHost("pi-b", "10.0.0.3", "pi", 2222),
         InventoryHost("pi-c", "10.0.0.4", "pi")]


def test_one_failure_never_hides_the_others(tmp_path: Path) -> None:
    started = threading.Barrier(3, timeout=10)  # all three jobs run at once, or this times out

    def job(host: InventoryHost, run_dir: Path) -> dict:
        started.wait()
        if host.alias == "pi-b":
            raise DeviceFailureError("the ONNX Runtime runner failed on pi-b (exit 1):\nImportError: nope",
                                     hint="see the runner's error above")
        if host.alias == "pi-c":
            raise KeyError("a bug")  # not an EdgekitError: still one device's failure, not the fleet's
        return make_report(seed=1)

    results = run_parallel(HOSTS, job, tmp_path)
    assert [r.alias for r in results] == ["pi-a", "pi-b", "pi-c"]
    assert [r.ok for r in results] == [True, False, False]
    assert results[1].status == ExitStatus.DEVICE_FAILURE and "ImportError: nope" in results[1].error
    assert "fix: see the runner's error" in results[1].error
    assert results[2].status == ExitStatus.ERROR and "KeyError" in results[2].error
    assert results[0].run_dir == tmp_path / "pi-a" and results[1].host == "pi@10.0.0.3:2222"
    err = FleetError(results, tmp_path / FLEET_JSON)
    assert err.status == ExitStatus.PARTIAL and err.failed == results[1:]
    assert "1 of 3 devices finished" in err.message
    assert "pi-b (pi@10.0.0.3:2222): the ONNX Runtime runner failed on pi-b (exit 1): ... ImportError: nope" in err.message


def test_nothing_finished_keeps_the_shared_failure_kind() -> None:
    def unreachable(host: InventoryHost, run_dir: Path) -> dict:
        raise DeviceUnreachableError(f"cannot connect to {host.hostname}")

    results = run_parallel(HOSTS[:2], unreachable, Path("/nonexistent"))
    assert FleetError(results).status == ExitStatus.DEVICE_UNREACHABLE

    def mixed(host: InventoryHost, run_dir: Path) -> dict:
        raise (DeviceUnreachableError if host.alias == "pi-a" else DeviceFailureError)("x")

    assert FleetError(run_parallel(HOSTS[:2], mixed, Path("/nonexistent"))).status == ExitStatus.PARTIAL


def test_devices_run_in_parallel() -> None:
    def slow(host: InventoryHost, run_dir: Path) -> dict:
        time.sleep(0.5)
        return {}

    started = time.perf_counter()
    run_parallel(HOSTS, slow, Path("/nonexistent"))
    assert time.perf_counter() - started < 1.2


def test_summary_lists_every_device_and_compares_the_finished(tmp_path: Path) -> None:
    def job(host: InventoryHost, run_dir: Path) -> dict:
        if host.alias == "pi-c":
            raise DeviceUnreachableError("connection refused", hint="is sshd running?")
        return validate(make_report(seed=len(host.alias)))

    results = run_parallel(HOSTS, job, tmp_path)
    path = write_summary(results, tmp_path)
    data = json.loads(path.read_text())
    assert data["finished"] == 2 and data["failed"] == 1
    assert [d["device"] for d in data["devices"]] == ["pi-a", "pi-b", "pi-c"]
    failed = data["devices"][2]
    assert failed["ok"] is False and failed["exit_status"] == 5 and "connection refused" in failed["error"]
    rows = json.loads((tmp_path / "compare.json").read_text())
    assert json.dumps(rows).count('"pi-a"') >= 1 and "pi-c" not in json.dumps(rows)


def test_labels_are_unique_and_folder_safe() -> None:
    hosts = [InventoryHost("pi/a", "x"), InventoryHost("pi/a", "y"), InventoryHost("..", "z")]
    assert labels(hosts) == ["pi_a", "pi_a-2", "device"]


def edgekit(*args: str, env: dict | None = None, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_cli_fleet_needs_a_device_target(tmp_path: Path) -> None:
    proc = edgekit("deploy", "-m", "mobilesam", "--host", "a", "--host", "b", "--out", str(tmp_path), timeout=120)
    assert proc.returncode == ExitStatus.USAGE and "fleet" in proc.stderr
    (tmp_path / "bad.ini").write_text("[pis\n")
    proc = edgekit("deploy", "-m", "mobilesam", "--target", "raspberry-pi-4", "--inventory", str(tmp_path / "bad.ini"),
                   "--out", str(tmp_path), timeout=120)
    assert proc.returncode == ExitStatus.INPUT and "bad.ini" in proc.stderr


# What is tested here is the fleet, not the model: under emulation one mobilesam encoder run costs ~155 s of one
# core, so the devices deploy NanoSAM's shape instead (an ONNX image encoder plugged into MobileSAM's decoder) with a
# small ResNet stand-in encoder, one thread apiece (--profile-runs 0: the per-layer profiler on the emulated Pi is
# covered by tests/test_emulated_pi.py, with mobilesam).
BROKEN = "/usr/local/lib/python3.11/dist-packages/onnxruntime/__init__.py"
FLEET_DEPLOY = ("--model", "nanosam", "--target", "raspberry-pi-4", "--weights", "synthetic", "--precision", "fp32",
                "--warmup", "0", "--runs", "1", "--min-seconds", "0", "--profile-runs", "0", "--threads", "1")


def test_three_emulated_pis_one_broken(emulated_pis, emulated_store: Path, ssh_env: dict, tmp_path: Path) -> None:
    from tests.resnet_encoder import write_encoder

    a, b, c = emulated_pis(3)
    encoder = write_encoder(tmp_path / "encoder.onnx", width=8)
    inventory = tmp_path / "lab.ini"
    inventory.write_text(f"[pis]\npi-a ansible_host={a.addr}\npi-b ansible_host={b.addr} ansible_port=22\n"
                         f"pi-c ansible_host={c.addr}\n\n[pis:vars]\nansible_user=pi\n")
    # pi-c's onnxruntime is broken (a bad install): its runner fails on the device, after upload
    c.ssh(f"sed -i '1i raise ImportError(\"onnxruntime is broken on this device (test fault)\")' {BROKEN}", user="root")
    out = tmp_path / "fleet"
    started = time.monotonic()
    try:
        proc = edgekit("deploy", *FLEET_DEPLOY, "--encoder-onnx", str(encoder), "--inventory", str(inventory),
                       "--store", str(emulated_store), "--out", str(out), env=ssh_env)
    finally:
        c.ssh(f"sed -i '1d' {BROKEN}", user="root")
    print(f"\nthree-device emulated fleet: {time.monotonic() - started:.0f} s", file=sys.stderr)
    assert proc.returncode == ExitStatus.PARTIAL, proc.stderr[-4000:]
    assert "2 of 3 devices finished" in proc.stderr and "pi-c" in proc.stderr and "test fault" in proc.stderr
    fleet = json.loads((out / FLEET_JSON).read_text())
    status = {d["device"]: d for d in fleet["devices"]}
    assert [status[n]["ok"] for n in ("pi-a", "pi-b", "pi-c")] == [True, True, False]
    assert status["pi-c"]["exit_status"] == ExitStatus.DEVICE_FAILURE and "test fault" in status["pi-c"]["error"]
    for name, dev in (("pi-a", a), ("pi-b", b)):
        report = validate(json.loads((out / name / "report.json").read_text()))
        assert report["target"]["device"]["arch"] == "aarch64" and dev.addr in report["target"]["device"]["host"]
        assert (out / name / "report.html").is_file()
    assert not (out / "pi-c" / "report.json").exists()
    compare = (out / "compare.json").read_text()
    assert "pi-a" in compare and "pi-b" in compare and "pi-c" not in compare
