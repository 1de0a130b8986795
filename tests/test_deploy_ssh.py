"""`edgekit deploy` and `edgekit doctor` through the real CLI against a loopback sshd: the runner is pushed,
run with the device's Python and its results fetched over SSH; the second deploy uploads nothing; an unknown
host key stops the CLI with exit 5 and the fix; doctor reports the device and records a key on purpose."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.report.schema import validate
from tests.sshd import LoopbackSshd

FAST = ["--runs", "2", "--min-seconds", "0", "--warmup", "0", "--profile-runs", "1"]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    with LoopbackSshd(tmp_path_factory.mktemp("sshd-deploy")) as server:
        yield server


def edgekit(sshd: LoopbackSshd, *args: str, ssh_config: Path | None = None, timeout: float = 1500) -> subprocess.CompletedProcess:
    env = {**os.environ, "EDGEKIT_SSH_CONFIG": str(ssh_config or sshd.client_config)}
    return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.fixture(scope="module")
def deployed(sshd, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("deploy-ssh")
    store = os.environ.get("EDGEKIT_STORE") or str(root / "store")  # CI may share one store across tests

    def deploy(out: str) -> subprocess.CompletedProcess:
        return edgekit(sshd, "deploy", "--model", "mobilesam", "--target", "linux-generic", "--host", sshd.spec,
                       "--device-python", sys.executable, "--precision", "fp32", *FAST, "--store", store,
                       "--out", str(root / out))

    first = deploy("run1")
    assert first.returncode == 0, first.stderr[-3000:]
    models = sshd.remote_cache / "edgekit" / "models"
    uploaded = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in models.rglob("*.onnx") if p.is_file()}
    second = deploy("run2")
    assert second.returncode == 0, second.stderr[-3000:]
    return {"root": root, "uploaded": uploaded, "report": json.loads((root / "run1" / "report.json").read_text())}


def test_deploy_over_ssh_reports_the_device_and_its_transport(deployed, sshd) -> None:
    report = validate(deployed["report"])
    target = report["target"]
    assert (target["name"], target["transport"]) == ("linux-generic", "ssh")
    assert target["device"]["arch"] == platform.machine() and target["device"]["host"] == sshd.spec
    assert target["device"]["cpus"] == os.cpu_count()  # threads: null in the profile = every core of the device
    assert report["runtime"]["name"] == "onnxruntime" and report["runtime"]["threads"] == os.cpu_count()
    assert {(m["part"], m["precision"]) for m in report["measurements"]} == {("encoder", "fp32"), ("decoder", "fp32")}
    assert all(m["latency_ms"]["runs"] >= 2 and m["layers"] for m in report["measurements"])
    raw = deployed["root"] / "run1" / "raw"
    assert len(list(raw.rglob("result.json"))) == 2 and list(raw.rglob("ort_profile.json"))
    work = sshd.remote_cache / "edgekit"
    assert (work / "ort_runner.py").is_file() and list((work / "runs").iterdir()) == []  # cleaned after each run


def test_second_deploy_uploads_nothing(deployed) -> None:
    assert len(deployed["uploaded"]) == 2  # encoder and decoder, content-addressed on the device
    for path, (inode, mtime) in deployed["uploaded"].items():
        st = path.stat()
        assert (st.st_ino, st.st_mtime_ns) == (inode, mtime), f"{path.name} was uploaded again"


def test_unknown_host_key_stops_the_cli_with_the_fix(sshd, tmp_path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(f"Host 127.0.0.1\n  IdentityFile {sshd.client_key}\n  UserKnownHostsFile {tmp_path / 'kh'}\n")
    done = edgekit(sshd, "deploy", "--model", "mobilesam", "--target", "linux-generic", "--host", sshd.spec,
                   *FAST, "--store", str(tmp_path / "store"), "--out", str(tmp_path / "run"), ssh_config=config,
                   timeout=300)
    assert done.returncode == 5, done.stderr[-2000:]
    assert "not in" in done.stderr and "--accept-new-host-key" in done.stderr and "ssh-keyscan" in done.stderr
    assert not (tmp_path / "kh").exists() and not (tmp_path / "run").exists()


def test_doctor_over_ssh(sshd, tmp_path) -> None:
    config = tmp_path / "ssh_config"
    known = tmp_path / "known_hosts"
    config.write_text(f"Host dev\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
                      f"  IdentityFile {sshd.client_key}\n  UserKnownHostsFile {known}\n")
    done = edgekit(sshd, "doctor", "--target", "linux-generic", "--host", "dev", "--device-python", sys.executable,
                   "--accept-new-host-key", "--json", ssh_config=config, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["arch"]["value"] == platform.machine() and checks["onnxruntime"]["status"] == "ok"
    assert checks["disk"]["status"] in ("ok", "warn") and str(sshd.remote_cache) in checks["disk"]["value"]
    assert f"[127.0.0.1]:{sshd.port} ssh-ed25519" in known.read_text()  # recorded because we asked
    missing = edgekit(sshd, "doctor", "--target", "linux-generic", "--host", "dev", "--device-python",
                      "/nonexistent/python3", ssh_config=config, timeout=300)
    assert missing.returncode == 6 and "FAIL python" in missing.stdout and "--device-python" in missing.stdout
