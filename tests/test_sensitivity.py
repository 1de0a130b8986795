"""Per-layer INT8 sensitivity and the mixed-precision re-quantization, on a small real ONNX model quantized by
onnxruntime: the layer made fragile on purpose ranks first, and keeping it in float is exact for that layer and
needs no new calibration."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgekit.quant.ort_static import prepare_float, quantize_static_onnx
from edgekit.quant.presets import PRESETS
from edgekit.quant.sensitivity import measure, quantized_nodes


class Toy(torch.nn.Module):
    """conv -> relu -> conv -> relu -> conv; the first conv's channel 0 is 500x larger than the others, so the
    second conv's input range is set by that one channel and its other 7 channels keep only a few int8 steps."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.b = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.c = torch.nn.Conv2d(8, 4, 1)
        with torch.no_grad():
            self.a.weight[0] *= 500.0
            self.a.bias[0] = 500.0
            self.b.weight[:, 0] /= 500.0  # the network's function barely depends on the outlier channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(torch.relu(self.b(torch.relu(self.a(x)))))


def _feeds(n: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((1, 3, 32, 32)).astype(np.float32)} for _ in range(n)]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("toy")
    fp32 = root / "toy.onnx"
    torch.onnx.export(Toy().eval(), (torch.zeros(1, 3, 32, 32),), str(fp32), input_names=["x"], output_names=["y"],
                      dynamo=False, opset_version=17)
    int8, cache = root / "toy.int8.onnx", root / "calibration.json"
    assert quantize_static_onnx(fp32, int8, _feeds(8, 0), PRESETS["x86"], calibration_cache=cache) == 8
    pre = prepare_float(fp32, root, PRESETS["x86"])
    return {"fp32": fp32, "int8": int8, "cache": cache, "pre": pre, "root": root}


def _conv_names(path: Path) -> list[str]:
    import onnx

    return [n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]


def test_the_fragile_layer_ranks_first(models) -> None:
    import onnx

    ranked = measure(models["pre"], models["int8"], _feeds(2, 1))
    convs = _conv_names(models["int8"])
    assert len(ranked) == len(quantized_nodes(onnx.load(str(models["int8"])))) == 3
    assert ranked[0].node == convs[1], [(r.node, r.alone_db) for r in ranked]
    by = {r.node: r for r in ranked}
    # every figure is a real measurement: the robust layers keep well above 25 dB, the fragile one falls far below
    assert by[convs[0]].alone_db > 30 and by[convs[2]].alone_db > 25
    assert by[convs[1]].alone_db < by[convs[0]].alone_db - 10
    # nothing precedes the first conv: in the graph it sees exactly what it sees alone
    assert by[convs[0]].in_graph_db == pytest.approx(by[convs[0]].alone_db, abs=1e-6)


def test_mixed_requantizes_on_the_cached_ranges(models) -> None:
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    fragile = _conv_names(models["int8"])[1]
    mixed = models["root"] / "toy.mixed.onnx"
    consumed = []

    def feeds():  # must not be read: the ranges come from the cache
        consumed.append(1)
        yield from _feeds(1, 2)

    assert quantize_static_onnx(models["fp32"], mixed, feeds(), PRESETS["x86"], calibration_cache=models["cache"],
                                float_nodes=[fragile]) == 0
    assert not consumed
    graph = onnx.load(str(mixed)).graph
    producer = {o: n for n in graph.node for o in n.output}
    node = next(n for n in graph.node if n.name == fragile)
    assert all(producer.get(i) is None or producer[i].op_type != "DequantizeLinear" for i in node.input)
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    assert weights[node.input[1]].dtype == np.float32  # its float weights, not dequantized int8
    # the other layers are still quantized
    assert {n.name for n in quantized_nodes(onnx.load(str(mixed)))} == set(_conv_names(mixed)) - {fragile}

    def run(path: Path, x: np.ndarray) -> np.ndarray:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    x = _feeds(1, 3)[0]["x"]
    ref = run(models["fp32"], x)
    err = lambda p: float(np.sum((run(p, x) - ref) ** 2))  # noqa: E731
    # closer to FP32, not equal: the tensor feeding the float layer is still the quantized output of the layer
    # before it (onnxruntime quantizes a tensor where it is produced)
    assert err(mixed) < 0.8 * err(models["int8"])


class Attention(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.qkv = torch.nn.Linear(16, 48)
        self.proj = torch.nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        attn = torch.softmax(q @ k.transpose(-1, -2) / 4.0, dim=-1)
        return self.proj(attn @ v)


def test_the_sam_preset_keeps_attention_products_in_float(tmp_path: Path) -> None:
    import onnx

    from edgekit.quant.ort_static import attention_matmuls

    fp32 = tmp_path / "attn.onnx"
    torch.onnx.export(Attention().eval(), (torch.zeros(1, 10, 16),), str(fp32), input_names=["x"], output_names=["y"],
                      dynamo=False, opset_version=17)
    pre = prepare_float(fp32, tmp_path, PRESETS["x86"])
    products = attention_matmuls(pre)
    assert len(products) == 2  # q·kᵀ and attn·v; the two Linear layers carry weights
    rng = np.random.default_rng(0)
    feeds = lambda: ({"x": rng.standard_normal((1, 10, 16)).astype(np.float32)} for _ in range(4))  # noqa: E731
    quantized = {}
    for name in ("x86", "x86-sam"):
        out = tmp_path / f"{name}.onnx"
        quantize_static_onnx(fp32, out, feeds(), PRESETS[name])
        quantized[name] = {n.name for n in quantized_nodes(onnx.load(str(out)))}
    assert set(products) <= quantized["x86"]
    assert not set(products) & quantized["x86-sam"]
    assert quantized["x86"] - set(products) == quantized["x86-sam"]  # the weighted layers stay int8
