"""`edgekit export`: a variant's encoder and/or decoder as validated ONNX, with layer maps."""
from __future__ import annotations

from pathlib import Path

import click

from edgekit.cli.options import model_option, weights_options


@click.command("export")
@model_option()
@weights_options
@click.option("--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True,
              help="Artifact format (LiteRT and Core ML come with their targets).")
@click.option("--part", type=click.Choice(["encoder", "decoder", "all"]), default="all", show_default=True)
@click.option("--images", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Real images to validate the export on (default: a generated test card).")
@click.option("--exporter", type=click.Choice(["dynamo", "legacy"]), default="dynamo", show_default=True)
@click.option("--store", type=click.Path(path_type=Path), default=None, help="Artifact store (default ~/.cache/edgekit/store).")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True, help="Folder for the artifacts.")
def export(model: str, checkpoint: Path | None, weights: str | None, encoder_onnx: Path | None, fmt: str, part: str, images: Path | None,
           exporter: str, store: Path | None, out: Path) -> None:
    """Export to ONNX (opset 18 by torch's dynamo exporter; 17 by the legacy one where dynamo fails), simplify,
    and check ONNX Runtime against torch on real images (FP32: 1e-4 on embeddings, 1e-3 on logits). Beside each
    .onnx: a layer map (node -> module path) and a .json describing it, which `edgekit quantize` reads.

    \b
    Examples:
      edgekit export -m mobilesam -c mobile_sam.pt --images photos/ --out exported/
      edgekit export -m sam2.1-hiera-t --weights synthetic --part decoder --out exported/
    """
    from edgekit.errors import InputError
    from edgekit.pipeline.artifacts import PARTS, ensure_export
    from edgekit.pipeline.context import ModelContext, testcard
    from edgekit.pipeline.sidecar import publish
    from edgekit.progress import Steps
    from edgekit.quant.calibration import list_images
    from edgekit.store import Store
    from edgekit.variants.registry import get_spec

    spec = get_spec(model)
    if checkpoint is None and weights is None:
        raise InputError(f"no weights for {model}",
                         hint=f"pass --checkpoint {spec.checkpoint.file_name} or --weights synthetic")
    from edgekit.variants.onnx_encoder import check_encoder_file

    check_encoder_file(spec, encoder_onnx)
    validation = list_images(images)[:2] if images else [testcard()]
    ctx = ModelContext(spec=spec, checkpoint=checkpoint, store=Store(store), encoder_onnx=encoder_onnx)
    parts = PARTS if part == "all" else (part,)
    with Steps([f"export {p}" for p in parts]) as bar:
        for p in parts:
            artifact = ensure_export(ctx, p, validation, prefer=exporter)
            paths = publish(ctx, artifact, out)
            check = artifact.info["validation"]
            worst = max(check["max_abs"].values()) if check["max_abs"] else 0.0
            against = "the given ONNX" if artifact.info["exporter"] == "external" else "torch"
            click.echo(f"{artifact.name}: {artifact.info['exporter']} exporter, opset {artifact.info['opset']}, "
                       f"max |ORT - {against}| {worst:.2e} on {check['samples']} sample(s)"
                       + (" (reused)" if artifact.reused else ""))
            bar.next()
    click.echo(f"wrote {len(paths)} files per part into {out}")
