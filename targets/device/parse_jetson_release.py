"""`jetson_release` (jetson-stats) -> JetsonRelease: board, JetPack / L4T, power mode and library versions.

jetson-stats 4.2 / 4.3 print (CRLF line endings in the captures, colour codes on a terminal):
    Software part of jetson-stats 4.3.0 - (c) 2024, Raffaello Bonghi
    Model: NVIDIA Jetson Xavier NX Developer Kit - Jetpack 5.1.1 [L4T 35.3.1]
    NV Power Mode[2]: MODE_15W_6CORE
    Serial Number: [XXX Show with: jetson_release -s XXX]
    Hardware:
     - P-Number: p3668-0001
    Platform: / jtop: / Libraries:
     - CUDA: 12.6.68
     - OpenCV: 4.8.0 - with CUDA: NO
When jetson-stats does not know the L4T release it prints `Jetpack missing!` and then ` - Model: ...` and
` - L4T: 36.4.3` as items (rbonghi/jetson_stats#603). Older 3.x/4.1 releases used `* Key: value` bullets and
`NV Power Mode: MAXN - Type: 0`. Every `Key: value` line is kept by section; the well-known facts are lifted out.
The serial number is never kept (jetson_release hides it unless asked, and reports get shared).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from edgekit.errors import ParseError
from edgekit.targets.textparse import split_lines, strip_ansi

_ITEM = re.compile(r"^\s*(?:[-*]\s+)?(?P<key>[A-Za-z0-9][^:]*):(?P<value>.*)$")
_MODEL_LINE = re.compile(r"^(?P<model>.*?)\s+-\s+Jetpack\s+(?P<jetpack>\S+(?: \w+)?)\s*\[L4T (?P<l4t>[\d.]+)\]")
_JETPACK = re.compile(r"Jetpack\s+(?P<jetpack>[\d.]+(?: \w+)?)\s*\[L4T (?P<l4t>[\d.]+)\]")
_POWER = re.compile(r"^NV Power Mode(?:\[(?P<id>\d{1,6})\])?\s*:\s*(?P<name>\S+)(?:\s*-\s*Type:\s*(?P<type>\d{1,6}))?")
_VERSION = re.compile(r"jetson[-_]stats\s+(?P<version>[\d.]+\S*)")


@dataclass(frozen=True)
class JetsonRelease:
    model: str | None
    jetpack: str | None
    l4t: str | None
    power_mode: str | None
    power_mode_id: int | None
    libraries: dict[str, str] = field(default_factory=dict)
    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    jetson_stats: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def parse_jetson_release(text: str) -> JetsonRelease:
    """Parse jetson_release's output (jetson-stats 3.x-4.3)."""
    facts: dict[str, Any] = {"model": None, "jetpack": None, "l4t": None, "power_mode": None, "power_mode_id": None,
                             "jetson_stats": None}
    sections: dict[str, dict[str, str]] = {}
    section = "General"
    for raw in split_lines(text):
        line = strip_ansi(raw).rstrip()
        stripped = line.strip()
        if not stripped:
            continue
        if (m := _VERSION.search(stripped)) is not None and facts["jetson_stats"] is None:
            facts["jetson_stats"] = m.group("version")
            continue
        if (m := _POWER.match(stripped.lstrip("-* "))) is not None:
            ident = m.group("id") or m.group("type")  # `NV Power Mode[2]: 15W` or `...: MAXN - Type: 0`
            facts["power_mode"], facts["power_mode_id"] = m.group("name"), int(ident) if ident else None
            continue
        if (m := _JETPACK.search(stripped)) is not None:
            facts["jetpack"], facts["l4t"] = m.group("jetpack"), m.group("l4t")
            if (mm := _MODEL_LINE.match(stripped.lstrip("-* ").removeprefix("Model:").strip())) is not None:
                facts["model"] = mm.group("model").strip() or facts["model"]
            continue
        if stripped.endswith(":") and ":" not in stripped[:-1]:  # `Libraries:` (4.x) or ` - Libraries:` (3.x)
            section = stripped[:-1].lstrip("-* ").strip() or section
            continue
        if (m := re.match(r"^[-*]\s+(NVIDIA Jetson[^:]*)$", stripped)) is not None:  # 3.x: ` - NVIDIA Jetson ...`
            facts["model"] = m.group(1).strip()
            continue
        m = _ITEM.match(line)
        if m is None:
            continue
        key, value = m.group("key").strip(), m.group("value").strip()
        if key.lower().startswith("serial"):
            continue
        if not line[:1].isspace() and not line.lstrip().startswith(("-", "*")):
            section = "General"
        sections.setdefault(section, {})[key] = value
    general = {k.lower(): v for s in sections.values() for k, v in s.items()}
    facts["model"] = facts["model"] or general.get("model") or general.get("module")
    facts["l4t"] = facts["l4t"] or general.get("l4t")
    facts["jetpack"] = facts["jetpack"] or general.get("jetpack")
    libraries = dict(sections.get("Libraries", {}))
    if not (facts["model"] or facts["l4t"] or facts["jetpack"] or libraries):
        raise ParseError("no jetson_release facts found (Model, L4T, Jetpack or Libraries)",
                         hint="pass the output of `jetson_release` (jetson-stats)")
    return JetsonRelease(libraries=libraries, sections=sections, **facts)
