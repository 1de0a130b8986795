"""The report layer: the edgekit.report/1 contract, the four rendered files, the all-or-none write, and
`edgekit report` (single re-render and --compare) as users run it."""
from __future__ import annotations

import copy
import hashlib
import json
import random
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from edgekit.errors import ExitStatus, InputError
from edgekit.report import breakdown as bd
from edgekit.report import render_html, schema, validate, write_report
from edgekit.report.charts import esc
from edgekit.report.compare import compare_rows, render_compare_html, render_compare_md
from edgekit.report.render_md import code, render_md
from edgekit.report.trace import SYNTHETIC_NOTE, build_trace
from edgekit.report.write import to_json

HOSTILE = ['a"b<c>&d', "x|y", "back`tick", "<script>alert(1)</script>", "it's \\ & ω"]


def _stats(raw: list[float]) -> dict:
    s = sorted(raw)
    mean = sum(raw) / len(raw)
    rank = lambda q: s[min(len(s) - 1, int(q * len(s)))]  # noqa: E731
    stdev = (sum((v - mean) ** 2 for v in raw) / len(raw)) ** 0.5
    return {"runs": len(raw), "warmup": 3, "mean": mean, "p50": rank(0.5), "p90": rank(0.9), "min": s[0],
            "max": s[-1], "stdev": stdev, "raw": raw}


def _measurement(rng: random.Random, part: str, precision: str, n: int, timeline: bool) -> dict:
    speed = 0.4 if precision == "int8" else 1.0
    layers = []
    for i in range(n):
        block = i // 12
        root = "image_encoder.layers" if part == "encoder" else "mask_decoder.transformer.layers"
        module = None if i % 17 == 5 else f"{root}.{block}.blocks.{i % 3}.attn"
        tail = HOSTILE[i % len(HOSTILE)] if i % 3 == 0 else f"proj/MatMul_{i}"
        layers.append({"name": f"/{part}/layers.{block}/{tail}#{i}", "op_type": ["MatMul", "Conv", "Softmax", "Add"][i % 4],
                       "module": module, "mean_ms": round(rng.uniform(0.01, 2.0) * speed * (3 if i % 3 == 0 else 1), 4)})
    total = sum(r["mean_ms"] for r in layers)
    for r in layers:
        r["share"] = r["mean_ms"] / total
    raw = [total * rng.uniform(0.93, 1.12) for _ in range(20)]
    m = {"part": part, "precision": precision, "format": "onnx", "artifact": f"model.{part}.{precision}.onnx",
         "latency_ms": _stats(raw), "layers": layers,
         "coverage": {"layer_sum_ms": total, "attributed_share": sum(r["share"] for r in layers if r["module"]),
                      "sum_vs_mean": total / (sum(raw) / len(raw))}}
    if timeline:
        t, events = 1_700_000.0, []
        for r in layers:
            dur = r["mean_ms"] * 1000 * rng.uniform(0.9, 1.1)
            events.append({"name": r["name"], "op_type": r["op_type"], "module": r["module"], "start_us": t, "dur_us": dur})
            t += dur + 3.0
        m["timeline"] = events
    return m


def make_report(model: str = "mobilesam", weights: str = "synthetic", precisions: tuple[str, ...] = ("fp32", "int8"),
                n_layers: int = 120, seed: int = 0) -> dict:
    """A realistic, valid report: encoder and decoder at each precision, hostile layer names, encoder timelines."""
    rng = random.Random(seed)
    ms = [_measurement(rng, part, p, n_layers if part == "encoder" else 36, part == "encoder")
          for part in ("encoder", "decoder") for p in precisions]
    precision = precisions[-1]
    primary = next(m for m in ms if m["part"] == "encoder" and m["precision"] == precision)
    fidelity = None if "int8" not in precisions else {
        "reference": "fp32", "images": 8, "embedding_sqnr_db": 31.4, "logits_sqnr_db": 24.9, "mask_iou": 0.962,
        "mask_iou_point": 0.951, "mask_iou_box": 0.973, "target": 0.9, "passed": True}
    return {
        "schema": schema.SCHEMA, "model": model, "part": "encoder", "format": "onnx", "precision": precision,
        "weights": {"kind": weights, "path": None if weights == "synthetic" else "ckpt/mobile_sam.pt",
                    "sha256": None, "note": schema.LATENCY_ONLY_NOTE if weights == "synthetic" else None},
        "variant": {"family": model, "params": 10_130_092, "encoder_params": 6_000_000, "encoder_gflops": 38.2,
                    "input_size": 1024},
        "target": {"name": "local", "transport": "local", "device": {"model": 'Xeon "<Gold>" & co', "arch": "x86_64",
                                                                     "cpus": 2, "memory_gb": 23.4, "os": "Linux 6.1"}},
        "runtime": {"name": "onnxruntime", "version": "1.31.1", "threads": 1, "providers": ["CPUExecutionProvider"]},
        "latency_ms": primary["latency_ms"], "layers": primary["layers"], "coverage": primary["coverage"],
        "fidelity": fidelity, "measurements": ms,
        "artifacts": [{"path": m["artifact"], "sha256": hashlib.sha256(m["artifact"].encode()).hexdigest(),
                       "bytes": 4_000_000 + i, "part": m["part"], "precision": m["precision"], "reused": i % 2 == 0}
                      for i, m in enumerate(ms)],
        "steps": [{"name": "export", "seconds": 12.5, "reused": False}, {"name": "profile", "seconds": 30.1}],
        "tools": {"edgekit": "0.1.0", "torch": "2.13.0", "onnxruntime": "1.31.1", "onnx": None},
        "created": "2026-11-21T12:00:00Z",
    }


@pytest.fixture(scope="module")
def report() -> dict:
    return validate(make_report())


def test_factory_reports_validate() -> None:
    for r in (make_report(), make_report(weights="checkpoint", seed=1), make_report(precisions=("fp32",))):
        assert validate(r) is r
    assert schema.speedup(make_report(precisions=("fp32",)), "encoder") is None


@pytest.mark.parametrize("mutate, fragment", [
    (lambda r: r["latency_ms"].pop("p50"), "latency_ms.p50: is missing"),
    (lambda r: r["measurements"][1]["latency_ms"].update(runs="20"), "measurements[1].latency_ms.runs: expected an integer, got str"),
    (lambda r: r["measurements"][0]["layers"][7].update(share=None), "measurements[0].layers[7].share: is null"),
    (lambda r: r.update(precision="int4"), "precision: 'int4' is not one of"),
    (lambda r: r["fidelity"].update(passed="yes"), "fidelity.passed: expected bool, got str"),
    (lambda r: r["layers"][3].update(mean_ms=float("nan")), "layers[3].mean_ms: nan is not finite"),
    (lambda r: r["artifacts"][0].update(sha256="abc"), "artifacts[0].sha256"),
    (lambda r: r.update(created="yesterday"), "created: 'yesterday' is not an ISO 8601 time"),
    (lambda r: r["measurements"].pop(1), "measurements: no measurement for the primary encoder at int8"),
    (lambda r: r["measurements"][0]["latency_ms"]["raw"].pop(), "measurements[0].latency_ms.runs: 20 runs but 19"),
    (lambda r: r.update(schema="edgekit.report/2"), "schema: 'edgekit.report/2'"),
    (lambda r: r["target"]["device"].update(cpus=True), "target.device.cpus: expected an integer, got bool"),
    (lambda r: r["measurements"][1]["timeline"][4].pop("dur_us"), "measurements[1].timeline[4].dur_us: is missing"),
    (lambda r: r["latency_ms"].update(p90=1e9), "latency_ms: needs min <= p50 <= p90 <= max"),
    (lambda r: r["latency_ms"].update(mean=r["latency_ms"]["min"]), "latency_ms.mean: differs from the primary"),
])
def test_validator_names_the_bad_field(report: dict, mutate, fragment: str) -> None:
    bad = json.loads(json.dumps(report))  # as read from disk: no dict shared between primary and measurements
    mutate(bad)
    with pytest.raises(InputError) as info:
        validate(bad)
    assert fragment in info.value.message


def test_validator_rejects_what_is_not_a_report() -> None:
    with pytest.raises(InputError, match="<root>: expected an object, got list"):
        validate([])


def _tables(md: str) -> list[list[str]]:
    tables, current = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def test_markdown_has_the_figures_the_ratio_and_intact_tables(report: dict) -> None:
    md = render_md(report)
    fp32, int8 = (schema.find(report, "encoder", p)["latency_ms"]["mean"] for p in ("fp32", "int8"))
    assert bd.ms(fp32) in md and bd.ms(int8) in md
    assert f"{fp32 / int8:.2f}x" in md and "speed-up FP32/INT8" in md
    assert "LATENCY-ONLY" in md and "0.962" in md and "31.4 dB" in md
    assert "`image_encoder.layers.0`" in md  # the per-module breakdown at the default depth
    for layer in bd.top_layers(report["layers"], 15):
        assert code(layer["name"]) in md
    outside_code = re.sub(r"``.*?``|`[^`]*`", "", md)  # inside code spans, <tag> is shown as text
    assert "<" not in outside_code and "&lt;Gold&gt;" in md
    tables = _tables(md)
    assert len(tables) >= 12
    for t in tables:  # an unescaped | in a name would add a cell and shift every column after it
        counts = {len(re.findall(r"(?<!\\)\|", line)) for line in t}
        assert len(counts) == 1, t
    assert "LATENCY-ONLY" not in render_md(make_report(weights="checkpoint"))
    assert "No quantized artifact" in render_md(make_report(precisions=("fp32",)))


class _Balance(HTMLParser):
    VOID = {"meta", "link", "br", "img", "input", "hr"}  # SVG shapes are written self-closed (<rect/>)

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_html_is_self_contained_escaped_and_well_formed(report: dict) -> None:
    page = render_html.render_html(report)
    assert "://" not in page and "<script" not in page and 'a"b<c>&d' not in page
    for m in report["measurements"]:
        for layer in bd.top_layers(m["layers"], 15):
            assert esc(layer["name"]) in page
    assert page.count('<svg class="chart') == 2 + 4 * len(report["measurements"])
    assert "LATENCY-ONLY" in page and "Xeon &quot;&lt;Gold&gt;&quot; &amp; co" in page
    parser = _Balance()
    parser.feed(page)
    assert parser.errors == [] and parser.stack == []


def test_trace_has_one_event_per_layer_per_measurement(report: dict) -> None:
    doc = json.loads(to_json(build_trace(report)))
    assert doc["displayTimeUnit"] == "ms"
    events = doc["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert len(names) == len(report["measurements"])
    for pid, m in enumerate(report["measurements"], start=1):
        assert names[pid] == f"{schema.label(m)} ({m['artifact']})"
        xs = [e for e in events if e["ph"] == "X" and e["pid"] == pid]
        if "timeline" in m:
            assert len(xs) == len(m["timeline"])
            assert [e["dur"] for e in xs] == pytest.approx([t["dur_us"] for t in m["timeline"]])
            assert xs[0]["ts"] == 0 and xs[1]["ts"] == pytest.approx(m["timeline"][1]["start_us"] - m["timeline"][0]["start_us"])
        else:
            assert len(xs) == len(m["layers"]) and all(e["args"]["note"] == SYNTHETIC_NOTE for e in xs)
            assert [e["dur"] for e in xs] == pytest.approx([r["mean_ms"] * 1000 for r in m["layers"]])
            assert xs[-1]["ts"] + xs[-1]["dur"] == pytest.approx(m["coverage"]["layer_sum_ms"] * 1000)


def test_module_and_op_breakdowns_keep_the_total(report: dict) -> None:
    assert bd.module_group("image_encoder.layers.2.blocks.1.attn") == "image_encoder.layers.2"
    assert bd.module_group("mask_decoder.transformer.layers.0.mlp") == "mask_decoder.transformer.layers.0"
    assert bd.module_group("image_encoder.neck.conv", None) == "image_encoder.neck.conv"
    assert bd.module_group("image_encoder.layers.2.blocks.1.attn", 2) == "image_encoder.layers"
    assert bd.module_group(None) == bd.UNATTRIBUTED
    total = sum(r["mean_ms"] for r in report["layers"])
    for groups in (bd.by_module(report["layers"]), bd.by_op_type(report["layers"]), bd.limit(bd.by_module(report["layers"]), 4)):
        assert sum(g.ms for g in groups) == pytest.approx(total)
        assert sum(g.share for g in groups) == pytest.approx(1.0)
    assert len(bd.limit(bd.by_module(report["layers"]), 4)) == 4


def test_write_report_writes_all_four_files(tmp_path: Path, report: dict) -> None:
    paths = write_report(report, tmp_path / "run")
    assert sorted(p.name for p in paths) == ["report.html", "report.json", "report.md", "trace.json"]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted(p.name for p in paths)  # no .part left
    assert json.loads((tmp_path / "run" / "report.json").read_text(encoding="utf-8")) == report
    assert schema.load_report(tmp_path / "run")["model"] == "mobilesam"


def test_write_report_leaves_nothing_when_a_renderer_fails(tmp_path: Path, report: dict, monkeypatch) -> None:
    def broken(*args, **kwargs) -> str:
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(render_html, "render_html", broken)
    with pytest.raises(RuntimeError, match="exploded"):
        write_report(report, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists() or list((tmp_path / "fresh").iterdir()) == []
    monkeypatch.undo()
    write_report(report, tmp_path / "old")
    monkeypatch.setattr(render_html, "render_html", broken)
    with pytest.raises(RuntimeError):
        write_report(make_report(model="other"), tmp_path / "old")
    assert json.loads((tmp_path / "old" / "report.json").read_text(encoding="utf-8"))["model"] == "mobilesam"
    assert len(list((tmp_path / "old").iterdir())) == 4
    bad = copy.deepcopy(report)
    del bad["tools"]
    with pytest.raises(InputError, match="tools: is missing"):
        write_report(bad, tmp_path / "invalid")
    assert not (tmp_path / "invalid").exists()


def test_compare_rows_mark_what_a_run_did_not_measure(report: dict) -> None:
    fp32_only = make_report(model='edge<sam>', precisions=("fp32",), weights="checkpoint", seed=2)
    rows = compare_rows([("a", report), ("b", fp32_only)])
    assert rows[0]["speedup"] == pytest.approx(schema.speedup(report, "encoder"))
    assert rows[1]["int8_encoder_ms"] is None and rows[1]["mask_iou"] is None and rows[1]["speedup"] is None
    assert rows[1]["decoder_ms"] == schema.find(fp32_only, "decoder", "fp32")["latency_ms"]["mean"]
    md = render_compare_md(rows)
    line_b = next(line for line in md.splitlines() if line.startswith("| b |"))
    assert line_b.count("—") == 4 and "edge&lt;sam&gt;" in line_b
    assert f"{rows[0]['speedup']:.2f}x" in md and "mobilesam†" in md and "latency-only" in md
    page = render_compare_html(rows)
    assert "edge&lt;sam&gt;" in page and "<sam>" not in page and "://" not in page


def _edgekit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True, timeout=120)


def test_cli_compares_two_runs_and_rerenders_one(tmp_path: Path, report: dict) -> None:
    write_report(report, tmp_path / "run-a")
    write_report(make_report(model="sam-vit-b", precisions=("fp32",), seed=3), tmp_path / "run-b")
    proc = _edgekit("report", str(tmp_path / "run-a"), str(tmp_path / "run-b"), "--compare", "--out", str(tmp_path / "cmp"))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "cmp").iterdir()) == ["compare.html", "compare.json", "compare.md"]
    doc = json.loads((tmp_path / "cmp" / "compare.json").read_text(encoding="utf-8"))
    assert [r["run"] for r in doc["runs"]] == ["run-a", "run-b"] and doc["runs"][1]["int8_encoder_ms"] is None
    assert "sam-vit-b" in proc.stdout and bd.ratio(doc["runs"][0]["speedup"]) in proc.stdout
    proc = _edgekit("report", str(tmp_path / "run-a"), "--out", str(tmp_path / "again"), "--depth", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    assert sorted(Path(p).name for p in json.loads(proc.stdout)["written"]) == ["report.html", "report.md", "trace.json"]
    assert "`image_encoder.layers`" in (tmp_path / "again" / "report.md").read_text(encoding="utf-8")
    proc = _edgekit("report", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"))
    assert proc.returncode == int(ExitStatus.INPUT) and "no report.json" in proc.stderr and "Traceback" not in proc.stderr
    proc = _edgekit("report", str(tmp_path / "run-a"), str(tmp_path / "run-b"), "--out", str(tmp_path / "x"))
    assert proc.returncode == int(ExitStatus.USAGE) and "--compare" in proc.stderr
    assert not (tmp_path / "x").exists()
