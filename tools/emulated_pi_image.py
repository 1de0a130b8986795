"""Building the emulated Raspberry Pi's image (see emulated_pi.py): a Debian bookworm arm64 root file system
with python3, numpy, onnxruntime and sshd, run by qemu-user through binfmt_misc. Built once, into a temporary
folder renamed into place, so an interrupted build never looks finished; a stamp names the recipe and packages.
"""
from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

RECIPE = "edgekit-emulated-pi/3 bookworm arm64"  # change it to force every cache to rebuild
CPU = os.environ.get("EDGEKIT_EMUPI_CPU", "cortex-a72")  # Pi 4 = cortex-a72, Pi 5 = cortex-a76
SUBNET = "169.254.90"  # device k: host .4k+1 <-> device .4k+2 (a /30 each, 64 devices at most)
USER = "pi"
MODEL = "Raspberry Pi 4 Model B Rev 1.1"
HOST_TOOLS = {"qemu-aarch64-static": "qemu-user-static", "update-binfmts": "binfmt-support",
              "mmdebstrap": "mmdebstrap", "arch-test": "arch-test", "ssh-keygen": "openssh-client", "ip": "iproute2"}
SITE = "usr/local/lib/python3.11/dist-packages"  # on Debian's python3 path: the device's plain `python3` has them
# A fake vcgencmd, so `doctor` finds the Pi's own temperature / throttling probe (values are plausible constants).
VCGENCMD = """#!/bin/sh
case "$1" in measure_temp) echo "temp=47.2'C";; get_throttled) echo "throttled=0x0";;
measure_clock) echo "frequency(48)=1500000000";;
version) printf 'Mar 17 2023 10:52:00\nversion 82f0efa7 (release) (embedded) (emulated)\n';;
*) echo "emulated vcgencmd: $*" >&2; exit 1;; esac
"""


class EmulatorError(RuntimeError):
    pass


def cache_dir() -> Path:
    env = os.environ.get("EDGEKIT_EMUPI_DIR")
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgekit" / "emulated-pi"
    return Path(env) if env else base


def python_packages() -> list[str]:
    """onnxruntime pinned to this machine's version (the same ONNX IR / opsets the exporter writes), numpy,
    LiteRT; EDGEKIT_EMUPI_PY_PKGS replaces the list."""
    pkgs = os.environ.get("EDGEKIT_EMUPI_PY_PKGS")
    if pkgs:
        return pkgs.split()
    try:
        from importlib.metadata import version
        ort = f"onnxruntime=={version('onnxruntime')}"
    except Exception:  # noqa: BLE001 - no local onnxruntime: the newest aarch64 wheel
        ort = "onnxruntime"
    # LiteRT costs ~3 s here (host-side download and unpack): included unless EDGEKIT_EMUPI_LITERT=0.
    return [ort, "numpy<2.4"] + ([] if os.environ.get("EDGEKIT_EMUPI_LITERT") == "0" else ["ai-edge-litert"])


def sh(*argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, text=True, capture_output=True, **kw)
    if check and proc.returncode != 0:
        raise EmulatorError(f"{shlex.join(argv)} failed ({proc.returncode}):\n{(proc.stderr or proc.stdout)[-3000:]}")
    return proc


def step(msg: str) -> None:
    print(f"[emulated-pi {time.strftime('%T')}] {msg}", file=sys.stderr, flush=True)


@contextmanager
def locked(name: str) -> Iterator[None]:
    """Builds and address allocation are serialised across processes (pytest-xdist workers, two sessions)."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / name, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def missing_support() -> str | None:
    """Why this machine cannot run emulated devices, or None when it can (tools may still be missing: see build)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, mounts, chroot)"
    if sys.platform != "linux" or not Path("/proc/sys/fs/binfmt_misc").is_dir():
        return "needs Linux with binfmt_misc"
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        return "needs iproute2 (ip netns) and util-linux (unshare)"
    probe = f"edgekit-probe-{os.getpid()}"
    if sh("ip", "netns", "add", probe, check=False).returncode != 0:
        return "cannot create network namespaces here (ip netns add failed)"
    sh("ip", "netns", "del", probe, check=False)
    return None


def ensure_binfmt() -> None:
    mnt = Path("/proc/sys/fs/binfmt_misc")
    if not (mnt / "register").exists():
        sh("mount", "-t", "binfmt_misc", "binfmt_misc", str(mnt))
    if not (mnt / "qemu-aarch64").exists():
        sh("update-binfmts", "--enable", "qemu-aarch64")
    flags = next((ln for ln in (mnt / "qemu-aarch64").read_text().splitlines() if ln.startswith("flags:")), "")
    if "F" not in flags:  # F: the kernel holds the interpreter open, so it works inside a chroot
        raise EmulatorError(f"binfmt qemu-aarch64 lacks flag F ({flags!r}): install Debian's qemu-user-static")


def ensure_host_tools() -> None:
    missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None})
    if missing:
        step("apt-get install " + " ".join(missing))
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        sh("apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", "--no-install-recommends", *missing, env=env)


def mirrors() -> tuple[str, str]:
    """The host's own Debian mirrors (deb822 or one-line sources), reused for the arm64 rootfs."""
    uris: list[str] = []
    for path in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if path.exists():
            for line in path.read_text().splitlines():
                words = line.split()
                if words[:1] == ["URIs:"]:
                    uris.append(words[1])
                elif words[:1] == ["deb"]:
                    uris.append(next(w for w in words[1:] if not w.startswith("[")))
    main = next((u for u in uris if "security" not in u), "http://deb.debian.org/debian")
    return main, next((u for u in uris if "security" in u), main.replace("/debian", "/debian-security"))


def rootfs() -> Path:
    return cache_dir() / "rootfs"


def is_built() -> bool:
    stamp = rootfs() / ".edgekit-built"
    return stamp.exists() and stamp.read_text().splitlines()[:2] == [RECIPE, " ".join(python_packages())]


def fake_cpuinfo(cores: int) -> str:
    core = ("processor\t: {}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n"
            "CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n")
    return "".join(core.format(i) for i in range(cores)) + (
        f"Hardware\t: BCM2835\nRevision\t: c03111\nSerial\t\t: 10000000deadbeef\nModel\t\t: {MODEL}\n")


def build(force: bool = False) -> Path:
    """The arm64 rootfs with python3, numpy, onnxruntime and sshd, once; later calls return the cached one."""
    with locked(".build.lock"):
        if is_built() and not force:
            return rootfs()
        running = sorted(p.parent.name for p in (cache_dir() / "devices").glob("*/device.json"))
        if running:  # their overlays sit on the current rootfs
            raise EmulatorError(f"devices are up ({', '.join(running)}): run `emulated_pi.py down` before rebuilding")
        started = time.monotonic()
        ensure_host_tools()
        ensure_binfmt()
        root, wheels, keys = cache_dir() / "rootfs.part", cache_dir() / "wheels", cache_dir() / "keys"
        shutil.rmtree(root, ignore_errors=True)
        main, security = mirrors()
        step(f"mmdebstrap arm64 bookworm -> {root}")
        sh("mmdebstrap", "--mode=root", "--arch=arm64", "--variant=apt", "-q",
           "--include=python3,openssh-server,iproute2,procps", "--aptopt=APT::Install-Recommends \"false\"",
           *[f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "locale", "info")],
           "bookworm", str(root), f"deb {main} bookworm main", f"deb {main} bookworm-updates main",
           f"deb {security} bookworm-security main", env=dict(os.environ, QEMU_CPU=CPU))
        step("aarch64 wheels fetched here, unpacked into the device offline (devices are often offline)")
        pkgs = python_packages()
        plat = ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--platform",
                "manylinux2014_aarch64", "--platform", "manylinux_2_27_aarch64", "--platform", "manylinux_2_28_aarch64"]
        constraints = Path(__file__).resolve().parents[1] / "constraints.txt"  # the project's pins, as for every pip
        plat += ["-c", str(constraints)] if constraints.exists() else []
        sh(sys.executable, "-m", "pip", "download", "-q", *plat, "-d", str(wheels), *pkgs)
        # Host pip unpacks (no pip under emulation) and host Python 3.11 byte-compiles: same pyc magic as the
        # device's 3.11, and ~100x faster than compiling under qemu at every first import.
        sh(sys.executable, "-m", "pip", "install", "-q", *plat, "--no-index", "--find-links", str(wheels),
           "--no-compile", "--target", str(root / SITE), *pkgs)
        sh(sys.executable, "-m", "compileall", "-q", "-j", "0", str(root / SITE), check=False)
        step("users, keys, fake Pi facts")
        keys.mkdir(parents=True, exist_ok=True)
        if not (keys / "id_ed25519").exists():
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgekit-emulated-pi", "-f", str(keys / "id_ed25519"))
        sh("useradd", "--root", str(root), "-m", "-s", "/bin/bash", "-p", "*", USER)
        pub = (keys / "id_ed25519.pub").read_text()
        uid_gid = next(":".join(f.split(":")[2:4]) for f in (root / "etc/passwd").read_text().splitlines()
                       if f.startswith(f"{USER}:"))
        for home, owner in ((root / "root", "0:0"), (root / "home" / USER, uid_gid)):
            (home / ".ssh").mkdir(mode=0o700, exist_ok=True)
            (home / ".ssh" / "authorized_keys").write_text(pub)
            sh("chown", "-R", owner, str(home / ".ssh"))
            (home / ".ssh" / "authorized_keys").chmod(0o600)
        for key in (root / "etc" / "ssh").glob("ssh_host_*"):
            key.unlink()  # the image's keys would be shared by every device: each device gets its own at `up`
        (root / "etc" / "hostname").write_text("raspberrypi\n")
        with open(root / "etc" / "hosts", "a") as hosts:
            hosts.write("127.0.1.1 raspberrypi\n")
        with open(root / "etc" / "environment", "a") as env:
            env.write(f"QEMU_CPU={CPU}\n")  # read by pam_env for every ssh session
        (root / "usr" / "bin" / "vcgencmd").write_text(VCGENCMD)
        (root / "usr" / "bin" / "vcgencmd").chmod(0o755)
        (root / "run" / "sshd").mkdir(parents=True, exist_ok=True)
        probe = "import onnxruntime, numpy, platform; print(platform.machine(), onnxruntime.__version__, numpy.__version__)"
        if any(p.startswith("ai-edge-litert") for p in pkgs):
            probe += "; from ai_edge_litert import interpreter; print('litert ok')"
        check = in_rootfs(root, "python3", "-c", probe)
        step(f"device python: {check.strip()}")
        (root / ".edgekit-built").write_text(f"{RECIPE}\n{' '.join(pkgs)}\n{time.monotonic() - started:.0f} s\n")
        shutil.rmtree(rootfs(), ignore_errors=True)
        root.rename(rootfs())
        step(f"built in {time.monotonic() - started:.0f} s")
        return rootfs()


def in_rootfs(root: Path, *argv: str) -> str:
    """Run argv inside `root` (private mount namespace with proc, sys, dev and the fake cpuinfo)."""
    cpuinfo = cache_dir() / "cpuinfo"
    cpuinfo.write_text(fake_cpuinfo(os.cpu_count() or 1))
    r = shlex.quote(str(root))
    script = (f"mount -t proc proc {r}/proc && mount --bind {shlex.quote(str(cpuinfo))} {r}/proc/cpuinfo && "
              f"mount -t sysfs sysfs {r}/sys && mount --rbind /dev {r}/dev && exec chroot {r} {shlex.join(argv)}")
    return sh("unshare", "--mount", "--fork", "sh", "-c", script, env=dict(os.environ, QEMU_CPU=CPU)).stdout
