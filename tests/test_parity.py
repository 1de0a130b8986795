"""Every reference in ../shared/parity, reproduced by the registered variant with synthetic weights.

Cases are discovered from the folder: a reference whose layout no registered variant has fails (a variant
is missing), and new images are picked up without code changes.

Tolerances are the issue's. A reference is one float32 run of the official code on some machine, so it carries
that machine's rounding; most variants reproduce it bit for bit or to ~1e-6, but where a variant is
ill-conditioned at an input (RepViT-based encoders with these synthetic weights) rounding alone moves the
outputs past the tolerances. There the test measures the conditioning (float32 against float64 of the same
graph) and holds the case to a multiple of it, or skips it, saying why, where no implementation could match.
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
        stems = sorted(npz.stem for npz in folder.glob("*.npz"))
        photos = [s for s in stems if s != "encoder_synthetic"]
        # The default run checks each reference on its synthetic-encoder case and one photograph (truck.jpg where
        # recorded: the best-conditioned one with synthetic weights); the other photographs run with -m slow.
        default = {"encoder_synthetic", "truck" if "truck" in photos else (photos or [""])[0]}
        for stem in stems:
            marks = [pytest.mark.xdist_group(f"parity-{folder.name}")]  # one model per worker
            if stem not in default:
                marks.append(pytest.mark.slow(reason="another photograph of a reference checked by default"))
            cases.append(pytest.param(folder.name, stem, id=f"{folder.name}-{stem}", marks=marks))
    return cases


@pytest.fixture(scope="module")
def predictors() -> dict:
    return {}


def _predictor(cache: dict, layout: str, float64: bool = False) -> Predictor:
    """The variant with synthetic weights, in float32 (what is checked) or float64 (to measure rounding)."""
    if layout not in cache:
        cache.clear()  # one big model in memory at a time
        spec = _BY_LAYOUT.get(layout)
        if spec is None:
            pytest.fail(f"no registered variant has layout {layout!r}")
        from edgekit.checkpoints import build_variant

        cache[layout] = {"float32": Predictor(spec, build_variant(spec.name, weights="synthetic"))}
    models = cache[layout]
    if float64 and "float64" not in models:
        import copy

        models["float64"] = Predictor(models["float32"].spec, copy.deepcopy(models["float32"].model).double())
    return models["float64" if float64 else "float32"]


def _image_file(meta: dict, image: str) -> str:
    """The file in ../shared/images whose bytes the reference recorded (names differ from the upstream ones)."""
    wanted = meta["images"][image]["sha256"]
    for name, digest in support.image_hashes().items():
        if digest == wanted:
            return name
    pytest.fail(f"no image in ../shared/images has the sha256 {wanted} of reference image {image!r}")


def _outputs(predictor: Predictor, ref: dict, image: np.ndarray | None) -> dict[str, np.ndarray]:
    """What the reference recorded, computed by `predictor`: the embedding sample (the encoder alone for
    encoder_synthetic), and per prompt the low-res logits, IoU predictions and masks."""
    if image is None:
        size = predictor.spec.input_size
        x = np.random.default_rng(1234).standard_normal((1, 3, size, size)).astype(np.float32)
        with torch.inference_mode():
            out = predictor.model.encode(torch.from_numpy(x).to(predictor.dtype))["image_embeddings"].float().numpy()
        key = _encoder_key(ref)
        step = out.shape[-1] // ref[f"{key}_sample"].shape[-1]
        assert tuple(out.shape) == tuple(ref[f"{key}_shape"])
        return {"embedding": out[..., ::step, ::step]}
    predictor.set_image(image)
    emb = predictor.get_image_embedding()
    assert tuple(emb.shape) == tuple(ref["embedding_shape"])
    got = {"embedding": emb[..., ::8, ::8]}
    for prompt in PROMPTS:
        coords, labels, box = ref[f"{prompt}_point_coords"], ref[f"{prompt}_point_labels"], ref[f"{prompt}_box"]
        out = predictor.predict(
            point_coords=coords if coords.size else None, point_labels=labels if labels.size else None,
            box=box if box.size else None, multimask_output=bool(ref[f"{prompt}_multimask"]),
        )
        shape = ref[f"{prompt}_low_res_logits"].shape
        got[f"{prompt}_logits"] = out.low_res_masks.reshape(shape)
        got[f"{prompt}_iou"] = out.iou_predictions.reshape(ref[f"{prompt}_iou_predictions"].shape)
        got[f"{prompt}_masks"] = out.masks.reshape(support.unpack_masks(ref, prompt).shape)
    return got


def _encoder_key(ref: dict) -> str:
    # SAM 2 / EfficientTAM references record the predictor's image_embed (neck level + no_mem_embed) as
    # pred_image_embed; the others record the encoder's output as enc_out
    return "enc_out" if "enc_out_sample" in ref else "pred_image_embed"


def _distances(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    """Per quantity, how far a is from b in the issue's metrics: relative L2 (embedding), max abs (logits,
    IoU predictions), 1 - the worst mask IoU (masks)."""
    out = {}
    for key, value in b.items():
        if key == "embedding":
            out[key] = support.rel_l2(a[key], value)
        elif key.endswith("_masks"):
            out[key] = 1.0 - min(support.mask_iou(a[key][k], value[k]) for k in range(value.shape[0]))
        else:
            out[key] = float(np.abs(np.asarray(a[key], np.float64) - value).max())
    return out


def _reference(ref: dict, synthetic: bool) -> dict[str, np.ndarray]:
    if synthetic:
        return {"embedding": ref[f"{_encoder_key(ref)}_sample"]}
    got = {"embedding": ref["embedding_sample"]}
    for prompt in PROMPTS:
        got[f"{prompt}_logits"] = ref[f"{prompt}_low_res_logits"]
        got[f"{prompt}_iou"] = ref[f"{prompt}_iou_predictions"]
        got[f"{prompt}_masks"] = support.unpack_masks(ref, prompt)
    return got


def _strict(key: str) -> float:
    if key == "embedding":
        return support.EMBED_REL_L2
    if key.endswith("_logits"):
        return support.LOGITS_MAX_ABS
    if key.endswith("_iou"):
        return support.IOU_PRED_ABS
    return 1.0 - support.MASK_IOU_MIN


def _rounding_floor(predictors: dict, layout: str, ref: dict, image: np.ndarray | None,
                    got: dict[str, np.ndarray]) -> dict[str, float]:
    """How far float32 rounding alone moves this variant's outputs at this input: our float32 runs (`got`, and one
    at another thread count: a different reduction order) against the same graph in float64, the worse of the two.

    The reference is itself one float32 run of the official code on another machine, so it carries rounding
    error of this size too; where a variant is ill-conditioned at an input no implementation can match the
    reference closer than that. Measured on RepViT-SAM (dog.jpg, synthetic weights): activations grow to ~1e6 by
    block 23, its squeeze-excite logits reach ~2e3, and their float32 rounding (~1e-5 relative, ~1e-2 absolute)
    moves the sigmoid gates of channels near 0.5, so one block multiplies the error 15x (2e-5 -> 3e-4); a
    dozen such gates take it to O(1)."""
    exact = _outputs(_predictor(predictors, layout, float64=True), ref, image)
    floor = _distances(got, exact)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2 if threads == 1 else 1)
        for key, value in _distances(_outputs(_predictor(predictors, layout), ref, image), exact).items():
            floor[key] = max(floor[key], value)
    finally:
        torch.set_num_threads(threads)
    return floor


@pytest.mark.parametrize("layout,case", _cases())
def test_parity(predictors: dict, layout: str, case: str) -> None:
    """Each quantity within the issue's tolerance; where one misses it, within ROUNDING_FACTOR times what float32
    rounding alone does to the variant at this input (measured here), and the case is skipped, saying so,
    where rounding alone moves the embedding by more than CHAOTIC: such a reference cannot tell implementations
    apart. The encoder input must match exactly whatever the conditioning (preprocessing is not rounding)."""
    folder = support.shared_path("parity", layout)
    ref = dict(np.load(folder / f"{case}.npz"))
    predictor = _predictor(predictors, layout)
    synthetic = case == "encoder_synthetic"
    image = None
    if not synthetic:
        meta = json.loads((folder / f"{layout}.json").read_text())
        image = support.read_image(_image_file(meta, case))
        assert tuple(image.shape[:2]) == tuple(ref["image_hw"])
    got = _outputs(predictor, ref, image)
    if image is not None:
        x = predictor.input_image
        step = x.shape[-1] // ref["encoder_input_sample"].shape[-1]
        np.testing.assert_allclose(x[..., ::step, ::step], ref["encoder_input_sample"], atol=1e-4, rtol=0)
    expected = _reference(ref, synthetic)
    errors = _distances(got, expected)
    missed = {k: e for k, e in errors.items() if e > _strict(k)}
    if not missed:
        return
    floor = _rounding_floor(predictors, layout, ref, image, got)
    if floor["embedding"] > CHAOTIC:
        pytest.skip(f"{layout} is ill-conditioned at {case}: float32 rounding alone moves its embedding by "
                    f"{floor['embedding']:.2f} (relative L2, float32 vs float64 of the same graph), so this reference "
                    f"cannot be reproduced by any implementation (ours misses it by {errors['embedding']:.2f})")
    report = {k: f"{errors[k]:.2e} > max({_strict(k):.0e}, {ROUNDING_FACTOR} x rounding {floor[k]:.2e})"
              for k in missed if errors[k] > max(_strict(k), ROUNDING_FACTOR * floor[k])}
    assert not report, f"{layout}/{case} beyond tolerance: {report}"


PROMPTS = ("P1", "P2", "P3")
# A reference's own float32 rounding is a draw of the same size as ours (measured: EdgeSAM on truck.jpg, ours
# 5.5e-4 and the reference 7.7e-5 from float64; RepViT-SAM's encoder alone, ours 5e-4..2e-3, the reference 2.5e-3):
# their distance stays well within 10x the larger of our two draws.
ROUNDING_FACTOR = 10
CHAOTIC = 0.05
