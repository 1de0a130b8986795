"""`edgekit models`: what can be deployed, with counted sizes and where the official weights come from."""
from __future__ import annotations

import json

import click


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--family", default=None, help="Only variants of this family (sam, mobilesam, sam2, ...).")
def models(as_json: bool, family: str | None) -> None:
    """List the registered SAM variants: family, parameters (counted from the model code), encoder input size,
    image-embedding shape, checkpoint layout, the official file and its licence.

    \b
    Examples:
      edgekit models
      edgekit models --family sam2 --json
    """
    from edgekit.variants.registry import REGISTRY
    from edgekit.variants.stats import count

    rows = []
    for spec in REGISTRY.values():
        if family and spec.family != family:
            continue
        try:
            stats = count(spec.name)
            params, encoder_params = stats.params, stats.encoder_params
        except (ImportError, AttributeError) as exc:  # a variant whose model code is not in this build
            params = encoder_params = None
            click.echo(f"edgekit: warning: {spec.name}: model code unavailable ({exc})", err=True)
        rows.append({
            "name": spec.name, "family": spec.family, "params": params, "encoder_params": encoder_params,
            "input_size": spec.input_size, "embedding_shape": list(spec.embedding_shape), "layout": spec.layout,
            "checkpoint": spec.checkpoint.file_name, "wrapped": spec.wrap_key, "url": spec.checkpoint.url,
            "license": spec.checkpoint.license, "description": spec.description,
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    header = f"{'name':<20} {'family':<17} {'params':>8} {'input':>5}  {'embedding':<12} {'checkpoint':<28} licence"
    click.echo(header)
    click.echo("-" * len(header))
    for r in rows:
        params = f"{r['params'] / 1e6:.2f}M" if r["params"] else "?"
        emb = "x".join(str(d) for d in r["embedding_shape"])
        click.echo(f"{r['name']:<20} {r['family']:<17} {params:>8} {r['input_size']:>5}  {emb:<12} {r['checkpoint']:<28} {r['license']}")
