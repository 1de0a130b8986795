"""Power and energy of a run on a Jetson (pure: the samples the runner recorded in, the report's block out).

The runner samples twice, at 100 ms: idle for a moment before the run, then throughout it, with `tegrastats`
(parse_tegrastats reads its lines) or, where tegrastats is missing, the INA3221 rails in sysfs (one JSON object a
line: {"t", "mw": {rail: milliwatts}}). The run's samples are those where the GPU was busy (GR3D load above 0; all
of them when the source has no GPU load), so engine loading and the gaps around it do not dilute the mean.

Energy per inference = (busy mean - idle mean) of the board's input rail x the mean latency: the energy the
inference adds (mJ = mW x ms / 1000); the total, idle included, is given too. The board's input rail is VDD_IN
where the board has it, else the sum of the rails (said so). A temperature at or above THROTTLE_C, or the GPU
clock falling below CLOCK_DROP of its run maximum while busy, is flagged: both are readings, not guesses.
"""
from __future__ import annotations

import json
import math
from typing import Any

from edgekit.errors import ParseError

THROTTLE_C = 95.0  # Orin modules start software throttling just above this
CLOCK_DROP = 0.9
INPUT_RAIL = "VDD_IN"


def _tegrastats(text: str) -> list[dict[str, Any]]:
    from edgekit.targets.device.parse_tegrastats import parse_tegrastats

    out = []
    for s in parse_tegrastats(text).samples:
        gpu = s.freqs.get("GR3D") or {}
        emc = s.freqs.get("EMC") or {}
        mhz = gpu.get("mhz") if gpu.get("mhz") is not None else (max(gpu["mhz_per_gpc"]) if gpu.get("mhz_per_gpc") else None)
        out.append({"mw": {k: float(v["cur"]) for k, v in s.power_mw.items()}, "gpu_load": gpu.get("load_pct"),
                    "gpu_mhz": mhz, "emc_mhz": emc.get("mhz"), "temps": dict(s.temps_c)})
    return out


def _sysfs(text: str) -> list[dict[str, Any]]:
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            mw = {str(k): float(v) for k, v in item["mw"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ParseError(f"INA3221 sample line {lineno} is not {{\"t\", \"mw\": {{rail: mW}}}}", line=lineno) from None
        out.append({"mw": mw, "gpu_load": None, "gpu_mhz": None, "emc_mhz": None, "temps": {}})
    if not out:
        raise ParseError("no INA3221 samples", hint="the runner reads /sys/bus/i2c/drivers/ina3221/*/hwmon/*")
    return out


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _rails(samples: list[dict[str, Any]]) -> dict[str, float]:
    names = sorted({k for s in samples for k in s["mw"]})
    return {n: round(_mean([s["mw"][n] for s in samples if n in s["mw"]]) or 0.0, 1) for n in names}


def _input(rails: dict[str, float]) -> float | None:
    if not rails:
        return None
    return rails[INPUT_RAIL] if INPUT_RAIL in rails else math.fsum(rails.values())


def power_block(source: str, idle_text: str, run_text: str, latency_ms: float) -> dict[str, Any]:
    """The report's power block for one measured artifact."""
    read = _tegrastats if source == "tegrastats" else _sysfs
    idle, run = read(idle_text), read(run_text)
    busy = [s for s in run if s["gpu_load"] is None or s["gpu_load"] > 0]
    if not busy:
        raise ParseError("no power sample while the GPU was busy",
                         hint="the run was shorter than the 100 ms sampling interval: raise --min-seconds")
    idle_rails, busy_rails = _rails(idle), _rails(busy)
    idle_mw, busy_mw = _input(idle_rails), _input(busy_rails)
    active = None if idle_mw is None or busy_mw is None else max(busy_mw - idle_mw, 0.0)
    gpu_mhz = [s["gpu_mhz"] for s in busy if s["gpu_mhz"] is not None]
    emc_mhz = [s["emc_mhz"] for s in busy if s["emc_mhz"] is not None]
    temps: dict[str, float] = {}
    for s in busy:
        for name, value in s["temps"].items():
            temps[name] = max(temps.get(name, value), value)
    hot = sorted(name for name, value in temps.items() if value >= THROTTLE_C)
    drop = None
    if gpu_mhz and max(gpu_mhz) > 0:
        drop = round(1.0 - min(gpu_mhz) / max(gpu_mhz), 3)
    throttled = bool(hot) or (drop is not None and drop > 1.0 - CLOCK_DROP)
    reasons = [f"{', '.join(hot)} at or above {THROTTLE_C:g} C"] if hot else []
    if drop is not None and drop > 1.0 - CLOCK_DROP:
        reasons.append(f"GPU clock fell {drop:.0%} below its run maximum while busy")
    return {
        "source": source, "interval_ms": 100, "samples": {"idle": len(idle), "run": len(run), "busy": len(busy)},
        "input_rail": INPUT_RAIL if INPUT_RAIL in busy_rails else "sum of rails",
        "idle_mw": idle_rails, "busy_mw": busy_rails,
        "idle_input_mw": idle_mw, "busy_input_mw": busy_mw, "active_mw": None if active is None else round(active, 1),
        "energy_mj_per_inference": None if active is None else round(active * latency_ms / 1000.0, 3),
        "energy_total_mj_per_inference": None if busy_mw is None else round(busy_mw * latency_ms / 1000.0, 3),
        "gpu_load_pct": _mean([float(s["gpu_load"]) for s in busy if s["gpu_load"] is not None]),
        "gpu_mhz": _mean([float(v) for v in gpu_mhz]), "emc_mhz": _mean([float(v) for v in emc_mhz]),
        "temps_max_c": temps, "throttled": throttled, "throttle_reasons": reasons,
    }
