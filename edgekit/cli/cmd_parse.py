"""`edgekit parse KIND FILE`: read a device tool's raw output (captured by hand or fetched by a target) and print
it as a table, or as edgekit's JSON with --json, so a profile taken on any device becomes an edgekit report."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from edgekit.errors import InputError
from edgekit.targets.parsers import PARSERS
from edgekit.targets.parsers import parse as run_parser


@click.command("parse")
@click.argument("kind", type=click.Choice(list(PARSERS)), metavar="KIND")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True), metavar="FILE")
@click.option("--json", "as_json", is_flag=True, help="Print the parse as JSON (layers, runs, summary, meta).")
@click.option("--top", type=click.IntRange(min=1), default=None, metavar="N",
              help="Show only the N slowest layers (default: every layer, in execution order).")
def parse(kind: str, file: Path, as_json: bool, top: int | None) -> None:
    """Parse FILE, the raw output of a device tool, as KIND.

    \b
    KIND is one of:
      trtexec, trtexec-profile, trtexec-layerinfo, trtexec-times   TensorRT trtexec log and its JSON exports
      benchmark-model        TFLite / LiteRT benchmark_model output
      ort-profile            ONNX Runtime profiling JSON;  ort-perf-test: onnxruntime_perf_test output
      coreml-plan            Core ML MLComputePlan / CoreMLInspect / E5RT dumps
      tegrastats, jetson-release, cpuinfo, meminfo, vcgencmd, getprop, build-prop   device facts
    FILE may be `-` for standard input.

    \b
    Examples:
      trtexec --loadEngine=enc.plan --dumpProfile --exportProfile=prof.json > trtexec.log
      edgekit parse trtexec trtexec.log
      edgekit parse trtexec-profile prof.json --json > layers.json
      adb shell /data/local/tmp/benchmark_model --graph=enc.tflite --enable_op_profiling=true > bm.txt
      edgekit parse benchmark-model bm.txt --top 10
      tegrastats --interval 1000 --logfile tegra.log;  edgekit parse tegrastats tegra.log
    """
    text = _read(file)
    result = run_parser(kind, text)
    data = result.to_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    elif PARSERS[kind].profiler:
        click.echo(_profile_text(kind, data, top))
    elif kind == "tegrastats":
        click.echo(_tegrastats_text(data))
    else:
        click.echo("\n".join(_facts_lines(data)))


def _read(file: Path) -> str:
    """The file as text: UTF-8 (or UTF-16 with a BOM, as PowerShell redirection writes); bad bytes replaced."""
    if str(file) == "-":
        raw = sys.stdin.buffer.read()
    else:
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {file}: {exc.strerror or exc}",
                             hint="check the path and permissions") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", errors="replace")
    return raw.decode("utf-8", errors="replace")


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def _profile_text(kind: str, data: dict[str, Any], top: int | None) -> str:
    meta, summary = data["meta"], data["summary"]
    lines = [f"{kind}: " + ", ".join(f"{k}={v}" for k, v in _headline(meta).items())]
    if data["runs"]:
        lines.append(f"\nruns ({len(data['runs'])}):")
        lines.append(f"  {'#':>3} {'mean ms':>10} {'min ms':>10} {'max ms':>10} {'p50 ms':>10} {'count':>7}  note")
        for k, run in enumerate(data["runs"]):
            note = run.get("graph") or run.get("status") or ""
            lines.append(f"  {k:>3} {_ms(run['mean_ms']):>10} {_ms(run['min_ms']):>10} {_ms(run['max_ms']):>10} "
                         f"{_ms(run['median_ms']):>10} {run['count'] if run['count'] is not None else '-':>7}  {note}")
    layers = list(enumerate(data["layers"]))
    if layers:
        if top is not None:
            layers = sorted(layers, key=lambda kv: -(kv[1]["mean_ms"] or kv[1]["share"] or 0.0))[:top]
        title = f"the {len(layers)} slowest of {len(data['layers'])}" if top else f"{len(layers)}, in execution order"
        lines.append(f"\nlayers ({title}):")
        lines.append(f"  {'#':>4} {'mean ms':>10} {'share':>7}  {'op type':<24} name")
        for k, layer in layers:
            share = "-" if layer["share"] is None else f"{layer['share'] * 100:.1f}%"
            lines.append(f"  {k:>4} {_ms(layer['mean_ms']):>10} {share:>7}  {str(layer['op_type'] or '-')[:24]:<24} "
                         f"{layer['name']}")
    flat = {k: v for k, v in summary.items() if not isinstance(v, (dict, list))}
    lines.append("\nsummary: " + ", ".join(f"{k}={v}" for k, v in flat.items()))
    return "\n".join(lines)


def _headline(meta: dict[str, Any]) -> dict[str, Any]:
    keys = ("tool", "trt_version", "status", "flavor", "format", "form", "export")
    out = {k: meta[k] for k in keys if meta.get(k) is not None}
    device = meta.get("device")
    if isinstance(device, dict) and device.get("name"):
        out["device"] = device["name"]
    return out


def _tegrastats_text(data: dict[str, Any]) -> str:
    samples = data["samples"]
    lines = [f"tegrastats: {len(samples)} samples ({data['skipped_lines']} other lines skipped)"]
    ram = [s["ram_used_mb"] for s in samples if s["ram_used_mb"] is not None]
    if ram:
        lines.append(f"  RAM used MB: min {min(ram):.0f}, max {max(ram):.0f} of {samples[-1]['ram_total_mb']:.0f}")
    loads = [c["load_pct"] for s in samples for c in s["cpus"] if c["load_pct"] is not None]
    if loads:
        lines.append(f"  CPU load %: mean {sum(loads) / len(loads):.1f} over online cores")
    temps: dict[str, list[float]] = {}
    power: dict[str, list[int]] = {}
    for s in samples:
        for name, value in s["temps_c"].items():
            temps.setdefault(name, []).append(value)
        for rail, value in s["power_mw"].items():
            power.setdefault(rail, []).append(value["cur"])
    for name, values in temps.items():
        lines.append(f"  temp {name}: max {max(values):.1f} C, last {values[-1]:.1f} C")
    for rail, values in power.items():
        lines.append(f"  power {rail}: mean {sum(values) / len(values):.0f} mW, max {max(values)} mW")
    return "\n".join(lines)


def _facts_lines(data: Any, prefix: str = "") -> list[str]:
    """Nested facts as `key: value` lines (dotted keys for nesting; long lists counted, not printed)."""
    lines: list[str] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and len(value) > 20:
            lines.append(f"{name}: [{len(value)} entries; see --json]")
        elif isinstance(value, dict):
            lines.extend(_facts_lines(value, f"{name}.") if value else [f"{name}: {{}}"])
        elif isinstance(value, list) and len(value) > 8:
            lines.append(f"{name}: [{len(value)} items]")
        elif isinstance(value, (list, dict)):
            lines.append(f"{name}: {json.dumps(value, ensure_ascii=False)}")
        else:
            lines.append(f"{name}: {value if value is not None else '-'}")
    return lines
