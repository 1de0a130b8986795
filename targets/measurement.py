"""What every runtime backend returns: one artifact measured on one device (raw samples, per-layer rows, notes)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgekit.targets.timings import RunStats


@dataclass
class Measurement:
    """One artifact measured on one device."""

    artifact: str
    latency: RunStats
    raw_ms: list[float]
    warmup: int
    layers: list[dict] = field(default_factory=list)  # LayerTiming dicts + "module"
    runtime: dict = field(default_factory=dict)
    load_ms: float | None = None
    files: dict[str, Path] = field(default_factory=dict)  # raw outputs fetched home
    profiled_run_ms: float | None = None  # the profiler's own mean run span, over the runs the layers came from
    layers_note: str | None = None  # why `layers` is empty or partial (no per-op profiler on the device, ...)
    power: dict | None = None  # power and energy while it ran (Jetson: device/jetson_power.py), where measured

    def coverage(self) -> dict[str, float]:
        total = sum(row["mean_ms"] or 0.0 for row in self.layers)
        attributed = sum(row["mean_ms"] or 0.0 for row in self.layers if row.get("module"))
        mean = self.latency.mean_ms or 0.0
        out = {"layer_sum_ms": total, "attributed_share": attributed / total if total else 0.0,
               "sum_vs_mean": total / mean if mean else 0.0}
        # Node events nest inside their run's span, so this ratio is at most 1 whatever the machine's load; well
        # below 1 means time the profile did not put on any layer. sum_vs_mean compares against separately timed
        # runs and is only indicative on a busy machine.
        if self.profiled_run_ms:
            out["sum_vs_profiled_run"] = total / self.profiled_run_ms
        return out
