"""The explicit table of runtime backends, one line each: which one measures an artifact.

Keyed by runtime, the name formats give (`Format.runtime`): a deploy measures each artifact with its format's
runtime, so two formats can share a suffix (TensorRT-ready ONNX is built into an engine by TensorRT, not run by
ONNX Runtime). A bare file is measured by the first runtime whose suffix it has: `.onnx` -> ONNX Runtime,
`.tflite` -> LiteRT. Each entry names the profile runtime it needs (profiles/*.yaml `runtimes:`) and its class as
"module:Class", imported on first use so that listing or choosing costs nothing. An unknown suffix or runtime is
an input error that lists the known ones.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from edgekit.errors import InputError

if TYPE_CHECKING:
    from edgekit.exporters.layer_map import LayerMap
    from edgekit.targets.base import MeasureConfig, Transport
    from edgekit.targets.measurement import Measurement

_PKG = "edgekit.targets"


class Backend(Protocol):
    name: str  # the runtime, as result.json and report.json name it

    def measure(self, transport: "Transport", model: Path, inputs: Path | None, layer_map: "LayerMap | None",
                config: "MeasureConfig", results_dir: Path) -> "Measurement": ...


@dataclass(frozen=True)
class BackendEntry:
    suffix: str  # the artifact's file suffix
    format: str  # the format whose artifacts it runs by default (profiles.FORMATS)
    runtime: str  # the profile runtime it needs on the device
    target: str  # "module:Class", relative to edgekit.targets

    def load(self) -> type:
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(f"{_PKG}.{module}"), cls)


BACKENDS: dict[str, BackendEntry] = {e.runtime: e for e in (
    BackendEntry(".onnx", "onnx", "onnxruntime", "ort.backend:OrtBackend"),
    BackendEntry(".tflite", "litert", "litert", "litert.backend:LiteRTBackend"),
    BackendEntry(".onnx", "tensorrt", "tensorrt", "tensorrt.backend:TensorRTBackend"),  # built on the device
    BackendEntry(".mlpackage", "coreml", "coreml", "coreml.backend:CoreMLBackend"),  # compiled on the Mac
)}


def entry_for(artifact: Path, runtime: str | None = None) -> BackendEntry:
    """The backend entry that measures an artifact: its runtime's when given, else the first by file suffix; an
    unknown one names the known ones."""
    if runtime:
        entry = BACKENDS.get(runtime)
        if entry is None:
            raise InputError(f"no runtime backend called {runtime!r}", hint="runtimes: " + ", ".join(BACKENDS))
        return entry
    entry = next((e for e in BACKENDS.values() if e.suffix == Path(artifact).suffix.lower()), None)
    if entry is None:
        raise InputError(f"no runtime backend measures {Path(artifact).name}",
                         hint="artifacts are " + ", ".join(f"{e.suffix} ({e.runtime})" for e in BACKENDS.values()))
    return entry


def entry_for_format(fmt: str) -> BackendEntry:
    """The backend entry for a format name ("onnx", "litert")."""
    entry = next((e for e in BACKENDS.values() if e.format == fmt), None)
    if entry is None:
        raise InputError(f"no runtime backend for format {fmt!r}",
                         hint="formats with a backend: " + ", ".join(e.format for e in BACKENDS.values()))
    return entry


def make_backend(entry: BackendEntry, python: str, options: dict[str, Any] | None = None) -> Backend:
    """An instance running its runner under `python`; `options` are the backend's own keyword arguments."""
    return entry.load()(python=python, **(options or {}))
