"""Device facts for the report: what the hardware is, read by the same pure parsers for every device."""
from __future__ import annotations

import os
import platform
from pathlib import Path

from edgekit.errors import ParseError


def facts_from_texts(cpuinfo: str | None, meminfo: str | None, uname_m: str | None, os_name: str | None,
                     nproc: int | None = None) -> dict:
    """Combine raw command outputs into the report's `target.device` block (absent facts are None)."""
    from edgekit.targets.device.parse_proc import parse_cpuinfo, parse_meminfo

    cpu = mem = None
    try:
        cpu = parse_cpuinfo(cpuinfo) if cpuinfo else None
    except ParseError:
        cpu = None
    try:
        mem = parse_meminfo(meminfo) if meminfo else None
    except ParseError:
        mem = None
    return {
        "model": (cpu.model or cpu.cpu_model) if cpu else None,  # a Pi names its board; a PC its CPU
        "cpu": cpu.cpu_model if cpu else None,
        "hardware": cpu.hardware if cpu else None,
        "arch": (uname_m or "").strip() or (cpu.arch if cpu else None),
        "cpus": nproc or (cpu.cores if cpu else None),
        "memory_gb": round(mem.total_kb / 1024 / 1024, 2) if mem and mem.total_kb else None,
        "os": os_name,
    }


def local_facts() -> dict:
    def read(path: str) -> str | None:
        try:
            return Path(path).read_text(errors="replace")
        except OSError:
            return None

    return facts_from_texts(read("/proc/cpuinfo"), read("/proc/meminfo"), platform.machine(),
                            f"{platform.system()} {platform.release()}", os.cpu_count())
