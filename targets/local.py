"""The local target's transport: this machine, through the same interface as a remote device."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Sequence

from edgekit.errors import DeviceFailureError
from edgekit.store import sha256_file
from edgekit.targets.base import CommandResult


class LocalTransport:
    name = "local"
    host = "localhost"

    def __init__(self, root: Path | None = None) -> None:
        self._root = Path(root) if root else Path(tempfile.mkdtemp(prefix="edgekit-local-"))
        self._owned = root is None
        self._root.mkdir(parents=True, exist_ok=True)

    def workdir(self) -> str:
        return str(self._root)

    def run(self, argv: Sequence[str], timeout: float | None = None) -> CommandResult:
        start = time.perf_counter()
        try:
            proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise DeviceFailureError(f"{argv[0]} did not finish within {timeout:g} s",
                                     hint="raise --timeout or lower --runs") from exc
        except FileNotFoundError as exc:
            raise DeviceFailureError(f"cannot run {argv[0]}: not found", hint="install it or fix the path") from exc
        return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - start)

    def put(self, local: Path, remote: str) -> None:
        target = Path(remote)
        if target.is_file() and target.stat().st_size == local.stat().st_size and sha256_file(target) == sha256_file(local):
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        shutil.copyfile(local, tmp)
        if sha256_file(tmp) != sha256_file(local):
            tmp.unlink(missing_ok=True)
            raise DeviceFailureError(f"copy of {local.name} is corrupt", hint="check the disk")
        os.replace(tmp, target)

    def get(self, remote: str, local: Path) -> None:
        if not Path(remote).is_file():  # the same error as SshTransport's, so callers need not know which
            raise DeviceFailureError(f"cannot fetch {remote}: no such file on the device",
                                     hint="the device-side step did not write it: see its log")
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.part")
        shutil.copyfile(remote, tmp)
        os.replace(tmp, local)

    def close(self) -> None:
        if self._owned:
            shutil.rmtree(self._root, ignore_errors=True)
