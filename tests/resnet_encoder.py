"""Test tooling: an ONNX image encoder shaped like NanoSAM's release (a ResNet18-style trunk with an upsampling
neck: image (1, 3, 1024, 1024) -> image_embeddings (1, 256, 64, 64)), narrower so that tests stay fast.

NanoSAM's real file cannot be downloaded here; this one has the same interface and the same kind of graph (a
legacy torch export, module scopes in node names), with seeded random weights.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.down(x))


class ResNetEncoder(nn.Module):
    def __init__(self, width: int = 16, out_channels: int = 256) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        widths = [width, width * 2, width * 4, width * 8]
        layers, cin = [], width
        for k, w in enumerate(widths):
            layers.append(nn.Sequential(BasicBlock(cin, w, 1 if k == 0 else 2), BasicBlock(w, w, 1)))
            cin = w
        self.layers = nn.Sequential(*layers)  # stride 32: 32x32 at 1024
        self.up = nn.ConvTranspose2d(cin, out_channels, 2, 2)  # -> 64x64
        self.proj = nn.Conv2d(out_channels, out_channels, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.relu(self.up(self.layers(self.stem(image)))))


def write_encoder(path: Path, size: int = 1024, input_name: str = "image", output_name: str = "image_embeddings",
                  seed: int = 0, width: int = 16) -> Path:
    """width 64 gives ResNet18's own channel widths (64..512), for latency figures of NanoSAM's size."""
    torch.manual_seed(seed)
    model = ResNetEncoder(width).eval()
    with torch.no_grad():  # BatchNorm statistics that are not the identity, so folding them changes the graph
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    torch.onnx.export(model, (torch.zeros(1, 3, size, size),), str(path), dynamo=False, opset_version=17,
                      input_names=[input_name], output_names=[output_name])
    return path
