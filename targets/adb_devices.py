"""`adb devices -l` -> the attached devices and their states (a pure parser), and the choice of one.

    List of devices attached
    emulator-5554   device product:sdk_gphone64_arm64 model:sdk_gphone64_arm64 device:emu64a transport_id:1
    R58M123ABC      unauthorized usb:1-1 transport_id:2

States adb prints: `device` (ready), `unauthorized` (the phone has not accepted this computer's key), `offline`,
`no permissions` (udev rules on Linux), `recovery`, `sideload`, `bootloader`, `authorizing`, `connecting`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from edgekit.errors import DeviceUnreachableError, UsageError

_STATES = ("device", "unauthorized", "offline", "no permissions", "recovery", "sideload", "bootloader",
           "authorizing", "connecting", "host", "rescue")
FIXES = {
    "unauthorized": "unlock the phone and accept the 'Allow USB debugging?' prompt for this computer",
    "offline": "reconnect the cable (or `adb reconnect`); a phone stays offline while it boots",
    "no permissions": "add a udev rule for the phone (Debian: apt install android-sdk-platform-tools-common) and "
                      "replug it",
    "authorizing": "wait a moment: the phone is checking this computer's key",
    "connecting": "wait a moment: adb is still connecting to it",
}


@dataclass(frozen=True)
class AdbDevice:
    serial: str
    state: str
    properties: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def ready(self) -> bool:
        return self.state == "device"


def parse_adb_devices(text: str) -> list[AdbDevice]:
    """Every device line of `adb devices [-l]` (the header and daemon start-up lines are skipped)."""
    devices = []
    for line in text.splitlines():
        line = line.rstrip()
        if not line or line.startswith(("List of devices", "* daemon", "adb server", "adb: ")):
            continue
        serial, _, rest = line.partition("\t") if "\t" in line else line.partition(" ")
        rest = rest.strip()
        state = next((s for s in _STATES if rest == s or rest.startswith(s + " ")), None)
        if not serial or state is None:
            continue
        props = {}
        for token in rest[len(state):].split():
            key, sep, value = token.partition(":")
            if sep:
                props[key] = value
        devices.append(AdbDevice(serial.strip(), state, props))
    return devices


def choose(devices: list[AdbDevice], serial: str | None) -> AdbDevice:
    """The device to use: the one named by `serial`, else the only one attached; errors name the fix."""
    if serial is not None:
        found = next((d for d in devices if d.serial == serial), None)
        if found is None:
            listed = ", ".join(d.serial for d in devices) or "none"
            raise DeviceUnreachableError(f"no Android device {serial} is attached (adb sees: {listed})",
                                         hint="check the cable and USB debugging, or pick one of the serials adb sees")
    elif not devices:
        raise DeviceUnreachableError("no Android device is attached to adb",
                                     hint="plug the phone in with USB debugging on (Settings > Developer options), "
                                          "or `adb connect HOST:PORT` for wireless debugging")
    elif len(devices) > 1:
        raise UsageError(f"{len(devices)} Android devices are attached: "
                         + ", ".join(f"{d.serial} ({d.state})" for d in devices),
                         hint="pick one with --serial SERIAL")
    else:
        found = devices[0]
    if not found.ready:
        raise DeviceUnreachableError(f"Android device {found.serial} is {found.state}",
                                     hint=FIXES.get(found.state, "see `adb devices -l`"))
    return found
