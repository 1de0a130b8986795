"""torch module -> one ONNX file (opset 18 via the dynamo exporter, 17 via the legacy one), simplified.

Exporter policy: torch 2.13's dynamo exporter first, because it records every node's module scope (the layer
map is built from it); the legacy TorchScript exporter is the fallback for graphs dynamo cannot take (Hiera's
5-D windowed attention) and names nodes by scope instead. Either way the graph goes through onnxslim, and
is written as ONE file when it fits in protobuf's 2 GiB, else as one .onnx plus one `<name>.data` file.
"""
from __future__ import annotations

import inspect
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch

from edgekit.errors import ValidationError
from edgekit.exporters.graphs import MAX_POINTS, GraphSignature
from edgekit.exporters.layer_map import LayerMap, build_layer_map
from edgekit.exporters.rewrite import canonical_gelu

log = logging.getLogger(__name__)
# torch's exporter warns on every export that torchvision's ops cannot be registered; SAM graphs use none of
# them, and four lines per export bury the progress output.
logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)

DYNAMO_OPSET = 18  # the dynamo exporter's lowest native opset; converting down to 17 drops the scope metadata
LEGACY_OPSET = 17
# Part of every export's identity in the artifact store: bump it when the export recipe changes (exporter
# settings, rewrites), so stores built by older code do not hand back stale graphs.
EXPORT_REVISION = 2
_SINGLE_FILE_LIMIT = 1_800_000_000  # bytes of weights kept inside the .onnx (protobuf's hard limit is 2 GiB)


@dataclass(frozen=True)
class OnnxExport:
    path: Path
    exporter: str  # "dynamo" | "legacy"
    opset: int
    external_data: Path | None
    layer_map: LayerMap  # ONNX node / tensor name -> module path
    dynamo_error: str | None = None  # why dynamo was not used, when it was not


def _dynamo_export(module: torch.nn.Module, args: tuple, sig: GraphSignature, path: Path) -> None:
    dims = {}
    shapes = []
    for name in sig.inputs:
        axes = sig.dynamic.get(name, {})
        spec = {}
        for axis, symbol in axes.items():
            dims.setdefault(symbol, torch.export.Dim(symbol, min=1, max=MAX_POINTS))
            spec[axis] = dims[symbol]
        shapes.append(spec or None)
    dynamic_shapes = tuple(shapes) if dims else None
    if dynamic_shapes and any(p.kind is p.VAR_POSITIONAL for p in inspect.signature(module.forward).parameters.values()):
        dynamic_shapes = (dynamic_shapes,)  # forward(*args): torch.export sees one packed argument
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), dynamo=True, opset_version=DYNAMO_OPSET, input_names=list(sig.inputs),
                          output_names=list(sig.outputs), dynamic_shapes=dynamic_shapes,
                          external_data=True, verbose=False, report=False, optimize=True)


def _summary(exc: Exception) -> str:
    """The line that says what went wrong (torch.onnx wraps the cause in a page of advice)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    cause = next((line for line in lines if line.startswith("<class ")), lines[0] if lines else "")
    return f"{type(exc).__name__}: {cause[:400]}"


def _legacy_export(module: torch.nn.Module, args: tuple, sig: GraphSignature, path: Path) -> None:
    dynamic_axes = {name: dict(axes) for name, axes in sig.dynamic.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), dynamo=False, opset_version=LEGACY_OPSET,
                          input_names=list(sig.inputs), output_names=list(sig.outputs),
                          dynamic_axes=dynamic_axes or None, do_constant_folding=True)


def _weights_bytes(model: onnx.ModelProto) -> int:
    return sum(len(t.raw_data) for t in model.graph.initializer)


def save_model(model: onnx.ModelProto, path: Path) -> Path | None:
    """Write `model` to `path` following the one-file policy; returns the external data file if any."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = path.with_name(path.name + ".data")
    if data.exists():
        data.unlink()
    if _weights_bytes(model) < _SINGLE_FILE_LIMIT:
        onnx.save_model(model, str(path))
        return None
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data.name, size_threshold=1024)
    return data


def export_onnx(module: torch.nn.Module, args: tuple, sig: GraphSignature, path: Path, *,
                prefer: str = "dynamo", slim: bool = True) -> OnnxExport:
    """Export `module(*args)` to `path` (written last, so a failure leaves nothing behind)."""
    module = module.eval()
    dynamo_error = None
    with tempfile.TemporaryDirectory(prefix="edgekit-export-") as tmp:
        raw = Path(tmp) / "raw.onnx"
        exporter, opset = "legacy", LEGACY_OPSET
        if prefer == "dynamo":
            try:
                with torch.no_grad():
                    _dynamo_export(module, args, sig, raw)
                exporter, opset = "dynamo", DYNAMO_OPSET
            except Exception as exc:  # any dynamo failure: fall back, and say why in the result
                dynamo_error = _summary(exc)
                log.info("dynamo export failed (%s); using the legacy exporter", dynamo_error)
        if exporter == "legacy":
            with torch.no_grad():
                _legacy_export(module, args, sig, raw)
        model = onnx.load(str(raw), load_external_data=True)
    layer_map = build_layer_map(model)
    if slim:
        model = _slim(model)
        layer_map = build_layer_map(model, known=layer_map)
    canonical_gelu(model)  # exact; lets runtimes fuse GELU (see rewrite.py)
    # Written under the final names in a sibling temporary folder, then moved: a failure leaves nothing.
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as staging:
        staged = Path(staging) / path.name
        data = save_model(model, staged)
        final_data = None
        if data is not None:
            final_data = path.with_name(data.name)
            os.replace(data, final_data)
        os.replace(staged, path)
    return OnnxExport(path=path, exporter=exporter, opset=opset, external_data=final_data,
                      layer_map=layer_map, dynamo_error=dynamo_error)


def _slim(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnxslim's constant folding and dead-code removal; it keeps node names and their metadata."""
    import onnxslim

    try:
        slimmed = onnxslim.slim(model)
    except Exception as exc:  # a graph onnxslim cannot simplify is still a valid export
        log.warning("onnxslim failed (%s); keeping the unsimplified graph", exc)
        return model
    if slimmed is None or len(slimmed.graph.output) != len(model.graph.output):
        raise ValidationError("onnxslim changed the graph's outputs", hint="export with slim=False and report this")
    return slimmed
