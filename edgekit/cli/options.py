"""Options and value parsers that several commands share, so they read and fail the same way everywhere."""
from __future__ import annotations

from pathlib import Path

import click

from edgekit.errors import InputError


def model_option(**kw) -> "callable":
    return click.option("--model", "-m", required=True, metavar="NAME", help="Registered variant (see `edgekit models`).", **kw)


def encoder_onnx_option(func: "callable") -> "callable":
    return click.option("--encoder-onnx", type=click.Path(path_type=Path), default=None, metavar="PATH",
                        help="An image encoder as ONNX (NanoSAM's resnet18_image_encoder.onnx, or your own) in place "
                             "of the variant's: one image (1,3,S,S) in, the embedding (1,256,S/16,S/16) out. "
                             "Required by -m nanosam.")(func)


def weights_options(func: "callable") -> "callable":
    func = encoder_onnx_option(func)
    func = click.option("--weights", type=click.Choice(["synthetic"]), default=None,
                        help="Deterministic synthetic weights instead of a checkpoint: for latency work only, "
                             "outputs mean nothing.")(func)
    func = click.option("--checkpoint", "-c", type=click.Path(path_type=Path), default=None, metavar="PATH",
                        help="The official release file (.pt/.pth), loaded strictly with weights_only=True.")(func)
    return func


def parse_numbers(text: str, what: str, counts: tuple[int, ...], example: str) -> list[float]:
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise InputError(f"cannot read {what} {text!r}", hint=f"write it as {example}") from None
    if len(values) not in counts:
        raise InputError(f"{what} {text!r} has {len(values)} numbers", hint=f"write it as {example}")
    return values


def parse_point(text: str) -> tuple[float, float, int]:
    """'X,Y' (foreground) or 'X,Y,LABEL' with LABEL 1 (foreground) or 0 (background)."""
    values = parse_numbers(text, "point", (2, 3), "X,Y or X,Y,LABEL (e.g. 400,300 or 120,80,0)")
    label = 1 if len(values) == 2 else values[2]
    if label not in (0, 1):
        raise InputError(f"point {text!r} has label {label:g}", hint="labels are 1 (foreground) or 0 (background)")
    return values[0], values[1], int(label)


def parse_box(text: str) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = parse_numbers(text, "box", (4,), "X0,Y0,X1,Y1 (e.g. 50,40,400,380)")
    return x0, y0, x1, y1
