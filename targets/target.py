"""A target = a transport to a device + a runtime backend + the device's facts."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekit.exporters.layer_map import LayerMap
from edgekit.targets.base import MeasureConfig, Transport
from edgekit.targets.ort.backend import Measurement, OrtBackend


@dataclass
class Target:
    name: str
    transport: Transport
    backend: OrtBackend
    device: dict

    def measure(self, model: Path, inputs: Path | None, layer_map: LayerMap | None, config: MeasureConfig,
                results_dir: Path) -> Measurement:
        return self.backend.measure(self.transport, model, inputs, layer_map, config, results_dir)

    def close(self) -> None:
        self.transport.close()
