"""LiteRT per-layer sensitivity and mixed precision on a real converted model: a small torch module (convolutions,
attention, linear) converted by litert-torch with two signatures of different input sizes (as a decoder has one
per prompt count), statically quantized by ai-edge-quantizer on real calibration ranges.

- the sensitivity's *alone* figure, computed in torch from the op's options, is what LiteRT itself gives when
  that op is the only one quantized (built with the mixed recipe: every other op in float);
- a layer kept in float is float in every signature and nothing else is; with every layer in float the model
  computes what the FP32 one does; the ranges are reused, not recalibrated.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("litert_torch", reason="litert-torch is not installed (pip install -c constraints.txt -e '.[litert-export]')")
pytest.importorskip("ai_edge_quantizer", reason="ai-edge-quantizer is not installed (the litert-export extra)")

from tests.tflite_models import torch_module  # noqa: E402

SIZES = {"small": 32, "large": 48}


def _input(size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 3, size, size)).astype(np.float32)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    import litert_torch
    import torch

    from edgekit.quant.litert_quant import quantize_tflite

    folder = tmp_path_factory.mktemp("litert-mixed")
    module = torch_module(32)
    converter = None
    for name, size in SIZES.items():
        kwargs = {"x": torch.from_numpy(_input(size, 0))}
        converter = (litert_torch.signature(name, module, sample_kwargs=kwargs) if converter is None
                     else converter.signature(name, module, sample_kwargs=kwargs))
    fp32 = folder / "tiny.fp32.tflite"
    converter.convert().export(str(fp32))
    calibration = {name: [{"x": _input(size, seed)} for seed in range(1, 5)] for name, size in SIZES.items()}
    int8 = folder / "tiny.int8.tflite"
    made = quantize_tflite(fp32, int8, "int8", calibration)
    return {"folder": folder, "fp32": fp32, "int8": int8, "ranges": made["ranges"]}


def _run(path: Path, signature: str, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner(signature)
    (out,) = runner(x=x).values()
    return out


def test_alone_sensitivity_is_what_litert_gives_with_only_that_layer_quantized(models: dict) -> None:
    from edgekit.quant.litert_ops import compute_ops, read
    from edgekit.quant.litert_quant import quantize_tflite
    from edgekit.quant.litert_sensitivity import measure

    feeds = [{"x": _input(SIZES["small"], 9)}]
    ranked = measure(models["fp32"], models["int8"], feeds)
    keys = [o.key for o in compute_ops(read(models["fp32"]), 0)]
    assert sorted(n.node for n in ranked) == sorted(keys) and len(keys) >= 4  # every quantized layer, measured
    assert all(n.alone_db is not None and n.in_graph_db is not None for n in ranked)
    assert [n.alone_db for n in ranked] == sorted(n.alone_db for n in ranked)
    for node in (ranked[0], ranked[-1]):
        only = models["folder"] / f"only-{node.node.replace(':', '-')}.tflite"
        quantize_tflite(models["fp32"], only, "int8", ranges=models["ranges"],
                        float_ops=[k for k in keys if k != node.node])
        (real,) = [n for n in measure(models["fp32"], only, feeds) if n.node == node.node]
        # the only quantized layer sees the FP32 model's exact input: LiteRT's own output error is the alone figure
        assert real.in_graph_db == pytest.approx(node.alone_db, abs=0.3)


def test_a_float_layer_is_float_in_every_signature_and_all_float_is_fp32(models: dict) -> None:
    from edgekit.quant.litert_ops import compute_ops, float_keys, read
    from edgekit.quant.litert_quant import quantize_tflite

    keys = [o.key for o in compute_ops(read(models["fp32"]), 0)]
    assert float_keys(read(models["int8"])) == [set(), set()]  # plain INT8: every layer quantized in both
    one = models["folder"] / "one.tflite"
    made = quantize_tflite(models["fp32"], one, "int8", ranges=models["ranges"], float_ops=[keys[1]])
    assert made["samples"] == 0  # the saved ranges, no calibration
    assert float_keys(read(one)) == [{keys[1]}, {keys[1]}]
    every = models["folder"] / "all-float.tflite"
    quantize_tflite(models["fp32"], every, "int8", ranges=models["ranges"], float_ops=keys)
    for name, size in SIZES.items():
        x = _input(size, 11)
        want = _run(models["fp32"], name, x)
        np.testing.assert_allclose(_run(every, name, x), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
        assert np.abs(_run(models["int8"], name, x) - want).max() > 1e-3 * np.abs(want).max()  # INT8 really differs


def test_ranges_round_trip_and_unknown_layers_are_refused(models: dict, tmp_path: Path) -> None:
    from edgekit.errors import ValidationError
    from edgekit.quant.litert_quant import load_ranges, quantize_tflite, save_ranges

    save_ranges(models["ranges"], tmp_path / "ranges.json")
    loaded = load_ranges(tmp_path / "ranges.json")
    assert loaded.keys() == models["ranges"].keys()
    name = next(iter(loaded))
    for k, v in models["ranges"][name].items():
        np.testing.assert_array_equal(loaded[name][k], np.asarray(v, np.float32))
    target = tmp_path / "bad.tflite"
    with pytest.raises(ValidationError, match="no quantizable op CONV_2D:99"):
        quantize_tflite(models["fp32"], target, "int8", ranges=loaded, float_ops=["CONV_2D:99"])
    assert not target.exists() and not list(tmp_path.glob(".bad*"))
