"""PTQ4SAM's bimodal integration (--preset x86-ptq4sam) on a real exported attention: the keys of a small
attention are made bimodal by construction (half the channels around +3, half around -3), and

- the rewrite finds the query/key pair, flips exactly the negative channels, and the float model still computes
  the same outputs;
- ONNX Runtime's INT8 of the rewritten graph gives attention probabilities measurably closer to FP32 than plain
  x86 INT8 (and an output no worse);
- the signs are kept beside the calibration ranges, so a re-quantization on those ranges (mixed precision) and
  the float twin of the sensitivity analysis apply the same ones.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

WIDTH, TOKENS = 32, 48
NEGATIVE = np.arange(WIDTH) % 2 == 1  # key channels built to sit around -3


def _module():
    import torch
    from torch import nn

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q_proj, self.k_proj, self.v_proj = (nn.Linear(WIDTH, WIDTH) for _ in range(3))
            self.out_proj = nn.Linear(WIDTH, WIDTH)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, n, c = x.shape
            heads = 4
            q = self.q_proj(x).reshape(b, n, heads, c // heads).transpose(1, 2)
            k = self.k_proj(x).reshape(b, n, heads, c // heads).transpose(1, 2)
            v = self.v_proj(x).reshape(b, n, heads, c // heads).transpose(1, 2)
            attn = torch.softmax(q @ k.transpose(-1, -2) / (c // heads) ** 0.5, dim=-1)
            return self.out_proj((attn @ v).transpose(1, 2).reshape(b, n, c))

    torch.manual_seed(0)
    module = Attention().eval()
    with torch.no_grad():
        module.k_proj.weight.mul_(0.3)
        module.k_proj.bias.copy_(torch.from_numpy(np.where(NEGATIVE, -3.0, 3.0).astype(np.float32)))
        module.q_proj.weight.mul_(0.5)
    return module


def _tokens(seed: int) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).standard_normal((1, TOKENS, WIDTH)).astype(np.float32)}


def _run(path: Path, feed: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)[0]


def _sqnr(ref: np.ndarray, got: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((ref - got).astype(np.float64) ** 2)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    import torch

    path = tmp_path_factory.mktemp("bimodal") / "attention.onnx"
    torch.onnx.export(_module(), (torch.from_numpy(_tokens(0)["x"]),), str(path), input_names=["x"],
                      output_names=["y"], dynamo=False)
    return path


def test_the_key_signs_flip_the_negative_channels_and_keep_the_function(exported: Path, tmp_path: Path) -> None:
    import onnx

    from edgekit.exporters.torch2onnx import save_model
    from edgekit.quant.bimodal import apply_signs, channel_signs, query_key_pairs

    model = onnx.load(str(exported))
    (pair,) = query_key_pairs(model)  # q·kᵀ only: attn·v has no projection on its left
    signs = channel_signs(model, [_tokens(s) for s in range(1, 5)])
    assert list(signs) == [pair.key.output]
    np.testing.assert_array_equal(np.asarray(signs[pair.key.output]) < 0, NEGATIVE)
    assert apply_signs(model, signs) == int(NEGATIVE.sum())
    rewritten = tmp_path / "rewritten.onnx"
    save_model(model, rewritten)
    feed = _tokens(7)
    want = _run(exported, feed)
    np.testing.assert_allclose(_run(rewritten, feed), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_ptq4sam_preset_quantizes_closer_to_fp32_and_keeps_its_signs(exported: Path, tmp_path: Path) -> None:
    import onnx

    from edgekit.quant.bimodal import SIGNS, load_signs
    from edgekit.quant.ort_static import prepare_float, quantize_static_onnx
    from edgekit.quant.presets import PRESETS
    from edgekit.quant.sensitivity import _session, _with_outputs, measure

    calib = [_tokens(s) for s in range(1, 9)]
    tests = [_tokens(s) for s in range(20, 24)]
    plain, bimodal = tmp_path / "plain.onnx", tmp_path / "bimodal.onnx"
    quantize_static_onnx(exported, plain, iter(calib), PRESETS["x86"], calibration_cache=tmp_path / "plain.json")
    cache = tmp_path / "bimodal.json"
    quantize_static_onnx(exported, bimodal, iter(calib), PRESETS["x86-ptq4sam"], calibration_cache=cache)
    # the keys' int8 error reaches the output through the attention probabilities: compare those (the softmax's
    # output keeps its name in both graphs); the output itself is bounded by the value / output projections
    probs = [n.output[0] for n in onnx.load(str(exported)).graph.node if n.op_type == "Softmax"]
    float_run = _session(_with_outputs(onnx.load(str(exported)), probs))
    ref = np.concatenate([float_run.run(probs, t)[0] for t in tests])
    got = {}
    for name, path in (("plain", plain), ("bimodal", bimodal)):
        run = _session(_with_outputs(onnx.load(str(path)), probs))
        got[name] = _sqnr(ref, np.concatenate([run.run(probs, t)[0] for t in tests]))
    assert got["bimodal"] > got["plain"] + 3.0, got  # measured: 51.7 -> 56.4 dB
    out = np.concatenate([_run(exported, t) for t in tests])
    assert _sqnr(out, np.concatenate([_run(bimodal, t) for t in tests])) >= \
        _sqnr(out, np.concatenate([_run(plain, t) for t in tests])) - 0.1
    signs = load_signs(cache.with_name(SIGNS))  # kept beside the ranges
    assert sum(v < 0 for v in next(iter(signs.values()))) == NEGATIVE.sum()
    # mixed precision re-quantizes on the kept ranges and signs (no feeds): the same model again
    again = tmp_path / "again.onnx"
    quantize_static_onnx(exported, again, iter(()), PRESETS["x86-ptq4sam"], calibration_cache=cache)
    np.testing.assert_array_equal(_run(again, tests[0]), _run(bimodal, tests[0]))
    # the sensitivity's float twin carries the same signs: every layer's INT8 output is close to it
    folder = tmp_path / "twin"
    folder.mkdir()
    nodes = measure(prepare_float(exported, folder, PRESETS["x86-ptq4sam"], signs), bimodal, tests)
    assert nodes and all(n.in_graph_db is not None and n.in_graph_db > 15 for n in nodes), [n.to_dict() for n in nodes]
