"""Several runs side by side: the survey-style table (model, params, GFLOPs, FP32 and INT8 encoder latency,
their ratio, decoder latency, INT8 fidelity) as compare.json, compare.md and compare.html.

Rows keep None for what a run did not measure; the md and html print it as "—".
"""
from __future__ import annotations

from edgekit.report import breakdown as bd
from edgekit.report import render_md as md
from edgekit.report import schema
from edgekit.report.charts import Bar, bar_chart, esc
from edgekit.report.render_html import PRECISION_CLASS, page, table

COMPARE_SCHEMA = "edgekit.compare/1"
COLUMNS = [  # (row key, header, formatter)
    ("run", "run", str), ("model", "model", str), ("format", "format", str), ("target", "target", str),
    ("params", "params", bd.count),
    ("encoder_gflops", "GFLOPs", bd.gflops), ("fp32_encoder_ms", "FP32 encoder ms", bd.ms),
    ("int8_encoder_ms", "INT8 encoder ms", bd.ms), ("speedup", "FP32/INT8", bd.ratio),
    ("decoder_ms", "decoder ms", bd.ms), ("embedding_sqnr_db", "embedding SQNR", bd.db), ("mask_iou", "mask IoU", bd.num),
]
TEXT_COLUMNS = {"run", "model", "format", "target"}
LATENCY_ONLY_MARK = "†"


def _mean(m: dict | None) -> float | None:
    return m["latency_ms"]["mean"] if m else None


def _decoder(report: dict) -> dict | None:
    """The FP32 decoder (comparable across rows), else whatever decoder precision the run measured."""
    for precision in ("fp32", *schema.PRECISIONS):
        m = schema.find(report, "decoder", precision)
        if m is not None:
            return m
    return None


def run_labels(names: list[str]) -> list[str]:
    """Short, unique labels: the folder name, with #2, #3 ... appended when folder names repeat."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


def compare_rows(runs: list[tuple[str, dict]]) -> list[dict]:
    """(label, validated report) pairs -> one flat row per run."""
    rows = []
    for label, report in runs:
        fid, dec = report["fidelity"], _decoder(report)
        # the run's own reduced precision fills the INT8 columns (fp16, int8-dynamic too: the column says which)
        low = report["precision"] if report["precision"] != "fp32" else "int8"
        rows.append({
            "run": label, "model": report["model"], "format": report["format"], "precision": report["precision"],
            "target": report["target"]["name"],
            "device": report["target"]["device"]["model"], "weights": report["weights"]["kind"],
            "latency_only": schema.is_latency_only(report),
            "params": report["variant"]["params"], "encoder_gflops": report["variant"]["encoder_gflops"],
            "fp32_encoder_ms": _mean(schema.find(report, "encoder", "fp32")),
            "int8_encoder_ms": _mean(schema.find(report, "encoder", low)), "low_precision": low,
            "speedup": schema.speedup(report, "encoder", fast=low),
            "decoder_ms": _mean(dec), "decoder_precision": dec["precision"] if dec else None,
            "embedding_sqnr_db": fid["embedding_sqnr_db"] if fid else None,
            "mask_iou": fid["mask_iou"] if fid else None,
            "fidelity_passed": fid["passed"] if fid else None,
            "runtime": f"{report['runtime']['name']} {report['runtime']['version']}",
            "threads": report["runtime"]["threads"], "created": report["created"],
        })
    return rows


def compare_json(rows: list[dict]) -> dict:
    return {"schema": COMPARE_SCHEMA, "columns": [key for key, _, _ in COLUMNS], "runs": rows}


def row_cells(row: dict, text: "callable") -> list[str]:
    cells = []
    for key, _, fmt in COLUMNS:
        value = row[key]
        cell = text(fmt(value)) if key in TEXT_COLUMNS else fmt(value)
        if key == "model" and row["latency_only"]:
            cell += LATENCY_ONLY_MARK
        if key == "decoder_ms" and value is not None and row["decoder_precision"] not in (None, "fp32"):
            cell += f" ({row['decoder_precision']})"
        if key == "int8_encoder_ms" and value is not None and row.get("low_precision", "int8") != "int8":
            cell += f" ({row['low_precision']})"
        cells.append(cell)
    return cells


def _footnotes(rows: list[dict]) -> list[str]:
    notes = ["Latency in ms (mean over the timed runs); FP32/INT8 is the encoder speed-up; decoder at FP32 unless "
             "marked; SQNR and IoU compare the INT8 run with FP32."]
    if any(r["latency_only"] for r in rows):
        notes.append(f"{LATENCY_ONLY_MARK} latency-only: synthetic weights, outputs meaningless (its fidelity "
                     "figures say nothing about accuracy).")
    return notes


def render_compare_md(rows: list[dict]) -> str:
    numeric = {i for i, (key, _, _) in enumerate(COLUMNS) if key not in TEXT_COLUMNS}
    table_md = md.table([h for _, h, _ in COLUMNS], [row_cells(r, md.text) for r in rows], right=numeric)
    devices = md.table(["run", "device", "runtime", "threads", "weights", "created"],
                       [[md.text(r["run"]), md.text(r["device"]), md.text(r["runtime"]), str(r["threads"]),
                         md.text(r["weights"]), md.text(r["created"])] for r in rows])
    notes = "\n".join(f"- {md.text(n)}" for n in _footnotes(rows))
    return f"# edgekit: {len(rows)} runs compared\n\n{table_md}\n\n{notes}\n\n## Where each ran\n\n{devices}\n"


def render_compare_html(rows: list[dict]) -> str:
    numeric = {i for i, (key, _, _) in enumerate(COLUMNS) if key not in TEXT_COLUMNS}
    main = table([h for _, h, _ in COLUMNS], [row_cells(r, esc) for r in rows], numeric, "compare")
    main = f'<div class="scroll">{main}</div>'
    bars = []
    for r in rows:
        for precision in ("fp32", "int8"):
            value = r[f"{precision}_encoder_ms"]
            if value is not None:
                bars.append(Bar(f"{r['run']} · {precision}", value, f"{bd.ms(value)} ms", PRECISION_CLASS[precision]))
    devices = table(["run", "device", "runtime", "threads", "weights", "created"],
                    [[esc(r["run"]), esc(r["device"]), esc(r["runtime"]), str(r["threads"]), esc(r["weights"]),
                      esc(r["created"])] for r in rows], {3})
    notes = "".join(f"<p class=\"sub\">{esc(n)}</p>" for n in _footnotes(rows))
    body = "".join([f"<h1>edgekit: {len(rows)} runs compared</h1>", main, notes,
                    "<h2>Encoder mean latency, FP32 vs INT8</h2>", bar_chart(bars, "encoder mean latency per run"),
                    "<h2>Where each ran</h2>", devices])
    return page(f"edgekit: {len(rows)} runs compared", body, COMPARE_SCHEMA)
