"""`edgekit report`: render a deploy run's report again, or set several runs side by side."""
from __future__ import annotations

import json
from pathlib import Path

import click

from edgekit.errors import UsageError


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR...", type=click.Path(path_type=Path))
@click.option("--compare", "do_compare", is_flag=True,
              help="Write compare.md / compare.html / compare.json: one row per run (the survey table).")
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), metavar="DIR",
              help="Folder for the rendered files (created if missing; may be the run folder itself).")
@click.option("--top", default=15, show_default=True, type=click.IntRange(1, 500),
              help="How many of the slowest layers the tables and charts show.")
@click.option("--depth", default=None, type=click.IntRange(1, 20), metavar="N",
              help="Module-path depth for the per-module breakdown (default: up to the first block index, "
                   "e.g. image_encoder.layers.2).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON (written files, compare rows).")
def report(run_dirs: tuple[Path, ...], do_compare: bool, out: Path, top: int, depth: int | None,
           as_json: bool) -> None:
    """Render RUN_DIR/report.json (written by `edgekit deploy`) again as report.md, report.html and
    trace.json in DIR, or with --compare set several runs side by side.

    \b
    Examples:
      edgekit report runs/mobilesam-int8 --out runs/mobilesam-int8 --depth 4
      edgekit report runs/mobilesam runs/efficientvit-sam-l0 runs/sam-vit-b --compare --out runs/compare
    """
    from edgekit.report import load_report, rerender, write_compare
    from edgekit.report.compare import COLUMNS, row_cells, run_labels
    from edgekit.report.schema import primary

    if len(run_dirs) > 1 and not do_compare:
        raise UsageError(f"{len(run_dirs)} run folders given without --compare",
                         hint="add --compare to set them side by side, or pass one RUN_DIR to re-render it")
    reports = [load_report(path) for path in run_dirs]
    if not do_compare:
        written = rerender(reports[0], out, top_n=top, module_depth=depth)
        if as_json:
            click.echo(json.dumps({"written": [str(p) for p in written]}, indent=2))
            return
        r = reports[0]
        lat = primary(r)["latency_ms"]
        click.echo(f"{r['model']} {r['part']} {r['precision']} on {r['target']['name']}: "
                   f"mean {lat['mean']:.3f} ms over {lat['runs']} runs")
        for path in written:
            click.echo(f"  wrote {path}")
        return

    names = [(p if p.is_dir() else p.parent).resolve().name for p in run_dirs]
    written, rows = write_compare(list(zip(run_labels(names), reports)), out)
    if as_json:
        click.echo(json.dumps({"written": [str(p) for p in written], "runs": rows}, indent=2))
        return
    headers = [h for _, h, _ in COLUMNS]
    cells = [row_cells(row, str) for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    for c in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(c, widths)))
    for path in written:
        click.echo(f"wrote {path}")
