"""`edgekit models`: what can be deployed, with counted sizes and where the official weights come from."""
from __future__ import annotations

import json

import click


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--family", default=None, help="Only variants of this family (sam, mobilesam, sam2, ...).")
def models(as_json: bool, family: str | None) -> None:
    """List the registered SAM variants: family, parameters and encoder GFLOPs (both counted from the model code),
    encoder input size, image-embedding shape, checkpoint layout, the official file and its licence.

    \b
    Examples:
      edgekit models
      edgekit models --family sam2 --json
    """
    from edgekit.formats import format_names, get_format
    from edgekit.formats.coreml import SURVEYED as COREML_SURVEYED
    from edgekit.formats.litert import VERIFIED
    from edgekit.progress import Steps
    from edgekit.variants.registry import REGISTRY
    from edgekit.variants.stats import cached_gflops, count

    specs = [spec for spec in REGISTRY.values() if not family or spec.family == family]
    rows = []
    with Steps([f"counting {spec.name}" for spec in specs], enabled=not as_json) as bar:
        for spec in specs:
            stats = count(spec.name)
            rows.append({
                "name": spec.name, "family": spec.family, "params": stats.params, "encoder_params": stats.encoder_params,
                "encoder_gflops": cached_gflops(spec.name),
            "input_size": spec.input_size, "embedding_shape": list(spec.embedding_shape), "layout": spec.layout,
            "checkpoint": spec.checkpoint.file_name, "wrapped": spec.wrap_key, "url": spec.checkpoint.url,
                "license": spec.checkpoint.license, "description": spec.description,
                "external_encoder": spec.external_encoder, "note": spec.checkpoint.note or None,
                # the formats it converts to, and why not where it does not
                "formats": {n: get_format(n).supports(spec) is None for n in format_names()},
                "format_notes": {n: why for n in format_names() if (why := get_format(n).supports(spec))},
            })
            bar.next()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    header = (f"{'name':<20} {'family':<17} {'params':>8} {'GFLOPs':>7} {'input':>5}  {'formats':<30} "
              f"{'checkpoint':<28} licence")
    click.echo(header)
    click.echo("-" * len(header))
    for r in rows:
        params = f"{r['params'] / 1e6:.2f}M" + ("+" if r["external_encoder"] else "")
        gflops = "—" if r["encoder_gflops"] is None else f"{r['encoder_gflops']:.1f}"
        checkpoint = ("encoder.onnx + " if r["external_encoder"] else "") + r["checkpoint"]
        formats = ",".join(n + ("*" if n == "litert" and r["name"] not in VERIFIED else "")
                           + ("*" if n == "coreml" and r["name"] not in COREML_SURVEYED else "")
                           + ("†" if n == "tensorrt" else "") for n, ok in r["formats"].items() if ok)
        click.echo(f"{r['name']:<20} {r['family']:<17} {params:>8} {gflops:>7} {r['input_size']:>5}  {formats:<30} "
                   f"{checkpoint:<28} {r['license']}")
    if any(r["external_encoder"] for r in rows):
        click.echo("+ : the image encoder is an ONNX file given with --encoder-onnx (NanoSAM releases it only as ONNX); "
                   "params count the decoder, the encoder is counted per deploy.")
    click.echo("litert* / coreml*: expected to convert, not yet verified for this variant (an export that fails "
               "says why); coreml packages are checked here from their MIL program and run on a Mac.")
    click.echo("tensorrt†: the TensorRT-ready ONNX is made and checked here (OneHot-free, validated against torch); "
               "its engine is built on the device by trtexec, which decides what TensorRT accepts.")
    click.echo("GFLOPs: multiply-accumulates of one encoder forward at the input size (counted from the code, the "
               "papers' convention).")
