"""What an export format is to the rest of edgekit: a name, a file suffix, the precisions it can make, how it
makes one part at one precision (validated), and how this machine runs what it made.

Everything around a format (the artifact store, sidecars, fidelity, the report, `quantize`, `deploy`) talks to
it only through this interface, so a new format is one module plus one line in formats/__init__.py. A format
never touches the store: the pipeline (pipeline/artifacts.py) looks the artifact up, hands the format an empty
folder to write into when it must be made, and records what it wrote.

Files a format writes into the folder:
- the artifact itself, under `MakeJob.file` (`<model>.<part>.<precision><suffix>`), plus side files it needs
  beside it (ONNX external data as `<file>.data`);
- `layer_map.json`: the runtime's op / tensor names -> module paths (exporters/layer_map.LayerMap);
- `inputs.npz`: one set of real inputs by input name, which devices are fed when they time the artifact.
`make` returns the artifact's `info.json` (exporter, validation figures, ...), written by the pipeline.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np

if TYPE_CHECKING:
    from edgekit.pipeline.context import ModelContext
    from edgekit.quant.calibration import CalibImage
    from edgekit.quant.presets import QuantPreset
    from edgekit.quant.sensitivity import NodeSensitivity

PARTS = ("encoder", "decoder")
Feeds = dict[str, np.ndarray]


class HostSession(Protocol):
    """An artifact loaded on this machine: numpy feeds by input name in, float32 outputs by name out."""

    output_names: tuple[str, ...]

    def run(self, feeds: Feeds) -> dict[str, np.ndarray]: ...


@dataclass
class MakeJob:
    """One artifact to make: everything a format may need, nothing it must look up itself."""

    ctx: "ModelContext"
    part: str  # "encoder" | "decoder"
    precision: str
    folder: Path  # empty; the format writes `file` and its side files here
    file: str
    # Real images to validate on (files, or RGB arrays when the user gave none: the test card)
    validation: Sequence["CalibImage"] | Sequence[np.ndarray] = ()
    source: "Artifact | None" = None  # the artifact this precision is made from (`Format.derives_from`)
    encoder_fp32: "Artifact | None" = None  # the FP32 encoder of this format (decoder calibration features)
    calibration: Callable[[], Iterator[Feeds]] | None = None  # calibration feeds, made on demand
    preset: "QuantPreset | None" = None
    method: str = "minmax"
    options: dict[str, Any] = field(default_factory=dict)  # the format's own settings (Format.options)


@dataclass
class Artifact:
    """A made artifact in the store: its part, precision, format and entry."""

    part: str
    precision: str
    entry: Any  # store.Entry
    root: Path
    format: str = "onnx"

    @property
    def name(self) -> str:
        return self.entry.config["file"]

    @property
    def path(self) -> Path:
        return self.entry.path(self.root, self.name)

    @property
    def layer_map(self):  # -> LayerMap (imported lazily: keeps this module light)
        from edgekit.exporters.layer_map import LayerMap

        return LayerMap.read(self.entry.path(self.root, "layer_map.json"))

    @property
    def inputs(self) -> Path:
        return self.entry.path(self.root, "inputs.npz")

    @property
    def info(self) -> dict:
        import json

        return json.loads(self.entry.path(self.root, "info.json").read_text())

    @property
    def reused(self) -> bool:
        return self.entry.reused

    def files(self) -> list[Path]:
        """The model and the side files stored under its name (`<file>.data`)."""
        return [self.path] + sorted(p for p in self.path.parent.glob(self.name + ".*") if p.is_file())


class Format:
    """Base class of the export formats; subclasses set the class attributes and implement `make` / `session`."""

    name: str = ""  # as the CLI and report.json spell it: "onnx", "litert"
    suffix: str = ""  # the artifact's file suffix, which also picks the runtime backend (targets/backends.py)
    precisions: tuple[str, ...] = ()  # what it can make, in the order `--help` lists them
    calibrated: frozenset[str] = frozenset()  # precisions that need calibration images (static INT8)
    runtime: str = ""  # the runtime that runs it on devices ("onnxruntime", "litert", "tensorrt"): targets/backends.py
    int8_preset: str | None = None  # the INT8 preset its runtime needs whatever --preset says (quant/presets.py)
    # INT8 with chosen layers kept in float, made from the INT8 artifact's own ranges (`make_mixed`)
    mixed_precision: bool = False
    revision: int = 1  # part of every artifact's identity in the store: bump when the recipe changes
    # False when this machine cannot run the artifacts (Core ML off macOS): calibration features then come from
    # torch, and accuracy is checked on the device against reference outputs shipped with the artifact
    runs_here: bool = True

    def derives_from(self, precision: str) -> str | None:
        """The precision whose artifact this one is made from (None: made from the torch model)."""
        return None if precision == "fp32" else "fp32"

    def config(self, part: str, precision: str, options: dict[str, Any]) -> dict[str, Any]:
        """The format's settings that decide the bytes of the artifact (they go into its store id)."""
        return {}

    def make(self, job: MakeJob) -> dict[str, Any]:
        """Write the artifact into job.folder, validated; returns its info.json."""
        raise NotImplementedError

    def make_mixed(self, job: MakeJob, int8: "Artifact", float_nodes: Sequence[str]) -> dict[str, Any]:
        """Write into job.folder the INT8 artifact of job.source (FP32) with `float_nodes` left in float, on the
        ranges `int8` was calibrated with (formats with mixed_precision only); returns its info.json."""
        raise NotImplementedError

    def layer_sensitivity(self, fp32: "Artifact", int8: "Artifact", preset: "QuantPreset", feeds: Iterable[Feeds],
                          folder: Path) -> list["NodeSensitivity"]:
        """Every layer `int8` quantized, most sensitive first: the SQNR of its output against `fp32` on `feeds`
        (inputs by name), alone and in the quantized graph (formats with mixed_precision only; `folder` is scratch
        space). The names are what `make_mixed` accepts as `float_nodes`."""
        raise NotImplementedError

    def session(self, artifact_path: Path, threads: int = 0) -> HostSession:
        """Load a made artifact on this machine (fidelity, calibration features, evaluation)."""
        raise NotImplementedError

    def unmeasured_fidelity(self, precision: str) -> str | None:
        """Why this machine cannot measure what `precision` costs in accuracy (None: fidelity runs the artifact
        here, as for every precision of ONNX and LiteRT)."""
        return None

    def available(self) -> str | None:
        """None when this machine can make this format, else why not and how to fix it (the package to
        install); checked before any work starts."""
        return None

    def supports(self, spec: Any) -> str | None:
        """None when the variant converts to this format, else the reason it does not (shown by `models`)."""
        return None

    def artifact_name(self, model: str, part: str, precision: str) -> str:
        return f"{model}.{part}.{precision}{self.suffix}"

    def check_precision(self, precision: str) -> None:
        from edgekit.errors import InputError

        if precision not in self.precisions:
            raise InputError(f"the {self.name} format cannot make --precision {precision}",
                             hint=f"{self.name} makes: {', '.join(self.precisions)}")


def iterate(feeds: Iterable[Feeds]) -> Iterator[Feeds]:
    """Feeds as an iterator (calibration readers take one pass)."""
    yield from feeds
