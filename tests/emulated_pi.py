"""Pytest fixtures for emulated aarch64 Raspberry Pis (tools/emulated_pi.py): built once (cached between test
sessions in EDGEKIT_EMUPI_DIR, default ~/.cache/edgekit/emulated-pi), brought up on demand and shared by every
test of the session, torn down at its end.

    from tests.emulated_pi import emulated_pis, emulator, ssh_env  # noqa: F401  (pytest finds them by name)

    def test_x(emulated_pis):
        a, b = emulated_pis(2)                  # Device objects: .target "pi@169.254.90.2", .ssh("cmd")

Tests skip, with the reason, where the machine lacks root, binfmt_misc or network namespaces, where the image
is not built and the package registries cannot be reached, or where EDGEKIT_EMULATED_PI=0.
"""
from __future__ import annotations

import importlib.util
import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "emulated_pi.py"
PYPI = (("pypi.org", 443), ("files.pythonhosted.org", 443))


def load_tool():
    """tools/ is not a package (not installed): load the script as a module, once."""
    name = "edgekit_tools_emulated_pi"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TOOL)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file executes
        spec.loader.exec_module(module)
    return sys.modules[name]


def unreachable_registries(tool) -> list[str]:
    """The package registries the build needs (this machine's Debian mirror, PyPI) that do not answer."""
    from urllib.parse import urlsplit

    mirror = urlsplit(tool.mirrors()[0])
    out = []
    for host, port in ((mirror.hostname, mirror.port or (443 if mirror.scheme == "https" else 80)), *PYPI):
        try:
            socket.create_connection((host, port), timeout=5).close()
        except OSError:
            out.append(host)
    return out


@pytest.fixture(scope="session")
def emulator():
    """The tool module, with its rootfs built (cached); skips the test where it cannot be."""
    if os.environ.get("EDGEKIT_EMULATED_PI") == "0":
        pytest.skip("emulated Raspberry Pi disabled (EDGEKIT_EMULATED_PI=0)")
    tool = load_tool()
    reason = tool.missing_support()
    if reason:
        pytest.skip(f"emulated Raspberry Pi: {reason}")
    if not tool.is_built():
        down = unreachable_registries(tool)
        if down:
            pytest.skip(f"emulated Raspberry Pi: its image is not built and {', '.join(down)} cannot be reached")
        started = time.monotonic()
        try:
            tool.build()
        except tool.EmulatorError as exc:
            if unreachable_registries(tool):
                pytest.skip(f"emulated Raspberry Pi: build failed for lack of network: {str(exc)[:300]}")
            raise
        print(f"\nemulated Raspberry Pi image built in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return tool


# pytest makes one fixture per test module that imports these functions, so the session's state lives here:
# every module then shares the same devices and the same store.
_POOL: list = []
_STORE: list[Path] = []


@pytest.fixture(scope="session")
def emulated_pis(emulator) -> Callable[[int], list]:
    """emulated_pis(n) -> the session's first n devices (started on first request; all stopped at the end)."""
    def get(n: int) -> list:
        while len(_POOL) < n:
            _POOL.append(emulator.up())
        return _POOL[:n]

    try:
        yield get
    finally:
        while _POOL:
            emulator.down(_POOL.pop().name)


@pytest.fixture(scope="session")
def ssh_env(emulator) -> dict[str, str]:
    """The environment for an edgekit process that talks to the devices: an ssh config naming the client
    key and the devices' pinned host keys (verification stays on; nothing in ~/.ssh is touched)."""
    return {**os.environ, "EDGEKIT_SSH_CONFIG": str(emulator.ssh_config())}


@pytest.fixture(scope="session")
def emulated_store(tmp_path_factory) -> Path:
    """One artifact store for every emulated-device test (CI's EDGEKIT_STORE when set, shared with the other
    deploy tests): the exports are made once per session."""
    if not _STORE:
        shared = os.environ.get("EDGEKIT_STORE")
        _STORE.append(Path(shared) if shared else tmp_path_factory.mktemp("emulated-store"))
    return _STORE[0]


# The smallest deploy the issue allows (the test adds --model): synthetic weights, fp32, one timed run and one
# profiled run (the runner adds one profiled warm-up), no warm-up: under emulation one mobilesam encoder run takes
# minutes.
# One runtime thread per core of this machine: the profile's 4 would oversubscribe the emulating cores.
FAST_DEPLOY = ("--target", "raspberry-pi-4", "--weights", "synthetic", "--precision", "fp32",
               "--warmup", "0", "--runs", "1", "--min-seconds", "0", "--profile-runs", "1",
               "--threads", str(os.cpu_count() or 1))
