"""The result types every profiler parser returns, and the JSON shape `edgekit parse --json` prints.

A parser turns one tool's raw output into a `ProfileParse`:
- `layers`: one `LayerTiming` per profiler row, in the tool's execution order (never re-sorted, so a report can
  show the pipeline as it ran). `share` is a fraction of the summed layer time (0..1), as the tool computed it
  where it printed one; `mean_ms` is None where the tool gives only a relative estimate (Core ML).
- `runs`: one `RunStats` per benchmark run found in the file (a file can hold many: benchmark_model loops,
  concatenated trtexec logs, one ONNX Runtime `model_run` event per inference).
- `summary`: the file-level numbers; always has `iterations` and `total_ms` (None where the file does not say).
- `meta`: what the tool said about itself and the device (versions, device name, parameters, warnings).

Frozen dataclasses so a parse is a value: parsers never share or mutate state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence


@dataclass(frozen=True)
class LayerTiming:
    name: str  # the tool's own row name, untouched (ONNX Runtime: the graph node name, for joining later)
    op_type: str | None  # op / node / layer type as the tool reports it
    mean_ms: float | None  # mean time per inference
    share: float | None  # fraction (0..1) of the summed layer time
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        core = {"name": self.name, "op_type": self.op_type, "mean_ms": self.mean_ms, "share": self.share}
        return _merge(core, self.extra)


@dataclass(frozen=True)
class RunStats:
    mean_ms: float | None
    count: int | None = None  # timed iterations in this run
    min_ms: float | None = None
    max_ms: float | None = None
    median_ms: float | None = None
    std_ms: float | None = None
    percentiles_ms: Mapping[str, float] = field(default_factory=dict, hash=False)  # "90" -> ms, "99.9" -> ms
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        core = {"mean_ms": self.mean_ms, "count": self.count, "min_ms": self.min_ms, "max_ms": self.max_ms,
                "median_ms": self.median_ms, "std_ms": self.std_ms, "percentiles_ms": dict(self.percentiles_ms)}
        return _merge(core, self.extra)

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float], extra: Mapping[str, Any] | None = None) -> RunStats:
        """Statistics of raw per-inference samples (percentiles by linear interpolation, like numpy's default)."""
        if not samples_ms:
            return cls(mean_ms=None, count=0, extra=dict(extra or {}))
        values = sorted(float(v) for v in samples_ms)
        n = len(values)
        mean = math.fsum(values) / n
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / n)
        pct = {str(p): percentile(values, p) for p in (90, 95, 99)}
        return cls(mean_ms=mean, count=n, min_ms=values[0], max_ms=values[-1], median_ms=percentile(values, 50),
                   std_ms=std, percentiles_ms=pct, extra=dict(extra or {}))


@dataclass(frozen=True)
class ProfileParse:
    layers: tuple[LayerTiming, ...]
    runs: tuple[RunStats, ...]
    summary: Mapping[str, Any] = field(hash=False)
    meta: Mapping[str, Any] = field(hash=False)

    def to_dict(self) -> dict[str, Any]:
        summary = {"iterations": None, "total_ms": None, **_plain(dict(self.summary))}
        return {"layers": [layer.to_dict() for layer in self.layers], "runs": [run.to_dict() for run in self.runs],
                "summary": summary, "meta": _plain(dict(self.meta))}


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile of already sorted values (p in 0..100)."""
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    pos = (len(sorted_values) - 1) * p / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def share_from_percent(percent: float) -> float:
    """A tool's percentage as a fraction; rounded so 0.68% reads 0.0068, not 0.0068000000000000005."""
    return round(percent / 100.0, 9)


def shares_from_means(means: Iterable[float | None]) -> list[float | None]:
    """Fraction of the total for each mean, for tools that print no percentage of their own."""
    values = list(means)
    total = math.fsum(v for v in values if v is not None)
    return [None if v is None or total <= 0 else v / total for v in values]


def _merge(core: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Core fields first and never overridden; the parser's extra fields after them."""
    out = _plain(core)
    out.update({k: v for k, v in _plain(dict(extra)).items() if k not in core})
    return out


def _plain(value: Any) -> Any:
    """Make a value JSON-ready: tuples -> lists, mappings -> dicts, non-finite floats -> None (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value
