"""A stand-in Jetson Orin for the TensorRT tests: a real loopback sshd (tests/sshd.py) whose sessions find
stand-in `trtexec`, `tegrastats`, `nvpmodel` and `jetson_clocks` first on PATH (tests/standins/: they record their
argv and answer in the real tools' formats). Everything else is real: SSH with a pinned host key, the upload, the
device runner (targets/device/trt_runner.py) under the device's Python, the fetch and the parsing at home. What
cannot be had here is TensorRT itself, and a board's /proc/device-tree/model: the device reads as a container that
hides it, which the jetson-orin target deploys to with a warning.

    with JetsonStandin(tmp) as jetson:     # .spec "user@127.0.0.1:port", .client_config for EDGEKIT_SSH_CONFIG
        jetson.argv()                      # every stand-in call so far: [["--onnx=...", ...], ...]
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.sshd import LoopbackSshd

STANDINS = Path(__file__).resolve().parent / "standins"
TOOLS = {"trtexec": "trtexec.py", "tegrastats": "tegrastats.py", "nvpmodel": "nvpmodel.py",
         "jetson_clocks": "jetson_clocks.py"}


class JetsonStandin(LoopbackSshd):
    def __init__(self, root: Path, tools: tuple[str, ...] = tuple(TOOLS)) -> None:
        root = Path(root)
        self.bin = root / "standin-bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        for tool in tools:
            script = self.bin / tool
            # this Python runs them (the stand-in trtexec reads the ONNX with the onnx package)
            script.write_text(f"#!{sys.executable}\n" + (STANDINS / TOOLS[tool]).read_text())
            script.chmod(0o755)
        path = f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        super().__init__(root, env={"PATH": path})

    def argv(self, tool: str = "trtexec") -> list[list[str]]:
        """The argv of every call of `tool` so far (tegrastats' start with "tegrastats")."""
        path = self.bin / "argv.jsonl"
        calls = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        if tool == "tegrastats":
            return [c[1:] for c in calls if c and c[0] == "tegrastats"]
        return [c for c in calls if not c or c[0] != "tegrastats"]

    def mark(self, name: str, text: str = "") -> None:
        """A stand-in's switch (FAIL_BUILD, MODE, UNLOCKED): present until unmark."""
        (self.bin / name).write_text(text)

    def unmark(self, name: str) -> None:
        (self.bin / name).unlink(missing_ok=True)
