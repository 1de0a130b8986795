"""`edgekit bundle`: a variant as an app takes it: models for the platform's runtime + manifest.json + consume.py."""
from __future__ import annotations

from pathlib import Path

import click

from edgekit.cli.options import model_option, weights_options


@click.command("bundle")
@model_option()
@weights_options
@click.option("--platform", type=click.Choice(["android", "ios", "onnx"]), required=True,
              help="android: LiteRT .tflite; ios: Core ML .mlpackage; onnx: ONNX Runtime Mobile .ort.")
@click.option("--precision", default="fp32", show_default=True,
              help="What the platform's format makes (android: fp32, fp16, int8-dynamic, int8; ios: fp16, fp32, int8, "
                   "w8a8, palette6; onnx: fp32, int8).")
@click.option("--calib", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Real images to calibrate static int8 / w8a8 on (also validates the export).")
@click.option("--calib-count", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--store", type=click.Path(path_type=Path), default=None, help="Artifact store (default ~/.cache/edgekit/store).")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True, help="The bundle folder (new or empty).")
def bundle(model: str, checkpoint: Path | None, weights: str | None, encoder_onnx: Path | None, platform: str,
           precision: str, calib: Path | None, calib_count: int, store: Path | None, out: Path) -> None:
    """Write what an app needs to run a variant: the encoder and decoder for the platform's runtime, manifest.json
    (schema edgekit.bundle/1: preprocessing, prompt encoding, every input/output with shape, dtype and
    quantization, post-processing steps, variant, weights, licence), consume.py (the reference consumer: numpy, PIL
    and the runtime only) and Kotlin / Swift sample code.

    \b
    Examples:
      edgekit bundle -m mobilesam -c mobile_sam.pt --platform android --out bundles/android
      edgekit bundle -m mobilesam -c mobile_sam.pt --platform onnx --precision int8 --calib photos/ --out bundles/ort
      python bundles/android/consume.py bundles/android photo.jpg --point 500,375 --out mask.png
    """
    from edgekit.bundle.make import PLATFORMS, make_bundle
    from edgekit.errors import InputError
    from edgekit.formats import get_format
    from edgekit.pipeline.artifacts import BuildSettings
    from edgekit.pipeline.context import ModelContext, testcard
    from edgekit.quant.calibration import list_images, split
    from edgekit.quant.presets import PRESETS
    from edgekit.store import Store
    from edgekit.targets.registry import default_preset
    from edgekit.variants.registry import get_spec

    spec = get_spec(model)
    if checkpoint is None and weights is None:
        raise InputError(f"no weights for {model}", hint=f"pass --checkpoint {spec.checkpoint.file_name} or --weights synthetic")
    if encoder_onnx is not None:
        raise InputError("bundles are made from the variant's own encoder", hint="drop --encoder-onnx")
    form = get_format(PLATFORMS[platform][0])
    form.check_precision(precision)
    if precision in form.calibrated and calib is None:
        raise InputError(f"{platform} {precision} is calibrated on real images", hint="pass --calib DIR")
    calib_images = split(list_images(calib), calib_count, 0)[0] if calib else []
    validation = list_images(calib)[:2] if calib else [testcard()]
    preset = "arm" if platform in ("android", "ios") else default_preset("local")
    settings = BuildSettings(validation=validation, calib=calib_images, preset=PRESETS[preset])
    ctx = ModelContext(spec=spec, checkpoint=checkpoint, store=Store(store))
    made = make_bundle(ctx, platform, precision, settings, out)
    files = ", ".join(m["file"] for m in made["models"].values())
    click.echo(f"bundle for {platform} ({precision}) in {out}: {files}, manifest.json, consume.py")
