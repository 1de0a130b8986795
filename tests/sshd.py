"""A real OpenSSH sshd on loopback for the transport tests: its own host and client keys, config and port, in a
temporary folder. It can be killed hard (with every session it forked: a dropped link) and brought back on
the same port with the same host key.

    with LoopbackSshd(tmp) as sshd:
        t = sshd.transport()          # SshTransport with the fixture's key, known_hosts and remote work dir
"""
from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def require_sshd() -> None:
    if not os.access(SSHD, os.X_OK):
        pytest.skip("OpenSSH sshd is not installed (apt-get install openssh-server; .ci/run does)")
    if not shutil.which("ssh-keygen"):
        pytest.skip("ssh-keygen is not installed (openssh-client)")
    try:
        import paramiko  # noqa: F401
    except ImportError:
        pytest.skip("paramiko is not installed (pip install -e .[ssh])")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class LoopbackSshd:
    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        """`env`: more variables every session gets (a PATH with stand-in device tools first)."""
        require_sshd()
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.user = getpass.getuser()
        self.port = _free_port()
        self.host_key = self.root / "ssh_host_ed25519_key"
        self.client_key = self.root / "id_ed25519"
        self.remote_cache = self.root / "remote-cache"  # XDG_CACHE_HOME of every session: the work dir lives here
        # HOME of every session: keeps the tests out of the real home, and the login shell from sourcing its
        # ~/.bashrc (pyenv init there costs ~0.3 s per command)
        self.remote_home = self.root / "remote-home"
        self.remote_home.mkdir(exist_ok=True)
        self.known_hosts = self.root / "known_hosts"  # holds this sshd's host key
        self.proc: subprocess.Popen | None = None
        for key in (self.host_key, self.client_key):
            for old in (key, Path(f"{key}.pub")):
                old.unlink(missing_ok=True)  # ssh-keygen will not overwrite
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgekit-test", "-f", str(key)],
                           check=True, capture_output=True)
        (self.root / "authorized_keys").write_text(Path(f"{self.client_key}.pub").read_text())
        pub = Path(f"{self.host_key}.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n")
        self.config = self.root / "sshd_config"
        self.config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.host_key}", f"PidFile {self.root}/sshd.pid",
            f"AuthorizedKeysFile {self.root}/authorized_keys", "StrictModes no", "UsePAM no",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password", f"AllowUsers {self.user}", f"SetEnv XDG_CACHE_HOME={self.remote_cache} HOME={self.remote_home}"
            + "".join(f" {k}={v}" for k, v in (env or {}).items()),
            "MaxStartups 50", "MaxSessions 50", "LogLevel ERROR", "PrintMotd no", ""]))
        self.client_config = self.root / "ssh_config"  # for the CLI: EDGEKIT_SSH_CONFIG points here
        self.client_config.write_text(
            f"Host edgekit-test-device\n  HostName 127.0.0.1\n  Port {self.port}\n  User {self.user}\n"
            f"  IdentityFile {self.client_key}\n  UserKnownHostsFile {self.known_hosts}\n\n"
            f"Host 127.0.0.1\n  IdentityFile {self.client_key}\n  UserKnownHostsFile {self.known_hosts}\n")

    @property
    def spec(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"

    def start(self) -> "LoopbackSshd":
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # sshd's privilege-separation dir
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.root / "sshd.log", "ab"), start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.root / 'sshd.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not start listening within 15 s")

    def crash(self) -> None:
        """SIGKILL the daemon and every session it forked: the link drops mid-whatever, as when a device dies."""
        if self.proc is None:
            return
        for pid in [self.proc.pid, *_descendants(self.proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)
        self.proc = None

    def kill_sessions(self) -> None:
        """Cut every open connection but keep the daemon: the device stays reachable for the next connect."""
        if self.proc is not None:
            for pid in _descendants(self.proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def stop(self) -> None:
        if self.proc is not None:
            self.crash()

    def transport(self, **kwargs):
        from edgekit.targets.ssh import SshTransport

        kwargs.setdefault("known_hosts", self.known_hosts)
        kwargs.setdefault("identity_files", [self.client_key])
        kwargs.setdefault("ssh_config", self.root / "no-ssh-config")
        kwargs.setdefault("backoff_s", 0.2)
        return SshTransport(self.spec, **kwargs)

    def __enter__(self) -> "LoopbackSshd":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
