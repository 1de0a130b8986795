"""edgekit: official Segment-Anything variants, from checkpoint to edge device, measured per layer.

The Python API mirrors segment-anything's SamPredictor:

    import edgekit
    predictor = edgekit.load("mobilesam", checkpoint="mobile_sam.pt")
    predictor.set_image(rgb_uint8_hwc)
    out = predictor.predict(point_coords=[[500, 375]], point_labels=[1])
    out.masks, out.iou_predictions, out.low_res_masks
"""
from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # heavy imports (torch) stay out of `import edgekit`
    from pathlib import Path

    from edgekit.predictor import Predictor


def load(name: str, checkpoint: "str | Path | None" = None, weights: str | None = None, **kwargs: Any) -> "Predictor":
    """Build the registered variant `name` and wrap it in a predictor.

    checkpoint: path to the official release file (loaded strictly, weights_only).
    weights: "synthetic" for deterministic synthetic weights (latency work only: outputs mean nothing).
    """
    from edgekit.predictor import load_predictor

    return load_predictor(name, checkpoint=checkpoint, weights=weights, **kwargs)


__all__ = ["__version__", "load"]
