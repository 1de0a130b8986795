"""Every export is checked numerically: ONNX Runtime's outputs against torch's, on real inputs.

An export that runs but computes something else is worse than one that fails, so validation compares the
encoder's features and the decoder's logits on real images (and prompts sampled on them) and fails loudly
beyond the variant's tolerance (FP32: 1e-4 on embeddings, 1e-3 on logits by default).

Float32 itself has a limit: two correct FP32 programs that sum in different orders differ by about as much as
either differs from the exact (FP64) result. Trained weights keep that far below 1e-4; a network with
synthetic weights on real images can amplify rounding a thousandfold (MobileSAM: torch FP32 vs FP64 differs
by 6e-3 on dog.jpg). So when the strict check fails, the same inputs are run through torch in FP64, and the
export passes only if its distance to torch FP32 stays within the tolerance plus twice torch's own FP32 error
(`noise_floor`): the bound is never looser than what torch itself cannot avoid.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from edgekit.errors import ValidationError
from edgekit.variants.base import SamModel, VariantSpec


@dataclass
class ValidationReport:
    part: str
    samples: int
    max_abs: dict[str, float] = field(default_factory=dict)  # output name -> worst max abs error over samples
    tolerance: float = 0.0
    noise_floor: dict[str, float] = field(default_factory=dict)  # torch FP32 vs FP64, when it had to be measured

    @property
    def worst(self) -> float:
        return max(self.max_abs.values()) if self.max_abs else 0.0

    def allowed(self, name: str) -> float:
        return self.tolerance + 2.0 * self.noise_floor.get(name, 0.0)

    @property
    def passed(self) -> bool:
        return all(err <= self.allowed(name) for name, err in self.max_abs.items())

    def to_dict(self) -> dict:
        return {"part": self.part, "samples": self.samples, "max_abs": self.max_abs, "tolerance": self.tolerance,
                "noise_floor": self.noise_floor, "passed": self.passed}


def ort_session(path: Path, threads: int = 0) -> "object":
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _compare(report: ValidationReport, names: Sequence[str], ours: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> None:
    for name, a, b in zip(names, ours, reference):
        if a.shape != b.shape:
            raise ValidationError(f"{report.part} export: output {name} has shape {a.shape}, torch gives {b.shape}",
                                  hint="the exported graph is wrong; report this with the variant name")
        err = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if a.size else 0.0
        report.max_abs[name] = max(report.max_abs.get(name, 0.0), err)


def _fp64(model: SamModel) -> SamModel:
    return copy.deepcopy(model).double()


def _noise(report: ValidationReport, names: Sequence[str], fp32: Sequence[np.ndarray], fp64: Sequence[np.ndarray]) -> None:
    for name, a, b in zip(names, fp32, fp64):
        err = float(np.abs(a.astype(np.float64) - b).max()) if a.size else 0.0
        report.noise_floor[name] = max(report.noise_floor.get(name, 0.0), err)


def _ort(path: Path):
    from edgekit.formats.onnx import OrtSession  # formats import this module: resolved at call time

    return OrtSession(path)


def _ordered(session, feeds: dict[str, np.ndarray], names: Sequence[str]) -> list[np.ndarray]:
    out = session.run(feeds)
    return [out[n] for n in names]


def validate_encoder(path: Path, model: SamModel, spec: VariantSpec, images: Sequence[np.ndarray],
                     session=None, runtime: str = "ONNX Runtime") -> ValidationReport:
    """`images`: preprocessed encoder inputs (1, 3, S, S). `session` (a formats.HostSession) runs the artifact;
    default: ONNX Runtime on `path`."""
    session = session or _ort(path)
    names = list(session.output_names)
    report = ValidationReport("encoder", len(images), tolerance=spec.export_atol[0])
    refs = []
    for x in images:
        with torch.inference_mode():
            ref = model.encode(torch.from_numpy(x))
        refs.append([ref[n].numpy() for n in names])
        _compare(report, names, _ordered(session, {"image": x}, names), refs[-1])
    if not report.passed:
        exact = _fp64(model)
        for x, ref32 in zip(images, refs):
            with torch.inference_mode():
                ref = exact.encode(torch.from_numpy(x).double())
            _noise(report, names, ref32, [ref[n].numpy() for n in names])
    _raise_if_failed(report, path, runtime)
    return report


def validate_decoder(path: Path, model: SamModel, spec: VariantSpec,
                     cases: Sequence[tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]], session=None,
                     runtime: str = "ONNX Runtime") -> ValidationReport:
    """`cases`: (features, coords (1,N,2), labels (1,N)); each runs without and (if supported) with a mask input."""
    session = session or _ort(path)
    out_names = ["low_res_masks", "iou_predictions", *spec.extra_outputs]
    report = ValidationReport("decoder", 0, tolerance=spec.export_atol[1])
    exact: SamModel | None = None
    for features, coords, labels in cases:
        masks = [None]
        if spec.accepts_mask_input:
            low = spec.low_res_size
            masks.append(np.random.default_rng(0).standard_normal((1, 1, low, low)).astype(np.float32) * 4)
        for mask in masks:
            feeds = {**features, "point_coords": coords, "point_labels": labels}
            t_mask = t_has = None
            if spec.accepts_mask_input:
                low = spec.low_res_size
                feeds["mask_input"] = mask if mask is not None else np.zeros((1, 1, low, low), np.float32)
                feeds["has_mask_input"] = np.array([0.0 if mask is None else 1.0], np.float32)
                t_mask, t_has = torch.from_numpy(feeds["mask_input"]), torch.from_numpy(feeds["has_mask_input"])
            with torch.inference_mode():
                ref = model.decode_all({k: torch.from_numpy(v) for k, v in features.items()}, torch.from_numpy(coords),
                                       torch.from_numpy(labels), t_mask, t_has)
            expected = [ref.low_res_masks.numpy(), ref.iou_predictions.numpy(),
                        *(ref.extras[n].numpy() for n in spec.extra_outputs)]
            _compare(report, out_names, _ordered(session, feeds, out_names), expected)
            report.samples += 1
            if not report.passed:  # measure torch's own FP32 error on this case (see the module docstring)
                exact = exact or _fp64(model)
                with torch.inference_mode():
                    ref64 = exact.decode_all({k: torch.from_numpy(v).double() for k, v in features.items()},
                                             torch.from_numpy(coords).double(), torch.from_numpy(labels).double(),
                                             None if t_mask is None else t_mask.double(),
                                             None if t_has is None else t_has.double())
                _noise(report, out_names, expected, [ref64.low_res_masks.numpy(), ref64.iou_predictions.numpy(),
                                                     *(ref64.extras[n].numpy() for n in spec.extra_outputs)])
    _raise_if_failed(report, path, runtime)
    return report


def _raise_if_failed(report: ValidationReport, path: Path, runtime: str) -> None:
    if not report.passed:
        detail = ", ".join(f"{k} {v:.2e} (allowed {report.allowed(k):.2e})" for k, v in report.max_abs.items())
        raise ValidationError(
            f"{path.name}: {runtime} differs from torch by more than {report.tolerance:g} ({detail})",
            hint="the export is not faithful; " + ("try `--exporter legacy`, and " if runtime == "ONNX Runtime" else "")
                 + "report the variant if it persists")
