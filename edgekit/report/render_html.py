"""report.html: one self-contained page (inline CSS and SVG, no script, no URL of any kind).

A Content-Security-Policy meta tag forbids every external load, so a page that tried one would show it as an
error in the browser's console (which tests/test_report_html_chromium.py checks stays empty).
"""
from __future__ import annotations

from edgekit import __version__
from edgekit.report import breakdown as bd
from edgekit.report import schema
from edgekit.report.charts import Bar, bar_chart, esc, samples_chart, share_strip

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
PRECISION_CLASS = {"fp32": "b0", "fp16": "b2", "int8": "b1"}
CSS = """
:root{--fg:#1d2430;--mut:#5b6472;--line:#dfe3ea;--bg:#f6f7f9;--c0:#3b6fd4;--c1:#e0792b;--c2:#2f9e6e;--c3:#8a5cc7}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:18px 0 8px}.sub{color:var(--mut);margin:0 0 14px}
.banner{border:2px solid #c62828;background:#fdecea;color:#8e1c1c;padding:10px 14px;border-radius:6px;
font-weight:600;margin:10px 0 16px}.banner b{letter-spacing:.04em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:10px}
.card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:10px 12px}
.card .k{color:var(--mut);font-size:12px;text-transform:uppercase;letter-spacing:.03em}
.card .v{font-size:20px;font-weight:600;overflow-wrap:anywhere}.card .d{color:var(--mut);font-size:12px;overflow-wrap:anywhere}
table{border-collapse:collapse;background:#fff;border:1px solid var(--line);margin:6px 0 12px;font-size:13px}
th,td{padding:4px 9px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
.pass{color:#1b7a47;font-weight:700}.fail{color:#c62828;font-weight:700}
.chart{display:block;background:#fff;border:1px solid var(--line);border-radius:6px;margin:6px 0 12px}
.chart text{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;fill:var(--fg)}
.chart .axis{fill:var(--mut)}.chart .val{fill:var(--mut)}.chart .grid{stroke:var(--line)}.chart .med{stroke:#111;stroke-width:2}
.b0{fill:var(--c0)}.b1{fill:var(--c1)}.b2{fill:var(--c2)}.b3{fill:var(--c3)}
circle.b0,circle.b1,circle.b2,circle.b3{fill-opacity:.55}
.s0{fill:#3b6fd4;background:#3b6fd4}.s1{fill:#e0792b;background:#e0792b}.s2{fill:#2f9e6e;background:#2f9e6e}
.s3{fill:#8a5cc7;background:#8a5cc7}.s4{fill:#c9a227;background:#c9a227}.s5{fill:#d0487a;background:#d0487a}
.s6{fill:#4aa3b5;background:#4aa3b5}.s7{fill:#9aa3ad;background:#9aa3ad}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin:4px 0 12px;font-size:12px;color:var(--mut)}
.key i{display:inline-block;width:10px;height:10px;margin-right:5px;border-radius:2px}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:16px}@media(max-width:900px){.cols{grid-template-columns:1fr}}
details{background:#fff;border:1px solid var(--line);border-radius:6px;padding:6px 12px;margin:10px 0}
summary{cursor:pointer;font-weight:600}footer{color:var(--mut);font-size:12px;margin-top:30px}
.scroll{overflow-x:auto}table.compare td,table.compare th{white-space:nowrap}
"""


def table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset(), cls: str = "") -> str:
    """`rows` hold markup already escaped by the caller; headers are escaped here."""
    attr = lambda i: ' class="n"' if i in numeric else ""  # noqa: E731
    head = "".join(f"<th{attr(i)}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f"<td{attr(i)}>{c}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def card(key: str, value: str, detail: str = "") -> str:
    return f'<div class="card"><div class="k">{esc(key)}</div><div class="v">{esc(value)}</div>' \
           f'<div class="d">{esc(detail)}</div></div>'


def summary_cards(report: dict) -> str:
    v, dev, rt = report["variant"], report["target"]["device"], report["runtime"]
    lat = schema.primary(report)["latency_ms"]
    fid = report["fidelity"]
    cards = [card("model", report["model"], f"{v['family']} · input {v['input_size']} px"),
             card("parameters", bd.count(v["params"]), f"encoder {bd.count(v['encoder_params'])} · "
                  f"{bd.gflops(v['encoder_gflops'])} GFLOPs"),
             card(f"{report['part']} {report['precision']} mean", f"{bd.ms(lat['mean'])} ms",
                  f"p50 {bd.ms(lat['p50'])} · p90 {bd.ms(lat['p90'])} · {lat['runs']} runs"),
             card("speed-up FP32/INT8", bd.ratio(schema.speedup(report, report["part"])), report["part"]),
             card("mask IoU vs FP32", bd.num(fid["mask_iou"]) if fid else bd.MISSING,
                  f"embedding SQNR {bd.db(fid['embedding_sqnr_db'])}" if fid else "no INT8 artifact"),
             card("target", report["target"]["name"], f"{dev['model']} · {dev['arch']} · {dev['cpus']} CPUs"),
             card("runtime", f"{rt['name']} {rt['version']}", f"{rt['threads']} thread(s) · " + bd.runtime_detail(rt)),
             card("weights", report["weights"]["kind"], report["weights"].get("path") or "")]
    return f'<div class="cards">{"".join(cards)}</div>'


def latency_section(report: dict) -> str:
    headers, rows = bd.latency_grid(report)
    ms_ = schema.measurements(report)
    bars = [Bar(schema.label(m), m["latency_ms"]["mean"], f"{bd.ms(m['latency_ms']['mean'])} ms",
                PRECISION_CLASS.get(m["precision"], "b3"), f"{schema.label(m)} ({m['artifact']})") for m in ms_]
    detail = [[esc(schema.label(m)), f"<code>{esc(m['artifact'])}</code>", str(m["latency_ms"]["runs"]),
               bd.ms(m["latency_ms"]["min"]), bd.ms(m["latency_ms"]["max"]), bd.ms(m["latency_ms"]["stdev"]),
               bd.num(m["coverage"]["sum_vs_mean"], 2), bd.pct(m["coverage"]["attributed_share"])] for m in ms_]
    samples = [(schema.label(m), m["latency_ms"]["raw"], PRECISION_CLASS.get(m["precision"], "b3")) for m in ms_]
    return "".join([
        '<h2 id="latency">Latency: FP32 vs INT8</h2>',
        table(headers, [[esc(c) for c in r] for r in rows], set(range(1, len(headers))), "latency"),
        bar_chart(bars, "mean latency per measured artifact"),
        "<h3>Every timed run</h3>", samples_chart(samples, "latency of every timed run (dot) and the median (tick)"),
        table(["measurement", "artifact", "runs", "min ms", "max ms", "stdev ms", "layer sum / mean", "attributed"],
              detail, {2, 3, 4, 5, 6, 7})])


def device_section(report: dict) -> str:
    rows = bd.device_rows(report)
    if not rows:
        return ""
    return '<h2 id="device">Device</h2>' + table(["field", "value"], [[esc(k), esc(v)] for k, v in rows], set(), "device")


def power_section(report: dict) -> str:
    rows = bd.power_rows(report)
    if not rows:
        return ""
    return ('<h2 id="power">Power</h2><p class="sub">Input-rail power while the GPU was busy and at idle; energy per '
            'inference is what the inference adds over idle.</p>'
            + table(bd.POWER_HEADERS, [[esc(c) for c in r] for r in rows], set(range(1, 8)), "power"))


def fidelity_section(report: dict) -> str:
    fid = report["fidelity"]
    if fid is None:
        return '<h2 id="fidelity">INT8 fidelity</h2><p>No quantized artifact in this run: FP32 is the reference.</p>'
    verdict = {True: '<span class="pass">passed</span>', False: '<span class="fail">FAILED</span>',
               None: "not judged"}[fid["passed"]]
    rows = [["reference", esc(fid["reference"])], ["images", str(fid["images"])],
            ["embedding SQNR", bd.db(fid["embedding_sqnr_db"])], ["mask logits SQNR", bd.db(fid.get("logits_sqnr_db"))],
            ["mask IoU", bd.num(fid["mask_iou"])], ["mask IoU, point prompts", bd.num(fid.get("mask_iou_point"))],
            ["mask IoU, box prompts", bd.num(fid.get("mask_iou_box"))], ["target mask IoU", bd.num(fid.get("target"))],
            ["verdict", verdict]] + ([["note", esc(fid["note"])]] if fid.get("note") else [])
    warn = ('<p class="fail">Synthetic weights: these figures only show the quantizer ran; they say nothing about '
            'accuracy.</p>') if schema.is_latency_only(report) else ""
    return f'<h2 id="fidelity">INT8 fidelity</h2>{warn}{table(["check", "value"], rows, {1}, "fidelity")}'


def quality_sections(report: dict, top_n: int) -> str:
    from edgekit.report import quality as q

    out = []
    rows = q.sensitivity_rows(report, top_n)
    if rows:
        nodes = report["sensitivity"]["nodes"][:top_n]
        # bar length = how far below 60 dB (near-lossless) the layer's own error sits: longest = most sensitive
        bars = [Bar(f"{n['part'][:3]} {n['module'] or n['node']}", max(0.0, 60.0 - (n["alone_sqnr_db"] or 60.0)),
                    f"{bd.db(n['alone_sqnr_db'])} alone · {bd.db(n['in_graph_sqnr_db'])} in graph", "b1",
                    f"{n['node']} [{n['op']}]") for n in nodes]
        out += ['<h2 id="sensitivity">INT8 sensitivity per layer</h2>', f'<p class="sub">{esc(q.SENSITIVITY_NOTE)}</p>',
                bar_chart(bars, "most sensitive layers: 60 dB minus alone SQNR", unit="dB"),
                table(q.SENSITIVITY_HEADERS, [[esc(c) if i not in (2, 4) else f"<code>{esc(c)}</code>"
                                               for i, c in enumerate(r)] for r in rows], {0, 5, 6}, "sensitivity")]
    summary = q.mixed_summary(report)
    if summary:
        out += ['<h2 id="mixed">Mixed precision</h2>', table(["", "value"], [[esc(a), esc(b)] for a, b in summary])]
        floats = q.float_rows(report)
        if floats:
            out += ["<h3>Kept in float</h3>", table(["part", "node", "op", "module", "alone SQNR"],
                                                   [[esc(a), f"<code>{esc(b)}</code>", esc(c), f"<code>{esc(d)}</code>",
                                                     esc(e)] for a, b, c, d, e in floats], {4}, "float-nodes")]
    acc = q.accuracy_rows(report)
    if acc:
        out += ['<h2 id="accuracy">Accuracy against ground truth</h2>', f'<p class="sub">{esc(q.accuracy_caption(report))}</p>',
                table(["precision", "point mIoU", "box mIoU"], [[esc(c) for c in r] for r in acc], {1, 2}, "accuracy")]
    return "".join(out)


def layers_block(m: dict, top_n: int, depth: int | None) -> str:
    layers = m["layers"]
    if not layers:
        note = f": {esc(m['layers_note'])}" if m.get("layers_note") else "."
        return f"<p>No per-layer rows were recorded for this artifact{note}</p>"
    top = bd.top_layers(layers, top_n)
    cls = PRECISION_CLASS.get(m["precision"], "b3")
    top_bars = [Bar(r["name"], r["mean_ms"], f"{bd.ms(r['mean_ms'])} ms · {bd.pct(r['share'])}", cls,
                    f"{r['name']} [{r['op_type']}] {r['module'] or bd.UNATTRIBUTED}") for r in top]
    mods = bd.limit(bd.by_module(layers, depth), 16)
    ops = bd.limit(bd.by_op_type(layers), 12)
    group_bars = lambda gs, c: [Bar(g.key, g.ms, f"{bd.ms(g.ms)} ms · {bd.pct(g.share)}", c) for g in gs]  # noqa: E731
    rows = [[str(i + 1), f"<code>{esc(r['name'])}</code>", f"<code>{esc(r['op_type'])}</code>",
             f"<code>{esc(r['module'] or bd.UNATTRIBUTED)}</code>", bd.ms(r["mean_ms"]), bd.pct(r["share"])]
            for i, r in enumerate(top)]
    return "".join([
        f"<h3>Top {len(top)} layers (of {len(layers)})</h3>",
        bar_chart(top_bars, f"top layers of {schema.label(m)}"),
        "<h3>Per module</h3>",  # the strip has 8 colours: fold the rest into "other" so no two keys share one
        share_strip([(g.key, g.ms) for g in bd.limit(mods, 8)], f"time per module, {schema.label(m)}"),
        bar_chart(group_bars(mods, "b2"), f"time per module of {schema.label(m)}"),
        "<h3>Per op type</h3>", bar_chart(group_bars(ops, "b3"), f"time per op type of {schema.label(m)}"),
        table(["#", "layer", "op", "module", "mean ms", "share"], rows, {0, 4, 5}, "layers")])


def layers_section(report: dict, top_n: int, depth: int | None) -> str:
    main = schema.primary(report)
    out = [f'<h2 id="layers">Layers: {esc(schema.label(main))} (primary)</h2>', layers_block(main, top_n, depth)]
    for m in schema.measurements(report):
        if m is not main:
            out.append(f"<details><summary>Layers: {esc(schema.label(m))} "
                       f"({esc(m['artifact'])})</summary>{layers_block(m, top_n, depth)}</details>")
    return "".join(out)


def tail_sections(report: dict) -> str:
    arts = [[f"<code>{esc(a['path'])}</code>", esc(a.get("part", bd.MISSING)), esc(a.get("precision", bd.MISSING)),
             bd.size(a["bytes"]), f"<code>{esc(a['sha256'])}</code>", "yes" if a.get("reused") else "no"]
            for a in report["artifacts"]]
    steps = [[esc(s["name"]), f"{s['seconds']:.2f}", "yes" if s.get("reused") else "no"] for s in report["steps"]]
    tools = [[esc(k), esc(v if v is not None else bd.MISSING)] for k, v in sorted(report["tools"].items())]
    warned = [(a["path"], w) for a in report["artifacts"] for w in a.get("warnings", [])]
    warnings = ('<h3 id="artifact-warnings">Artifact warnings</h3><ul>'
                + "".join(f"<li><code>{esc(p)}</code>: {esc(w)}</li>" for p, w in warned) + "</ul>") if warned else ""
    return "".join([
        '<h2 id="artifacts">Artifacts</h2>',
        table(["path", "part", "precision", "size", "sha256", "reused"], arts, {3}, "artifacts"), warnings,
        '<div class="cols"><div><h2>Steps</h2>', table(["step", "seconds", "reused"], steps, {1}),
        '</div><div><h2>Tools</h2>', table(["tool", "version"], tools), "</div></div>"])


def page(title: str, body: str, schema_id: str = schema.SCHEMA) -> str:
    """The document shell shared with the compare page."""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{esc(title)}</title><style>{CSS}</style></head>'
            f'<body><main>{body}<footer>edgekit {esc(__version__)} · schema {esc(schema_id)}</footer>'
            f'</main></body></html>\n')


def render_html(report: dict, top_n: int = 15, module_depth: int | None = None) -> str:
    """The whole report.html for a validated report."""
    t = report["target"]
    title = f"{report['model']} {report['part']} {report['precision']} on {t['name']}"
    note = schema.latency_note(report)
    banner = (f'<div class="banner latency-only"><b>LATENCY-ONLY</b> · {esc(note)}. Timings are real; masks, '
              f'embeddings and fidelity figures are not.</div>') if note else ""
    sub = f"{report['format']} · {t['transport']} · {t['device'].get('os') or ''} · {report['created']}"
    body = "".join([f"<h1>edgekit report: {esc(title)}</h1>", f'<p class="sub">{esc(sub)}</p>', banner,
                    summary_cards(report), device_section(report), latency_section(report), power_section(report),
                    fidelity_section(report), quality_sections(report, top_n),
                    layers_section(report, top_n, module_depth), tail_sections(report)])
    return page(f"edgekit: {title}", body)
