"""What every step of one deploy shares: the variant, its weights' identity, the images, the store."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit import __version__
from edgekit.store import Store, sha256_file, step_id
from edgekit.variants.base import SamModel, VariantSpec

SYNTHETIC_SEED = 0


@dataclass
class StepLog:
    """Named, timed steps (for the report and the progress line)."""

    steps: list[dict] = field(default_factory=list)

    def add(self, name: str, seconds: float, reused: bool) -> None:
        self.steps.append({"name": name, "seconds": round(seconds, 3), "reused": reused})


@dataclass
class ModelContext:
    spec: VariantSpec
    checkpoint: Path | None
    store: Store
    log: StepLog = field(default_factory=StepLog)
    _model: SamModel | None = None
    _weights_id: str | None = None
    _checkpoint_sha256: str | None = None
    _encoder_onnx_sha256: str | None = None
    encoder_onnx: Path | None = None  # an external image encoder (NanoSAM's ONNX release, or a user's own)
    # what a deploy learned about accuracy beyond the fidelity block: "sensitivity", "mixed_precision",
    # "accuracy" (report.json blocks of the same names)
    quality: dict = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        return self.checkpoint is None

    @property
    def weights_id(self) -> str:
        if self._weights_id is None:
            self._weights_id = (f"synthetic-seed{SYNTHETIC_SEED}" if self.checkpoint is None
                                else f"sha256:{self.checkpoint_sha256}")
            if self.encoder_onnx is not None:  # the encoder's bytes are part of what the artifacts are built from
                self._weights_id += f"+encoder-onnx:{self.encoder_onnx_sha256}"
        return self._weights_id

    @property
    def model(self) -> SamModel:
        """Built on first use only: a fully cached deploy never loads the checkpoint."""
        if self._model is None:
            from edgekit.checkpoints import build_variant

            import torch

            started = time.perf_counter()
            # Never as inference tensors, whichever mode the first caller is in: torch.export (LiteRT) traces
            # with autograd on and cannot use parameters made under inference_mode.
            with torch.inference_mode(False):
                self._model = build_variant(self.spec.name, checkpoint=self.checkpoint,
                                            weights="synthetic" if self.checkpoint is None else None,
                                            encoder_onnx=self.encoder_onnx)
            self.log.add("load model", time.perf_counter() - started, False)
        return self._model

    @property
    def checkpoint_sha256(self) -> str | None:
        if self.checkpoint is None:
            return None
        if self._checkpoint_sha256 is None:
            self._checkpoint_sha256 = sha256_file(self.checkpoint)
        return self._checkpoint_sha256

    @property
    def encoder_onnx_sha256(self) -> str | None:
        if self.encoder_onnx is None:
            return None
        if self._encoder_onnx_sha256 is None:
            data = Path(str(self.encoder_onnx) + ".data")  # external data belongs to the encoder's identity too
            self._encoder_onnx_sha256 = sha256_file(self.encoder_onnx) + (sha256_file(data)[:16] if data.exists() else "")
        return self._encoder_onnx_sha256

    def root_id(self) -> str:
        # The model code's version is part of the identity: a fixed variant invalidates old artifacts.
        return step_id(None, "model", {"variant": self.spec.name, "weights": self.weights_id, "edgekit": __version__})


def testcard(size: int = 768) -> np.ndarray:
    """A deterministic RGB picture (gradients, discs, stripes) for validating exports when the user gave no
    images: not a photograph, so it only proves the graph computes the same function as torch."""
    yy, xx = np.mgrid[0:size, 0:size * 3 // 4].astype(np.float32) / size
    img = np.stack([xx * 255, yy * 255, (1 - xx) * 180 + 40], axis=-1)
    for cx, cy, r, color in ((0.2, 0.3, 0.12, (230, 40, 40)), (0.5, 0.6, 0.18, (30, 160, 60)), (0.4, 0.2, 0.08, (250, 250, 250))):
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = color
    img[((yy * 40).astype(int) % 2 == 0) & (xx > 0.65)] *= 0.3
    return img.clip(0, 255).astype(np.uint8)
