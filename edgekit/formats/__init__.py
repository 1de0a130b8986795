"""The export formats, by explicit name: one module each, one line here.

    onnx    ONNX (torch's dynamo exporter), FP32 and static INT8 (QDQ) for ONNX Runtime
    litert  LiteRT .tflite (litert-torch), FP32, FP16 weights, dynamic-range and static INT8, for LiteRT/XNNPACK
    tensorrt  TensorRT-ready ONNX (FP32/FP16 build flags, explicit-quantization INT8 QDQ), engines built on the device
    coreml  Core ML ML Program packages (coremltools): fp16, fp32, int8 weights, W8A8, 6-bit palettes; run on a Mac

Modules are imported on first use (a format's converter can be large: litert-torch brings jax). `register` adds
a format at run time — a plug-in of your own, or a test's toy format — under its own name.
"""
from __future__ import annotations

import importlib

from edgekit.errors import InputError
from edgekit.formats.base import Artifact, Format, HostSession, MakeJob

# name -> "module:attribute" of the Format instance
_BUILTIN: dict[str, str] = {
    "onnx": "edgekit.formats.onnx:FORMAT",
    "litert": "edgekit.formats.litert:FORMAT",
    "tensorrt": "edgekit.formats.tensorrt:FORMAT",
    "coreml": "edgekit.formats.coreml:FORMAT",
}
_loaded: dict[str, Format] = {}


def format_names() -> tuple[str, ...]:
    return tuple(dict.fromkeys([*_BUILTIN, *_loaded]))


def get_format(name: str) -> Format:
    """The format called `name`; an unknown name lists the known ones."""
    if name not in _loaded:
        where = _BUILTIN.get(name)
        if where is None:
            raise InputError(f"unknown format {name!r}", hint="formats: " + ", ".join(format_names()))
        module, _, attr = where.partition(":")
        _loaded[name] = getattr(importlib.import_module(module), attr)
    return _loaded[name]


def format_for_suffix(suffix: str) -> Format:
    """The format whose artifacts end in `suffix` (".onnx", ".tflite")."""
    for name in format_names():
        fmt = get_format(name)
        if fmt.suffix == suffix.lower():
            return fmt
    raise InputError(f"no format makes {suffix} files",
                     hint="formats: " + ", ".join(f"{n} ({get_format(n).suffix})" for n in format_names()))


def register(fmt: Format) -> None:
    """Add (or replace) a format under fmt.name."""
    _loaded[fmt.name] = fmt


def unregister(name: str) -> None:
    _loaded.pop(name, None)


__all__ = ["Artifact", "Format", "HostSession", "MakeJob", "format_names", "get_format", "format_for_suffix",
           "register", "unregister"]
