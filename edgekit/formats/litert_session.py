"""A .tflite artifact run on this machine by LiteRT (ai_edge_litert's Interpreter, XNNPACK), as a HostSession.

Float feeds in, float outputs out whatever the model's own I/O types: an integer input of a fully quantized model
is quantized with its scale and zero point, an integer output dequantized, so fidelity and evaluation compare
precisions on equal terms. A decoder has one signature per fixed prompt count (`points_<N>`, LiteRT has no
dynamic shapes): a prompt of n points runs in the smallest signature with N >= n, padded with points labelled -1
(SAM's "not a point", which the prompt encoder embeds without a position).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgekit.errors import InputError

SIGNATURE = re.compile(r"^points_(\d+)$")
PAD_LABEL = -1.0


def pad_prompt(coords: np.ndarray, labels: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(1, n, 2) coords and (1, n) labels padded to `count` points with (0, 0) labelled -1."""
    n = coords.shape[1]
    if n > count:
        raise InputError(f"a prompt of {n} points does not fit the decoder's {count}-point signature",
                         hint="use fewer points, or export the decoder with larger prompt counts")
    if n == count:
        return coords, labels
    pad_c = np.zeros((1, count - n, 2), coords.dtype)
    pad_l = np.full((1, count - n), PAD_LABEL, labels.dtype)
    return np.concatenate([coords, pad_c], 1), np.concatenate([labels, pad_l], 1)


def _to_model(value: np.ndarray, details: dict) -> np.ndarray:
    dtype = details["dtype"]
    if value.dtype == dtype:
        return value
    scale, zero = details.get("quantization", (0.0, 0))
    if np.issubdtype(dtype, np.integer) and scale:
        info = np.iinfo(dtype)
        return np.clip(np.round(value.astype(np.float64) / scale) + zero, info.min, info.max).astype(dtype)
    return value.astype(dtype)


def _from_model(value: np.ndarray, details: dict) -> np.ndarray:
    scale, zero = details.get("quantization", (0.0, 0))
    if np.issubdtype(value.dtype, np.integer) and scale:
        return ((value.astype(np.float32) - zero) * scale).astype(np.float32)
    return value.astype(np.float32, copy=False)


class LiteRTSession:
    def __init__(self, path: Path, threads: int = 0) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise InputError("LiteRT is not installed here", hint="pip install -c constraints.txt -e '.[litert]'") from None
        self._interpreter = Interpreter(model_path=str(path), num_threads=threads or None)
        self.signatures = self._interpreter.get_signature_list()
        self._runners: dict[str, object] = {}
        counts = {int(m.group(1)): name for name in self.signatures if (m := SIGNATURE.match(name))}
        self.point_counts = dict(sorted(counts.items()))  # N -> signature name (decoders)
        first = next(iter(self.signatures))
        self.output_names = tuple(self.signatures[first]["outputs"])

    def _runner(self, name: str):
        if name not in self._runners:
            self._runners[name] = self._interpreter.get_signature_runner(name)
        return self._runners[name]

    def signature_for(self, feeds: dict[str, np.ndarray]) -> str:
        if not self.point_counts or "point_coords" not in feeds:
            return next(iter(self.signatures))
        n = feeds["point_coords"].shape[1]
        for count, name in self.point_counts.items():
            if count >= n:
                return name
        raise InputError(f"a prompt of {n} points is more than this decoder's largest signature "
                         f"({max(self.point_counts)} points)", hint="use fewer points")

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        name = self.signature_for(feeds)
        runner = self._runner(name)
        wanted = self.signatures[name]["inputs"]
        feeds = dict(feeds)
        if self.point_counts and "point_coords" in feeds:
            count = int(SIGNATURE.match(name).group(1))
            feeds["point_coords"], feeds["point_labels"] = pad_prompt(feeds["point_coords"], feeds["point_labels"], count)
        details = runner.get_input_details()
        missing = [k for k in wanted if k not in feeds]
        if missing:
            raise InputError(f"LiteRT signature {name} needs {', '.join(missing)}", hint="feed every input by name")
        args = {k: _to_model(np.ascontiguousarray(feeds[k]), details[k]) for k in wanted}
        out = runner(**args)
        out_details = runner.get_output_details()
        return {k: _from_model(v, out_details[k]) for k, v in out.items()}
