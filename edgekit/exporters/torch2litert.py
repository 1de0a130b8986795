"""torch module -> one .tflite file with litert-torch, with named signatures.

- The encoder: one signature, `image` in, the variant's features out by name (`image_embeddings`, ...).
- The decoder: one signature per prompt count in POINT_COUNTS (`points_2`, `points_4`, ...), because LiteRT has
  no real dynamic shapes; a prompt is padded to the next count with points labelled -1, as SAM pads a point
  prompt. Inputs are named as in the ONNX decoder (`image_embeddings`, `point_coords`, `point_labels`,
  `mask_input`, `has_mask_input`), outputs too (`low_res_masks`, `iou_predictions`, ...). The signatures share
  one copy of the weights. The first signature is the one devices time (the smallest: one point + SAM's pad).

litert-torch prints progress and the TFLite converter logs to the process's stderr; both are captured into the
error when conversion fails (with the op it names), and dropped when it works.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from edgekit.errors import ValidationError
from edgekit.exporters.graphs import DecoderGraph, EncoderGraph

POINT_COUNTS = (2, 4, 8, 16)  # decoder signatures: 1 point + pad or a box; up to 16 points
_OP = re.compile(r"\b((?:aten|tfl|stablehlo|torch\.ops\.\w+)\.[A-Za-z_][\w.]*)")


class LiteRTEncoder(nn.Module):
    """image -> {feature name: tensor}; holds the EncoderGraph as `.net` (the layer map strips that prefix;
    `graph` would collide with torch.fx's GraphModule.graph)."""

    def __init__(self, graph: EncoderGraph) -> None:
        super().__init__()
        self.net = graph

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(self.net.feature_names, self.net(image)))


class LiteRTDecoder(nn.Module):
    """Named decoder inputs (keyword arguments, which become the signature's input names) -> named outputs."""

    def __init__(self, graph: DecoderGraph, input_names: tuple[str, ...]) -> None:
        super().__init__()
        self.net = graph
        self.input_names = input_names

    def forward(self, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.net(*(inputs[name] for name in self.input_names))
        names = ("low_res_masks", "iou_predictions", *self.net.extra_outputs)
        return dict(zip(names, out))


@dataclass(frozen=True)
class LiteRTExport:
    path: Path
    signatures: tuple[str, ...]
    seconds: float
    litert_torch: str


@contextlib.contextmanager
def _captured_stdio() -> Iterator[Path]:
    """fd-level capture of stdout and stderr (the converter's C++ logs bypass sys.stderr)."""
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.NamedTemporaryFile(prefix="edgekit-litert-", suffix=".log", delete=False) as log:
        saved = os.dup(1), os.dup(2)
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            yield Path(log.name)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def failing_op(text: str) -> str | None:
    """The first op a conversion error names (`aten.upsample_bicubic2d`, `tfl.gelu`), if any."""
    match = _OP.search(text)
    return match.group(1) if match else None


def convert(signatures: list[tuple[str, nn.Module, dict[str, torch.Tensor]]], path: Path, what: str) -> LiteRTExport:
    """Convert [(signature name, module, sample kwargs)] into one .tflite at `path` (written last)."""
    import litert_torch

    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _captured_stdio() as log:
        try:
            # Not under no_grad / inference_mode: torch.export lifts parameters itself and fails on them there.
            converter = None
            for name, module, kwargs in signatures:
                converter = (litert_torch.signature(name, module.eval(), sample_kwargs=kwargs) if converter is None
                             else converter.signature(name, module.eval(), sample_kwargs=kwargs))
            staged = path.with_name(f".{path.name}.part")
            converter.convert().export(str(staged))
            error = None
        except Exception as exc:  # any converter failure becomes one error naming the op
            error = exc
    text = log.read_text(errors="replace")
    log.unlink(missing_ok=True)
    if error is not None:
        detail = f"{type(error).__name__}: {error}"
        op = failing_op(detail) or failing_op(text)
        tail = "\n".join(line for line in text.splitlines()[-8:] if line.strip())
        raise ValidationError(
            f"{what}: litert-torch cannot convert it" + (f" (the failing op: {op})" if op else "")
            + f"\n{detail.splitlines()[0][:500]}" + (f"\n{tail}" if tail else ""),
            hint="use --format onnx for this variant (`edgekit models` lists the formats each converts to)")
    os.replace(staged, path)
    return LiteRTExport(path, tuple(name for name, _, _ in signatures), time.perf_counter() - started,
                        getattr(litert_torch, "__version__", "?"))
