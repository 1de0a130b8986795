"""Reading a device's facts through its transport, with the commands its profile names.

All of a profile's fact commands run in ONE round trip (a device under emulation, or at the end of a slow
link, pays seconds per command): each argv is quoted with shlex.join into one sh script whose outputs are
framed by random markers. Missing commands (vcgencmd on a non-Pi) simply yield no fact. The text is then read
by the same pure parsers as everywhere (targets/facts.py, targets/device/parse_*.py).
"""
from __future__ import annotations

import re
import secrets
import shlex
from typing import Mapping, Sequence

from edgekit.targets.base import Transport
from edgekit.targets.facts import facts_from_texts
from edgekit.targets.profiles import Profile


def run_many(transport: Transport, commands: Mapping[str, Sequence[str]], timeout: float = 60.0) -> dict[str, tuple[int, str]]:
    """{key: argv} -> {key: (exit code, stdout)}, in one remote command. stderr is dropped (a missing tool's
    complaint is not a fact). Raises what the transport raises for an unreachable device."""
    if not commands:
        return {}
    nonce = secrets.token_hex(8)
    lines = []
    for key, argv in commands.items():
        tag = shlex.quote(key)
        lines.append(f"printf '%s\\n' \"@@{nonce} begin \"{tag}; {shlex.join([str(a) for a in argv])} </dev/null 2>/dev/null; "
                     f"printf '\\n%s %s\\n' \"@@{nonce} end \"{tag} \"$?\"")
    result = transport.run(["sh", "-c", "\n".join(lines) + "\nexit 0"], timeout=timeout)
    found: dict[str, tuple[int, str]] = {}
    pattern = re.compile(rf"@@{nonce} begin (.*?)\n(.*?)\n@@{nonce} end \1 (\d+)\n", re.S)
    for match in pattern.finditer(result.stdout):
        found[match.group(1)] = (int(match.group(3)), match.group(2))
    return found


def device_block(raw: Mapping[str, str]) -> dict:
    """Raw fact texts (by profile key) -> the report's `target.device` block."""
    def text(key: str) -> str | None:
        value = (raw.get(key) or "").replace("\x00", "").strip()  # device-tree strings end in NUL
        return value or None

    nproc = text("nproc")
    facts = facts_from_texts(raw.get("cpuinfo"), raw.get("meminfo"), text("arch"), text("os"),
                             int(nproc) if nproc and nproc.isdigit() else None)
    if text("model"):
        facts["model"] = text("model")  # the board's own name (device tree, getprop, sysctl) beats cpuinfo's
    if text("cpu"):
        facts["cpu"] = text("cpu")
    memory = text("memory_bytes")
    if memory and memory.isdigit():
        facts["memory_gb"] = round(int(memory) / 1024 ** 3, 2)
    if text("hostname"):
        facts["hostname"] = text("hostname")
    return facts


def read_facts(transport: Transport, profile: Profile, timeout: float = 60.0) -> tuple[dict, dict[str, str]]:
    """(the report's device block, the raw texts by key) for a device described by `profile`."""
    answers = run_many(transport, profile.facts, timeout)
    raw = {key: out for key, (code, out) in answers.items() if code == 0 and out.strip()}
    device = device_block(raw)
    if "power_mode" in profile.facts:  # a Jetson: its module, software versions, power mode and clocks
        from edgekit.targets.device.parse_jetson import jetson_block

        device["jetson"], device["warnings"] = jetson_block(raw)
    return device, raw
