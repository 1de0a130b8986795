"""EfficientViT-SAM L0/L1/L2/XL0/XL1: official layouts, norm eps, encoder shapes, and LiteMLA's math + export.

Numerical parity with the official code (l0, xl0) is tests/test_parity.py's job; here the five layouts are
checked on the meta device (no memory, no weights) and the attention is checked against its definition.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from edgekit.checkpoints import build_variant
from edgekit.synthetic import layout_of
from edgekit.variants.efficientvit_blocks import LiteMLA
from edgekit.variants.registry import get_spec
from tests import support

SIZES = ("l0", "l1", "l2", "xl0", "xl1")



@pytest.fixture(scope="module")
def meta_models() -> dict[str, nn.Module]:
    cache: dict[str, nn.Module] = {}
    with torch.device("meta"):
        for size in SIZES:
            cache[size] = get_spec(f"efficientvit-sam-{size}").build()
    return cache


@pytest.mark.parametrize("size", SIZES)
def test_state_dict_equals_official_layout(meta_models: dict, size: str) -> None:
    expected = support.layout_rows(f"efficientvit_sam_{size}")
    assert layout_of(meta_models[size].state_dict()) == expected


@pytest.mark.parametrize("size", SIZES)
def test_every_norm_eps_is_1e6(meta_models: dict, size: str) -> None:
    # the official model zoo's set_norm_eps(model, 1e-6): BatchNorm and the decoder's LayerNorms included
    norms = [(n, m) for n, m in meta_models[size].named_modules()
             if isinstance(m, (_BatchNorm, nn.LayerNorm, nn.GroupNorm)) or type(m).__name__ == "LayerNorm2d"]
    assert sum(isinstance(m, _BatchNorm) for _, m in norms) >= 36  # l0 has the fewest
    assert any(n.startswith("mask_decoder.transformer.") for n, _ in norms)
    assert {n: m.eps for n, m in norms if m.eps != 1e-6} == {}
    # LiteMLA's division guard is not a norm eps and stays the official 1e-15
    assert {m.eps for m in meta_models[size].modules() if isinstance(m, LiteMLA)} == {1e-15}


def test_input_sizes_follow_the_family() -> None:
    for size in SIZES:
        pre = get_spec(f"efficientvit-sam-{size}").preprocess
        assert pre.input_size == (512 if size.startswith("l") else 1024) and pre.prompt_frame == 1024
        assert pre.normalize_scale == "0-1" and abs(pre.mean[0] - 123.675 / 255) < 1e-9


def test_l0_forward_with_synthetic_weights() -> None:
    model = build_variant("efficientvit-sam-l0", weights="synthetic")
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, 512, 512)).astype(np.float32))
    with torch.inference_mode():
        emb = model.encode(x)["image_embeddings"]
        out = model.decode({"image_embeddings": emb}, torch.tensor([[[500.0, 375.0], [0.0, 0.0]]]),
                           torch.tensor([[1.0, -1.0]]), None, True)
    assert emb.shape == (1, 256, 64, 64) and torch.isfinite(emb).all()
    assert 0.5 < float(emb.std()) < 2.0  # the closing LayerNorm2d with ~unit synthetic scales
    assert out.low_res_masks.shape == (1, 3, 256, 256) and out.iou_predictions.shape == (1, 3)


def _naive_linear_attention(mla: LiteMLA, qkv: torch.Tensor) -> torch.Tensor:
    """The definition, head by head: out_n = sum_m v_m (k_m . q_n) / (sum_m k_m . q_n + eps), ReLU q and k."""
    b, c, h, w = qkv.shape
    d = mla.dim
    heads = qkv.reshape(b, -1, 3 * d, h * w).double()
    outs = []
    for i in range(heads.shape[1]):
        q, k, v = heads[0, i, :d].relu(), heads[0, i, d:2 * d].relu(), heads[0, i, 2 * d:]
        score = k.T @ q  # (m, n)
        outs.append((v @ score) / (score.sum(0, keepdim=True) + mla.eps))
    return torch.stack(outs).reshape(1, -1, h, w).float()


@pytest.fixture(scope="module")
def small_mla() -> LiteMLA:
    torch.manual_seed(0)
    mla = LiteMLA(64, 64, dim=16, scales=(3,)).eval()
    for m in mla.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return mla


def test_lite_mla_is_linear_attention(small_mla: LiteMLA) -> None:
    qkv = torch.randn(1, 6 * 64, 7, 9)  # q/k/v of the input and of one aggregation scale
    with torch.inference_mode():
        got = small_mla.linear_attention(qkv)
    torch.testing.assert_close(got, _naive_linear_attention(small_mla, qkv), atol=1e-4, rtol=1e-4)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the legacy (TorchScript) exporter, on purpose
def test_lite_mla_exports_to_onnx_opset17(tmp_path, small_mla: LiteMLA) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    x = torch.randn(1, 64, 12, 12)
    path = tmp_path / "mla.onnx"
    torch.onnx.export(small_mla, (x,), str(path), opset_version=17, dynamo=False)
    graph = onnx.load(str(path))
    assert {o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")} == {17}
    assert not {n.op_type for n in graph.graph.node} & {"If", "Loop", "Pad"}  # no value-dependent flow
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.inference_mode():
        np.testing.assert_allclose(got, small_mla(x).numpy(), atol=1e-4, rtol=1e-4)
