"""Every reference in ../shared/parity, reproduced by the registered variant with synthetic weights.

Cases are discovered from the folder: a reference whose layout no registered variant has fails (a variant
is missing), and new images are picked up without code changes.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from edgekit.predictor import Predictor
from edgekit.variants.registry import REGISTRY
from tests import support

# The references are the upstream models' own outputs: a variant whose encoder is an external ONNX file (NanoSAM,
# which shares MobileSAM's decoder layout) is not what they recorded.
_BY_LAYOUT = {spec.layout: spec for spec in REGISTRY.values() if not spec.external_encoder}


def _cases() -> list:
    root = support.SHARED / "parity"
    if not root.exists():
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=f"{root} is absent"))]
    cases = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for npz in sorted(folder.glob("*.npz")):
            cases.append(pytest.param(folder.name, npz.stem, id=f"{folder.name}-{npz.stem}"))
    return cases


@pytest.fixture(scope="module")
def predictors() -> dict:
    return {}


def _predictor(cache: dict, layout: str) -> Predictor:
    if layout not in cache:
        cache.clear()  # one big model in memory at a time
        spec = _BY_LAYOUT.get(layout)
        if spec is None:
            pytest.fail(f"no registered variant has layout {layout!r}")
        from edgekit.checkpoints import build_variant

        cache[layout] = Predictor(spec, build_variant(spec.name, weights="synthetic"))
    return cache[layout]


def _image_file(meta: dict, image: str) -> str:
    """The file in ../shared/images whose bytes the reference recorded (names differ from the upstream ones)."""
    wanted = meta["images"][image]["sha256"]
    for name, digest in support.image_hashes().items():
        if digest == wanted:
            return name
    pytest.fail(f"no image in ../shared/images has the sha256 {wanted} of reference image {image!r}")


@pytest.mark.parametrize("layout,case", _cases())
def test_parity(predictors: dict, layout: str, case: str) -> None:
    folder = support.shared_path("parity", layout)
    ref = dict(np.load(folder / f"{case}.npz"))
    predictor = _predictor(predictors, layout)
    if case == "encoder_synthetic":
        size = predictor.spec.input_size
        x = np.random.default_rng(1234).standard_normal((1, 3, size, size)).astype(np.float32)
        with torch.inference_mode():
            out = predictor.model.encode(torch.from_numpy(x))["image_embeddings"].numpy()
        # SAM 2 / EfficientTAM references record the predictor's image_embed (neck level + no_mem_embed) as
        # pred_image_embed; the others record the encoder's output as enc_out
        key = "enc_out" if "enc_out_sample" in ref else "pred_image_embed"
        step = out.shape[-1] // ref[f"{key}_sample"].shape[-1]
        assert tuple(out.shape) == tuple(ref[f"{key}_shape"])
        err = support.rel_l2(out[..., ::step, ::step], ref[f"{key}_sample"])
        assert err <= support.EMBED_REL_L2, f"encoder-only relative L2 {err:.2e}"
        return
    meta = json.loads((folder / f"{layout}.json").read_text())
    image = support.read_image(_image_file(meta, case))
    assert tuple(image.shape[:2]) == tuple(ref["image_hw"])
    predictor.set_image(image)
    x = predictor.input_image
    step = x.shape[-1] // ref["encoder_input_sample"].shape[-1]
    np.testing.assert_allclose(x[..., ::step, ::step], ref["encoder_input_sample"], atol=1e-4, rtol=0)
    emb = predictor.get_image_embedding()
    assert tuple(emb.shape) == tuple(ref["embedding_shape"])
    err = support.rel_l2(emb[..., ::8, ::8], ref["embedding_sample"])
    assert err <= support.EMBED_REL_L2, f"embedding relative L2 {err:.2e}"
    for prompt in ("P1", "P2", "P3"):
        coords, labels, box = ref[f"{prompt}_point_coords"], ref[f"{prompt}_point_labels"], ref[f"{prompt}_box"]
        out = predictor.predict(
            point_coords=coords if coords.size else None, point_labels=labels if labels.size else None,
            box=box if box.size else None, multimask_output=bool(ref[f"{prompt}_multimask"]),
        )
        ref_low = ref[f"{prompt}_low_res_logits"]
        low = out.low_res_masks.reshape(ref_low.shape)
        assert np.abs(low - ref_low).max() <= support.LOGITS_MAX_ABS, f"{prompt} logits max abs {np.abs(low - ref_low).max():.2e}"
        ref_iou = ref[f"{prompt}_iou_predictions"]
        assert np.abs(out.iou_predictions.reshape(ref_iou.shape) - ref_iou).max() <= support.IOU_PRED_ABS
        ref_masks = support.unpack_masks(ref, prompt)
        masks = out.masks.reshape(ref_masks.shape)
        for k in range(ref_masks.shape[0]):
            iou = support.mask_iou(masks[k], ref_masks[k])
            assert iou >= support.MASK_IOU_MIN, f"{prompt} mask {k} IoU {iou:.4f}"
