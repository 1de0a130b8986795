"""`edgekit quantize`: static INT8 of exported artifacts, with its accuracy cost on held-out images."""
from __future__ import annotations

import json
from pathlib import Path

import click

from edgekit.quant.presets import PRESETS


@click.command("quantize")
@click.argument("artifacts", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--calib", type=click.Path(path_type=Path), required=True, metavar="DIR", help="Folder of real images.")
@click.option("--calib-count", default=32, show_default=True, help="Calibration images (warns below 16).")
@click.option("--held-out", default=4, show_default=True, help="Further images for the fidelity check.")
@click.option("--calib-method", type=click.Choice(["minmax", "percentile", "entropy"]), default="minmax", show_default=True)
@click.option("--scheme", "--preset", "preset", type=click.Choice(list(PRESETS)), default="x86", show_default=True,
              help="x86: U8S8 for VNNI; arm: S8S8; tensorrt: symmetric activations, standard ops only.")
@click.option("--fidelity-target", type=float, default=None, metavar="IOU", help="Fail (exit 7) below this mask IoU.")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True)
@click.option("--json", "as_json", is_flag=True)
def quantize(artifacts: tuple[Path, ...], calib: Path, calib_count: int, held_out: int, calib_method: str, preset: str,
             fidelity_target: float | None, out: Path, as_json: bool) -> None:
    """Quantize FP32 artifacts written by `edgekit export` (ONNX or LiteRT; give the files, or the folder) to INT8 with
    per-channel weights, calibrated on real images through the variant's official preprocessing. The decoder is
    calibrated on prompts sampled on the same images. With both parts, the INT8 pipeline is compared with FP32
    on held-out images: embedding SQNR, logits SQNR, mask IoU for point and box prompts.

    \b
    Examples:
      edgekit quantize exported/ --calib photos/ --out int8/
      edgekit quantize exported/mobilesam.encoder.fp32.onnx --calib photos/ --scheme arm --out int8/
    """
    from edgekit.errors import InputError
    from edgekit.pipeline.artifacts import ensure_int8
    from edgekit.pipeline.fidelity import cached_fidelity, check_target
    from edgekit.pipeline.sidecar import load, publish
    from edgekit.quant.calibration import list_images, split

    from edgekit.formats import format_names, get_format

    suffixes = {get_format(n).suffix for n in format_names()}
    files = [f for a in artifacts
             for f in ([g for g in sorted(a.glob("*.fp32.*")) if g.suffix in suffixes] if a.is_dir() else [a])]
    if not files:
        raise InputError("no FP32 artifacts given", hint="pass files or the folder `edgekit export` wrote")
    loaded = [load(f) for f in files]
    models = {ctx.spec.name for ctx, _ in loaded}
    if len(models) != 1:
        raise InputError(f"artifacts of several models given: {sorted(models)}", hint="quantize one model at a time")
    ctx = loaded[0][0]
    fp32 = {a.part: a for _, a in loaded}
    if "decoder" in fp32 and "encoder" not in fp32:
        sibling = files[0].with_name(f"{ctx.spec.name}.encoder.fp32{files[0].suffix}")
        if not sibling.is_file():
            raise InputError("the decoder is calibrated on encoder features",
                             hint=f"export the encoder too, or put {sibling.name} beside the decoder")
        fp32["encoder_ref"] = load(sibling)[1]
    encoder_ref = fp32.get("encoder") or fp32["encoder_ref"]
    calib_images, held = split(list_images(calib), calib_count, held_out)
    q8 = {}
    for part in ("encoder", "decoder"):
        if part in fp32:
            q8[part] = ensure_int8(ctx, fp32[part], encoder_ref, calib_images, PRESETS[preset], calib_method)
            publish(ctx, q8[part], out)
            click.echo(f"{q8[part].name}" + (" (reused)" if q8[part].reused else ""), err=as_json)
    fidelity = None
    if "encoder" in q8 and "decoder" in q8:
        fidelity, _ = cached_fidelity(ctx, (fp32["encoder"], q8["encoder"]), (fp32["decoder"], q8["decoder"]), held,
                                      fidelity_target)
        (out / f"{ctx.spec.name}.int8.fidelity.json").write_text(json.dumps(fidelity, indent=1))
    if as_json:
        click.echo(json.dumps({"artifacts": [a.name for a in q8.values()], "fidelity": fidelity}, indent=2))
    elif fidelity:
        sq = "n/a" if fidelity["embedding_sqnr_db"] is None else f"{fidelity['embedding_sqnr_db']:.1f} dB"
        click.echo(f"fidelity vs FP32 on {fidelity['images']} held-out images: embedding SQNR {sq}, "
                   f"mask IoU {fidelity['mask_iou']:.4f} (points {fidelity['mask_iou_point']:.4f}, boxes {fidelity['mask_iou_box']:.4f})")
    if fidelity:
        check_target(fidelity)
