"""The FP32 encoder artifact of an external ONNX image encoder (NanoSAM's, or a user's own): imported, not exported.

There is no torch model to validate against, so validation proves two things instead: the imported copy (input
and output renamed to `image` / `image_embeddings`) computes exactly what the user's file computes on real images
(max abs 0), and its output has the shape the decoder takes and is finite. The layer map comes from the node
names (legacy torch exports spell module scopes in them), under `image_encoder.` like an exported encoder's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from edgekit.errors import ValidationError
from edgekit.exporters.layer_map import TOP_LEVEL, LayerMap, build_layer_map
from edgekit.pipeline.context import ModelContext
from edgekit.quant.calibration import CalibImage, load_inputs


def _prefixed(raw: LayerMap) -> LayerMap:
    def put(module: str) -> str:
        return "image_encoder" if module in ("", TOP_LEVEL) else f"image_encoder.{module}"

    return LayerMap(nodes={k: put(v) for k, v in raw.nodes.items()}, tensors={k: put(v) for k, v in raw.tensors.items()})


def import_encoder(ctx: ModelContext, images: Sequence[CalibImage] | Sequence[np.ndarray], folder: Path,
                   name: str) -> dict:
    """Write the imported encoder `name` (with its layer map and inputs) into `folder`, checked on `images`
    (files, or RGB arrays); returns its info.json. Its identity in the store is the file's sha256, which the
    model context's weights id carries."""
    from edgekit.exporters.torch2onnx import save_model
    from edgekit.exporters.validate import ValidationReport, ort_session
    from edgekit.preprocess import preprocess_image
    from edgekit.variants.onnx_encoder import OUTPUT, canonical_encoder, check_encoder_io, count_params, load_encoder_proto

    assert ctx.encoder_onnx is not None
    source = ctx.encoder_onnx
    proto = load_encoder_proto(source)
    io = check_encoder_io(proto, ctx.spec, str(source))
    xs = [load_inputs(ctx.spec.preprocess, im)[0] if isinstance(im, CalibImage)
          else preprocess_image(ctx.spec.preprocess, im)[0] for im in images]
    save_model(canonical_encoder(proto, io), folder / name)
    theirs, ours = ort_session(source), ort_session(folder / name)
    worst = 0.0
    for x in xs:
        ref = theirs.run([io.output_name], {io.input_name: x})[0]
        got = ours.run([OUTPUT], {"image": x})[0]
        want = (1, *ctx.spec.embedding_shape)
        if got.shape != want or not np.all(np.isfinite(got)):
            raise ValidationError(f"{source}: on a real image the encoder returned {list(got.shape)}"
                                  f"{'' if np.all(np.isfinite(got)) else ' with NaN/Inf values'}; "
                                  f"{ctx.spec.name}'s decoder takes {list(want)}",
                                  hint="check the encoder's input size and preprocessing")
        worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - ref))))
    check = ValidationReport("encoder", len(xs), {OUTPUT: worst}, tolerance=0.0)
    if not check.passed:
        raise ValidationError(f"the imported copy of {source} differs from it by {worst:g}",
                              hint="report this: renaming inputs and outputs must not change the graph")
    raw_map = build_layer_map(proto)
    layer_map = _prefixed(LayerMap(
        nodes=raw_map.nodes,
        tensors={(OUTPUT if k == io.output_name else "image" if k == io.input_name else k): v
                 for k, v in raw_map.tensors.items()}))
    layer_map.write(folder / "layer_map.json")
    np.savez(folder / "inputs.npz", image=xs[0])
    return {"exporter": "external", "source": str(source), "source_sha256": ctx.encoder_onnx_sha256,
            "opset": max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=None),
            "validation": check.to_dict(), "nodes": len(layer_map.nodes), "params": count_params(proto)}
