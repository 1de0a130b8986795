"""The `<artifact>.json` written beside every exported or quantized file: what it is and where it came from,
so `edgekit quantize` and `edgekit report` can pick up a folder that `edgekit export` wrote."""
from __future__ import annotations

import json
from pathlib import Path

from edgekit.errors import InputError
from edgekit.pipeline.artifacts import Artifact
from edgekit.pipeline.context import ModelContext
from edgekit.store import Store


def _stem(path: Path) -> str:
    """`mobilesam.encoder.int8.tflite` -> `mobilesam.encoder.int8` (the format's suffix off)."""
    return path.name[: -len(path.suffix)] if path.suffix else path.name


def sidecar_path(artifact_path: Path) -> Path:
    return artifact_path.with_name(_stem(artifact_path) + ".json")


def publish(ctx: ModelContext, artifact: Artifact, out: Path) -> list[Path]:
    """Link the artifact (+ external data) into `out` with its layer map and sidecar; returns the paths."""
    from edgekit.pipeline.deploy import _link

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for f in artifact.files():
        _link(f, out / f.name)
        written.append(out / f.name)
    layers = out / (_stem(out / artifact.name) + ".layers.json")
    _link(artifact.entry.path(artifact.root, "layer_map.json"), layers)
    reference = artifact.entry.path(artifact.root, "reference.npz")
    if reference.is_file():  # a format this machine cannot run (Core ML) ships torch's outputs for its inputs
        for side, name in ((reference, "reference.npz"), (artifact.inputs, "inputs.npz")):
            _link(side, out / f"{_stem(out / artifact.name)}.{name}")
            written.append(out / f"{_stem(out / artifact.name)}.{name}")
    info = {"schema": "edgekit.artifact/1", "model": ctx.spec.name, "part": artifact.part, "precision": artifact.precision,
            "format": artifact.format, "file": artifact.name, "layer_map": layers.name,
            "weights": {"kind": "synthetic" if ctx.synthetic else "checkpoint",
                        "path": None if ctx.checkpoint is None else str(Path(ctx.checkpoint).resolve()),
                        "encoder_onnx": None if ctx.encoder_onnx is None else str(Path(ctx.encoder_onnx).resolve())},
            "store": {"root": str(ctx.store.root.resolve()), "entry": artifact.entry.id}, "details": artifact.info}
    side = sidecar_path(out / artifact.name)
    side.write_text(json.dumps(info, indent=1))
    return [*written, layers, side]


def load(artifact_path: Path) -> tuple[ModelContext, Artifact]:
    """The context and store artifact behind a published artifact file (any format)."""
    from edgekit.variants.registry import get_spec

    side = sidecar_path(artifact_path)
    if not side.is_file():
        raise InputError(f"{artifact_path} has no {side.name} beside it",
                         hint="quantize files written by `edgekit export` (it writes that description)")
    info = json.loads(side.read_text())
    store = Store(Path(info["store"]["root"]))
    entry = store.lookup(info["store"]["entry"])
    if entry is None:
        raise InputError(f"the artifact store no longer holds {artifact_path.name}", hint="run `edgekit export` again")
    checkpoint = info["weights"]["path"]
    encoder_onnx = info["weights"].get("encoder_onnx")
    ctx = ModelContext(spec=get_spec(info["model"]), checkpoint=Path(checkpoint) if checkpoint else None, store=store,
                       encoder_onnx=Path(encoder_onnx) if encoder_onnx else None)
    return ctx, Artifact(info["part"], info["precision"], entry, store.root, format=info.get("format", "onnx"))
