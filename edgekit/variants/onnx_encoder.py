"""An image encoder that exists only as ONNX (NanoSAM's ResNet18, or any user's own), paired with a registered
variant's prompt encoder and mask decoder.

NanoSAM (NVIDIA-AI-IOT) publishes its distilled ResNet18 image encoder as an ONNX file and uses MobileSAM's
mask decoder behind it; there is no PyTorch checkpoint of the encoder to load. So the encoder is taken as it is:
its inputs and outputs are checked against what the decoder needs (one float image (1, 3, S, S) in, one
(1, C, h, w) embedding out, at the variant's sizes), it runs in ONNX Runtime inside `encode`, and the pipeline
imports it as the FP32 encoder artifact (renamed to the canonical `image` / `image_embeddings`) instead of
exporting one from torch. The same path plugs in any other encoder (`--encoder-onnx` with any variant whose
decoder takes the image embedding alone).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekit.errors import InputError
from edgekit.variants.base import SamModel, VariantSpec

INPUT = "image"
OUTPUT = "image_embeddings"
_HINT = "an image encoder takes one float32 image (1, 3, S, S) and returns the embedding (1, 256, S/16, S/16)"


@dataclass(frozen=True)
class EncoderIO:
    input_name: str
    output_name: str
    input_shape: tuple  # as declared: ints, or strings / None for dynamic axes
    output_shape: tuple


def _dims(value_info) -> tuple:
    dims = []
    for d in value_info.type.tensor_type.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
    return tuple(dims)


def _fits(declared: tuple, wanted: tuple[int, ...]) -> bool:
    """A declared shape fits when its rank is right and every fixed axis equals the wanted size."""
    return len(declared) == len(wanted) and all(not isinstance(d, int) or d == w for d, w in zip(declared, wanted))


def check_encoder_io(model, spec: VariantSpec, source: str) -> EncoderIO:
    """Which input and output of an ONNX ModelProto are the image and the embedding; InputError when the graph
    cannot be the image encoder `spec`'s decoder needs. Pure (reads the proto only)."""
    import onnx

    size = spec.input_size
    want_in = (1, 3, size, size)
    want_out = (1, *spec.embedding_shape)
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise InputError(f"{source}: an image encoder has one input, this graph has {len(inputs)} "
                         f"({', '.join(i.name for i in inputs)})", hint=_HINT)
    image = inputs[0]
    elem = image.type.tensor_type.elem_type
    if elem != onnx.TensorProto.FLOAT:
        raise InputError(f"{source}: input {image.name!r} is {onnx.TensorProto.DataType.Name(elem)}, not FLOAT",
                         hint="give the FP32 encoder; edgekit quantizes it itself (`--precision int8`)")
    if not _fits(_dims(image), want_in):
        raise InputError(f"{source}: input {image.name!r} has shape {list(_dims(image))}; {spec.name} feeds "
                         f"{list(want_in)}", hint=f"export the encoder at {size}x{size} ({_HINT})")
    outputs = list(model.graph.output)
    named = [o for o in outputs if o.name == OUTPUT]
    candidates = named or [o for o in outputs if _fits(_dims(o), want_out)]
    if len(candidates) != 1:
        listed = ", ".join(f"{o.name} {list(_dims(o))}" for o in outputs)
        raise InputError(f"{source}: no single output is the image embedding {list(want_out)} (outputs: {listed})",
                         hint=f"name the embedding output {OUTPUT!r}; {_HINT}")
    out = candidates[0]
    if not _fits(_dims(out), want_out):
        raise InputError(f"{source}: output {out.name!r} has shape {list(_dims(out))}; {spec.name}'s decoder takes "
                         f"{list(want_out)}", hint=_HINT)
    return EncoderIO(image.name, out.name, _dims(image), _dims(out))


def load_encoder_proto(path: Path, weights: bool = True):
    """The ModelProto or one InputError that says what is wrong with the file. `weights=False` leaves external
    weight files unread: the interface and the initializers' shapes are all the checks and counts need."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise InputError(f"encoder ONNX not found: {path}", hint="pass the file with --encoder-onnx PATH")
    try:
        return onnx.load(str(path), load_external_data=weights)
    except Exception as exc:  # onnx raises DecodeError, OSError, ValueError... for files that are not models
        raise InputError(f"{path} is not a readable ONNX model ({type(exc).__name__}: {str(exc)[:200]})",
                         hint="pass the .onnx file of the image encoder (and keep its .data file beside it)") from None


def canonical_encoder(model, io: EncoderIO):
    """A copy of the graph whose input is `image` and whose only output is `image_embeddings`, so that every
    later step feeds and reads the encoder the way it does an exported one."""
    import onnx

    rename = {io.input_name: INPUT, io.output_name: OUTPUT}
    taken = {t for n in model.graph.node for t in (*n.input, *n.output)} | {i.name for i in model.graph.initializer}
    clash = sorted((taken - set(rename)) & {INPUT, OUTPUT})
    if clash:  # another tensor already has a canonical name: renaming would wire the graph differently
        raise InputError(f"the encoder graph uses {', '.join(clash)!s} for an inner tensor",
                         hint=f"rename that tensor, or name the graph's input {INPUT!r} and output {OUTPUT!r}")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name in rename:
                node.input[k] = rename[name]
        for k, name in enumerate(node.output):
            if name in rename:
                node.output[k] = rename[name]
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name in rename:
            value.name = rename[value.name]
    keep = [o for o in graph.output if o.name == OUTPUT]
    del graph.output[:]
    graph.output.extend(keep)
    return out


def count_params(model) -> int:
    """Weights of an ONNX graph: the elements of its floating-point initializers."""
    import onnx

    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE}
    return int(sum(int(np.prod(i.dims)) for i in model.graph.initializer if i.data_type in floats))


class OnnxImageEncoder(nn.Module):
    """`image_encoder` for SamModel.encode: runs the ONNX file in ONNX Runtime (CPU, FP32). It has no
    parameters, so the decoder's checkpoint loads strictly around it."""

    def __init__(self, path: Path, spec: VariantSpec) -> None:
        super().__init__()
        self.path = Path(path)
        proto = load_encoder_proto(self.path, weights=False)
        self.io = check_encoder_io(proto, spec, str(self.path))
        self.params = count_params(proto)
        self._session = None

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self._session is None:
            import onnxruntime as ort

            self._session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        out = self._session.run([self.io.output_name], {self.io.input_name: image.detach().float().numpy()})[0]
        return torch.from_numpy(np.ascontiguousarray(out))


def check_encoder_file(spec: VariantSpec, path: Path | None) -> None:
    """Everything about --encoder-onnx that can be known before any work starts (one InputError if not)."""
    if path is None:
        if spec.external_encoder:
            raise InputError(f"{spec.name} releases its image encoder only as ONNX",
                             hint=f"pass --encoder-onnx PATH ({spec.checkpoint.note or 'the encoder .onnx'})")
        return
    with torch.device("meta"):
        plain = spec.build().plain_encoder
    if not plain:
        _not_plain(spec)
    check_encoder_io(load_encoder_proto(Path(path), weights=False), spec, str(path))


def _not_plain(spec: VariantSpec) -> None:
    raise InputError(f"{spec.name}'s decoder takes more than the image embedding (its encoder also feeds "
                     "high-resolution features), so an ONNX image encoder cannot stand in for it",
                     hint="use --encoder-onnx with a SAM-style variant whose decoder takes the embedding alone "
                          "(e.g. -m nanosam, -m mobilesam, -m efficientvit-sam-l0)")


def attach_onnx_encoder(model: SamModel, spec: VariantSpec, path: Path) -> SamModel:
    """Replace the model's image encoder with the ONNX one (before its weights are loaded)."""
    if not model.plain_encoder:
        _not_plain(spec)
    model.image_encoder = OnnxImageEncoder(path, spec)
    return model
