"""The adb transport: an Android phone over USB (or wireless debugging) through the `adb` client, behind the same
Transport interface as SSH.

- The device: `--serial S`, else the only one `adb devices -l` lists (targets/adb_devices.py names the fix for an
  unauthorized, offline or ambiguous one). adbd must speak shell protocol v2 (Android 7+), which carries the
  remote exit code back: `adb features` is checked once.
- Commands: `adb -s S shell LINE`, where LINE is the same `sh -c SCRIPT args...` string the SSH transport sends
  (targets/ssh_scripts.py): every argv element is a quoted positional parameter, never code. The command runs in
  its own process group with its pid as the first stderr line, so a timeout ends the group on the phone.
- Uploads: skipped when the file of the same size and sha256 is already there; else `adb push` to `<file>.part`,
  the sha256 checked on the phone (toybox's sha256sum), then renamed. Downloads: `adb pull` to a local `.part`,
  checked against the phone's sha256, then renamed.
- The work directory is /data/local/tmp/edgekit (the one place the shell user may write and execute).
"""
from __future__ import annotations

import os
import posixpath
import subprocess
import time
from pathlib import Path
from typing import Sequence

from edgekit.errors import DeviceFailureError, DeviceUnreachableError, InputError
from edgekit.store import sha256_file
from edgekit.targets import ssh_scripts as scripts
from edgekit.targets.adb_devices import choose, parse_adb_devices
from edgekit.targets.base import CommandResult

DEFAULT_WORKDIR = "/data/local/tmp/edgekit"
INSTALL = "install the adb client (Debian/Ubuntu: apt install adb; macOS: brew install android-platform-tools)"
# what the adb client itself prints when the link, not the command, failed
_LINK_ERRORS = ("error: device", "adb: device", "error: closed", "error: no devices", "adb: no devices",
                "error: protocol fault", "adb: error: failed to get feature set")


class AdbTransport:
    name = "adb"

    def __init__(self, serial: str | None = None, adb: str = "adb", workdir: str | None = None,
                 connect_timeout: float = 30.0, hasher: str = "auto") -> None:
        self._wanted = serial
        self.serial: str | None = None
        self.host = serial or "adb"
        self._adb = adb
        self._workdir_root = workdir or DEFAULT_WORKDIR
        self._workdir: str | None = None
        self.connect_timeout = connect_timeout
        self.hasher = hasher

    # -- the adb client ----------------------------------------------------------------------------------------
    def _client(self, args: Sequence[str], timeout: float | None) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([self._adb, *args], capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError as exc:
            raise InputError(f"cannot run {self._adb}: not found", hint=INSTALL) from exc

    def _connect(self) -> str:
        if self.serial is not None:
            return self.serial
        listed = self._client(["devices", "-l"], self.connect_timeout)
        if listed.returncode != 0:
            raise DeviceUnreachableError(f"adb devices failed: {(listed.stderr or listed.stdout).strip()[-300:]}",
                                         hint="`adb kill-server`, then try again")
        device = choose(parse_adb_devices(listed.stdout), self._wanted)
        features = self._client(["-s", device.serial, "features"], self.connect_timeout)
        if features.returncode != 0:
            raise DeviceUnreachableError(f"adb cannot talk to {device.serial}: {features.stderr.strip()[-300:]}",
                                         hint="reconnect the phone and check `adb devices -l`")
        if "shell_v2" not in features.stdout.replace(",", " ").split():
            raise DeviceFailureError(f"{device.serial}'s adbd has no shell protocol v2, so exit codes of commands "
                                     "cannot be read", hint="use a phone with Android 7 or later, or Termux's sshd "
                                                            "(--target android-arm64 --host user@phone:8022)")
        self.serial = self.host = device.serial
        return device.serial

    def _shell(self, line: str, timeout: float | None) -> subprocess.CompletedProcess:
        serial = self._connect()
        proc = self._client(["-s", serial, "shell", line], timeout)
        if proc.returncode != 0 and proc.stderr.lstrip().startswith(_LINK_ERRORS):
            raise DeviceUnreachableError(f"lost {serial}: {proc.stderr.strip()[-300:]}",
                                         hint="check the cable and that the phone is awake, then run again")
        return proc

    def _script(self, script: str, args: Sequence[str], timeout: float | None = 120,
                hashed: bool = False) -> subprocess.CompletedProcess:
        return self._shell(scripts.command_line(script, args, self.hasher if hashed else None), timeout)

    # -- Transport ------------------------------------------------------------------------------------------
    def run(self, argv: Sequence[str], timeout: float | None = None) -> CommandResult:
        argv = [str(a) for a in argv]
        if not argv:
            raise InputError("empty command")
        serial = self._connect()
        started = time.perf_counter()
        try:
            proc = self._shell(scripts.launch_line(argv), timeout)
        except subprocess.TimeoutExpired as exc:
            err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            first = err.split("\n", 1)[0]
            if first.startswith(scripts.PID_PREFIX):
                self._script(scripts.KILL, [first[len(scripts.PID_PREFIX):].strip()], timeout=30)
            raise DeviceFailureError(f"{argv[0]} did not finish within {timeout:g} s on {serial}; it was stopped "
                                     "there", hint="raise --timeout or lower --runs") from None
        first, _, rest = proc.stderr.partition("\n")
        stderr = rest if first.startswith(scripts.PID_PREFIX) else proc.stderr
        if proc.returncode == 127 and stderr.startswith(scripts.NOT_FOUND):
            raise DeviceFailureError(f"cannot run {argv[0]} on {serial}: not found",
                                     hint="install it on the phone or push it (for Python: Termux's python)")
        return CommandResult(tuple(argv), proc.returncode, proc.stdout, stderr, time.perf_counter() - started)

    def workdir(self) -> str:
        if self._workdir is None:
            proc = self._script(scripts.WORKDIR, [self._workdir_root])
            if proc.returncode != 0 or not proc.stdout.strip():
                raise DeviceFailureError(f"cannot create {self._workdir_root} on {self._connect()}: "
                                         f"{proc.stderr.strip()[-300:]}", hint="check the phone's free space")
            self._workdir = proc.stdout.strip().splitlines()[-1]
        return self._workdir

    def put(self, local: Path, remote: str) -> None:
        local = Path(local)
        digest, size = sha256_file(local), local.stat().st_size
        part = remote + ".part"
        probe = self._script(scripts.PROBE, [remote, part, str(size), posixpath.dirname(remote) or "."], hashed=True)
        if probe.returncode != 0:
            raise DeviceFailureError(f"cannot write {posixpath.dirname(remote)} on {self.serial}: "
                                     f"{probe.stderr.strip()[-300:]}", hint="check the phone's free space")
        if f"final {digest}" in probe.stdout.splitlines():
            return  # already there, same content
        pushed = self._client(["-s", self._connect(), "push", str(local), part], None)
        if pushed.returncode != 0:
            raise DeviceFailureError(f"adb push of {local.name} to {self.serial} failed: "
                                     f"{(pushed.stderr or pushed.stdout).strip()[-300:]}",
                                     hint="check the cable and the phone's free space")
        verified = self._script(scripts.VERIFY, [part, digest, remote], hashed=True)
        if verified.returncode != 0:
            raise DeviceFailureError(f"{local.name} arrived corrupt on {self.serial} "
                                     f"({verified.stderr.strip()[-200:]})", hint="run again; check the cable")

    def get(self, remote: str, local: Path) -> None:
        local = Path(local)
        remote_hash = self._script(scripts.HASH, [remote], hashed=True)
        if remote_hash.returncode != 0:
            raise DeviceFailureError(f"cannot fetch {remote}: no such file on the device",
                                     hint="the device-side step did not write it: see its log")
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.part")
        pulled = self._client(["-s", self._connect(), "pull", remote, str(tmp)], None)
        if pulled.returncode != 0 or not tmp.is_file():
            tmp.unlink(missing_ok=True)
            raise DeviceFailureError(f"adb pull of {remote} from {self.serial} failed: "
                                     f"{(pulled.stderr or pulled.stdout).strip()[-300:]}", hint="check the cable")
        if sha256_file(tmp) != remote_hash.stdout.strip().splitlines()[-1]:
            tmp.unlink(missing_ok=True)
            raise DeviceFailureError(f"{remote} arrived corrupt from {self.serial}", hint="run again; check the cable")
        os.replace(tmp, local)

    def close(self) -> None:
        """Nothing to close: every adb call is its own connection through the adb server."""
