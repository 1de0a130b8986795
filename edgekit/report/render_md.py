"""report.md: the run as a readable page of tables (GitHub-flavoured Markdown), primary measurement first."""
from __future__ import annotations

from edgekit.report import breakdown as bd
from edgekit.report import schema

_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]|#"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;", "\n": " "})


def text(value: object) -> str:
    """Free text for a table cell: Markdown and HTML specials neutralised, one line."""
    return str(value).translate(_MD_SPECIAL)


def code(value: object) -> str:
    """An identifier (layer name, module path, hash) as a code span: shown verbatim, `|` escaped for the table
    parser (GFM splits cells before it reads code spans), a longer fence when the name holds backticks."""
    s = str(value).replace("\n", " ").replace("|", "\\|")
    fence = "``" if "`" in s else "`"
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def table(headers: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    align = ["---:" if i in right else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def latency_table(report: dict) -> str:
    """One row per part, the precisions side by side, and FP32/x speed-ups (the table the survey quotes)."""
    headers, rows = bd.latency_grid(report)
    note = "Times in ms (mean / median / 90th percentile over the timed runs)."
    return table(headers, rows, right=set(range(1, len(headers)))) + "\n\n" + note


def measurements_table(report: dict) -> str:
    rows = []
    for m in schema.measurements(report):
        lat, cov = m["latency_ms"], m["coverage"]
        rows.append([text(schema.label(m)), code(m["artifact"]), str(lat["runs"]), bd.ms(lat["mean"]),
                     bd.ms(lat["min"]), bd.ms(lat["max"]), bd.ms(lat["stdev"]), str(len(m["layers"])),
                     bd.num(cov["sum_vs_mean"], 2), bd.pct(cov["attributed_share"])])
    headers = ["measurement", "artifact", "runs", "mean", "min", "max", "stdev", "layers", "layer sum / mean",
               "attributed"]
    return table(headers, rows, right=set(range(2, 10)))


def fidelity_section(report: dict) -> str:
    fid = report["fidelity"]
    if fid is None:
        return "No quantized artifact in this run, so no fidelity check (FP32 is the reference)."
    verdict = {True: "**passed**", False: "**FAILED**", None: "not judged"}[fid["passed"]]
    rows = [["reference", text(fid["reference"])], ["images", str(fid["images"])],
            ["embedding SQNR", bd.db(fid["embedding_sqnr_db"])], ["mask logits SQNR", bd.db(fid.get("logits_sqnr_db"))],
            ["mask IoU", bd.num(fid["mask_iou"])], ["mask IoU (point prompt)", bd.num(fid.get("mask_iou_point"))],
            ["mask IoU (box prompt)", bd.num(fid.get("mask_iou_box"))], ["target mask IoU", bd.num(fid.get("target"))],
            ["verdict", verdict]] + ([["note", text(fid["note"])]] if fid.get("note") else [])
    out = table(["check", "value"], rows, right={1})
    if schema.is_latency_only(report):
        out = "> Synthetic weights: these figures only show the quantizer ran; they say nothing about accuracy.\n\n" + out
    return out


def quality_sections(report: dict, top_n: int) -> list[str]:
    from edgekit.report import quality as q

    out = []
    rows = q.sensitivity_rows(report, top_n)
    if rows:
        out += ["## INT8 sensitivity per layer", q.SENSITIVITY_NOTE,
                table(q.SENSITIVITY_HEADERS, [[text(c) if i not in (2, 4) else code(c) for i, c in enumerate(r)]
                                              for r in rows], right={0, 5, 6})]
    summary = q.mixed_summary(report)
    if summary:
        out += ["## Mixed precision", table(["", "value"], [[text(a), text(b)] for a, b in summary])]
        floats = q.float_rows(report)
        if floats:
            out += ["Kept in float:", table(["part", "node", "op", "module", "alone SQNR"],
                                            [[text(a), code(b), text(c), code(d), text(e)] for a, b, c, d, e in floats],
                                            right={4})]
    acc = q.accuracy_rows(report)
    if acc:
        out += ["## Accuracy against ground truth", q.accuracy_caption(report),
                table(["precision", "point mIoU", "box mIoU"], [[text(c) for c in r] for r in acc], right={1, 2})]
    return out


def layer_sections(m: dict, top_n: int, depth: int | None) -> str:
    layers = m["layers"]
    if not layers:
        return "No per-layer rows were recorded for this artifact" + (f": {m['layers_note']}" if m.get("layers_note") else ".")
    top = [[str(i + 1), code(r["name"]), code(r["op_type"]), code(r["module"] or bd.UNATTRIBUTED), bd.ms(r["mean_ms"]),
            bd.pct(r["share"])] for i, r in enumerate(bd.top_layers(layers, top_n))]
    mods = [[code(g.key), str(g.layers), bd.ms(g.ms), bd.pct(g.share)] for g in bd.limit(bd.by_module(layers, depth), 16)]
    ops = [[code(g.key), str(g.layers), bd.ms(g.ms), bd.pct(g.share)] for g in bd.limit(bd.by_op_type(layers), 12)]
    return "\n\n".join([
        f"**Top {len(top)} layers** (of {len(layers)})",
        table(["#", "layer", "op", "module", "mean ms", "share"], top, right={0, 4, 5}),
        "**Per module** (time summed by module path prefix)",
        table(["module", "layers", "ms", "share"], mods, right={1, 2, 3}),
        "**Per op type**",
        table(["op type", "layers", "ms", "share"], ops, right={1, 2, 3}),
    ])


def header(report: dict) -> str:
    v, t, rt, w = report["variant"], report["target"], report["runtime"], report["weights"]
    dev = t["device"]
    mem = f", {dev['memory_gb']:.1f} GB" if dev.get("memory_gb") is not None else ""
    device = f"{text(dev['model'])} ({text(dev['arch'])}, {dev['cpus']} CPUs{mem})"
    providers = text(bd.runtime_detail(rt))
    weights = text(w["kind"]) + (f" {code(w['path'])}" if w.get("path") else "")
    rows = [["model", f"{text(report['model'])} (family {text(v['family'])}, input {v['input_size']} px)"],
            ["parameters", f"{bd.count(v['params'])} total, {bd.count(v['encoder_params'])} encoder"],
            ["encoder GFLOPs", bd.gflops(v["encoder_gflops"])],
            ["primary", text(f"{report['part']} {report['precision']} {report['format']}")],
            ["target", f"{text(t['name'])} via {text(t['transport'])}: {device}"],
            ["os", text(dev.get("os") or bd.MISSING)],
            ["runtime", f"{text(rt['name'])} {text(rt['version'])}, {rt['threads']} thread(s)"
                        + (f", {providers}" if providers else "")],
            ["weights", weights + (f" sha256 {code(w['sha256'])}" if w.get("sha256") else "")],
            ["created", text(report["created"])]]
    return table(["field", "value"], rows)


def render_md(report: dict, top_n: int = 15, module_depth: int | None = None) -> str:
    """The whole report.md for a validated report."""
    what = f"{report['model']} {report['part']} {report['precision']} on {report['target']['name']}"
    parts = [f"# edgekit report: {text(what)}"]
    note = schema.latency_note(report)
    if note:
        parts.append(f"> **LATENCY-ONLY RUN** ({text(note)}). Timings are real; masks, embeddings and fidelity "
                     "figures are not.")
    parts.append(header(report))
    device = bd.device_rows(report)
    if device:
        parts += ["## Device", table(["field", "value"], [[text(k), text(v)] for k, v in device])]
    parts += ["## Latency", latency_table(report), "### Every measured artifact", measurements_table(report)]
    power = bd.power_rows(report)
    if power:
        parts += ["## Power", "Input-rail power while the GPU was busy and at idle; energy per inference is what the "
                  "inference adds over idle.", table(bd.POWER_HEADERS, [[text(c) for c in r] for r in power],
                                                      right=set(range(1, 8)))]
    parts += ["## INT8 fidelity", fidelity_section(report)]
    parts += quality_sections(report, top_n)
    ordered = sorted(schema.measurements(report), key=lambda m: m is not schema.primary(report))
    for m in ordered:
        tag = " (primary)" if m is schema.primary(report) else ""
        parts += [f"## Layers: {text(schema.label(m))}{tag}", layer_sections(m, top_n, module_depth)]
    arts = [[code(a["path"]), text(a.get("part", bd.MISSING)), text(a.get("precision", bd.MISSING)),
             bd.size(a["bytes"]), code(a["sha256"]), "yes" if a.get("reused") else "no"] for a in report["artifacts"]]
    parts += ["## Artifacts", table(["path", "part", "precision", "size", "sha256", "reused"], arts, right={3})]
    warned = [(a["path"], w) for a in report["artifacts"] for w in a.get("warnings", [])]
    if warned:
        parts += ["## Artifact warnings", "\n".join(f"- {code(path)}: {text(w)}" for path, w in warned)]
    steps = [[text(s["name"]), f"{s['seconds']:.2f}", "yes" if s.get("reused") else "no"] for s in report["steps"]]
    parts += ["## Steps", table(["step", "seconds", "reused"], steps, right={1})]
    tools = [[text(k), text(v if v is not None else bd.MISSING)] for k, v in sorted(report["tools"].items())]
    parts += ["## Tools", table(["tool", "version"], tools)]
    return "\n\n".join(parts) + "\n"
