"""A stand-in Mac for the Core ML tests: a real loopback sshd (tests/sshd.py) whose sessions find stand-in
`uname` (Darwin), `sw_vers` (macOS 14.5), `sysctl` (an M2) and `xcrun` (records `coremlcompiler compile` argv)
first on PATH (tests/standins/mac_*.py). Everything else is real: SSH with a pinned host key, the zipped package's
upload with its reference outputs, the Core ML runner (targets/device/coreml_runner.py) under the device's
Python, the fetch and the error path. What cannot be had here is macOS itself, Core ML and its compute plan: the
runner, run by this Linux Python, finds it is not on macOS and says so, which is the end of what a test can run.

    with MacStandin(tmp) as mac:     # .spec "user@127.0.0.1:port", .client_config for EDGEKIT_SSH_CONFIG
        mac.argv()                   # every xcrun call so far: [["xcrun", "--find", "coremlcompiler"], ...]
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.sshd import LoopbackSshd

STANDINS = Path(__file__).resolve().parent / "standins"
TOOLS = {"uname": "mac_uname.py", "sw_vers": "mac_sw_vers.py", "sysctl": "mac_sysctl.py", "xcrun": "mac_xcrun.py"}


class MacStandin(LoopbackSshd):
    def __init__(self, root: Path) -> None:
        root = Path(root)
        self.bin = root / "standin-bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        for tool, source in TOOLS.items():
            script = self.bin / tool
            script.write_text(f"#!{sys.executable}\n" + (STANDINS / source).read_text())
            script.chmod(0o755)
        super().__init__(root, env={"PATH": f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}"})

    def argv(self) -> list[list[str]]:
        path = self.bin / "argv.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
