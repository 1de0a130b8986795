"""`edgekit eval`: mIoU of point and box prompts against ground-truth masks (SA-1B layout), for the eager model or
any artifact edgekit makes, run on this machine."""
from __future__ import annotations

import json
from pathlib import Path

import click

from edgekit.cli.options import model_option, weights_options
from edgekit.quant.presets import PRESETS


@click.command("eval")
@model_option()
@weights_options
@click.option("--data", type=click.Path(path_type=Path), required=True, metavar="DIR",
              help="Ground truth in SA-1B's layout: NAME.jpg + NAME.json (annotations[].segmentation as COCO RLE, "
                   "bbox XYWH, point_coords).")
@click.option("--format", "fmt", default=None, metavar="FORMAT",
              help="Evaluate the artifacts of this format (onnx, litert, ...), made through the store as export makes "
                   "them; default: the PyTorch model itself.")
@click.option("--precision", default="fp32", show_default=True,
              help="The artifacts' precision (with --format): fp32, int8 (needs --calib), fp16, int8-dynamic.")
@click.option("--encoder", "encoder_file", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="An encoder file edgekit wrote (export / deploy output, e.g. a mixed-precision one); with --decoder.")
@click.option("--decoder", "decoder_file", type=click.Path(path_type=Path), default=None, metavar="FILE")
@click.option("--calib", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Calibration images for --precision int8 (the same folder gives the same artifacts as deploy).")
@click.option("--calib-count", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--calib-method", type=click.Choice(["minmax", "percentile", "entropy"]), default="minmax", show_default=True)
@click.option("--preset", type=click.Choice(list(PRESETS)), default=None,
              help="ONNX int8 preset (default: x86 or arm from this CPU).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate the first N images only.")
@click.option("--store", type=click.Path(path_type=Path), default=None, help="Artifact store (default ~/.cache/edgekit/store).")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="Also write the figures as JSON.")
def eval_(model: str, checkpoint: Path | None, weights: str | None, encoder_onnx: Path | None, data: Path,
          fmt: str | None, precision: str, encoder_file: Path | None, decoder_file: Path | None, calib: Path | None,
          calib_count: int, calib_method: str, preset: str | None, limit: int | None, store: Path | None,
          json_out: Path | None) -> None:
    """Measure segmentation accuracy against ground truth: each annotation prompts once with its first point
    (multimask; the candidate with the highest predicted IoU answers, as SAM's own evaluation picks) and once
    with its box (single mask); mIoU is the mean mask IoU at the image's original resolution.

    \b
    Examples:
      edgekit eval -m mobilesam -c tests/data/shapes/mobilesam_shapes.pt --data shapes-eval/
      edgekit eval -m mobilesam -c ckpt.pt --data shapes-eval/ --format onnx --precision int8 --calib photos/
      edgekit eval -m mobilesam -c ckpt.pt --data shapes-eval/ --encoder run/mobilesam.encoder.int8-mixed.onnx \\
          --decoder run/mobilesam.decoder.int8-mixed.onnx
    """
    from edgekit.accuracy.dataset import load_dataset
    from edgekit.accuracy.miou import evaluate
    from edgekit.accuracy.runners import TorchRunner
    from edgekit.errors import InputError
    from edgekit.pipeline.context import ModelContext
    from edgekit.progress import Steps
    from edgekit.store import Store
    from edgekit.variants.registry import get_spec

    spec = get_spec(model)
    if checkpoint is None and weights is None:
        raise InputError(f"no weights for {model}", hint=f"pass --checkpoint {spec.checkpoint.file_name} (accuracy "
                                                         "of synthetic weights means nothing)")
    if (encoder_file is None) != (decoder_file is None):
        raise InputError("--encoder and --decoder go together", hint="give both files of the pair")
    if encoder_file is not None and fmt is not None:
        raise InputError("--encoder/--decoder name the artifacts already", hint="drop --format")
    if json_out is not None:
        from edgekit.io import ensure_writable_dir

        ensure_writable_dir(json_out.parent if str(json_out.parent) else Path("."), "--json")
    dataset = load_dataset(data, limit)
    ctx = ModelContext(spec=spec, checkpoint=checkpoint, store=Store(store), encoder_onnx=encoder_onnx)
    if encoder_file is not None:
        runner = _file_runner(ctx, encoder_file, decoder_file)
    elif fmt is not None:
        runner = _store_runner(ctx, fmt, precision, calib, calib_count, calib_method, preset)
    else:
        if precision != "fp32":
            raise InputError(f"--precision {precision} needs --format", hint="add --format onnx (or litert)")
        runner = TorchRunner(ctx.model)
    with Steps([f"evaluate {runner.label}"]) as bar:
        result = evaluate(runner, spec, ctx.model, dataset, on_image=lambda done, total: bar.detail(f"{done}/{total} images"))
        bar.next()
    result = {"model": model, "weights": ctx.weights_id, "dataset": str(data), "runner": runner.label, **result}
    click.echo(f"{model} ({runner.label}) on {result['images']} images, {result['masks']} masks: "
               f"point mIoU {result['point_miou']:.4f}, box mIoU {result['box_miou']:.4f}")
    if json_out is not None:
        from edgekit.io import commit_all

        commit_all({json_out: lambda p: p.write_text(json.dumps(result, indent=1))})


def _file_runner(ctx, encoder_file: Path, decoder_file: Path):
    from edgekit.accuracy.runners import ArtifactRunner
    from edgekit.errors import InputError
    from edgekit.formats import format_for_suffix

    sessions = []
    for f in (encoder_file, decoder_file):
        if not f.is_file():
            raise InputError(f"artifact not found: {f}", hint="pass a file that export or deploy wrote")
        sessions.append(format_for_suffix(f.suffix).session(f))
    return ArtifactRunner(ctx, sessions[0], sessions[1], f"{encoder_file.name} + {decoder_file.name}")


def _store_runner(ctx, fmt: str, precision: str, calib: Path | None, calib_count: int, calib_method: str,
                  preset: str | None):
    from edgekit.accuracy.runners import artifact_runner
    from edgekit.errors import InputError
    from edgekit.formats import get_format
    from edgekit.pipeline.artifacts import BuildSettings, ensure_artifact
    from edgekit.pipeline.context import testcard
    from edgekit.pipeline.deploy import VALIDATION_IMAGES
    from edgekit.quant.calibration import list_images, split
    from edgekit.targets.registry import default_preset

    form = get_format(fmt)
    form.check_precision(precision)
    problem = form.available()
    if problem:
        raise InputError(f"cannot make {form.name} artifacts here: {problem}")
    if precision in form.calibrated and calib is None:
        raise InputError(f"{form.name} {precision} is calibrated on real images", hint="pass --calib DIR")
    calib_images, held = split(list_images(calib), calib_count, 4) if calib else ([], [])
    # the same validation images deploy uses, so the store hands back deploy's own artifacts
    validation = list(held[:VALIDATION_IMAGES]) if calib else [testcard()]
    settings = BuildSettings(validation=validation, calib=calib_images,
                             preset=PRESETS[preset or default_preset("local")], method=calib_method)
    encoder = ensure_artifact(ctx, form, "encoder", precision, settings)
    decoder = ensure_artifact(ctx, form, "decoder", precision, settings,
                              encoder_fp32=ensure_artifact(ctx, form, "encoder", "fp32", settings))
    return artifact_runner(ctx, encoder, decoder)
