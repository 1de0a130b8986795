#!/usr/bin/env python3
"""Which registered variants convert to a format, at which precisions: every variant's encoder and decoder made
through the pipeline (validated against torch on a real photograph, static INT8 calibrated on real ones), each
variant in its own process so that one that runs out of memory cannot take the others with it.

    python3 tools/format_survey.py --format litert --images ../shared/images --out survey-litert.json
    python3 tools/format_survey.py --format litert --images ../shared/images --out s.json --models mobilesam,tinysam
    python3 tools/format_survey.py --format coreml --precisions fp16,int8 --images ../shared/images --out coreml.json

The results are resumable (variants already in --out are skipped unless --again), written after every variant, and
summarised as a Markdown table (--out with .md). `edgekit models` shows what the surveys found (formats/*.py).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PARTS = ("encoder", "decoder")


def survey_one(model: str, fmt_name: str, images: Path, store: Path, calib_count: int,
               precisions: tuple[str, ...] = ()) -> dict:
    """Make every precision of both parts of `model`; one dict per (part, precision): ok, seconds, size, error."""
    from edgekit.errors import EdgekitError
    from edgekit.formats import get_format
    from edgekit.pipeline.artifacts import BuildSettings, ensure_artifact
    from edgekit.pipeline.context import ModelContext
    from edgekit.quant.calibration import list_images, split
    from edgekit.quant.presets import PRESETS
    from edgekit.store import Store, path_bytes
    from edgekit.variants.registry import get_spec

    fmt = get_format(fmt_name)
    spec = get_spec(model)
    calib, held = split(list_images(images), calib_count, 1)
    settings = BuildSettings(validation=held[:1], calib=calib, preset=PRESETS["arm"])
    ctx = ModelContext(spec=spec, checkpoint=None, store=Store(store))
    rows: dict[str, dict] = {}
    for precision in precisions or fmt.precisions:
        for part in PARTS:
            key = f"{part}.{precision}"
            parent = fmt.derives_from(precision)
            if parent is not None and not rows.get(f"{part}.{parent}", {}).get("ok"):
                rows[key] = {"ok": False, "error": f"not tried: its {parent} artifact did not convert"}
                _emit(key, rows[key])
                continue
            started = time.perf_counter()
            try:
                artifact = ensure_artifact(ctx, fmt, part, precision, settings)
            except EdgekitError as exc:
                rows[key] = {"ok": False, "seconds": round(time.perf_counter() - started, 1),
                             "error": exc.message.splitlines()[0][:300] + (f" [{exc.message.splitlines()[1][:200]}]"
                                                                           if "\n" in exc.message else "")}
                _emit(key, rows[key])
                continue
            info = artifact.info
            row = {"ok": True, "seconds": round(time.perf_counter() - started, 1),
                   "mb": round(sum(path_bytes(p) for p in artifact.files()) / 2**20, 1)}
            if "validation" in info:
                row["max_abs"] = info["validation"]["max_abs"]
            if "ane_warnings" in info:  # Core ML: what the Neural Engine is not known to run
                row["ane_warnings"] = info["ane_warnings"]
            rows[key] = row
            _emit(key, row)
    return rows


def _emit(key: str, row: dict) -> None:
    """One finished row, printed at once: a child killed later (out of memory) keeps what it made."""
    print("ROW " + json.dumps({"key": key, "row": row}), flush=True)


def _child(args: argparse.Namespace) -> None:
    rows = survey_one(args.child, args.format, args.images, args.store, args.calib_count, _precisions(args))
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print("SURVEY " + json.dumps({"rows": rows, "peak_gb": round(peak_gb, 1)}))


def _precisions(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(p for p in (args.precisions or "").split(",") if p)


def _markdown(fmt: str, results: dict, precisions: tuple[str, ...] = ()) -> str:
    from edgekit.formats import get_format

    precisions = precisions or get_format(fmt).precisions
    lines = [f"| variant | {' | '.join(precisions)} | peak GB | minutes |", "|---|" + "---|" * (len(precisions) + 2)]
    for model, res in results.items():
        cells = []
        for precision in precisions:
            parts = [res.get("rows", {}).get(f"{p}.{precision}", {}) for p in PARTS]
            if all(r.get("ok") for r in parts):
                cells.append(f"yes ({sum(r['mb'] for r in parts):.0f} MB)")
            else:
                failed = next((f"{p}: {r.get('error', 'not run')}" for p, r in zip(PARTS, parts) if not r.get("ok")), "")
                cells.append("no — " + failed.replace("|", "/")[:120])
        if res.get("error"):  # older results: a child that died printed nothing
            cells = [res["error"].replace("|", "/")[:120]] * len(precisions)
        lines.append(f"| {model} | {' | '.join(cells)} | {res.get('peak_gb', '—')} | {res.get('minutes', '—')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", default="litert")
    parser.add_argument("--images", type=Path, required=True, help="real photographs: 1 validates, --calib-count calibrate")
    parser.add_argument("--out", type=Path, required=True, help="results .json (a .md table is written beside it)")
    parser.add_argument("--models", default=None, help="comma-separated variants (default: every registered one)")
    parser.add_argument("--calib-count", type=int, default=4)
    parser.add_argument("--precisions", default=None, help="comma-separated (default: every precision of the format)")
    parser.add_argument("--store", type=Path, default=None, help="artifact store (default: a temporary one per variant)")
    parser.add_argument("--again", action="store_true", help="survey variants already in --out again")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    from edgekit.formats import get_format
    from edgekit.variants.registry import REGISTRY

    models = args.models.split(",") if args.models else list(REGISTRY)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for model in models:
        if model in results and not args.again:
            continue
        with tempfile.TemporaryDirectory(prefix="edgekit-survey-") as tmp:
            store = args.store or Path(tmp) / "store"
            started = time.monotonic()
            print(f"[survey] {model} ...", file=sys.stderr, flush=True)
            proc = subprocess.run([sys.executable, __file__, "--child", model, "--format", args.format, "--images",
                                   str(args.images), "--out", str(args.out), "--calib-count", str(args.calib_count),
                                   "--store", str(store), *(["--precisions", args.precisions] if args.precisions else [])],
                                  capture_output=True, text=True,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
        minutes = round((time.monotonic() - started) / 60, 1)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("SURVEY ")), None)
        if line is not None:
            results[model] = {**json.loads(line[len("SURVEY "):]), "minutes": minutes}
        else:
            killed = proc.returncode in (-9, 137)
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
            done = [json.loads(ln[len("ROW "):]) for ln in proc.stdout.splitlines() if ln.startswith("ROW ")]
            error = "killed (out of memory)" if killed else f"exit {proc.returncode}: {tail[0][:200]}"
            rows = {d["key"]: d["row"] for d in done}
            # the row being made when it died says so (rows are made precision by precision, part by part)
            keys = [f"{part}.{precision}" for precision in _precisions(args) or get_format(args.format).precisions
                    for part in PARTS]
            dying = next((key for key in keys if key not in rows), None)
            if dying is not None:
                rows[dying] = {"ok": False, "error": error}
            results[model] = {"rows": rows, "error_after": error, "minutes": minutes}
        args.out.write_text(json.dumps(results, indent=1))
        args.out.with_suffix(".md").write_text(_markdown(args.format, results, _precisions(args)))
        print(f"[survey] {model}: {minutes} min", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
