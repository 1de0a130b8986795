"""The stand-in adb client (tests/standins/adb.py) installed as an executable `adb` in a folder of its own, with
its switches (DEVICES, NO_SHELL_V2) and the argv it recorded."""
from __future__ import annotations

import json
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "standins" / "adb.py"


class AdbStandin:
    def __init__(self, root: Path) -> None:
        self.bin = Path(root) / "adb-bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.adb = self.bin / "adb"
        self.adb.write_text(f"#!{sys.executable}\n" + SOURCE.read_text())
        self.adb.chmod(0o755)
        self.phone = Path(root) / "phone"  # the phone's /data/local/tmp/edgekit, on this machine
        getprop = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "android" / \
            "getprop_nexus5_android5.1_indented_excerpt_flutter_issue4009.txt"
        if getprop.is_file():  # the phone's getprop answers from a real capture
            tools = self.bin / "phone-bin"
            tools.mkdir(exist_ok=True)
            (tools / "GETPROP_FILE").write_text(str(getprop))
            (tools / "getprop").write_text(f"#!{sys.executable}\n" + (SOURCE.parent / "getprop.py").read_text())
            (tools / "getprop").chmod(0o755)

    def install_benchmark_model(self, capture: Path) -> None:
        """A stand-in benchmark_model on the phone's PATH that answers with `capture` (a real Android output)."""
        tools = self.bin / "phone-bin"
        tools.mkdir(exist_ok=True)
        (tools / "BENCHMARK_OUTPUT").write_text(str(capture))
        tool = tools / "benchmark_model"
        tool.write_text(f"#!{sys.executable}\n" + (SOURCE.parent / "benchmark_model.py").read_text())
        tool.chmod(0o755)

    def install_perf_test(self, capture: Path, profile: Path) -> None:
        """A stand-in onnxruntime_perf_test on the phone's PATH: a real Android summary, a real ORT profile."""
        tools = self.bin / "phone-bin"
        tools.mkdir(exist_ok=True)
        (tools / "PERF_OUTPUT").write_text(str(capture))
        (tools / "PERF_PROFILE").write_text(str(profile))
        tool = tools / "onnxruntime_perf_test"
        tool.write_text(f"#!{sys.executable}\n" + (SOURCE.parent / "ort_perf_standin.py").read_text())
        tool.chmod(0o755)

    def benchmark_argv(self) -> list[list[str]]:
        path = self.bin / "phone-bin" / "argv.jsonl"
        return [json.loads(line)[1:] for line in path.read_text().splitlines()] if path.exists() else []

    def devices(self, *lines: str) -> None:
        (self.bin / "DEVICES").write_text("\n".join(lines) + "\n")

    def mark(self, name: str) -> None:
        (self.bin / name).write_text("")

    def argv(self) -> list[list[str]]:
        path = self.bin / "argv.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def transport(self, serial: str | None = None):
        from edgekit.targets.adb import AdbTransport

        return AdbTransport(serial, adb=str(self.adb), workdir=str(self.phone))
