"""`edgekit predict`: one image, some prompts, the official masks as an .npz (and an overlay PNG)."""
from __future__ import annotations

from pathlib import Path

import click

from edgekit.cli.options import model_option, parse_box, parse_point, weights_options
from edgekit.errors import InputError


@click.command("predict")
@model_option()
@weights_options
@click.option("--image", "-i", required=True, type=click.Path(path_type=Path), help="Image file (JPEG, PNG, ...).")
@click.option("--point", "-p", "points", multiple=True, metavar="X,Y[,LABEL]",
              help="A prompt point in image pixels; LABEL 1 = foreground (default), 0 = background. Repeatable.")
@click.option("--box", "-b", default=None, metavar="X0,Y0,X1,Y1", help="A box prompt in image pixels.")
@click.option("--multimask/--single-mask", default=True, show_default=True,
              help="Three candidate masks (ambiguous prompts) or one.")
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), metavar="OUT.npz",
              help="Output .npz: image_embeddings, low_res_masks, iou_predictions, masks.")
@click.option("--overlay", type=click.Path(path_type=Path), default=None, metavar="OUT.png",
              help="Also write a PNG with the best mask over the image.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of text.")
def predict(model: str, checkpoint: Path | None, weights: str | None, encoder_onnx: Path | None, image: Path, points: tuple[str, ...],
            box: str | None, multimask: bool, out: Path, overlay: Path | None, as_json: bool) -> None:
    """Segment IMAGE with a variant, exactly as its official predictor does.

    \b
    Examples:
      edgekit predict -m mobilesam -c mobile_sam.pt -i dog.jpg -p 400,300 -o dog.npz --overlay dog.png
      edgekit predict -m sam-vit-b -c sam_vit_b_01ec64.pth -i truck.jpg -b 75,275,1725,850 --single-mask -o truck.npz
      edgekit predict -m mobilesam --weights synthetic -i dog.jpg -p 400,300 -p 100,100,0 -o /tmp/x.npz
      edgekit predict -m nanosam --encoder-onnx resnet18_image_encoder.onnx -c mobile_sam.pt -i dog.jpg -p 400,300 -o d.npz
    """
    import json

    import numpy as np

    from edgekit.io import commit_all, read_rgb
    from edgekit.progress import Steps

    from edgekit.variants.registry import get_spec

    from edgekit.variants.onnx_encoder import check_encoder_file

    check_encoder_file(get_spec(model), encoder_onnx)  # an unknown name fails first, with the list of known ones
    if out.suffix != ".npz":
        raise InputError(f"--out {out} must end in .npz", hint=f"use --out {out.with_suffix('.npz')}")
    if overlay is not None and overlay.suffix.lower() != ".png":
        raise InputError(f"--overlay {overlay} must end in .png", hint=f"use --overlay {overlay.with_suffix('.png')}")
    parsed = [parse_point(p) for p in points]
    box_xyxy = parse_box(box) if box else None
    if not parsed and box_xyxy is None:
        raise InputError("no prompt given", hint="add --point X,Y and/or --box X0,Y0,X1,Y1")
    rgb = read_rgb(image)
    coords = np.array([[x, y] for x, y, _ in parsed]) if parsed else None
    labels = np.array([lab for _, _, lab in parsed]) if parsed else None
    from edgekit.predictor import check_prompts_inside

    check_prompts_inside(coords, None if box_xyxy is None else np.array(box_xyxy), rgb.shape[:2])  # before the model loads

    with Steps(["load model", "encode image", "decode prompts"], enabled=not as_json) as steps:
        from edgekit.predictor import load_predictor

        predictor = load_predictor(model, checkpoint=checkpoint, weights=weights, encoder_onnx=encoder_onnx)
        steps.next()
        predictor.set_image(rgb)
        steps.next()
        result = predictor.predict(point_coords=coords, point_labels=labels, box=box_xyxy, multimask_output=multimask)
        steps.next()

    arrays = {
        "image_embeddings": predictor.get_image_embedding().astype(np.float32),
        "low_res_masks": result.low_res_masks[None].astype(np.float32),
        "iou_predictions": result.iou_predictions[None].astype(np.float32),
        "masks": result.masks[None].astype(bool),
        **{k: np.asarray(v)[None] for k, v in result.extras.items()},
    }
    writers = {out: lambda tmp: np.savez_compressed(tmp.open("wb"), **arrays)}
    if overlay is not None:
        from edgekit.overlay import render_overlay

        best = int(np.argmax(result.iou_predictions))
        picture = render_overlay(rgb, result.masks[best], coords, labels, None if box_xyxy is None else np.array(box_xyxy))
        writers[overlay] = lambda tmp: picture.save(tmp, format="PNG")
    commit_all(writers)

    summary = {"model": model, "weights": "synthetic" if weights else str(checkpoint), "image": str(image),
               "image_hw": list(rgb.shape[:2]), "iou_predictions": [round(float(v), 4) for v in result.iou_predictions],
               "mask_fractions": [round(float(m.mean()), 4) for m in result.masks], "out": str(out),
               "overlay": str(overlay) if overlay else None}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        for k, (iou, frac) in enumerate(zip(summary["iou_predictions"], summary["mask_fractions"])):
            click.echo(f"mask {k}: predicted IoU {iou:.3f}, covers {frac:.1%} of the image")
        click.echo(f"wrote {out}" + (f" and {overlay}" if overlay else ""))
