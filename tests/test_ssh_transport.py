"""SshTransport against a real OpenSSH sshd on loopback: host keys, quoting, atomic and skipped uploads, ending
remote processes. (Faults -- sshd killed, disk full, link cut -- are in test_ssh_faults.py.)"""
from __future__ import annotations

import _thread
import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from edgekit.errors import DeviceFailureError, DeviceUnreachableError, UsageError
from tests.sshd import LoopbackSshd


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    with LoopbackSshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def t(sshd):
    transport = sshd.transport()
    yield transport
    transport.close()


def _processes(needle: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().replace(b"\0", b" ").strip() == needle.encode():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _gone(needle: str, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _processes(needle):
            return True
        time.sleep(0.1)
    return False


def t_home(t) -> Path:
    return Path(t.run(["sh", "-c", 'echo "$HOME"']).stdout.strip())


def test_host_specs_parse() -> None:
    from edgekit.targets.ssh_connect import parse_host_spec

    assert parse_host_spec("pi@raspberrypi") == ("pi", "raspberrypi", None)
    assert parse_host_spec("pi@10.0.0.2:2222") == ("pi", "10.0.0.2", 2222)
    assert parse_host_spec("orin") == (None, "orin", None)
    assert parse_host_spec("root@[fe80::1]:22") == ("root", "fe80::1", 22)
    for bad in ("pi@", "a b", "pi@host:99999", "pi@host:port"):
        with pytest.raises(UsageError):
            parse_host_spec(bad)


def test_ssh_config_alias_gives_host_port_user_key_and_known_hosts(sshd) -> None:
    from edgekit.targets.ssh import SshTransport
    from edgekit.targets.ssh_connect import resolve_endpoint

    e = resolve_endpoint("edgekit-test-device", ssh_config=sshd.client_config)
    assert (e.hostname, e.port, e.user) == ("127.0.0.1", sshd.port, sshd.user)
    assert e.identity_files == (sshd.client_key,) and e.known_hosts == sshd.known_hosts
    assert resolve_endpoint("nobody@edgekit-test-device:2200", ssh_config=sshd.client_config).user == "nobody"
    with SshTransport("edgekit-test-device", ssh_config=sshd.client_config) as t:
        assert t.run(["echo", "via alias"]).stdout == "via alias\n"


def test_unknown_host_key_is_refused_with_the_fix_named(sshd, tmp_path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    t = sshd.transport(known_hosts=empty)
    with pytest.raises(DeviceUnreachableError) as info:
        t.run(["true"])
    err = info.value
    assert "not in" in err.message and "SHA256:" in err.message and "ssh-ed25519" in err.message
    assert "--accept-new-host-key" in err.hint and f"ssh-keyscan -p {sshd.port} 127.0.0.1" in err.hint
    assert empty.read_text() == ""  # nothing recorded behind the user's back
    assert int(err.status) == 5


def test_accept_new_host_key_records_it_on_purpose(sshd, tmp_path) -> None:
    known = tmp_path / "ssh" / "known_hosts"  # the folder does not exist yet either
    with sshd.transport(known_hosts=known, accept_new_host_key=True) as t:
        assert t.run(["echo", "hi"]).stdout == "hi\n"
    name, kind, key = known.read_text().split()
    assert name == f"[127.0.0.1]:{sshd.port}" and kind == "ssh-ed25519"
    assert key == Path(f"{sshd.host_key}.pub").read_text().split()[1]
    with sshd.transport(known_hosts=known) as t:  # now known: no flag needed
        assert t.run(["true"]).ok


def test_changed_host_key_is_refused(sshd, tmp_path) -> None:
    import paramiko

    other = paramiko.Ed25519Key.from_private_key_file(str(sshd.client_key))  # any other ed25519 key
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} ssh-ed25519 {other.get_base64()}\n")
    with pytest.raises(DeviceUnreachableError) as info:
        sshd.transport(known_hosts=known, accept_new_host_key=True).run(["true"])  # the flag never overrides this
    assert "CHANGED" in info.value.message and "ssh-keygen -R" in info.value.hint


HOSTILE = ["with space.bin", "quote'single.bin", 'quote"double.bin', "semi;colon.bin", "$(touch ek-canary).bin",
           "`touch ek-canary`.bin", "x; touch ek-canary #.bin", "-leading-dash.bin", "new\nline.bin", "star*?[x].bin", "back\\slash.bin"]


def test_hostile_file_names_round_trip_and_nothing_runs(t, tmp_path) -> None:
    work = t.workdir()
    for i, name in enumerate(HOSTILE):
        local = tmp_path / f"in{i}.bin"
        local.write_bytes(os.urandom(1000) + name.encode())
        t.put(local, f"{work}/odd/{name}")
        back = tmp_path / f"out{i}.bin"
        t.get(f"{work}/odd/{name}", back)
        assert back.read_bytes() == local.read_bytes(), name
        assert Path(work, "odd", name).read_bytes() == local.read_bytes()  # the "device" is this machine
    assert t.run(["printf", "%s|", *HOSTILE]).stdout == "|".join(HOSTILE) + "|"  # argv arrives verbatim
    assert sorted(os.listdir(Path(work, "odd"))) == sorted(HOSTILE)  # no .part left, nothing else created
    for folder in (t_home(t), Path(work), Path(work, "odd"), Path.cwd()):  # remote commands start in $HOME
        assert not (folder / "ek-canary").exists(), folder


def test_upload_is_atomic_the_final_name_never_holds_a_prefix(t, tmp_path) -> None:
    remote = f"{t.workdir()}/atomic.bin"
    old, new = tmp_path / "old.bin", tmp_path / "new.bin"
    old.write_bytes(os.urandom(1 << 20))
    new.write_bytes(os.urandom(24 << 20))
    t.put(old, remote)
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                seen.add(os.stat(remote).st_size)  # the "device" is this machine: look at the file directly
            except FileNotFoundError:
                seen.add(-1)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        t.put(new, remote)
    finally:
        done.set()
        watcher.join()
    assert seen <= {old.stat().st_size, new.stat().st_size}, seen  # old or new, never a prefix, never missing
    assert hashlib.sha256(Path(remote).read_bytes()).hexdigest() == hashlib.sha256(new.read_bytes()).hexdigest()


def test_second_put_of_the_same_content_transfers_nothing(t, tmp_path) -> None:
    local = tmp_path / "same.bin"
    local.write_bytes(os.urandom(2 << 20))
    remote = f"{t.workdir()}/same.bin"
    t.put(local, remote)
    sent, uploads = t.stats.bytes_sent, t.stats.uploads
    t.put(local, remote)
    assert t.stats.bytes_sent == sent and t.stats.uploads == uploads and t.stats.skipped >= 1
    local.write_bytes(os.urandom(2 << 20))  # same size, other bytes: must upload
    t.put(local, remote)
    assert t.stats.uploads == uploads + 1 and Path(remote).read_bytes() == local.read_bytes()


def test_devices_without_sha256sum_hash_with_python(t, tmp_path) -> None:
    t.hasher = "python"
    local = tmp_path / "py.bin"
    local.write_bytes(os.urandom(300_000))
    t.put(local, f"{t.workdir()}/py.bin")
    t.get(f"{t.workdir()}/py.bin", tmp_path / "py.back")
    assert (tmp_path / "py.back").read_bytes() == local.read_bytes()


def test_a_timeout_ends_the_remote_process(t) -> None:
    started = time.monotonic()
    with pytest.raises(DeviceFailureError) as info:
        t.run(["sleep", "41.7"], timeout=1.5)
    assert time.monotonic() - started < 20 and "did not finish within 1.5 s" in info.value.message
    assert _gone("sleep 41.7"), "the remote sleep survived its timeout"
    assert t.run(["echo", "still usable"]).ok


def test_ctrl_c_ends_the_remote_process(t) -> None:
    t.run(["true"])  # connect first, so the interrupt lands in the command
    timer = threading.Timer(1.5, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            t.run(["sleep", "42.3"], timeout=60)
    finally:
        timer.cancel()
    assert _gone("sleep 42.3"), "the remote sleep survived Ctrl-C"


def test_remote_exit_codes_and_missing_things(t, tmp_path) -> None:
    r = t.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    with pytest.raises(DeviceFailureError, match="not found"):
        t.run(["no-such-command-edgekit"])
    with pytest.raises(DeviceFailureError, match="no such file"):
        t.get(f"{t.workdir()}/never-written.json", tmp_path / "x.json")


def test_get_resumes_a_partial_download_and_discards_a_stale_one(t, tmp_path) -> None:
    data = os.urandom(3 << 20)
    remote = Path(t.workdir(), "fetch.bin")
    remote.write_bytes(data)  # written "on the device" directly
    local = tmp_path / "fetch.bin"
    (tmp_path / ".fetch.bin.part").write_bytes(data[: 1 << 20])  # an earlier download cut at 1 MiB
    before = t.stats.bytes_received
    t.get(str(remote), local)
    assert local.read_bytes() == data and t.stats.bytes_received - before == len(data) - (1 << 20)
    (tmp_path / ".fetch.bin.part").write_bytes(os.urandom(1 << 20))  # a prefix of something else
    local.unlink()
    t.get(str(remote), local)
    assert local.read_bytes() == data and not (tmp_path / ".fetch.bin.part").exists()
