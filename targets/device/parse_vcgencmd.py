"""Raspberry Pi `vcgencmd` output -> VcgencmdReadings (any mix of commands, one answer per line):

    measure_temp       temp=39.2'C          (an apostrophe, not a degree sign)
    get_throttled      throttled=0x50005    (a bitmask, below)
    measure_clock arm  frequency(45)=1400000000   (Hz; the number in brackets is the clock's id)
    measure_volts      volt=1.2000V
A file may repeat a command (a temperature before and after a load); every reading is kept in order and the
last one of each kind is lifted out. get_throttled's low bits are the current state (0 under-voltage, 1 ARM
frequency capped, 2 throttled, 3 soft temperature limit) and bits 16-19 the same conditions "has occurred since
boot" (raspberrypi/firmware#615 and the Pi documentation). Trailing spaces (Markdown line breaks) are ignored.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from edgekit.errors import ParseError
from edgekit.targets.textparse import NUM, split_lines, to_float

THROTTLE_BITS = {0: "under_voltage", 1: "arm_frequency_capped", 2: "throttled", 3: "soft_temperature_limit"}
_LINE = re.compile(rf"^(?:temp=(?P<temp>{NUM})'C|throttled=(?P<throttled>0x[0-9a-fA-F]{{1,8}})|"
                   rf"frequency\((?P<clock>\d{{1,4}})\)=(?P<hz>\d{{1,15}})|volt=(?P<volt>{NUM})V|"
                   rf"(?P<key>[a-z_]+)=(?P<value>\S+))$")


@dataclass(frozen=True)
class VcgencmdReadings:
    temp_c: float | None
    throttled: dict[str, Any] | None
    clocks_hz: dict[str, int] = field(default_factory=dict)  # clock id -> Hz (45 = ARM)
    volts: float | None = None
    readings: tuple[dict[str, Any], ...] = ()
    other: dict[str, str] = field(default_factory=dict)  # other `key=value` answers, as text

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def decode_throttled(raw: str) -> dict[str, Any]:
    """`0x50005` -> now: {under_voltage, throttled}, occurred: {under_voltage, throttled}."""
    value = int(raw, 16)
    now = {name: bool(value >> bit & 1) for bit, name in THROTTLE_BITS.items()}
    occurred = {name: bool(value >> (bit + 16) & 1) for bit, name in THROTTLE_BITS.items()}
    return {"raw": raw, "value": value, "now": now, "occurred": occurred}


def parse_vcgencmd(text: str) -> VcgencmdReadings:
    """Parse the answers of one or more vcgencmd commands."""
    readings: list[dict[str, Any]] = []
    last: dict[str, Any] = {"temp_c": None, "throttled": None, "volts": None}
    clocks: dict[str, int] = {}
    other: dict[str, str] = {}
    for lineno, line in enumerate(split_lines(text), 1):
        m = _LINE.match(line.strip())
        if m is None:
            continue
        if m.group("temp") is not None:
            last["temp_c"] = to_float(m.group("temp"), lineno)
            readings.append({"kind": "temp_c", "value": last["temp_c"], "line": lineno})
        elif m.group("throttled") is not None:
            last["throttled"] = decode_throttled(m.group("throttled"))
            readings.append({"kind": "throttled", "value": m.group("throttled"), "line": lineno})
        elif m.group("clock") is not None:
            clocks[m.group("clock")] = int(m.group("hz"))  # Hz; clock 45 is the ARM core
            hz = int(m.group("hz"))
            readings.append({"kind": "clock_hz", "clock": m.group("clock"), "value": hz, "line": lineno})
        elif m.group("volt") is not None:
            last["volts"] = to_float(m.group("volt"), lineno)
            readings.append({"kind": "volts", "value": last["volts"], "line": lineno})
        else:
            other[m.group("key")] = m.group("value")
            readings.append({"kind": m.group("key"), "value": m.group("value"), "line": lineno})
    if not readings:
        raise ParseError("no vcgencmd answers (`temp=..'C`, `throttled=0x..`, `frequency(N)=..`, `volt=..V`) found",
                         hint="pass the output of e.g. `vcgencmd measure_temp; vcgencmd get_throttled`")
    return VcgencmdReadings(temp_c=last["temp_c"], throttled=last["throttled"], clocks_hz=clocks,
                            volts=last["volts"], readings=tuple(readings), other=other)
