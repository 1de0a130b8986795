"""What a Jetson says about itself (pure: command outputs in, the report's `jetson` block and warnings out).

- `/etc/nv_tegra_release`: `# R36 (release), REVISION: 4.3, ...` -> L4T 36.4.3 (JetPack 6; R35 is JetPack 5);
- `nvpmodel -q`: `NV Power Mode: MAXN` then the mode id; the maximum is mode 0 on every Orin module (named MAXN
  on AGX Orin and Orin NX, 15W / 25W / MAXN_SUPER on Orin Nano);
- `jetson_clocks --show`: per CPU and for the GPU `MinFreq=... MaxFreq=... CurrentFreq=...`; `jetson_clocks`
  pins the minimum to the maximum, so locked clocks read Min == Max (it needs root: unreadable is "unknown");
- the TensorRT package version (`dpkg-query -W tensorrt`: `10.3.0.30-1+cuda12.5`) and CUDA's version.json.
"""
from __future__ import annotations

import json
import re
from typing import Any, Mapping

JETPACK = {36: "6", 35: "5", 34: "5 (developer preview)", 32: "4"}
_RELEASE = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)")
_MODE = re.compile(r"NV Power Mode:\s*(\S[^\n]*)")
_FREQS = re.compile(r"^(?P<unit>cpu\d+|GPU|EMC)\b.*?MinFreq=(?P<min>\d+)\s+MaxFreq=(?P<max>\d+)"
                    r"(?:\s+CurrentFreq=(?P<cur>\d+))?", re.M)


def l4t_release(text: str) -> dict[str, Any] | None:
    m = _RELEASE.search(text or "")
    if m is None:
        return None
    major = int(m.group(1))
    return {"l4t": f"{major}.{m.group(2)}", "jetpack": JETPACK.get(major)}


def power_mode(text: str) -> dict[str, Any] | None:
    m = _MODE.search(text or "")
    if m is None:
        return None
    name = m.group(1).strip()
    after = (text or "")[m.end():].split()
    mode_id = int(after[0]) if after and after[0].isdigit() else None
    return {"name": name, "id": mode_id, "max": mode_id == 0 or "MAXN" in name.upper()}


def clocks(text: str) -> dict[str, Any] | None:
    """{"locked": bool, "gpu_mhz": current GPU clock, "units": {unit: {min, max, cur} MHz}} or None."""
    units = {}
    for m in _FREQS.finditer(text or ""):
        units[m.group("unit")] = {k: (int(m.group(k)) / (1e6 if m.group("unit") in ("GPU", "EMC") else 1e3))
                                  if m.group(k) else None for k in ("min", "max", "cur")}
    if not units:
        return None
    pinned = [u for name, u in units.items() if name != "EMC"]
    gpu = units.get("GPU") or {}
    return {"locked": all(u["min"] == u["max"] for u in pinned), "gpu_mhz": gpu.get("cur"), "units": units}


def cuda_version(text: str) -> str | None:
    try:
        return str(json.loads(text)["cuda"]["version"])
    except (ValueError, KeyError, TypeError):
        m = re.search(r"CUDA Version\s+([\d.]+)", text or "")
        return m.group(1) if m else None


def package_version(text: str) -> str | None:
    value = (text or "").strip()
    return value.split("-")[0].split("+")[0] or None if value else None


def jetson_block(raw: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """(the report's device.jetson block, warnings) from a Jetson's fact texts (by profile key)."""
    def text(key: str) -> str:
        return (raw.get(key) or "").replace("\x00", "").strip()

    release = l4t_release(text("l4t_release")) or {}
    mode = power_mode(text("power_mode"))
    clock = clocks(text("clocks"))
    block = {"module": text("model") or None, "l4t": release.get("l4t"), "jetpack": release.get("jetpack"),
             "tensorrt": package_version(text("tensorrt")), "cuda": cuda_version(text("cuda")),
             "power_mode": mode, "clocks_locked": clock["locked"] if clock else None,
             "gpu_mhz": clock["gpu_mhz"] if clock else None, "trtexec": text("trtexec") or None}
    warnings = []
    if block["module"] is None:
        warnings.append("cannot read the module's name (/proc/device-tree/model; some containers hide it)"
                        + (f": deploying anyway, trtexec is at {block['trtexec']}" if block["trtexec"] else ""))
    if mode is None:
        warnings.append("power mode unknown (`nvpmodel -q` gave nothing): latencies may not be the board's best")
    elif not mode["max"]:
        warnings.append(f"power mode {mode['name']} (id {mode['id']}) is not the maximum: "
                        "`sudo nvpmodel -m 0` for the board's best latency")
    if clock is None:
        warnings.append("clocks unknown (`jetson_clocks --show` needs root): DVFS may make latencies drift")
    elif not clock["locked"]:
        warnings.append("clocks are not locked (jetson_clocks is off): `sudo jetson_clocks` keeps DVFS from making "
                        "latencies drift")
    return block, warnings
