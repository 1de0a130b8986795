"""Linux `/proc/cpuinfo` and `/proc/meminfo` -> CpuInfo / MemInfo.

/proc/cpuinfo is `key : value` lines in per-core blocks (`processor : N` opens one), then board keys. The
separator is tabs (`Serial\\t\\t:`) or spaces (when pasted), so a line is split on its first `:` and both sides
stripped. On a Raspberry Pi:
- `Model : Raspberry Pi 4 Model B Rev 1.1` is the board; old kernels print no `Model` line (Pi 3, Pi Zero);
- `Hardware : BCM2835` (or BCM2708/2709/2711; newer kernels say BCM2835 on every SoC) is missing on recent
  arm64 kernels;
- `model name : ARMv7 Processor rev 4 (v7l)` appears on 32-bit kernels and gives the architecture (`v7l` ->
  armv7l); arm64 kernels print no model name, and `CPU architecture: 8` then means aarch64. x86 has `flags`
  (`lm` = 64-bit). A capitalised `Processor : ARMv6-compatible ...` (old kernels) is the CPU name, not a core.
Serial numbers are read past, never kept: reports get shared.

/proc/meminfo is `Key:   <n> kB`, some keys without a unit (`HugePages_Total:       0`); the keys vary by kernel
and vendor (`CmaTotal`, `ION_heap`, ...) and `MemAvailable` only exists from Linux 3.14, so every key is kept
and none but `MemTotal` is lifted out as a field.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from edgekit.errors import ParseError
from edgekit.targets.textparse import split_lines

_ARCH_SUFFIX = re.compile(r"\((v\d+l?)\)\s*$")


@dataclass(frozen=True)
class CpuInfo:
    model: str | None  # the board (`Raspberry Pi 4 Model B Rev 1.1`)
    hardware: str | None  # the SoC family line (`BCM2835`)
    cores: int | None
    arch: str | None  # uname -m style: armv6l, armv7l, aarch64, x86_64
    cpu_model: str | None = None  # `model name` / `Processor`
    revision: str | None = None
    cpu_part: str | None = None
    features: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class MemInfo:
    total_kb: int | None
    available_kb: int | None
    free_kb: int | None
    entries_kb: dict[str, int] = field(default_factory=dict)  # every `Key: n kB`
    counts: dict[str, int] = field(default_factory=dict)  # keys without a unit (HugePages_*)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def parse_cpuinfo(text: str) -> CpuInfo:
    """Parse /proc/cpuinfo (ARM or x86; Raspberry Pi board lines where present)."""
    first: dict[str, str] = {}
    cores = 0
    for line in split_lines(text):
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not key:
            continue
        if key == "processor" and value.isascii() and value.isdigit():
            cores += 1
            continue
        first.setdefault(key, value)
    cpu_model = first.get("model name") or first.get("Processor") or first.get("cpu model")
    if not (cores or first.get("Hardware") or first.get("Model") or cpu_model or "CPU architecture" in first):
        raise ParseError("no /proc/cpuinfo fields found (processor, model name, Hardware, Model)",
                         hint="pass the output of `cat /proc/cpuinfo`")
    features = tuple((first.get("Features") or first.get("flags") or "").split())
    return CpuInfo(model=first.get("Model") or None, hardware=first.get("Hardware") or None, cores=cores or None,
                   arch=_arch(cpu_model, first, features), cpu_model=cpu_model or None,
                   revision=first.get("Revision") or None, cpu_part=first.get("CPU part") or None, features=features)


def _arch(cpu_model: str | None, fields: dict[str, str], features: tuple[str, ...]) -> str | None:
    if cpu_model and (m := _ARCH_SUFFIX.search(cpu_model)) is not None:
        return "arm" + m.group(1)
    if "vendor_id" in fields or "flags" in fields:
        return "x86_64" if "lm" in features else "i686"
    arch = fields.get("CPU architecture", "")
    if arch == "8" or arch.startswith("AArch64"):
        return "aarch64"
    if arch.isascii() and arch.isdigit():
        return f"armv{arch}l"
    return None


def parse_meminfo(text: str) -> MemInfo:
    """Parse /proc/meminfo (any kernel; no key but MemTotal is expected)."""
    kb: dict[str, int] = {}
    counts: dict[str, int] = {}
    for line in split_lines(text):
        m = re.match(r"^\s*([^:\s]+):\s+(\d{1,20})(?:\s+(kB))?\s*$", line)
        if m is None:
            continue
        (kb if m.group(3) else counts)[m.group(1)] = int(m.group(2))
    if not kb and not counts:
        raise ParseError("no /proc/meminfo lines (`Key:  <n> kB`) found", hint="pass the output of `cat /proc/meminfo`")
    return MemInfo(total_kb=kb.get("MemTotal"), available_kb=kb.get("MemAvailable"), free_kb=kb.get("MemFree"),
                   entries_kb=kb, counts=counts)
