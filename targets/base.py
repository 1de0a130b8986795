"""What every target shares: the Transport interface (local, ssh, adb) and the measurement settings.

A Transport moves files and runs argv lists (never shell strings) on a device; `LocalTransport` implements the
same interface on this machine, so the pipeline and its tests run identically against both.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Transport(Protocol):
    name: str  # "local" | "ssh" | "adb"
    host: str  # what the user named ("localhost", "pi@orin:2222")

    def run(self, argv: Sequence[str], timeout: float | None = None) -> CommandResult: ...

    def put(self, local: Path, remote: str) -> None:
        """Copy a file to `remote` atomically (temporary name, then rename), verified by sha256; skip when the
        device already holds the same content. Raises on failure."""

    def get(self, remote: str, local: Path) -> None: ...

    def workdir(self) -> str:
        """A per-user directory on the device for edgekit's files (created on first use)."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class MeasureConfig:
    warmup: int = 5
    runs: int = 50  # at least this many timed runs ...
    min_seconds: float = 5.0  # ... and at least this long
    threads: int = 1
    profile_runs: int = 3  # extra runs under the runtime's own profiler (per-layer rows)
    timeout_s: float = 3600.0

    def runner_args(self) -> list[str]:
        return ["--warmup", str(self.warmup), "--runs", str(self.runs), "--min-seconds", str(self.min_seconds),
                "--threads", str(self.threads), "--profile-runs", str(self.profile_runs)]
