"""The SSH transport: a device reached with paramiko, through the same interface as LocalTransport.

    with SshTransport("pi@raspberrypi") as t:            # ~/.ssh/config aliases work too
        t.put(Path("m.onnx"), t.workdir() + "/m.onnx")    # atomic, sha256-checked on the device, resumable
        t.run(["python3", "-c", "print(1)"], timeout=60)  # argv, quoted with shlex.join; killed on timeout

Connection problems raise DeviceUnreachableError (exit 5), device-side failures DeviceFailureError (exit 6).
Uploads and downloads reconnect and resume after a dropped link (`retries`, exponential backoff); commands
are never retried (they need not be idempotent). A command cut off by a dropped link is ended on the device
at the next successful connection.
"""
from __future__ import annotations

import logging
import posixpath
import time
from pathlib import Path
from typing import Sequence

from edgekit.errors import DeviceFailureError, DeviceUnreachableError, InputError
from edgekit.store import sha256_file
from edgekit.targets import ssh_scripts as scripts
from edgekit.targets.base import CommandResult
from edgekit.targets.ssh_connect import Endpoint, LinkDown, connect, resolve_endpoint
from edgekit.targets.ssh_exec import CommandTimeout, LinkLost, exchange
from edgekit.targets.ssh_transfer import Mover, TransferStats

log = logging.getLogger(__name__)


class SshTransport:
    name = "ssh"

    def __init__(self, host: str, *, accept_new_host_key: bool = False, ssh_config: Path | None = None,
                 known_hosts: Path | None = None, identity_files: Sequence[Path] = (), workdir: str | None = None,
                 connect_timeout: float = 15.0, keepalive_s: int = 15, io_timeout: float = 60.0, retries: int = 3,
                 backoff_s: float = 1.0) -> None:
        self.host = host
        self.endpoint: Endpoint = resolve_endpoint(host, ssh_config, known_hosts, identity_files, connect_timeout,
                                                   keepalive_s)
        self.accept_new_host_key = accept_new_host_key
        self.io_timeout, self.retries, self.backoff_s = io_timeout, retries, backoff_s
        self.stats = TransferStats()
        self.hasher = "auto"  # "python": use the python3 fallback even where sha256sum exists (tests)
        self._want_workdir = workdir or ""
        self._workdir: str | None = None
        self._client = None
        self._orphans: list[int] = []  # remote pids whose link dropped: ended at the next connection
        self._hashes: dict[tuple[str, int, int], str] = {}

    # -- connection -----------------------------------------------------------------------------------------
    def connect(self) -> "SshTransport":
        self._live()
        return self

    def _live(self):
        transport = self._client.get_transport() if self._client is not None else None
        if transport is not None and transport.is_active():
            return self._client
        self._drop()
        self._client = connect(self.endpoint, self.accept_new_host_key)
        while self._orphans:
            self._kill(self._orphans.pop())
        return self._client

    def _drop(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # closing a dead connection may raise anything; it is gone either way
                pass
        self._client = None

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> "SshTransport":
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        e = self.endpoint
        return f"SshTransport({e.user}@{e.hostname}:{e.port})"

    # -- commands -------------------------------------------------------------------------------------------
    def run(self, argv: Sequence[str], timeout: float | None = None) -> CommandResult:
        argv = [str(a) for a in argv]
        if not argv:
            raise InputError("empty command")
        pid: list[int] = []
        head = bytearray()

        def watch(data: bytes) -> None:  # the wrapper's first stderr line is the remote pid
            if pid or len(head) > 4096:
                return
            head.extend(data)
            line = bytes(head).split(b"\n", 1)[0]
            if b"\n" in head and line.startswith(scripts.PID_PREFIX.encode()):
                pid.append(int(line[len(scripts.PID_PREFIX):]))

        started = time.perf_counter()
        try:
            ex = exchange(self._live(), scripts.launch_line(argv), timeout=timeout, on_stderr=watch,
                          io_timeout=self.io_timeout)
        except CommandTimeout:
            self._end(pid)
            raise DeviceFailureError(f"{argv[0]} did not finish within {timeout:g} s on {self.host}; it was stopped "
                                     "there", hint="raise --timeout or lower --runs") from None
        except KeyboardInterrupt:
            self._end(pid)
            raise
        except LinkLost as exc:
            self._orphans += pid
            self._drop()
            raise DeviceUnreachableError(f"lost the connection to {self.host} while running {argv[0]}: {exc}",
                                         hint="check the device's network and power, then run again") from exc
        stderr = ex.stderr.decode(errors="replace")
        first, _, rest = stderr.partition("\n")
        if first.startswith(scripts.PID_PREFIX):
            stderr = rest
        if ex.returncode == 127 and stderr.startswith(scripts.NOT_FOUND):
            raise DeviceFailureError(f"cannot run {argv[0]} on {self.host}: not found",
                                     hint="install it on the device or fix the path (for Python: --device-python)")
        return CommandResult(tuple(argv), ex.returncode, ex.stdout.decode(errors="replace"), stderr,
                             time.perf_counter() - started)

    def _kill(self, pid: int) -> None:
        try:
            exchange(self._live(), scripts.command_line(scripts.KILL, [str(pid)]), timeout=15, io_timeout=15)
        except Exception as exc:  # best effort: the caller is already reporting the real failure
            log.warning("%s: could not end remote process %d: %s", self.host, pid, exc)

    def _end(self, pid: list[int]) -> None:
        if pid:
            self._kill(pid[0])

    # -- files ----------------------------------------------------------------------------------------------
    def workdir(self) -> str:
        if self._workdir is None:
            ex = self._with_retries("prepare the work directory", lambda c: exchange(
                c, scripts.command_line(scripts.WORKDIR, [self._want_workdir]), timeout=60, io_timeout=self.io_timeout))
            path = ex.stdout.decode(errors="replace").strip()
            if ex.returncode != 0 or not path.startswith("/"):
                raise DeviceFailureError(f"cannot create the work directory on {self.host}: "
                                         f"{ex.stderr.decode(errors='replace').strip()}",
                                         hint="set `workdir:` in the target profile to a writable folder")
            self._workdir = path
        return self._workdir

    def _remote(self, remote: str) -> str:
        return remote if remote.startswith("/") else posixpath.join(self.workdir(), remote)

    def _sha(self, local: Path) -> str:
        st = local.stat()
        key = (str(local.resolve()), st.st_size, st.st_mtime_ns)
        if key not in self._hashes:
            self._hashes[key] = sha256_file(local)
        return self._hashes[key]

    def _hash_timeout(self, size: int) -> float:
        return self.io_timeout + size / 10e6  # an SD card hashes at tens of MB/s

    def _mover(self, client) -> Mover:
        return Mover(client, self.host, self.stats, self.hasher, self.io_timeout, self._hash_timeout)

    def _with_retries(self, what: str, step):
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                return step(self._live())
            except LinkLost as exc:
                log.warning("%s: %s: %s (attempt %d of %d)", self.host, what, exc, attempt + 1, self.retries + 1)
                last = exc
                self._drop()
            except LinkDown as exc:  # reconnecting failed for a reason that may pass
                last = exc
        raise DeviceUnreachableError(f"lost the connection to {self.host} and could not {what} after "
                                     f"{self.retries + 1} attempts: {getattr(last, 'message', last)}",
                                     hint="check the device's network and power, then run again: uploads resume "
                                          "where they stopped") from last

    def put(self, local: Path, remote: str) -> None:
        local = Path(local)
        if not local.is_file():
            raise InputError(f"cannot upload {local}: no such file")
        sha, size = self._sha(local), local.stat().st_size
        target = self._remote(remote)
        self._with_retries(f"upload {local.name}", lambda c: self._mover(c).put(local, target, sha, size))

    def get(self, remote: str, local: Path) -> None:
        source = self._remote(remote)
        self._with_retries(f"fetch {posixpath.basename(source)}", lambda c: self._mover(c).get(source, Path(local)))
