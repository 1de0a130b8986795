#!/usr/bin/env python3
"""Emulated aarch64 "Raspberry Pi 4" devices that tests reach over real SSH (port of shared/recipes/emulated-pi.sh).

qemu-user (binfmt_misc, flag F) runs a Debian bookworm arm64 root file system; each device is that rootfs under
its own overlay (so one read-only image serves many devices and a device's writes vanish at the next `up`), with
sshd in its own network, uts, pid and mount namespaces behind a veth pair on a private link-local /30. Timings
are meaningless (~300x slower), but the device really runs aarch64 Python, numpy and onnxruntime.

    python3 tools/emulated_pi.py build | up [N] | down [NAME...] | status      (root; EDGEKIT_EMUPI_DIR = cache)
    ssh -F ~/.cache/edgekit/emulated-pi/ssh_config emupi0                     # devices emupi0, emupi1, ...
    EDGEKIT_SSH_CONFIG=~/.cache/edgekit/emulated-pi/ssh_config edgekit deploy -t raspberry-pi-4 --host emupi0 ...

The rootfs is built once and cached (a stamp names the recipe); devices get stable per-device ed25519 host keys,
written to known_hosts files, so clients keep host-key verification on.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/ is not a package: its scripts import each other
from emulated_pi_image import (CPU, MODEL, SUBNET, USER, EmulatorError, build, cache_dir, ensure_binfmt,  # noqa: E402
                               fake_cpuinfo, is_built, locked, mirrors, missing_support, rootfs, sh)

@dataclass(frozen=True)
class Device:
    index: int
    name: str  # "emupi0": also its network namespace, its ssh alias and its folder under devices/
    addr: str
    host_addr: str
    user: str
    dir: str
    key: str  # the client's private key (authorised for `pi` and root on every device)
    known_hosts: str  # "ADDR ssh-ed25519 ...": this device's host key, pinned
    pid: int = 0  # the launcher (unshare): its process group is the device
    owner: int = 0  # the process that owns the device (a test session); 0 = started by hand, kept until `down`

    @property
    def target(self) -> str:
        return f"{self.user}@{self.addr}"

    def ssh(self, command: str, user: str | None = None, timeout: float = 120,
            check: bool = True) -> subprocess.CompletedProcess:
        """A shell command on the device (as `pi`, or e.g. root) through the OpenSSH client, host key verified."""
        return sh("ssh", "-i", self.key, "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "BatchMode=yes",
                  "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=20", f"{user or self.user}@{self.addr}",
                  command, check=check, timeout=timeout)


def _device(index: int) -> Device:
    d = cache_dir() / "devices" / f"emupi{index}"
    return Device(index, f"emupi{index}", f"{SUBNET}.{4 * index + 2}", f"{SUBNET}.{4 * index + 1}", USER, str(d),
                  str(cache_dir() / "keys" / "id_ed25519"), str(d / "known_hosts"))


def devices() -> list[Device]:
    """Devices that are up (per their state files)."""
    return [Device(**json.loads(state.read_text())) for state in sorted((cache_dir() / "devices").glob("*/device.json"))]


def ssh_config() -> Path:
    """An ssh config for clients (EDGEKIT_SSH_CONFIG, `ssh -F`): every device by address or by alias, the client
    key, and one known_hosts file with every device's pinned host key (StrictHostKeyChecking stays yes)."""
    root = cache_dir()
    lines, hosts = [], []
    for key in sorted((root / "devices").glob("emupi*/ssh_host_ed25519_key.pub")):
        dev = _device(int(key.parent.name[len("emupi"):]))
        hosts.append(f"{dev.addr} {' '.join(key.read_text().split()[:2])}\n")
        lines += [f"Host {dev.name}", f"  HostName {dev.addr}"]
    (root / "known_hosts.part").write_text("".join(hosts))
    os.replace(root / "known_hosts.part", root / "known_hosts")  # clients may be reading it right now
    lines += [f"Host emupi* {SUBNET}.*", f"  User {USER}", f"  IdentityFile {root / 'keys' / 'id_ed25519'}",
              "  IdentitiesOnly yes", f"  UserKnownHostsFile {root / 'known_hosts'}", "  StrictHostKeyChecking yes"]
    (root / "ssh_config").write_text("\n".join(lines) + "\n")
    return root / "ssh_config"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def reap() -> list[str]:
    """Stop devices whose owning process is gone (a test session that was killed before its teardown)."""
    stale = [dev.name for dev in devices() if dev.owner and not _alive(dev.owner)]
    for name in stale:
        down(name)
    return stale


def up(tmpfs: dict[str, str] | None = None, verify: bool = True, owner: int | None = None) -> Device:
    """Start one more device on the first free address. `tmpfs` mounts {device path: mount options} on it
    (e.g. {"/home/pi/.cache": "size=4m,uid=1000,gid=1000"}: a tiny disk for disk-full tests)."""
    if not is_built():
        raise EmulatorError("the emulated Pi's rootfs is not built: run `python3 tools/emulated_pi.py build`")
    ensure_binfmt()
    reap()
    with locked(".net.lock"):
        taken = set(sh("ip", "netns", "list").stdout.split())
        dev = _device(next(i for i in range(64) if f"emupi{i}" not in taken))
        d, ns = Path(dev.dir), dev.name
        for sub in ("upper", "work"):
            shutil.rmtree(d / sub, ignore_errors=True)  # a fresh device each time: yesterday's writes are gone
        for sub in ("upper/etc/ssh", "work", "merged"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        hostkey = d / "ssh_host_ed25519_key"
        if not hostkey.exists():  # stable per device, so its known_hosts entry stays valid across ups
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"emulated-{dev.name}", "-f", str(hostkey))
        shutil.copy(hostkey, d / "upper/etc/ssh/ssh_host_ed25519_key")
        Path(dev.known_hosts).write_text(f"{dev.addr} {' '.join(Path(f'{hostkey}.pub').read_text().split()[:2])}\n")
        ssh_config()
        (d / "cpuinfo").write_text(fake_cpuinfo(os.cpu_count() or 1))
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", f"{ns}h", "type", "veth", "peer", "name", f"{ns}d")
    try:
        sh("ip", "link", "set", f"{ns}d", "netns", ns)
        sh("ip", "addr", "add", f"{dev.host_addr}/30", "dev", f"{ns}h")
        sh("ip", "link", "set", f"{ns}h", "up")
        sh("ip", "-n", ns, "addr", "add", f"{dev.addr}/30", "dev", f"{ns}d")
        sh("ip", "-n", ns, "link", "set", f"{ns}d", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        q = {k: shlex.quote(str(v)) for k, v in {"d": d, "m": d / "merged", "r": rootfs()}.items()}
        m = q["m"]
        mounts = "".join(f" && mkdir -p {m}{shlex.quote(p)} && mount -t tmpfs -o {shlex.quote(o)} tmpfs {m}{shlex.quote(p)}"
                         for p, o in (tmpfs or {}).items())
        script = (f"hostname raspberrypi && mount -t overlay overlay -o lowerdir={q['r']},upperdir={q['d']}/upper,"
                  f"workdir={q['d']}/work {m} && mount -t proc proc {m}/proc && mount --bind {q['d']}/cpuinfo "
                  f"{m}/proc/cpuinfo && mount -t sysfs sysfs {m}/sys && mount --rbind /dev {m}/dev && "
                  f"mount -t tmpfs tmpfs {m}/sys/firmware && mkdir -p {m}/sys/firmware/devicetree/base && "
                  f"printf '{MODEL}\\0' > {m}/sys/firmware/devicetree/base/model{mounts} && "
                  f"exec chroot {m} /usr/sbin/sshd -D -e -h /etc/ssh/ssh_host_ed25519_key "
                  f"-o ListenAddress={dev.addr} -o UseDNS=no -o PidFile=none")
        with open(d / "sshd.log", "w") as log:
            proc = subprocess.Popen(["ip", "netns", "exec", ns, "unshare", "--uts", "--ipc", "--pid", "--mount",
                                     "--fork", "--kill-child", "sh", "-c", script], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                    env=dict(os.environ, QEMU_CPU=CPU))
        dev = Device(**{**asdict(dev), "pid": proc.pid, "owner": os.getpid() if owner is None else owner})
        (d / "device.json").write_text(json.dumps(asdict(dev)))
        _wait_for_sshd(dev, proc)
        if verify:
            dev.ssh("true")
        return dev
    except BaseException:
        down(dev.name)
        raise


def _wait_for_sshd(dev: Device, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmulatorError(f"{dev.name}: sshd exited ({proc.returncode}):\n"
                                + (Path(dev.dir) / "sshd.log").read_text()[-2000:])
        try:
            with socket.create_connection((dev.addr, 22), timeout=2) as conn:
                if conn.recv(64).startswith(b"SSH-2.0-"):
                    return
        except OSError:
            time.sleep(0.2)
    raise EmulatorError(f"{dev.name}: sshd did not answer on {dev.addr}:22 within {timeout:g} s")


def down(name: str) -> None:
    """Stop a device: its sshd is PID 1 of its pid namespace, so every process it started ends with it."""
    d = cache_dir() / "devices" / name
    state = d / "device.json"
    if state.exists():
        pid = json.loads(state.read_text())["pid"]
        if pid and _alive(pid) and str(d) in _cmdline(pid):  # still our launcher, not a reused pid
            os.killpg(pid, signal.SIGTERM)  # the launcher's own session: unshare and sshd, nothing else
            for _ in range(50):
                if _gone(pid):
                    break
                time.sleep(0.1)
            else:
                os.killpg(pid, signal.SIGKILL)
                _gone(pid)
        state.unlink()
    sh("ip", "netns", "del", name, check=False)  # also removes the veth pair
    sh("ip", "link", "del", f"{name}h", check=False)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _gone(pid: int) -> bool:
    try:  # reap it when this process started it (a zombie still answers kill 0)
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    return not _alive(pid)


def main(argv: list[str]) -> int:
    cmd, args = (argv[0] if argv else "status"), argv[1:]
    if cmd == "build":
        build(force="--force" in args)
    elif cmd == "up":
        for _ in range(int(args[0]) if args else 1):
            started = time.monotonic()
            dev = up(owner=0)
            print(f"{dev.name} up in {time.monotonic() - started:.1f} s: ssh -i {dev.key} "
                  f"-o UserKnownHostsFile={dev.known_hosts} {dev.target}")
    elif cmd == "down":
        for name in args or [dev.name for dev in devices()]:
            started = time.monotonic()
            down(name)
            print(f"{name} down in {time.monotonic() - started:.1f} s")
    elif cmd == "status":
        print(f"cache {cache_dir()}: rootfs {'built' if is_built() else 'not built'}")
        for dev in devices():
            print(f"{dev.name} {dev.target} pid {dev.pid} {'running' if _alive(dev.pid) else 'dead'}")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except EmulatorError as exc:
        print(f"emulated-pi: {exc}", file=sys.stderr)
        sys.exit(1)
