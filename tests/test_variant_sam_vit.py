"""SAM ViT-B/L/H and SlimSAM-50/77 (SAM's ViT encoder + the shared SAM decoder): layouts, the encoder's
pieces (windows, decomposed relative positions), one SlimSAM-77 forward, ONNX export, and refusal of a
checkpoint of another width.

Full parity with the official code is tests/test_parity.py's job (sam_vit_b, slimsam_vit_p77_uniform). ViT-L/H
are only built on the meta device here: their forwards take minutes on a CI machine.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgekit.checkpoints import build_variant, load_into
from edgekit.errors import CheckpointError
from edgekit.synthetic import layout_of
from edgekit.variants.registry import get_spec
from edgekit.variants.sam_decoder import SamDecoderModel
from edgekit.variants.sam_vit import ImageEncoderViT, ViTConfig
from edgekit.variants.vit_blocks import decomposed_rel_pos_bias, resized_rel_pos, window_partition, window_unpartition
from tests import support

VARIANTS = [
    ("sam-vit-b", "sam_vit_b"),
    ("sam-vit-l", "sam_vit_l"),
    ("sam-vit-h", "sam_vit_h"),
    ("slimsam-50", "slimsam_vit_p50_uniform"),
    ("slimsam-77", "slimsam_vit_p77_uniform"),
]



def _meta_model(name: str) -> SamDecoderModel:
    with torch.device("meta"):  # no memory, no init time: ViT-H is 640 M parameters
        return get_spec(name).build()


@pytest.mark.parametrize("name,layout", VARIANTS)
def test_state_dict_equals_official_layout(name: str, layout: str) -> None:
    assert layout_of(_meta_model(name).state_dict()) == support.layout_rows(layout)


@pytest.mark.parametrize("name", [n for n, _ in VARIANTS])
def test_official_norms_activations_and_global_blocks(name: str) -> None:
    encoder = _meta_model(name).image_encoder
    assert all(m.eps == 1e-6 for m in encoder.modules() if isinstance(m, nn.LayerNorm))
    assert all(m.approximate == "none" for m in encoder.modules() if isinstance(m, nn.GELU))
    global_blocks = tuple(i for i, b in enumerate(encoder.blocks) if b.window_size == 0)
    depth = len(encoder.blocks)
    assert global_blocks == tuple(depth // 4 * k - 1 for k in (1, 2, 3, 4))  # (2, 5, 8, 11) for ViT-B
    assert {b.window_size for b in encoder.blocks} == {0, 14}


def test_window_partition_pads_with_zeros_and_round_trips() -> None:
    x = torch.randn(2, 20, 23, 5)
    windows, padded = window_partition(x, 14)
    assert padded == (28, 28) and windows.shape == (2 * 2 * 2, 14, 14, 5)
    # the bottom-right window holds x[:, 14:20, 14:23] and zeros beyond
    last = windows[3]
    assert torch.equal(last[:6, :9], x[0, 14:20, 14:23]) and not last[6:].any() and not last[:, 9:].any()
    assert torch.equal(window_unpartition(windows, 14, padded, (20, 23)), x)


def test_decomposed_rel_pos_bias_matches_its_definition() -> None:
    gen = torch.Generator().manual_seed(0)
    qh, qw, c = 3, 4, 6
    q = torch.randn(2, qh * qw, c, generator=gen)
    rel_h, rel_w = torch.randn(2 * qh - 1, c, generator=gen), torch.randn(2 * qw - 1, c, generator=gen)
    bias = decomposed_rel_pos_bias(q, rel_h, rel_w, (qh, qw), (qh, qw))
    expected = torch.empty(2, qh * qw, qh * qw)
    for i1 in range(qh):
        for j1 in range(qw):
            for i2 in range(qh):
                for j2 in range(qw):
                    table = rel_h[i1 - i2 + qh - 1] + rel_w[j1 - j2 + qw - 1]
                    expected[:, i1 * qw + j1, i2 * qw + j2] = q[:, i1 * qw + j1] @ table
    torch.testing.assert_close(bias, expected, atol=1e-5, rtol=1e-5)


def test_rel_pos_table_is_resampled_only_off_its_native_size() -> None:
    table = torch.randn(27, 8)
    assert resized_rel_pos(table, 27) is table
    constant = torch.full((27, 8), 0.5)
    resized = resized_rel_pos(constant, 39)
    assert resized.shape == (39, 8) and torch.allclose(resized, constant[:1].expand(39, 8))


@pytest.fixture(scope="module")
def slimsam77() -> SamDecoderModel:
    return build_variant("slimsam-77", weights="synthetic")


@pytest.fixture(scope="module")
def slimsam77_embedding(slimsam77: SamDecoderModel) -> np.ndarray:
    x = np.random.default_rng(1234).standard_normal((1, 3, 1024, 1024)).astype(np.float32)
    with torch.inference_mode():
        return slimsam77.encode(torch.from_numpy(x))["image_embeddings"].numpy()


def test_slimsam77_forward_shape_and_neck_normalisation(slimsam77: SamDecoderModel,
                                                       slimsam77_embedding: np.ndarray) -> None:
    emb = slimsam77_embedding
    assert emb.shape == (1, 256, 64, 64) and np.isfinite(emb).all()
    # the last LayerNorm2d: undoing its affine leaves zero mean, unit variance over channels at every pixel
    norm = slimsam77.image_encoder.neck[3]
    z = (emb[0] - norm.bias.detach().numpy()[:, None, None]) / norm.weight.detach().numpy()[:, None, None]
    assert np.abs(z.mean(0)).max() < 1e-4 and np.abs(z.var(0) - 1).max() < 1e-3


def test_slimsam77_forward_matches_official_reference(slimsam77_embedding: np.ndarray) -> None:
    ref = np.load(support.shared_path("parity", "slimsam_vit_p77_uniform", "encoder_synthetic.npz"))
    assert support.rel_l2(slimsam77_embedding[..., ::8, ::8], ref["enc_out_sample"]) <= support.EMBED_REL_L2


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch's exporter internals
def test_encoder_exports_to_onnx_and_runs_in_onnxruntime(tmp_path) -> None:
    # a small encoder with the same code paths: padded windows (20x20 grid, 14x14 windows) and a global block.
    # The dynamo exporter decomposes attention with another output layout than eager's (a view bug this guards).
    import onnxruntime as ort

    config = ViTConfig(embed_dim=24, depth=2, num_heads=2, mlp_dim=40, global_attn_indexes=(1,), img_size=320)
    encoder = ImageEncoderViT(config).eval()
    for p in encoder.parameters():  # away from the zero init, so the rel-pos tables matter
        nn.init.normal_(p, std=0.2, generator=torch.Generator().manual_seed(p.numel()))
    x = torch.randn(1, 3, 320, 320, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "vit.onnx"
    # exported with autograd on (no torch.no_grad()): the case where the decomposition used to break
    torch.onnx.export(encoder, (x,), str(path), dynamo=True, opset_version=18, input_names=["image"], verbose=False)
    with torch.no_grad():
        expected = encoder(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"image": x.numpy()})[0], expected, atol=1e-4, rtol=0)


def test_sam_vit_b_file_is_refused_by_slimsam50_with_the_differences() -> None:
    # a ViT-B file has every SlimSAM key, at 768 wide instead of 384: all mis-shaped, none missing
    state = {key: torch.empty(shape, device="meta") for key, shape, _ in support.layout_rows("sam_vit_b")}
    with pytest.raises(CheckpointError) as info:
        load_into(_meta_model("slimsam-50"), get_spec("slimsam-50"), state, source="sam_vit_b_01ec64.pth")
    message = info.value.message
    assert "slimsam-50" in message and "mis-shaped" in message and "missing" not in message
    assert "image_encoder.pos_embed: file (1, 64, 64, 768) float32, model (1, 64, 64, 384) float32" in message
    assert "sam-vit-b" in (info.value.hint or "")
