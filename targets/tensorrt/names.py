"""What kind of engine layer a TensorRT row is, read from its name alone, and TensorRT's version codes.

TensorRT names engine layers after what the builder did, not after ONNX nodes, so the name is the only clue
that survives in every output (text profile, JSON profile, names-only layer info). Forms seen in real files:
- `Reformatting CopyNode for Input Tensor 0 to <layer>`: a format/precision conversion the builder inserted;
- `{ForeignNode[first...last]}`: a Myelin (or DLA) island; its inner ops have no separate time (TensorRT#4110);
- `__myl_MoveMeanSub..._myl98_0`, `__mye59_0_myl0_0`, `node_conv2d_myl0_1`: kernels Myelin generated;
- `[HostToDeviceCopy 0]`: a DMA row (8.5 Jetson text profile);
- `PWN(...)`: a pointwise fusion; `A + B + C`: fused layers; `X || Y`: a horizontal (parallel) fusion.
"""
from __future__ import annotations

import re

_MYELIN_KERNEL = re.compile(r"(?:^__myl_|^__mye|_myl\d+_\d+$)")
_DMA = re.compile(r"^\[(?:HostToDevice|DeviceToHost|DeviceToDevice)Copy \d+\]$")


def layer_kind(name: str) -> str:
    """One of: reformat, myelin_island, myelin_kernel, dma, pointwise, parallel, fused, layer."""
    if name.startswith("Reformatting CopyNode"):
        return "reformat"
    if name.startswith("{ForeignNode["):
        return "myelin_island"
    if _MYELIN_KERNEL.search(name):
        return "myelin_kernel"
    if _DMA.match(name):
        return "dma"
    if name.startswith("PWN("):
        return "pointwise"
    if " || " in name:
        return "parallel"
    if " + " in name:
        return "fused"
    return "layer"


def decode_version(code: str) -> str | None:
    """TensorRT's packed version code as a dotted version.

    8.x packs major*1000 + minor*100 + patch (`8001` = 8.0.1, `8502` = 8.5.2); from 10.0 the packing widened to
    major*10000 + minor*100 + patch (`101601` = 10.16.1). `TensorRT version:` lines in 8.0 print the code too,
    later versions the dotted form, which passes through unchanged.
    """
    code = code.strip()
    if re.fullmatch(r"\d+(?:\.\d+){1,3}", code):
        return code
    if not re.fullmatch(r"\d{4,7}", code):
        return None
    value = int(code)
    if value >= 100000:
        return f"{value // 10000}.{value // 100 % 100}.{value % 100}"
    return f"{value // 1000}.{value // 100 % 10}.{value % 100}"


def onnx_layers(metadata: str) -> list[str]:
    """ONNX node names from a TRT 10 layer's `Metadata` (`[ONNX Layer: a]\\x1e[ONNX Layer: b]`; may be empty).

    This is the only reliable link from an engine layer back to the ONNX graph. Fused layers separate their
    nodes with U+001E; Myelin kernels with U+001F (`node_linear_myl4_0`: `[ONNX Layer: node_linear]\\x1f[ONNX
    Layer: node_relu_2]` in the TRT 10.16 capture).
    """
    out = []
    for piece in re.split("[\x1e\x1f]", metadata):
        m = re.fullmatch(r"\s*\[ONNX Layer: (.*)\]\s*", piece)
        if m:
            out.append(m.group(1))
    return out
