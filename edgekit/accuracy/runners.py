"""What the evaluation runs: an encoder + decoder pair as one `PairRunner`, whatever made it.

`TorchRunner` is the eager model (the checkpoint as PyTorch runs it); `ArtifactRunner` is any pair of artifacts
edgekit made, run on this machine by its format's runtime (ONNX Runtime, LiteRT, ...). Both return every mask
output: index 0 the single-mask answer, 1.. the multimask candidates (the export form of the decoder).
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from edgekit.formats.base import HostSession


class PairRunner(Protocol):
    label: str

    def encode(self, x: np.ndarray) -> dict[str, np.ndarray]: ...

    def decode(self, features: dict[str, np.ndarray], coords: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """-> (low-res mask logits (1, K, h, w), IoU predictions (1, K))."""
        ...


class TorchRunner:
    def __init__(self, model: torch.nn.Module, label: str = "torch") -> None:
        self.model = model.eval()
        self.label = label

    def encode(self, x: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            return {k: v.float().numpy() for k, v in self.model.encode(torch.from_numpy(x)).items()}

    def decode(self, features: dict[str, np.ndarray], coords: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            out = self.model.decode_all({k: torch.from_numpy(v) for k, v in features.items()},
                                        torch.from_numpy(coords), torch.from_numpy(labels), None, None)
        return out.low_res_masks.float().numpy(), out.iou_predictions.float().numpy()


class ArtifactRunner:
    def __init__(self, ctx, encoder: HostSession, decoder: HostSession, label: str) -> None:
        self.ctx = ctx
        self.encoder = encoder
        self.decoder = decoder
        self.label = label

    def encode(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return self.encoder.run({"image": x})

    def decode(self, features: dict[str, np.ndarray], coords: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from edgekit.pipeline.artifacts import decoder_feeds

        out = self.decoder.run(decoder_feeds(self.ctx, features, coords, labels))
        return out["low_res_masks"], out["iou_predictions"]


def artifact_runner(ctx, encoder, decoder) -> ArtifactRunner:
    """The runner of two made artifacts (pipeline.artifacts.Artifact), each loaded by its own format."""
    from edgekit.formats import get_format

    return ArtifactRunner(ctx, get_format(encoder.format).session(encoder.path),
                          get_format(decoder.format).session(decoder.path),
                          f"{encoder.format} {encoder.precision}")
