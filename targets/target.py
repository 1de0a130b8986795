"""A target = a transport to a device + the device's Python and facts; the runtime backend that measures an
artifact is chosen per artifact from the explicit table in backends.py (`.onnx` -> ONNX Runtime, `.tflite` -> LiteRT)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import UsageError
from edgekit.exporters.layer_map import LayerMap
from edgekit.targets.backends import Backend, BackendEntry, entry_for, entry_for_format, make_backend
from edgekit.targets.base import MeasureConfig, Transport
from edgekit.targets.measurement import Measurement


@dataclass
class Target:
    name: str
    transport: Transport
    python: str  # the device's Python, which runs every backend's runner
    device: dict
    runtimes: tuple[str, ...] | None = None  # runtimes the profile lists; None: not checked (this machine)
    backend_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # by runtime name, e.g. litert's benchmark_model
    default_format: str = "onnx"
    _backends: dict[str, Backend] = field(default_factory=dict, init=False, repr=False)

    def _backend(self, entry: BackendEntry) -> Backend:
        if self.runtimes is not None and entry.runtime not in self.runtimes:
            raise UsageError(f"target {self.name} lists no {entry.runtime} runtime, which {entry.suffix} artifacts need",
                             hint=f"add {entry.runtime} to the profile's runtimes (`edgekit doctor` shows what the "
                                  "device has)")
        if entry.runtime not in self._backends:
            self._backends[entry.runtime] = make_backend(entry, self.python, self.backend_options.get(entry.runtime))
        return self._backends[entry.runtime]

    def backend_for(self, model: Path, runtime: str | None = None) -> Backend:
        """The backend that measures `model`: `runtime`'s (its format's), else the one its suffix picks."""
        return self._backend(entry_for(model, runtime))

    @property
    def backend(self) -> Backend:
        """The backend of the target's default format (ONNX Runtime unless the profile says otherwise)."""
        return self._backend(entry_for_format(self.default_format))

    def measure(self, model: Path, inputs: Path | None, layer_map: LayerMap | None, config: MeasureConfig,
                results_dir: Path, runtime: str | None = None) -> Measurement:
        return self.backend_for(model, runtime).measure(self.transport, model, inputs, layer_map, config, results_dir)

    def close(self) -> None:
        self.transport.close()
