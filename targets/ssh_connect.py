"""Reaching a device over SSH: the host spec, ~/.ssh/config, host-key checking, and connecting with paramiko.

Host keys are the trust anchor of every measurement, so an unknown key is refused (OpenSSH's
StrictHostKeyChecking=yes); `accept_new_host_key` records a new key on purpose, appending one line to the
user's known_hosts; a CHANGED key is always refused. Every failure becomes a DeviceUnreachableError that
names the fix.
"""
from __future__ import annotations

import base64
import getpass
import hashlib
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from edgekit.errors import DeviceUnreachableError, UsageError

class LinkDown(DeviceUnreachableError):
    """Unreachable for a reason that may pass (refused, timed out, reset): transfers retry these, never a
    refused host key or a failed login."""


SSH_CONFIG_ENV = "EDGEKIT_SSH_CONFIG"  # tests and CI point this at their own ssh config
_SPEC = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:@\s\[\]]+))(?::(?P<port>\d+))?$")


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to connect, after ~/.ssh/config has been applied."""

    spec: str  # what the user typed: "pi@raspberrypi:2222", an alias, ...
    hostname: str
    port: int
    user: str
    identity_files: tuple[Path, ...] = ()
    known_hosts: Path = field(default_factory=lambda: Path("~/.ssh/known_hosts").expanduser())
    proxy_command: str | None = None
    connect_timeout: float = 15.0
    keepalive_s: int = 15

    @property
    def known_hosts_name(self) -> str:
        """The key OpenSSH files the host under in known_hosts."""
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"

    def keyscan_hint(self) -> str:
        port = "" if self.port == 22 else f"-p {self.port} "
        return f"ssh-keyscan {port}{self.hostname} >> {self.known_hosts}"


def paramiko_module():
    """paramiko, or a UsageError that says how to get it (it is the optional `ssh` extra)."""
    try:
        import paramiko
    except ImportError as exc:
        raise UsageError("SSH targets need paramiko, which is not installed",
                         hint="pip install 'edgekit[ssh]' (or: pip install paramiko)") from exc
    return paramiko


def parse_host_spec(spec: str) -> tuple[str | None, str, int | None]:
    """`user@host[:port]` (IPv6 as `[::1]:22`) -> (user, host, port)."""
    match = _SPEC.match(spec.strip())
    if not match:
        raise UsageError(f"cannot read the host {spec!r}", hint="use user@host, user@host:port or an alias from ~/.ssh/config")
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 0 < port < 65536:
        raise UsageError(f"port {port} of {spec!r} is out of range", hint="ports are 1-65535")
    return match["user"], match["v6"] or match["host"], port


def resolve_endpoint(spec: str, ssh_config: Path | None = None, known_hosts: Path | None = None,
                     identity_files: Sequence[Path] = (), connect_timeout: float = 15.0,
                     keepalive_s: int = 15) -> Endpoint:
    """Apply ~/.ssh/config (HostName, User, Port, IdentityFile, UserKnownHostsFile, ProxyCommand,
    ConnectTimeout, ServerAliveInterval) to a host spec; what the spec says explicitly wins."""
    paramiko = paramiko_module()

    user, host, port = parse_host_spec(spec)
    path = Path(ssh_config or os.environ.get(SSH_CONFIG_ENV) or "~/.ssh/config").expanduser()
    conf: dict = {}
    if path.is_file():
        try:
            conf = dict(paramiko.SSHConfig.from_path(str(path)).lookup(host))
        except Exception as exc:  # paramiko raises several types for a malformed file
            raise UsageError(f"cannot read the ssh config {path}: {exc}", hint="fix the file, or point "
                             f"{SSH_CONFIG_ENV} at another one") from exc
    if conf.get("proxyjump"):
        raise UsageError(f"{path} reaches {host} through ProxyJump, which edgekit does not follow",
                         hint=f"write it as `ProxyCommand ssh -W %h:%p {conf['proxyjump']}` in that Host block")
    ids = [Path(p).expanduser() for p in identity_files]
    ids += [Path(p).expanduser() for p in conf.get("identityfile", []) if Path(p).expanduser().is_file()]
    kh = known_hosts or (Path(conf["userknownhostsfile"].split()[0]) if conf.get("userknownhostsfile") else None)
    return Endpoint(
        spec=spec, hostname=conf.get("hostname", host), port=port or int(conf.get("port", 22)),
        user=user or conf.get("user") or getpass.getuser(), identity_files=tuple(dict.fromkeys(ids)),
        known_hosts=Path(kh or "~/.ssh/known_hosts").expanduser(), proxy_command=conf.get("proxycommand"),
        connect_timeout=float(conf.get("connecttimeout", connect_timeout)),
        keepalive_s=int(conf.get("serveraliveinterval", keepalive_s)))


def fingerprint(key) -> str:
    """OpenSSH's SHA256:... form, the one `ssh` prints when it asks."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def _policy(endpoint: Endpoint, accept_new: bool):
    import paramiko

    class Policy(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client, hostname: str, key) -> None:
            if not accept_new:
                raise DeviceUnreachableError(
                    f"the host key of {endpoint.spec} ({hostname}) is not in {endpoint.known_hosts}: "
                    f"{key.get_name()} {fingerprint(key)}; edgekit does not talk to unknown hosts",
                    hint="check that fingerprint on the device (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then "
                         f"rerun with --accept-new-host-key, or record it yourself: {endpoint.keyscan_hint()}")
            record_host_key(endpoint.known_hosts, hostname, key)
            client.get_host_keys().add(hostname, key.get_name(), key)

    return Policy()


def record_host_key(known_hosts: Path, hostname: str, key) -> None:
    """Append one line (never rewrite: the file may hold hashed entries and comments paramiko would drop)."""
    known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(known_hosts, "a") as handle:
        handle.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
    os.chmod(known_hosts, 0o600)


def connect(endpoint: Endpoint, accept_new_host_key: bool = False):
    """An authenticated paramiko.SSHClient with keepalive, or a DeviceUnreachableError that names the fix."""
    paramiko = paramiko_module()

    client = paramiko.SSHClient()
    for path in (Path("/etc/ssh/ssh_known_hosts"), endpoint.known_hosts):
        if path.is_file():
            try:
                (client.load_system_host_keys if path.name == "ssh_known_hosts" else client.load_host_keys)(str(path))
            except Exception as exc:  # a corrupt line must not silently disable checking
                raise DeviceUnreachableError(f"cannot read {path}: {exc}", hint="fix or remove the bad line") from exc
    client.set_missing_host_key_policy(_policy(endpoint, accept_new_host_key))
    where = f"{endpoint.user}@{endpoint.hostname}:{endpoint.port}"
    try:
        sock = paramiko.ProxyCommand(endpoint.proxy_command) if endpoint.proxy_command else None
        client.connect(endpoint.hostname, port=endpoint.port, username=endpoint.user,
                       key_filename=[str(p) for p in endpoint.identity_files] or None, allow_agent=True,
                       look_for_keys=True, timeout=endpoint.connect_timeout, banner_timeout=endpoint.connect_timeout,
                       auth_timeout=endpoint.connect_timeout, channel_timeout=endpoint.connect_timeout, sock=sock)
    except DeviceUnreachableError:
        client.close()
        raise
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise DeviceUnreachableError(
            f"the host key of {where} has CHANGED (now {exc.key.get_name()} {fingerprint(exc.key)}): either the device "
            "was reinstalled or someone is in the middle", hint="if the device was reinstalled, remove the old key: "
            f"ssh-keygen -R '{endpoint.known_hosts_name}' -f {endpoint.known_hosts}; then connect again") from exc
    except paramiko.AuthenticationException as exc:
        client.close()
        raise DeviceUnreachableError(f"{where} refused our keys: {exc}", hint="load your key (ssh-add) or name it "
                                     "with IdentityFile in ~/.ssh/config; `ssh " + endpoint.spec + " true` must work "
                                     "without a password") from exc
    except (socket.timeout, TimeoutError) as exc:
        client.close()
        raise LinkDown(f"no answer from {where} within {endpoint.connect_timeout:g} s",
                                     hint="is the device on and on this network? (ping it; check the address)") from exc
    except (OSError, paramiko.SSHException, EOFError) as exc:  # refused, no route, DNS, protocol errors
        client.close()
        raise LinkDown(f"cannot connect to {where}: {exc or type(exc).__name__}",
                                     hint="check the address and that sshd runs on the device "
                                          "(`ssh " + endpoint.spec + " true`)") from exc
    transport = client.get_transport()
    if endpoint.keepalive_s > 0:
        transport.set_keepalive(endpoint.keepalive_s)  # keeps NAT entries alive; a dead link then errors on write
    return client
