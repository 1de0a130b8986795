"""Targets by name: `local` today (ONNX Runtime on this machine); device profiles plug in here."""
from __future__ import annotations

import sys

from edgekit.errors import UsageError
from edgekit.targets.target import Target

KNOWN = ("local",)


def open_target(name: str, host: str | None = None) -> Target:
    if name == "local":
        if host not in (None, "localhost"):
            raise UsageError("--target local runs on this machine and takes no --host", hint="drop --host")
        from edgekit.targets.facts import local_facts
        from edgekit.targets.local import LocalTransport
        from edgekit.targets.ort.backend import OrtBackend

        # The runner runs under this very interpreter, which has onnxruntime (edgekit depends on it).
        return Target("local", LocalTransport(), OrtBackend(python=sys.executable), local_facts())
    raise UsageError(f"unknown target {name!r}", hint="choose one of: " + ", ".join(KNOWN) + " (see `edgekit targets`)")
