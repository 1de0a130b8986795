"""How much memory static INT8 calibration of a .tflite takes, checked before it starts.

ai-edge-quantizer measures activation ranges with an interpreter that keeps every intermediate tensor
(`experimental_preserve_all_tensors`), one interpreter per calibration thread, so its peak grows with the sum of
the graph's activations, not with the largest one. A ViT encoder at 1024x1024 keeps gigabytes of attention
maps; past the machine's memory the kernel kills the process with no message at all. Refusing up front (or
calibrating on fewer threads) turns that into one clear error.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edgekit.errors import ResourceError

log = logging.getLogger(__name__)

# Peak bytes per calibration interpreter per byte of activations, measured on the MobileSAM encoder: 4.28 GiB of
# activations, 13.9 GB peak RSS with two calibration threads (the kept tensors plus the copies the quantizer
# reads them into).
PER_THREAD_FACTOR = 1.6
# TFLite TensorType -> bytes per element (schema.fbs); anything unlisted is counted as 4 bytes.
_ITEMSIZE = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1, 10: 8, 11: 16, 16: 2, 17: 1}


def activation_bytes(tflite: Path) -> int:
    """The largest subgraph's sum of non-constant tensor sizes (each signature is calibrated on its own)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(Path(tflite).read_bytes(), 0)
    largest = 0
    for s in range(model.SubgraphsLength()):
        sub = model.Subgraphs(s)
        total = 0
        for t in range(sub.TensorsLength()):
            tensor = sub.Tensors(t)
            buffer = model.Buffers(tensor.Buffer())
            if buffer is not None and (buffer.DataLength() > 0 or buffer.Size() > 0):
                continue  # a constant: weights live in the file, not in the arena
            shape = tensor.ShapeAsNumpy() if tensor.ShapeLength() else np.ones(1, np.int64)
            total += int(np.prod(np.maximum(shape, 1), dtype=np.int64)) * _ITEMSIZE.get(tensor.Type(), 4)
        largest = max(largest, total)
    return largest


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (what can be allocated without swapping), or None where it is absent."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def calibration_threads(tflite: Path, wanted: int, available: int | None = None) -> int:
    """How many calibration threads fit in memory (at most `wanted`); ResourceError when not even one does."""
    need_one = int(PER_THREAD_FACTOR * activation_bytes(tflite))
    available = available_bytes() if available is None else available
    if available is None:
        return wanted
    fits = min(wanted, available // max(need_one, 1))
    if fits < 1:
        raise ResourceError(
            f"static INT8 calibration of {Path(tflite).name} needs about {need_one / 1e9:.1f} GB of memory (it keeps "
            f"every intermediate tensor to measure its range), and {available / 1e9:.1f} GB are available",
            hint="use --precision int8-dynamic (no calibration), close what else uses memory, or run on a machine "
                 "with more")
    if fits < wanted:
        log.warning("calibrating %s on %d thread(s), not %d: each needs about %.1f GB and %.1f GB are available",
                    Path(tflite).name, fits, wanted, need_one / 1e9, available / 1e9)
    return int(fits)
