"""The adb transport against the stand-in adb client (tests/standins/adb.py: no phone or adbd can run here): the
exact argv it sends, the device choice and its errors, the upload skipped when the phone has the content, a timeout
that ends the remote process group, and `edgekit doctor --target android-arm64` end to end over it. The shared
Transport contract (tests/test_transport_contract.py) runs on it too."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgekit.errors import DeviceFailureError, DeviceUnreachableError, ExitStatus, InputError, UsageError
from edgekit.targets.adb_devices import choose, parse_adb_devices
from tests.adb_standin import AdbStandin

LISTING = """* daemon not running; starting now at tcp:5037
* daemon started successfully
List of devices attached
emulator-5554          device product:sdk_gphone64_arm64 model:sdk_gphone64_arm64 device:emu64a transport_id:1
R58M123ABC             unauthorized usb:1-1 transport_id:2
0123456789ABCDEF       no permissions (missing udev rules? user is in the plugdev group); see [http://developer.android.com/tools/device.html] usb:1-2 transport_id:3

"""


def test_adb_devices_are_parsed_with_their_states() -> None:
    devices = parse_adb_devices(LISTING)
    assert [(d.serial, d.state) for d in devices] == [("emulator-5554", "device"), ("R58M123ABC", "unauthorized"),
                                                       ("0123456789ABCDEF", "no permissions")]
    assert devices[0].properties["model"] == "sdk_gphone64_arm64" and devices[0].ready
    assert parse_adb_devices("List of devices attached\n\n") == []
    assert parse_adb_devices("List of devices attached\nemulator-5554\tdevice\n")[0].state == "device"


def test_the_device_choice_names_the_fix() -> None:
    devices = parse_adb_devices(LISTING)
    assert choose(devices, "emulator-5554").serial == "emulator-5554"
    with pytest.raises(UsageError, match="3 Android devices are attached") as several:
        choose(devices, None)
    assert "--serial" in several.value.hint
    with pytest.raises(DeviceUnreachableError, match="is unauthorized") as unauthorized:
        choose(devices, "R58M123ABC")
    assert "Allow USB debugging" in unauthorized.value.hint
    with pytest.raises(DeviceUnreachableError, match="no permissions") as perms:
        choose(devices, "0123456789ABCDEF")
    assert "udev" in perms.value.hint
    with pytest.raises(DeviceUnreachableError, match="no Android device nope"):
        choose(devices, "nope")
    with pytest.raises(DeviceUnreachableError, match="no Android device is attached"):
        choose([], None)


def test_an_upload_is_pushed_verified_and_skipped_when_present(tmp_path: Path) -> None:
    adb = AdbStandin(tmp_path)
    transport = adb.transport("standin-phone-1")
    model = tmp_path / "m.tflite"
    model.write_bytes(os.urandom(50_000))
    remote = f"{transport.workdir()}/models/m.tflite"
    transport.put(model, remote)
    first = adb.argv()
    transport.put(model, remote)
    again = adb.argv()[len(first):]
    assert Path(remote).read_bytes() == model.read_bytes()
    assert first[0] == ["devices", "-l"] and first[1] == ["-s", "standin-phone-1", "features"]
    pushes = [c for c in first if c[2:3] == ["push"]]
    assert pushes == [["-s", "standin-phone-1", "push", str(model), remote + ".part"]]
    assert all(c[:3] == ["-s", "standin-phone-1", "shell"] and len(c) == 4 for c in first[2:] if c[2] != "push")
    assert not [c for c in again if c[2:3] == ["push"]]  # same content on the phone: nothing sent
    assert len(again) == 1 and again[0][2] == "shell"  # one probe
    assert sorted(p.name for p in Path(remote).parent.iterdir()) == ["m.tflite"]


def test_a_timeout_ends_the_remote_process_group(tmp_path: Path) -> None:
    transport = AdbStandin(tmp_path).transport()
    marker = "31.4159"
    with pytest.raises(DeviceFailureError, match="did not finish within 1 s"):
        transport.run(["sh", "-c", f"sleep {marker} & sleep {marker}; wait"], timeout=1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True).stdout.split()
        if not left:
            break
        time.sleep(0.1)
    assert not left, "the phone still runs what timed out"


def test_a_phone_without_shell_v2_or_a_missing_client_is_refused(tmp_path: Path) -> None:
    adb = AdbStandin(tmp_path)
    adb.mark("NO_SHELL_V2")
    with pytest.raises(DeviceFailureError, match="no shell protocol v2") as err:
        adb.transport().run(["true"])
    assert "Android 7" in err.value.hint
    from edgekit.targets.adb import AdbTransport

    with pytest.raises(InputError, match="not found") as missing:
        AdbTransport(adb=str(tmp_path / "no-adb")).run(["true"])
    assert "apt install adb" in missing.value.hint
    adb2 = AdbStandin(tmp_path / "two")
    adb2.devices("aaa device", "bbb device")
    with pytest.raises(UsageError, match="2 Android devices"):
        adb2.transport().run(["true"])
    assert adb2.transport("bbb").run(["echo", "hi"]).stdout == "hi\n"


def test_doctor_reaches_an_android_phone_over_adb(tmp_path: Path) -> None:
    adb = AdbStandin(tmp_path)
    # the android-arm64 profile as a user's own copy whose work folder is the stand-in phone's (a real phone's is
    # /data/local/tmp/edgekit, which this machine must not be made to write)
    profiles = tmp_path / "targets"
    profiles.mkdir()
    builtin = Path(__file__).resolve().parents[1] / "profiles" / "android-arm64.yaml"
    (profiles / "android-arm64.yaml").write_text(builtin.read_text() + f"workdir: {adb.phone}\n")
    env = {**os.environ, "EDGEKIT_ADB": str(adb.adb), "EDGEKIT_TARGETS_DIR": str(profiles)}
    proc = subprocess.run([sys.executable, "-m", "edgekit", "doctor", "--target", "android-arm64", "--serial",
                           "standin-phone-1", "--json"], capture_output=True, text=True, env=env, timeout=300)
    import json

    assert proc.returncode in (0, int(ExitStatus.DEVICE_FAILURE)), proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["host"] == "standin-phone-1" and checks["connection"]["status"] == "ok"
    assert "free in" in checks["disk"]["value"] and str(adb.phone) in checks["disk"]["value"]
    assert checks["benchmark_model"]["status"] == "warn" and "/data/local/tmp" in checks["benchmark_model"]["hint"]
    assert any(c[2:3] == ["shell"] for c in adb.argv())
    # both ways of naming the device, or adb on a profile without it: refused before anything runs
    both = subprocess.run([sys.executable, "-m", "edgekit", "doctor", "--target", "android-arm64", "--serial", "x",
                           "--host", "u@h"], capture_output=True, text=True, env=env, timeout=120)
    assert both.returncode == int(ExitStatus.USAGE) and "name the device two ways" in both.stderr
    pi = subprocess.run([sys.executable, "-m", "edgekit", "doctor", "--target", "raspberry-pi-4", "--serial", "x"],
                        capture_output=True, text=True, env=env, timeout=120)
    assert pi.returncode == int(ExitStatus.USAGE) and "not adb" in pi.stderr


def test_battery_temperature_is_read_from_dumpsys() -> None:
    """`dumpsys battery` (AOSP's BatteryService dump: tenths of a degree) in the doctor's probe parser."""
    from edgekit.targets.doctor import _temperature

    dump = ("Current Battery Service state:\n  AC powered: false\n  USB powered: true\n  status: 2\n  health: 2\n"
            "  present: true\n  level: 87\n  scale: 100\n  voltage: 4301\n  temperature: 287\n  technology: Li-ion\n")
    assert _temperature("battery", dump) == (28.7, "battery 28.7 C, 87% charged")
    assert _temperature("battery", "")[0] is None
