"""`edgekit doctor`: what a device has and lacks before a deploy there, with the fix for each gap."""
from __future__ import annotations

import json

import click

_MARK = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "info": "--"}


@click.command("doctor")
@click.option("--target", "-t", default="local", show_default=True, help="The device's profile (see `edgekit targets`).")
@click.option("--host", default=None, help="The device: user@host[:port] or a ~/.ssh/config alias.")
@click.option("--serial", default=None, metavar="SERIAL",
              help="An Android device over adb (`adb devices -l` lists serials; default: the only one attached).")
@click.option("--device-python", default=None, metavar="PATH", help="The device's Python (default: the profile's).")
@click.option("--accept-new-host-key", is_flag=True, help="Record an unknown host key instead of refusing it.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def doctor(target: str, host: str | None, serial: str | None, device_python: str | None, accept_new_host_key: bool,
           as_json: bool) -> None:
    """Check a device: architecture, OS, Python, runtimes and their versions (numpy, ONNX Runtime, LiteRT,
    TensorRT ...), free disk in edgekit's work folder, temperature and throttling (vcgencmd, thermal zones,
    tegrastats), and vendor tools (trtexec, benchmark_model), with install hints for what is missing.
    Exits 6 when the device cannot run edgekit's runner yet, 5 when it cannot be reached.

    \b
    Examples:
      edgekit doctor
      edgekit doctor --target raspberry-pi-4 --host pi@raspberrypi.local
      edgekit doctor --target jetson-orin-nano --host orin --json
      edgekit doctor --target android-arm64 --serial R58M123ABC
    """
    from edgekit.targets import doctor as checks_mod
    from edgekit.targets.registry import device_python as pick_python
    from edgekit.targets.registry import open_transport

    profile, transport = open_transport(target, host, accept_new_host_key=accept_new_host_key, serial=serial)
    try:
        checks = checks_mod.diagnose(transport, profile, pick_python(profile, device_python))
    finally:
        transport.close()
    if as_json:
        click.echo(json.dumps({"target": profile.name, "host": transport.host, "checks": checks_mod.to_dicts(checks)},
                              indent=2))
    else:
        click.echo(f"{profile.name} at {transport.host}")
        for c in checks:
            click.echo(f"  {_MARK[c.status]:<4} {c.name:<16} {c.value}")
            if c.hint and c.status != "ok":
                click.echo(f"       {'':<16} fix: {c.hint}")
    checks_mod.raise_for(checks, transport.host)
