"""The Transport contract, one test body run against LocalTransport, SshTransport (a loopback sshd) and
AdbTransport (the stand-in adb client: no phone or adbd can run here): what the pipeline relies on behaves the same
whichever way the device is reached."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgekit.errors import DeviceFailureError
from edgekit.targets.base import Transport
from tests.sshd import LoopbackSshd


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    with LoopbackSshd(tmp_path_factory.mktemp("sshd-contract")) as server:
        yield server


@pytest.fixture(params=["local", "ssh", "adb"])
def transport(request, tmp_path) -> Transport:
    if request.param == "local":
        from edgekit.targets.local import LocalTransport

        t = LocalTransport(tmp_path / "device")
    elif request.param == "adb":
        from tests.adb_standin import AdbStandin

        t = AdbStandin(tmp_path / "adb").transport()
    else:
        t = request.getfixturevalue("sshd").transport()
    yield t
    t.close()


def test_transport_contract(transport: Transport, tmp_path: Path) -> None:
    assert transport.name in ("local", "ssh", "adb") and transport.host
    work = transport.workdir()
    assert work.startswith("/") and transport.run(["test", "-d", work]).ok and transport.workdir() == work

    # run: argv verbatim (no shell), exit codes returned (not raised), both streams captured
    odd = ["a b", "$(id)", "x;y", "'q'", '"d"', "*", "~"]
    r = transport.run(["printf", "%s\\n", *odd], timeout=30)
    assert r.ok and r.stdout.splitlines() == odd and r.argv[0] == "printf" and r.seconds >= 0
    r = transport.run(["sh", "-c", "echo to-err >&2; exit 7"])
    assert (r.returncode, r.ok, r.stderr.strip()) == (7, False, "to-err")
    with pytest.raises(DeviceFailureError):
        transport.run(["edgekit-no-such-program"])
    with pytest.raises(DeviceFailureError):
        transport.run(["sleep", "30"], timeout=1)

    # put / get: round trip, overwrite, idempotent, folders created, nothing temporary left behind
    src = tmp_path / "model.onnx"
    src.write_bytes(os.urandom(200_000))
    remote = f"{work}/deep/er/model.onnx"
    for _ in range(2):
        transport.put(src, remote)
    back = tmp_path / "back" / "model.onnx"
    transport.get(remote, back)
    assert back.read_bytes() == src.read_bytes()
    src.write_bytes(b"new content")
    transport.put(src, remote)
    transport.get(remote, back)
    assert back.read_bytes() == b"new content"
    listing = transport.run(["ls", "-A", f"{work}/deep/er"]).stdout.split()
    assert listing == ["model.onnx"]
    assert sorted(p.name for p in back.parent.iterdir()) == ["model.onnx"]
    with pytest.raises(DeviceFailureError):
        transport.get(f"{work}/missing.json", tmp_path / "missing.json")
    assert not (tmp_path / "missing.json").exists()
