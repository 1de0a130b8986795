"""Targets by name: `local` (this machine) and every device profile (`edgekit targets`), reached over SSH with the
profile's Python running the on-device runners (ONNX Runtime, LiteRT: the backend is chosen per artifact)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from edgekit.errors import UsageError
from edgekit.targets.target import Target


def open_local(host: str | None = None) -> Target:
    if host not in (None, "localhost"):
        raise UsageError("--target local runs on this machine and takes no --host", hint="drop --host")
    from edgekit.targets.facts import local_facts
    from edgekit.targets.local import LocalTransport

    # The runners run under this very interpreter, which has onnxruntime (edgekit depends on it) and LiteRT where
    # the `litert` extra is installed; the LiteRT runner says so plainly where it is not.
    return Target("local", LocalTransport(), sys.executable, local_facts())


def open_transport(name: str, host: str | None = None, *, accept_new_host_key: bool = False,
                   ssh_options: dict[str, Any] | None = None, user_profiles: Path | None = None,
                   serial: str | None = None):
    """(profile, a transport to the device) for a profile target, checked: the profile can be reached the way
    asked (--host: SSH; --serial, or neither on an adb profile: adb). Nothing is contacted yet (both transports
    connect on first use)."""
    from edgekit.targets.profiles import get_profile

    profile = get_profile(name, user_profiles)
    if name == "local":
        from edgekit.targets.local import LocalTransport

        if host not in (None, "localhost") or serial is not None:
            raise UsageError("--target local runs on this machine and takes no --host or --serial",
                             hint="drop --host / --serial")
        return profile, LocalTransport()
    if serial is not None or (host is None and "adb" in profile.transports):
        if "adb" not in profile.transports:
            raise UsageError(f"target {name} is reached over {', '.join(profile.transports)}, not adb",
                             hint="drop --serial and name the device with --host")
        if host is not None:
            raise UsageError("--host (SSH) and --serial (adb) name the device two ways", hint="give one of them")
        from edgekit.targets.adb import AdbTransport

        # EDGEKIT_ADB: the adb client to use (default: `adb` on PATH); the profile's workdir, else /data/local/tmp
        return profile, AdbTransport(serial, adb=os.environ.get("EDGEKIT_ADB", "adb"), workdir=profile.workdir)
    if "ssh" not in profile.transports:
        raise UsageError(f"target {name} is reached over {', '.join(profile.transports)}, which edgekit cannot "
                         "drive yet", hint="use an ssh-capable profile (`edgekit targets`)")
    if not host:
        raise UsageError(f"--target {name} needs the device: --host user@address[:port] (or a ~/.ssh/config alias)",
                         hint=f"e.g. --target {name} --host pi@raspberrypi.local")
    from edgekit.targets.ssh import SshTransport

    options = dict(ssh_options or {})
    options.setdefault("workdir", profile.workdir)
    return profile, SshTransport(host, accept_new_host_key=accept_new_host_key, **options)


def open_target(name: str, host: str | None = None, *, device_python: str | None = None,
                accept_new_host_key: bool = False, ssh_options: dict[str, Any] | None = None,
                user_profiles: Path | None = None, serial: str | None = None) -> Target:
    """Connect to `host` as a `name` device: transport + the device's Python and facts (backends per artifact).

    `ssh_options` go to SshTransport (known_hosts, identity_files, ssh_config, workdir, timeouts, retries) --
    tests and fleets use them; the CLI relies on ~/.ssh/config (or $EDGEKIT_SSH_CONFIG). Connection problems
    raise DeviceUnreachableError here, before any long work starts.
    """
    if name == "local":
        return open_local(host)
    profile, transport = open_transport(name, host, accept_new_host_key=accept_new_host_key,
                                        ssh_options=ssh_options, user_profiles=user_profiles, serial=serial)
    from edgekit.targets.remote_facts import read_facts

    try:
        if not profile.runtime("onnxruntime"):
            raise UsageError(f"target {name} lists no onnxruntime runtime, and deploy measures with ONNX Runtime",
                             hint="add onnxruntime to the profile's runtimes")
        device, _ = read_facts(transport, profile)
    except BaseException:
        transport.close()
        raise
    device.setdefault("host", host or transport.host)
    return Target(profile.name, transport, device_python or profile.python or "python3", device,
                  runtimes=tuple(r.name for r in profile.runtimes), default_format=profile.defaults.format)


def device_python(profile, override: str | None = None) -> str:
    """The Python that runs the runner: --device-python, else the profile's; edgekit's own for local."""
    if override:
        return override
    return sys.executable if profile.name == "local" else (profile.python or "python3")


def default_preset(name: str, arch: str | None = None) -> str:
    """The INT8 preset a target wants unless --preset says otherwise: the profile's, where `auto` (and the local
    target) follow the CPU architecture (`arch`, default this machine's)."""
    import platform

    preset = "auto"
    if name != "local":
        from edgekit.targets.profiles import get_profile

        preset = get_profile(name).defaults.int8_preset
    if preset != "auto":
        return preset
    machine = (arch or platform.machine()).lower()
    return "arm" if machine in ("aarch64", "arm64") or machine.startswith("armv") else "x86"


def default_threads(name: str) -> int | None:
    """The profile's thread count; None means every core of the device (resolved from its facts)."""
    if name == "local":
        return None
    from edgekit.targets.profiles import get_profile

    return get_profile(name).defaults.threads
