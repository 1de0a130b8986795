"""Moving files to and from a device over SSH: atomic, hash-verified on the far side, resumable.

Upload: stream into `.NAME.SHA16.part` beside the final name (the hash in the name means a partial file is
only ever continued with the same content), verify sha256 ON THE DEVICE, then `mv` (atomic within one file
system) -- so the final name holds either the old file or the complete new one, never a prefix. A dropped link
leaves the .part; the next attempt continues from its size. Download: the same, mirrored (local .part, hash
checked here against the device's hash). Everything goes over plain exec channels (no SFTP server needed:
dropbear and busybox devices often have none).
"""
from __future__ import annotations

import logging
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from edgekit.errors import DeviceFailureError
from edgekit.store import sha256_file
from edgekit.targets import ssh_scripts as scripts
from edgekit.targets.ssh_exec import Exchange, LinkLost, exchange

log = logging.getLogger(__name__)
DISK_FULL = ("No space left on device", "Disk quota exceeded", "File too large")


@dataclass
class TransferStats:
    """What the transport actually moved: tests assert on it, logs report it."""

    uploads: int = 0  # files written (fresh or resumed)
    skipped: int = 0  # puts that found the same content already on the device
    resumed: int = 0  # uploads that continued an earlier .part
    bytes_sent: int = 0
    downloads: int = 0
    bytes_received: int = 0
    retries: int = 0


def part_name(remote: str, sha: str) -> str:
    folder, name = posixpath.split(remote)
    return posixpath.join(folder, f".{name}.{sha[:16]}.part")


class Mover:
    """put/get on one live client; the transport reconnects and retries around it."""

    def __init__(self, client, host: str, stats: TransferStats, hasher: str, io_timeout: float,
                 hash_timeout: Callable[[int], float]) -> None:
        self.client, self.host, self.stats = client, host, stats
        self.hasher, self.io_timeout, self.hash_timeout = hasher, io_timeout, hash_timeout

    def _script(self, script: str, args: list[str], timeout: float, hashed: bool = True) -> Exchange:
        return exchange(self.client, scripts.command_line(script, args, self.hasher if hashed else None),
                        timeout=timeout, io_timeout=self.io_timeout)

    def _fail(self, what: str, ex: Exchange, hint: str) -> DeviceFailureError:
        text = ex.stderr.decode(errors="replace").strip()
        return DeviceFailureError(f"{what} on {self.host} (exit {ex.returncode}): {text or 'no message'}", hint=hint)

    # -- upload ---------------------------------------------------------------------------------------------
    def put(self, local: Path, remote: str, sha: str, size: int, restart: bool = True) -> str:
        """One attempt; returns "skipped" | "uploaded" | "resumed". Raises LinkLost for the caller to retry."""
        part = part_name(remote, sha)
        probe = self._script(scripts.PROBE, [remote, part, str(size), posixpath.dirname(remote) or "."],
                             self.hash_timeout(size))
        if probe.returncode != 0:
            raise self._fail(f"cannot prepare {posixpath.dirname(remote)}", probe,
                             "check the remote work directory's permissions (`edgekit doctor`)")
        state = dict(line.split(" ", 1) for line in probe.stdout.decode().splitlines() if " " in line)
        if state.get("final") == sha:
            self.stats.skipped += 1
            log.info("%s: %s already holds this content, skipped", self.host, remote)
            return "skipped"
        offset = int(state.get("part", 0))
        if offset > size:
            offset = 0  # cannot be ours: start over (APPEND with offset 0 truncates)
        outcome = "resumed" if offset else "uploaded"
        if offset:
            log.info("%s: resuming %s at %d of %d bytes", self.host, remote, offset, size)
        with open(local, "rb") as handle:
            handle.seek(offset)
            ex = exchange(self.client, scripts.command_line(scripts.APPEND, [part, str(offset), sha, remote], self.hasher),
                          stdin=handle, io_timeout=self.io_timeout, after_input_timeout=self.hash_timeout(size))
        self.stats.bytes_sent += ex.sent
        text = ex.stderr.decode(errors="replace")
        if ex.returncode != 0 and any(marker in text for marker in DISK_FULL):
            self._script("rm -f -- \"$1\"", [part], 60, hashed=False)  # nothing half-written stays behind
            raise DeviceFailureError(
                f"the device {self.host} ran out of disk space receiving {posixpath.basename(remote)} "
                f"({size / 1e6:.1f} MB) in {posixpath.dirname(remote)}: {text.strip()}",
                hint=f"free space there (df -h {posixpath.dirname(remote)}), or set `workdir:` in the target "
                     "profile to a larger disk")
        complete = offset + ex.sent == size
        if ex.returncode == 5 or (ex.returncode == 4 and complete and offset):
            # the .part held other bytes (changed, or a corrupt earlier attempt): drop it and start over once
            self._script("rm -f -- \"$1\"", [part], 60, hashed=False)
            if restart:
                log.warning("%s: the partial %s did not match; uploading it again", self.host, remote)
                return self.put(local, remote, sha, size, restart=False)
        if ex.returncode == 4 and not complete:
            raise LinkLost(f"the device took {offset + ex.sent} of {size} bytes")
        if ex.returncode == 4:
            raise self._fail(f"{posixpath.basename(remote)} arrived corrupted", ex,
                             "the link or the device's storage corrupts data; check the device")
        if ex.returncode == 3:
            raise self._fail(f"cannot verify {remote}", ex, "install sha256sum (coreutils) or python3 on the device")
        if ex.returncode != 0:
            raise self._fail(f"writing {remote} failed", ex, "check the device's disk and permissions (`edgekit doctor`)")
        self.stats.uploads += 1
        self.stats.resumed += outcome == "resumed"
        return outcome

    # -- download -------------------------------------------------------------------------------------------
    def get(self, remote: str, local: Path, restart: bool = True) -> None:
        """One attempt; a local .part from an earlier attempt is continued, and checked against the device's hash."""
        local.parent.mkdir(parents=True, exist_ok=True)
        part = local.with_name(f".{local.name}.part")
        offset = part.stat().st_size if part.exists() else 0
        with open(part, "ab") as handle:
            ex = exchange(self.client, scripts.command_line(scripts.READ, [remote, str(offset)], self.hasher),
                          stdout_sink=handle.write, io_timeout=self.io_timeout)
        self.stats.bytes_received += ex.received
        if ex.returncode == 2:
            part.unlink(missing_ok=True)
            raise self._fail(f"cannot fetch {remote}", ex, "the device-side step did not write it: see its log")
        if ex.returncode != 0:
            raise self._fail(f"reading {remote} failed", ex, "check the device (`edgekit doctor`)")
        lines = ex.stderr.decode(errors="replace").strip().splitlines()
        sha = lines[-1][len(scripts.SHA_PREFIX):] if lines and lines[-1].startswith(scripts.SHA_PREFIX) else None
        if sha is None:
            raise LinkLost("the device did not send the file's hash")
        if sha256_file(part) != sha:
            part.unlink()
            if offset and restart:
                return self.get(remote, local, restart=False)  # the resumed prefix was stale: once more from 0
            raise DeviceFailureError(f"{remote} from {self.host} arrived corrupted (sha256 differs)",
                                     hint="a login script that prints to stdout corrupts transfers: keep "
                                          "~/.bashrc quiet for non-interactive shells")
        os.replace(part, local)
        self.stats.downloads += 1
