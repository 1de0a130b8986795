"""report.html and compare.html in a real browser: headless Chromium renders the charts, paints a non-blank
page, and logs nothing to the console (the page has no script, so any console line is a CSP violation or a
broken resource). A deliberately broken page checks that the console scan does catch errors.

Skipped when Chromium is absent (Debian: apt-get install -y --no-install-recommends chromium).
"""
from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edgekit.report import write_compare, write_report
from edgekit.report.breakdown import top_layers
from tests.test_report import make_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or (
    "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y "
                                "--no-install-recommends chromium); tests/test_report.py still checks the HTML text")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]
# Console output reaches stderr as "...:INFO:CONSOLE:<line>] "message", source: ..."
CONSOLE = re.compile(r":CONSOLE[:(]|Uncaught|Refused to|Failed to load resource")


def open_page(page: Path, tmp: Path, height: int = 2400) -> tuple[str, list[str], Path]:
    """One browser run: the DOM after load, the console lines, and a 1280 px wide screenshot."""
    shot = tmp / f"{page.stem}.png"
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", f"--window-size=1280,{height}",
                           f"--screenshot={shot}", "--dump-dom", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if CONSOLE.search(line)]
    return proc.stdout, console, shot


def painted(shot: Path) -> dict[str, float]:
    """How much of the screenshot is not background, and whether the chart colours were painted."""
    import numpy as np
    from PIL import Image

    with Image.open(shot) as img:
        small = img.convert("RGB").resize((img.width // 2, img.height // 2), Image.NEAREST)  # exact colours kept
    rgb = np.asarray(small, dtype=np.int32).reshape(-1, 3)
    packed = rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2]
    values, counts = np.unique(packed, return_counts=True)
    near = lambda c: bool((np.abs(rgb - np.array(c)).sum(axis=1) < 30).any())  # noqa: E731
    return {"ink": float((packed != values[counts.argmax()]).mean()), "blue": near((0x3B, 0x6F, 0xD4)),
            "orange": near((0xE0, 0x79, 0x2B)), "red_banner": near((0xFD, 0xEC, 0xEA))}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[dict, str, list[str], Path]:
    tmp = tmp_path_factory.mktemp("chromium")
    report = make_report()
    write_report(report, tmp / "run")
    dom, console, shot = open_page(tmp / "run" / "report.html", tmp)
    return report, dom, console, shot


def test_report_page_renders_its_charts_and_names(rendered) -> None:
    report, dom, _, _ = rendered
    assert "Latency: FP32 vs INT8" in dom and "LATENCY-ONLY" in dom
    assert dom.count('<svg class="chart') == 2 + 4 * len(report["measurements"])
    assert dom.count("<rect") > 100  # the bars and strips were parsed as SVG, not dropped as text
    for layer in top_layers(report["layers"], 15):
        assert html.escape(layer["name"], quote=False) in dom  # as the DOM serialises text: & < > escaped
    assert "<script" not in dom  # the hostile layer name stayed text


def test_report_page_logs_nothing_to_the_console(rendered) -> None:
    _, _, console, _ = rendered
    assert console == []


def test_report_page_is_painted(rendered) -> None:
    *_, shot = rendered
    seen = painted(shot)
    assert seen["ink"] > 0.08, seen
    assert seen["blue"] and seen["orange"] and seen["red_banner"], seen


def test_compare_page_renders_cleanly(tmp_path: Path) -> None:
    runs = [("mobilesam", make_report()), ("sam<vit>&b", make_report(model="sam-vit-b", precisions=("fp32",), seed=4))]
    write_compare(runs, tmp_path / "cmp")
    dom, console, shot = open_page(tmp_path / "cmp" / "compare.html", tmp_path, height=900)
    assert console == []
    assert "sam&lt;vit&gt;&amp;b" in dom and dom.count('<svg class="chart') == 1 and "—" in dom
    assert painted(shot)["ink"] > 0.03


def test_console_scan_catches_a_broken_page(tmp_path: Path) -> None:
    """The check above is only worth something if a page with errors fails it."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" '
                    "content=\"default-src 'none'\"><title>x</title></head><body><p>x</p>"
                    '<link rel="stylesheet" href="missing.css"></body></html>', encoding="utf-8")
    _, console, _ = open_page(page, tmp_path, height=300)
    assert console and any("missing.css" in line for line in console)
