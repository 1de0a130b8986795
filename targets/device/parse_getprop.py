"""Android system properties -> AndroidProps, from `adb shell getprop` or from a `/system/build.prop` file.

getprop prints `[key]: [value]` per line. Values may be empty (`[]`) or hold spaces, colons and brackets
(`[Tue Jan  6 22:40:00 UTC 2015]`), so the value is everything between the first `]: [` and the LAST `]`. A
value with a newline continues on the next lines until one ends in `]`. Lines are stripped first: captures
relayed through other tools are indented (flutter's verbose log indents by 10 spaces).

build.prop is a different format: `key=value`, `#` comments, blank lines; `ro.product.model=Pixel`.

The well-known facts (model, Android version, SDK, ABI, SoC) are lifted out of the property map. Serial-number
properties (`ro.serialno`, `ro.boot.serialno`) are dropped: reports get shared.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from edgekit.errors import ParseError
from edgekit.targets.textparse import split_lines

_GETPROP = re.compile(r"^\[([^\]]+)\]: \[(.*)$")
_FACTS = {"model": ("ro.product.model", "ro.product.vendor.model"),
          "manufacturer": ("ro.product.manufacturer", "ro.product.vendor.manufacturer"),
          "brand": ("ro.product.brand",), "device": ("ro.product.device", "ro.build.product"),
          "android_version": ("ro.build.version.release",), "sdk": ("ro.build.version.sdk",),
          "abi": ("ro.product.cpu.abi",), "abi_list": ("ro.product.cpu.abilist",),
          "soc": ("ro.soc.model", "ro.board.platform", "ro.product.board"),
          "hardware": ("ro.hardware", "ro.boot.hardware"), "build": ("ro.build.display.id", "ro.build.id"),
          "build_type": ("ro.build.type",)}


@dataclass(frozen=True)
class AndroidProps:
    properties: dict[str, str]
    facts: dict[str, Any] = field(default_factory=dict)
    source: str = "getprop"

    def to_dict(self) -> dict[str, Any]:
        return {**self.facts, "properties": self.properties, "source": self.source}


def parse_getprop(text: str) -> AndroidProps:
    """Parse `adb shell getprop` output."""
    props: dict[str, str] = {}
    pending: tuple[str, list[str]] | None = None
    for line in split_lines(text):
        stripped = line.strip()
        if pending is not None:  # a multi-line value runs to the line that closes its bracket
            pending[1].append(line.rstrip())
            if stripped.endswith("]"):
                props[pending[0]] = "\n".join(pending[1])[:-1]
                pending = None
            continue
        m = _GETPROP.match(stripped)
        if m is None:
            continue
        key, rest = m.group(1), m.group(2)
        if rest.endswith("]"):
            props[key] = rest[:-1]
        else:
            pending = (key, [rest])
    if pending is not None:
        props[pending[0]] = "\n".join(pending[1])  # cut off mid-value: keep what there is
    return _result(props, "getprop")


def parse_build_prop(text: str) -> AndroidProps:
    """Parse a /system/build.prop (or vendor/product build.prop) file."""
    props: dict[str, str] = {}
    for line in split_lines(text):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        key, _, value = stripped.partition("=")
        if key.strip() and not any(c.isspace() for c in key.strip()):
            props[key.strip()] = value.strip()
    return _result(props, "build.prop")


def _result(props: dict[str, str], source: str) -> AndroidProps:
    props = {k: v for k, v in props.items() if "serialno" not in k.lower()}
    if not props:
        raise ParseError(f"no {source} properties found",
                         hint="`adb shell getprop` prints `[key]: [value]`; build.prop holds `key=value`")
    facts: dict[str, Any] = {}
    for name, keys in _FACTS.items():
        facts[name] = next((props[k] for k in keys if props.get(k)), None)
    if facts["sdk"] is not None and re.fullmatch(r"\d{1,4}", facts["sdk"]):
        facts["sdk"] = int(facts["sdk"])
    return AndroidProps(properties=props, facts=facts, source=source)
