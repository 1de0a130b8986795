"""One command on one SSH channel: stream stdin in, collect stdout/stderr, notice a dead link, honour a deadline.

Separated from the transport so that `run`, uploads (stdin from a file) and downloads (stdout into a file) share
one loop. Link failures surface as LinkLost (the caller decides: retry/resume or DeviceUnreachableError);
deadlines as CommandTimeout (the caller ends the remote process first).
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import BinaryIO, Callable

CHUNK = 256 * 1024


class LinkLost(Exception):
    """The SSH connection died (sshd killed, cable pulled, device rebooted) while a command ran."""


class CommandTimeout(Exception):
    """The command ran past its deadline (the caller still has to end it on the device)."""


@dataclass
class Exchange:
    returncode: int
    stdout: bytes
    stderr: bytes
    sent: int = 0  # bytes of stdin delivered
    received: int = 0  # bytes of stdout delivered to the sink


def _link_errors() -> tuple[type[BaseException], ...]:
    import paramiko

    return (paramiko.SSHException, EOFError, OSError, socket.timeout)


def _has_status(chan) -> bool:
    # paramiko's exit_status_ready() is also true for a channel that merely closed (a dead link); a real
    # exit-status message sets exit_status to 0..255 (it stays -1 otherwise, e.g. after exit-signal)
    return chan.exit_status >= 0


def open_channel(client, command: str, timeout: float):
    try:
        transport = client.get_transport()
        if transport is None or not transport.is_active():
            raise LinkLost("the connection is closed")
        chan = transport.open_session(timeout=timeout)
        chan.exec_command(command)
        return chan
    except LinkLost:
        raise
    except _link_errors() as exc:
        raise LinkLost(f"cannot open a channel: {exc or type(exc).__name__}") from exc


def exchange(client, command: str, *, timeout: float | None = None, stdin: BinaryIO | None = None,
             stdout_sink: Callable[[bytes], None] | None = None, io_timeout: float = 60.0,
             on_stderr: Callable[[bytes], None] | None = None, after_input_timeout: float | None = None) -> Exchange:
    """Run `command` (already quoted), feeding `stdin` (then EOF) and draining both outputs.

    `timeout` bounds the whole command; `io_timeout` bounds a stall of the link while sending. stdout goes to
    `stdout_sink` when given (downloads), else it is collected. `on_stderr` sees stderr as it arrives (the
    caller reads the remote pid from it before the command ends). `after_input_timeout` bounds the wait once
    all of stdin is sent (an upload's verification on the device).
    """
    chan = open_channel(client, command, timeout=io_timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    out: list[bytes] = []
    err: list[bytes] = []
    sent = received = 0

    def drain() -> bool:
        nonlocal received
        got = False
        while chan.recv_ready():
            data = chan.recv(CHUNK)
            if not data:
                break
            got = True
            if stdout_sink is not None:
                stdout_sink(data)
                received += len(data)
            else:
                out.append(data)
        while chan.recv_stderr_ready():
            data = chan.recv_stderr(CHUNK)
            if not data:
                break
            got = True
            err.append(data)
            if on_stderr is not None:
                on_stderr(data)
        return got

    try:
        if stdin is not None:
            chan.settimeout(io_timeout)  # a stalled link raises instead of hanging forever
            for block in iter(lambda: stdin.read(CHUNK), b""):
                if _has_status(chan) or chan.closed:
                    break  # the receiver ended early (disk full): its status says why
                chan.sendall(block)
                sent += len(block)
                drain()
                if deadline is not None and time.monotonic() > deadline:
                    raise CommandTimeout()
        if not chan.closed:
            chan.shutdown_write()
        if stdin is not None and after_input_timeout is not None:
            end = time.monotonic() + after_input_timeout
            deadline = end if deadline is None else min(deadline, end)
        pause = 0.002
        while True:
            if drain():
                pause = 0.002
                continue
            if _has_status(chan) and not chan.recv_ready() and not chan.recv_stderr_ready():
                # exit status first, then the rest of the output still in flight until the channel closes
                if chan.closed or chan.eof_received:
                    break
            if chan.closed and not _has_status(chan):
                transport = client.get_transport()
                # A dying transport closes its channels before it reports itself inactive; the device closes a
                # channel only after EOF. Closed after EOF without a status: the command died of a signal (-1).
                if not chan.eof_received or transport is None or not transport.is_active():
                    raise LinkLost("the connection dropped while the command ran")
                break
            transport = client.get_transport()
            if transport is None or not transport.is_active():
                raise LinkLost("the connection dropped while the command ran")
            if deadline is not None and time.monotonic() > deadline:
                raise CommandTimeout()
            time.sleep(pause)
            pause = min(pause * 2, 0.02)
        drain()
        code = chan.exit_status  # -1: no status (the command died of a signal)
        return Exchange(code, b"".join(out), b"".join(err), sent, received)
    except (LinkLost, CommandTimeout, KeyboardInterrupt):
        raise
    except _link_errors() as exc:
        # A send failed: either the link is gone, or the remote side closed after failing (disk full).
        chan.status_event.wait(2.0)
        if _has_status(chan):
            drain()
            return Exchange(chan.exit_status, b"".join(out), b"".join(err), sent, received)
        raise LinkLost(f"{exc or type(exc).__name__}") from exc
    finally:
        chan.close()
