"""`edgekit export`: a variant's encoder and/or decoder in one format at one precision, validated, with layer maps."""
from __future__ import annotations

from pathlib import Path

import click

from edgekit.cli.options import model_option, weights_options
from edgekit.quant.presets import PRESETS

PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8", "w8a8", "palette6")


@click.command("export")
@model_option()
@weights_options
@click.option("--format", "fmt", default="onnx", show_default=True, metavar="FORMAT",
              help="onnx (ONNX Runtime: fp32, int8), litert (.tflite for LiteRT: fp32, fp16, int8-dynamic, int8), "
                   "tensorrt (TensorRT-ready ONNX: fp32, fp16, int8 QDQ; engines are built on the device by deploy) or "
                   "coreml (.mlpackage for Core ML, iOS 17 / macOS 14: fp16, fp32, int8 weights, w8a8, palette6).")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="fp16: float16 weights; int8-dynamic: int8 weights, activations quantized at run time; int8: "
                   "static int8 calibrated on --calib (Core ML: int8 weights, fp16 activations); w8a8: Core ML int8 "
                   "weights and activations (calibrated on --calib); palette6: Core ML 6-bit palettized weights. "
                   "A format that cannot make a precision says which it can.")
@click.option("--calib", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Real images to calibrate static int8 on (its first 32; also validates the FP32 export).")
@click.option("--calib-count", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--calib-method", type=click.Choice(["minmax", "percentile", "entropy"]), default="minmax", show_default=True,
              help="ONNX int8 range estimation (LiteRT int8 uses min/max).")
@click.option("--preset", type=click.Choice(list(PRESETS)), default=None,
              help="ONNX int8 preset (default: x86 or arm from this CPU).")
@click.option("--part", type=click.Choice(["encoder", "decoder", "all"]), default="all", show_default=True)
@click.option("--images", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Real images to validate the export on (default: --calib's, else a generated test card).")
@click.option("--exporter", type=click.Choice(["dynamo", "legacy"]), default="dynamo", show_default=True,
              help="ONNX only: torch's exporter.")
@click.option("--coreml-gelu", type=click.Choice(["exact", "tanh"]), default=None,
              help="Core ML only: GELU as erf (exact, the default; the Neural Engine lacks erf) or the tanh "
                   "approximation (runs on the Neural Engine; its cost against exact is measured into the .json).")
@click.option("--store", type=click.Path(path_type=Path), default=None, help="Artifact store (default ~/.cache/edgekit/store).")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True, help="Folder for the artifacts.")
def export(model: str, checkpoint: Path | None, weights: str | None, encoder_onnx: Path | None, fmt: str,
           precision: str, calib: Path | None, calib_count: int, calib_method: str, preset: str | None, part: str,
           images: Path | None, exporter: str, coreml_gelu: str | None, store: Path | None, out: Path) -> None:
    """Export to a deployable format and check it numerically against torch on real images (FP32: 1e-4 on
    embeddings, 1e-3 on logits). Files are named <model>.<part>.<precision>.<suffix>; beside each: a layer map
    (runtime op -> module path) and a .json describing it, which `edgekit quantize` reads.

    \b
    ONNX: opset 18 by torch's dynamo exporter (17 by the legacy one where dynamo fails), simplified.
    LiteRT: litert-torch; the decoder has one signature per prompt count, points_2 / points_4 / points_8 /
      points_16 (LiteRT has no dynamic shapes): pad a prompt to the next count with points labelled -1.
      Inputs are named as in the ONNX decoder. Needs the litert-export extra.
    Core ML: coremltools ML Programs; the decoder's prompt length is enumerated (2, 4, 8, 16 points). Core ML
      cannot run on Linux: each package is checked from its MIL program and ships torch's reference outputs,
      which a Mac compares with (deploy --target mac-apple-silicon). Needs the coreml extra.

    \b
    Examples:
      edgekit export -m mobilesam -c mobile_sam.pt --images photos/ --out exported/
      edgekit export -m efficientvit-sam-l0 --weights synthetic --format litert --out exported/
      edgekit export -m mobilesam -c mobile_sam.pt --format litert --precision int8 --calib photos/ --out int8/
      edgekit export -m mobilesam -c mobile_sam.pt --format coreml --precision fp16 --out coreml/
    """
    from edgekit.errors import InputError
    from edgekit.formats import get_format
    from edgekit.pipeline.artifacts import PARTS, BuildSettings, ensure_artifact
    from edgekit.pipeline.context import ModelContext, testcard
    from edgekit.pipeline.sidecar import publish
    from edgekit.progress import Steps
    from edgekit.quant.calibration import list_images, split
    from edgekit.store import Store
    from edgekit.targets.registry import default_preset
    from edgekit.variants.registry import get_spec

    spec = get_spec(model)
    form = get_format(fmt)
    form.check_precision(precision)
    if checkpoint is None and weights is None:
        raise InputError(f"no weights for {model}",
                         hint=f"pass --checkpoint {spec.checkpoint.file_name} or --weights synthetic")
    refusal = form.supports(spec)
    if refusal:
        from edgekit.errors import ValidationError

        raise ValidationError(f"{model} does not convert to {form.name}: {refusal}",
                              hint="pick another --format (`edgekit models` shows each variant's formats)")
    if coreml_gelu is not None and form.name != "coreml":
        raise InputError(f"--coreml-gelu sets how Core ML packages compute GELU, and --format {form.name} makes none",
                         hint="add --format coreml, or drop --coreml-gelu")
    if encoder_onnx is not None and form.name != "onnx":
        raise InputError("--encoder-onnx works with --format onnx only", hint="drop --format")
    problem = form.available()
    if problem:
        raise InputError(f"cannot make {form.name} artifacts here: {problem}")
    calibrated = precision in form.calibrated
    if calibrated and calib is None:
        raise InputError(f"{form.name} {precision} is calibrated on real images", hint="pass --calib DIR")
    from edgekit.variants.onnx_encoder import check_encoder_file

    check_encoder_file(spec, encoder_onnx)
    calib_images = split(list_images(calib), calib_count, 0)[0] if calib else []
    source = images or calib
    validation = list_images(source)[:2] if source else [testcard()]
    settings = BuildSettings(validation=validation, calib=calib_images,
                             preset=PRESETS[preset or default_preset("local")], method=calib_method,
                             options={"exporter": exporter, **({"coreml_gelu": coreml_gelu} if coreml_gelu else {})})
    ctx = ModelContext(spec=spec, checkpoint=checkpoint, store=Store(store), encoder_onnx=encoder_onnx)
    parts = PARTS if part == "all" else (part,)
    with Steps([f"export {p} {precision}" for p in parts]) as bar:
        for p in parts:
            artifact = ensure_artifact(ctx, form, p, precision, settings)
            paths = publish(ctx, artifact, out)
            click.echo(_describe(artifact), err=False)
            bar.next()
    click.echo(f"wrote {len(paths)} files per part into {out}")


def _describe(artifact) -> str:
    info = artifact.info
    reused = " (reused)" if artifact.reused else ""
    check = info.get("validation")
    mil = info.get("mil")
    if mil:  # Core ML: checked from its MIL program (nothing here can run it)
        ops = sum(mil["ops"].values())
        dq = info.get("dequantize_check")
        extra = f", weights within their step ({dq['checked']} checked)" if dq else ""
        warn = info.get("ane_warnings") or []
        return (f"{artifact.name}: coremltools {info.get('coremltools', '?')}, {ops} MIL ops, "
                f"{mil['package_bytes'] / 1e6:.1f} MB{extra}, {len(warn)} Neural Engine warning(s){reused}")
    if check:
        worst = max(check["max_abs"].values()) if check["max_abs"] else 0.0
        against = "the given ONNX" if info.get("exporter") == "external" else "torch"
        how = f"{info['exporter']} exporter" + (f", opset {info['opset']}" if info.get("opset") else "")
        return (f"{artifact.name}: {how}, max |{artifact.format} - {against}| {worst:.2e} on {check['samples']} "
                f"sample(s){reused}")
    return f"{artifact.name}: {info.get('exporter', artifact.format)} from the fp32 artifact{reused}"
