"""Jetson `tegrastats` (one line per sample) -> TegrastatsParse.

The fields differ by board and L4T release, so a line is read token by token with one pattern per field family,
every field optional, and anything unrecognised kept (never guessed):
- timestamp `MM-DD-YYYY HH:MM:SS` (L4T 35, JetPack 6; absent on L4T 32);
- `RAM used/totalMB (lfb NxSIZE)` (SIZE 4MB, 2MB, 1MB or 128kB); `SWAP used/totalMB (cached NMB)` (absent on old
  TX2 releases); `IRAM used/totalkB(lfb NkB)` (TX1);
- `CPU [load%@MHz,...]` with `off` for offline cores, or `CPU [X%,Y%]@MHz` (one clock for all cores);
- `<ENGINE>_FREQ N%`, `N%@MHz` or `N%@[f1,f2]` (per-GPC clocks on Orin): EMC, GR3D, ...;
- engine states `NVENC off`, `NVDEC 1203`, `APE 174` (a state `off` or a clock);
- temperatures `name@valueC`, names by board and in any case (`CPU@40C`, `cpu@47.687C`, `Tdiode@30.5C`).
  `PMIC@100C` (or 50C) is a constant placeholder on every board seen, and `-256C` marks a disabled sensor: both
  are kept apart from `temps_c` so a report never shows them as readings;
- power rails `NAME cur/avg`, in mW: L4T 35+ writes `VDD_IN 5542mW/5542mW`, L4T 32 `VDD_IN 1840/1840`.
Lines without a `RAM` field (the `date` lines some capture scripts interleave) are skipped and counted.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from edgekit.errors import ParseError
from edgekit.targets.textparse import split_lines, strip_ansi

_SIZE_MB = {"kB": 1 / 1024, "KB": 1 / 1024, "MB": 1.0, "GB": 1024.0}
_TOKEN = re.compile(r"""
  (?P<ram>RAM\ (?P<ram_used>\d{1,12})/(?P<ram_total>\d{1,12})(?P<ram_unit>[kKMG]B)
      (?:\s*\(lfb\ (?P<lfb_n>\d{1,12})x(?P<lfb_size>\d{1,12})(?P<lfb_unit>[kKMG]B)\))?)
 |(?P<swap>SWAP\ (?P<swap_used>\d{1,12})/(?P<swap_total>\d{1,12})(?P<swap_unit>[kKMG]B)
      (?:\s*\(cached\ (?P<swap_cached>\d{1,12})(?P<cached_unit>[kKMG]B)\))?)
 |(?P<iram>IRAM\ (?P<iram_used>\d{1,12})/(?P<iram_total>\d{1,12})kB\s*(?:\(lfb\ \d{1,12}kB\))?)
 |(?P<cpu>CPU\ \[(?P<cpu_list>[^\]]*)\](?:@(?P<cpu_mhz>\d{1,12}))?)
 |(?P<freq>(?P<freq_name>[A-Z][A-Z0-9]*)_FREQ\ (?P<freq_pct>\d{1,12})%
      (?:@(?P<freq_mhz>\d{1,12}|\[(?:\d{1,12}(?:,\d{1,12}){0,63})?\]))?)
 |(?P<temp>(?P<temp_name>[A-Za-z][\w-]*)@(?P<temp_value>-?\d{1,12}(?:\.\d{1,12})?)C)
 |(?P<rail>(?P<rail_name>[A-Za-z][\w]*)\ (?P<rail_cur>\d{1,12})(?:mW)?/(?P<rail_avg>\d{1,12})(?:mW)?)
 |(?P<engine>(?P<engine_name>[A-Z][A-Z0-9_]*)\ (?P<engine_state>off|\d{1,12}(?:%@\d{1,12})?))
""", re.VERBOSE)
_STAMP = re.compile(r"^(\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2})\s+")
_CORE = re.compile(r"^(?:(?P<load>\d{1,12})%(?:@(?P<mhz>\d{1,12}))?|(?P<off>off))$")
PLACEHOLDER_SENSORS = {"PMIC"}


@dataclass(frozen=True)
class TegraSample:
    line: int
    timestamp: str | None = None
    ram_used_mb: float | None = None
    ram_total_mb: float | None = None
    lfb: dict[str, Any] | None = None
    swap_used_mb: float | None = None
    swap_total_mb: float | None = None
    swap_cached_mb: float | None = None
    cpus: tuple[dict[str, Any], ...] = ()
    freqs: dict[str, dict[str, Any]] = field(default_factory=dict)  # "GR3D" -> {"load_pct", "mhz"}
    engines: dict[str, Any] = field(default_factory=dict)  # "NVENC" -> "off" | MHz
    temps_c: dict[str, float] = field(default_factory=dict)
    placeholder_temps_c: dict[str, float] = field(default_factory=dict)
    disabled_sensors: tuple[str, ...] = ()
    power_mw: dict[str, dict[str, int]] = field(default_factory=dict)
    unknown: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class TegrastatsParse:
    samples: tuple[TegraSample, ...]
    skipped_lines: int

    def to_dict(self) -> dict[str, Any]:
        return {"samples": [s.to_dict() for s in self.samples], "skipped_lines": self.skipped_lines}


def parse_tegrastats(text: str) -> TegrastatsParse:
    """Parse a tegrastats log (any L4T release seen: 32.x TX2 to JetPack 6)."""
    samples = []
    skipped = 0
    for lineno, raw in enumerate(split_lines(text), 1):
        line = strip_ansi(raw).strip()
        if "RAM " not in line:
            skipped += 1 if line else 0
            continue
        sample = _sample(line, lineno)
        if sample.ram_total_mb is None:
            skipped += 1
            continue
        samples.append(sample)
    if not samples:
        raise ParseError("no tegrastats samples (lines with `RAM used/totalMB`) found",
                         hint="capture with `tegrastats --interval 1000 --logfile FILE`")
    return TegrastatsParse(tuple(samples), skipped)


def _sample(line: str, lineno: int) -> TegraSample:
    values: dict[str, Any] = {"line": lineno, "freqs": {}, "engines": {}, "temps_c": {}, "placeholder_temps_c": {},
                              "power_mw": {}}
    disabled, unknown = [], []
    pos = 0
    if (m := _STAMP.match(line)) is not None:
        values["timestamp"], pos = m.group(1), m.end()
    while pos < len(line):
        if line[pos].isspace():
            pos += 1
            continue
        m = _TOKEN.match(line, pos)
        if m is None:
            end = line.find(" ", pos)
            end = len(line) if end < 0 else end
            unknown.append(line[pos:end])
            pos = end
            continue
        pos = m.end()
        g = m.groupdict()
        if g["ram"]:
            scale = _SIZE_MB[g["ram_unit"]]
            values["ram_used_mb"], values["ram_total_mb"] = int(g["ram_used"]) * scale, int(g["ram_total"]) * scale
            if g["lfb_n"]:
                values["lfb"] = {"blocks": int(g["lfb_n"]), "block_mb": int(g["lfb_size"]) * _SIZE_MB[g["lfb_unit"]]}
        elif g["swap"]:
            scale = _SIZE_MB[g["swap_unit"]]
            values["swap_used_mb"], values["swap_total_mb"] = int(g["swap_used"]) * scale, int(g["swap_total"]) * scale
            if g["swap_cached"]:
                values["swap_cached_mb"] = int(g["swap_cached"]) * _SIZE_MB[g["cached_unit"]]
        elif g["iram"]:
            values["engines"]["IRAM_kB"] = {"used": int(g["iram_used"]), "total": int(g["iram_total"])}
        elif g["cpu"]:
            values["cpus"] = _cores(g["cpu_list"], g["cpu_mhz"], unknown)
        elif g["freq"]:
            mhz = g["freq_mhz"]
            entry: dict[str, Any] = {"load_pct": int(g["freq_pct"]), "mhz": None}
            if mhz and mhz.startswith("["):
                entry["mhz_per_gpc"] = [int(x) for x in mhz.strip("[]").split(",") if x]
            elif mhz:
                entry["mhz"] = int(mhz)
            values["freqs"][g["freq_name"]] = entry
        elif g["temp"]:
            name, value = g["temp_name"], float(g["temp_value"])
            if value <= -256:
                disabled.append(name)
            elif name.upper() in PLACEHOLDER_SENSORS:
                values["placeholder_temps_c"][name] = value
            else:
                values["temps_c"][name] = value
        elif g["rail"]:
            values["power_mw"][g["rail_name"]] = {"cur": int(g["rail_cur"]), "avg": int(g["rail_avg"])}
        elif g["engine"]:
            state = g["engine_state"]
            values["engines"][g["engine_name"]] = state if state == "off" or "%" in state else int(state)
    return TegraSample(disabled_sensors=tuple(disabled), unknown=tuple(unknown), **values)


def _cores(cpu_list: str, shared_mhz: str | None, unknown: list[str]) -> tuple[dict[str, Any], ...]:
    cores = []
    for item in cpu_list.split(","):
        m = _CORE.match(item.strip())
        if m is None:
            unknown.append(f"CPU:{item.strip()}")
            cores.append({"load_pct": None, "mhz": None, "online": None})
        elif m.group("off"):
            cores.append({"load_pct": None, "mhz": None, "online": False})
        else:
            mhz = m.group("mhz") or shared_mhz
            cores.append({"load_pct": int(m.group("load")), "mhz": int(mhz) if mhz else None, "online": True})
    return tuple(cores)
