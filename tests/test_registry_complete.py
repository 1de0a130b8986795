"""Every registered variant, end to end at test cost: synthetic weights in the official layout with a strict
round trip, SamPredictor-style prediction (a point, a box), the export form (`decode_all`) against `decode`,
and both parts exported to ONNX and validated against torch through the pipeline's `ensure_export`.

Parametrized from REGISTRY itself, so a new entry is tested without touching this file, and a test checks
the registry against the official checkpoint layouts (../shared/layouts), so no released variant is left out. Each variant is built once (a module-scoped fixture that pytest groups by
variant, so only one model is in memory at a time).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch

from edgekit.checkpoints import build_variant, load_into, unwrap_state_dict
from edgekit.exporters.graphs import decoder_signature
from edgekit.pipeline.artifacts import Artifact, ensure_export
from edgekit.pipeline.context import ModelContext
from edgekit.pipeline.context import testcard as make_testcard  # not `test*`: pytest would collect it
from edgekit.predictor import Predictor
from edgekit.store import Store
from edgekit.synthetic import layout_of, synthetic_state_dict
from edgekit.variants.base import SamModel, VariantSpec
from edgekit.variants.registry import REGISTRY
from tests import support

# Full-size encoder exports too costly for the default run, measured on the 2-core machine (dynamo export +
# onnxslim + ORT-vs-torch validation, one image). Their build / predict / decode_all / decoder-export cases still
# run by default, and a smaller sibling exports the same encoder code in the default run.
SLOW_ENCODER_EXPORT: dict[str, str] = {
    "sam-vit-h": "encoder export did not finish under a 15 GB memory cap (killed after 128 s); "
                 "sam-vit-b/slimsam cover its code",
    "sam-vit-l": "encoder export measured 107 s wall, 11.1 GB peak; sam-vit-b/slimsam cover its code",
    "sam2.1-hiera-l": "encoder export measured 80 s wall, 8.1 GB peak; sam2.1-hiera-t/s/b+ cover its code",
    "efficientvit-sam-xl1": "encoder export measured 69 s wall, 7.1 GB peak; efficientvit-sam-xl0 covers its code",
}


# Encoder exports whose module code a sibling exports in the default run at other widths and depths (the same
# classes, only the config differs), timed in the whole suite on the 2-core machine: they run with `-m slow`.
SIBLING_ENCODER_EXPORT: dict[str, str] = {
    "sam-vit-b": "88 s; slimsam-77 exports the same SAM ViT encoder code",
    "slimsam-50": "53 s; slimsam-77 exports the same code",
    "tinysam": "61 s; mobilesam exports the same TinyViT encoder (identical layout)",
    "sam2.1-hiera-s": "44 s; sam2.1-hiera-t exports the same Hiera code",
    "sam2.1-hiera-b+": "102 s; sam2.1-hiera-t exports the same Hiera code",
    "efficientvit-sam-l1": "28 s; efficientvit-sam-l0 exports the same EfficientViT-L code",
    "efficientvit-sam-l2": "39 s; efficientvit-sam-l0 exports the same EfficientViT-L code",
    "efficientsam-s": "39 s; efficientsam-ti exports the same ViT code",
    "efficienttam-s": "25 s; efficienttam-ti exports the same ViT code",
}


# Decoder exports whose decoder a sibling exports in the default run: the same class at the same config (the
# official layouts' decoder and prompt-encoder tensors are identical, checked below), only the weights differ.
# ~20 s each on the 2-core machine; they run with `-m slow`. variant -> the sibling that exports its decoder.
DECODER_SIBLING: dict[str, str] = {
    **{name: "mobilesam" for name in ("sam-vit-b", "sam-vit-l", "sam-vit-h", "slimsam-50", "slimsam-77", "tinysam",
                                      "repvit-sam", "efficientvit-sam-l0", "efficientvit-sam-l1", "efficientvit-sam-l2",
                                      "efficientvit-sam-xl0", "efficientvit-sam-xl1")},
    **{name: "sam2.1-hiera-t" for name in ("sam2.1-hiera-s", "sam2.1-hiera-b+", "sam2.1-hiera-l")},
    "efficienttam-s": "efficienttam-ti",
    "efficientsam-s": "efficientsam-ti",
}
SIBLING_DECODER_EXPORT: dict[str, str] = {name: f"{ref} exports the same decoder (same class and config)"
                                          for name, ref in DECODER_SIBLING.items()}


def _params(slow: dict[str, str] | None = None) -> list:
    slow = slow or {}
    # one xdist group per variant: its tests share one built model (module fixture) on one worker
    return [pytest.param(name, id=name, marks=[pytest.mark.xdist_group(f"variant-{name}"),
                                               *([pytest.mark.slow(reason=slow[name])] if name in slow else [])])
            for name in REGISTRY]


# Encoder exports are validated on the test card, as `edgekit deploy` does without --calib. Not a photograph on
# purpose: with synthetic weights some deep encoders are numerically chaotic on photos (RepViT-SAM on dog.jpg:
# torch's own FP32 embedding is 0.7 away from FP64), where an element-wise ORT-vs-torch check proves nothing.
# Decoder exports are validated on the predictor's real image (the decoder is well conditioned).
EXPORT_IMAGE = make_testcard()
VARIANTS = _params()
ENCODER_VARIANTS = _params({**SLOW_ENCODER_EXPORT, **SIBLING_ENCODER_EXPORT})
DECODER_VARIANTS = _params(SIBLING_DECODER_EXPORT)
# Eager runs of the two largest SAM encoders (ViT-H 70 s, ViT-L 41 s on the 2-core machine); sam-vit-b runs the same
# code by default, and their layouts and strict loading are still checked by default.
GIANT_PREDICT = {"sam-vit-h": "ViT-H encoder run: 70 s; sam-vit-b runs the same code",
                 "sam-vit-l": "ViT-L encoder run: 41 s; sam-vit-b runs the same code"}
PREDICT_VARIANTS = _params(GIANT_PREDICT)


@dataclass
class Built:
    spec: VariantSpec
    model: SamModel
    image: np.ndarray  # small RGB image
    store: Path
    encoder_onnx: Path | None = None  # variants whose image encoder is an ONNX file (NanoSAM): a stand-in one
    _predictor: Predictor | None = field(default=None, repr=False)

    @property
    def predictor(self) -> Predictor:
        """A predictor with `image` set: the one torch encoder run the eager tests share."""
        if self._predictor is None:
            self._predictor = Predictor(self.spec, self.model)
            self._predictor.set_image(self.image)
        return self._predictor

    @property
    def features(self) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(v) for k, v in self.predictor.get_features().items()}

    def context(self) -> ModelContext:
        return ModelContext(spec=self.spec, checkpoint=None, store=Store(self.store), _model=self.model,
                            encoder_onnx=self.encoder_onnx)


def _small_image() -> np.ndarray:
    """A real photograph at 160 px wide (the encoder sees its full input size anyway; a small original keeps
    mask upsampling cheap), or the deterministic test card when the workplace's images are absent."""
    if support.has_shared("images", "dog.jpg"):
        from PIL import Image

        image = Image.fromarray(support.read_image("dog.jpg"))
        return np.asarray(image.resize((160, round(160 * image.height / image.width)), Image.BILINEAR))
    return make_testcard(160)


def _memoize_encode(model: SamModel) -> SamModel:
    """Let eager encoder runs on an identical input reuse the first one's features (the predictor's image is
    encoded again by ensure_export's decoder validation: for SAM ViT-H that is a minute). Only plain inference
    calls are cached: exports trace the real `encode`, and FP64 copies (validation's noise floor) miss on dtype."""
    base = type(model)

    def encode(self: SamModel, image: torch.Tensor) -> dict[str, torch.Tensor]:
        if torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting() or not torch.is_inference_mode_enabled():
            return base.encode(self, image)
        key = (image.dtype, tuple(image.shape), hashlib.sha1(image.numpy().tobytes()).hexdigest())
        cache = self.__dict__.setdefault("_encode_cache", {})
        if key not in cache:
            cache[key] = base.encode(self, image)
        return dict(cache[key])

    model.__class__ = type(f"Memo{base.__name__}", (base,), {"encode": encode})
    return model


@pytest.fixture(scope="module")
def variant(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    torch.manual_seed(0)
    name = request.param
    store = tmp_path_factory.mktemp(f"store-{name}")
    encoder_onnx = None
    if REGISTRY[name].external_encoder:  # NanoSAM's real file cannot be downloaded: one with its interface
        from tests.resnet_encoder import write_encoder

        encoder_onnx = write_encoder(store.parent / f"{store.name}-encoder.onnx", size=REGISTRY[name].input_size)
    built = Built(REGISTRY[name], _memoize_encode(build_variant(name, weights="synthetic", encoder_onnx=encoder_onnx)),
                  _small_image(), store, encoder_onnx)
    yield built
    del built.model, built._predictor  # the next variant's model replaces this one in memory


def _layout_rows(layout: str) -> dict[str, tuple[tuple[int, ...], str]] | None:
    """key -> (shape, dtype) from the workplace's official layout listing, or None when it is absent."""
    path = support.SHARED / "layouts" / f"{layout}.txt"
    if not path.is_file():
        return None
    rows = {}
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape, dtype = line.split("\t")
        rows[key] = (tuple(int(s) for s in shape.strip("()").split(",") if s.strip()), dtype)
    return rows


def test_every_official_layout_has_a_registered_variant_and_back() -> None:
    """The registry against an independent list, the official checkpoint layouts in ../shared/layouts: a layout
    no variant loads is a missing variant; a variant whose layout is not official loads no release file."""
    folder = support.shared_path("layouts")
    official = {p.stem for p in folder.glob("*.txt")}
    registered = {spec.layout for spec in REGISTRY.values()}
    assert official - registered == set(), "official layouts without a registered variant"
    assert registered - official == set(), "registered variants whose layout is no official release file"
    assert set(SLOW_ENCODER_EXPORT) | set(SIBLING_ENCODER_EXPORT) | set(SIBLING_DECODER_EXPORT) | set(GIANT_PREDICT) \
        <= set(REGISTRY), \
        "a slow mark names an unknown variant"


def test_decoder_siblings_share_the_decoder_layout() -> None:
    """What lets a decoder export run only with -m slow: its sibling's official decoder and prompt-encoder tensors
    (keys, shapes, dtypes) are the same."""
    def decoder_rows(name: str) -> dict:
        rows = _layout_rows(REGISTRY[name].layout)
        if rows is None:
            pytest.skip("../shared/layouts is absent: the official layouts are the reference")
        part = {k: v for k, v in rows.items() if k.split(".", 1)[0].endswith(("mask_decoder", "prompt_encoder"))}
        assert len(part) > 50, name
        return part

    for name, sibling in DECODER_SIBLING.items():
        assert sibling not in SIBLING_DECODER_EXPORT, f"{sibling} must export in the default run"
        assert decoder_rows(name) == decoder_rows(sibling), f"{name}'s decoder differs from {sibling}'s"


@pytest.mark.parametrize("variant", VARIANTS, indirect=True)
def test_official_layout_and_strict_round_trip(variant: Built) -> None:
    spec, state = variant.spec, variant.model.state_dict()
    release = dict(state)
    official = _layout_rows(spec.layout)
    if official is not None:  # keys, shapes and dtypes are the official file's, less the declared-unused ones
        kept = {k: v for k, v in official.items() if not k.startswith(spec.ignored_key_prefixes or ("\0",))}
        assert {k: (s, d) for k, s, d in layout_of(state)} == kept
        # the release file also holds the keys loading drops (SAM 2's memory modules, EdgeSAM's heads)
        release.update(synthetic_state_dict([(k, s, d) for k, (s, d) in official.items() if k not in kept]))
    wrapped = {spec.wrap_key: release} if spec.wrap_key else release
    with torch.device("meta"):
        fresh = spec.build()
    fresh = fresh.to_empty(device="cpu")  # no second random initialisation: load_into fills every tensor
    if variant.encoder_onnx is not None:
        from edgekit.variants.onnx_encoder import attach_onnx_encoder

        attach_onnx_encoder(fresh, spec, variant.encoder_onnx)
    load_into(fresh, spec, unwrap_state_dict(wrapped), source=spec.checkpoint.file_name)
    loaded = fresh.state_dict()
    assert list(loaded) == list(state)
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


@pytest.mark.parametrize("variant", PREDICT_VARIANTS, indirect=True)
def test_predict_a_point_and_a_box(variant: Built) -> None:
    spec, image = variant.spec, variant.image
    h, w = image.shape[:2]
    predictor = variant.predictor
    low = spec.low_res_size
    for kwargs, k in ((dict(point_coords=[[w * 0.5, h * 0.5]], point_labels=[1]), spec.multimask_count),
                      (dict(box=[w * 0.2, h * 0.25, w * 0.8, h * 0.9], multimask_output=False), 1)):
        out = predictor.predict(**kwargs)
        assert out.masks.shape == (k, h, w) and out.masks.dtype == np.bool_
        assert out.iou_predictions.shape == (k,) and out.low_res_masks.shape == (k, low, low)
        assert np.isfinite(out.iou_predictions).all() and np.isfinite(out.low_res_masks).all()
        assert set(out.extras) == set(spec.extra_outputs)
        assert all(np.isfinite(v).all() for v in out.extras.values())
    assert predictor.get_image_embedding().shape == (1, *spec.embedding_shape)


@pytest.mark.parametrize("variant", PREDICT_VARIANTS, indirect=True)
def test_decode_all_is_single_then_multimask_in_one_graph(variant: Built) -> None:
    """The export form equals `decode`: index 0 the single-mask answer, 1.. the multimask candidates; with a
    mask input, has_mask_input 1 uses it and 0 ignores it."""
    spec, model, feats = variant.spec, variant.model, variant.features
    coords, labels = model.prepare_prompts(torch.tensor([[[300.0, 420.0], [700.0, 200.0]]]),
                                           torch.tensor([[1.0, 0.0]]), torch.tensor([[150.0, 180.0], [820.0, 900.0]]))
    low = spec.low_res_size
    mask = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 1, low, low)).astype(np.float32) * 4)
    cases = [(None, None, None)]
    if spec.accepts_mask_input:
        cases += [(mask, torch.ones(1), mask), (mask, torch.zeros(1), None)]
    with torch.inference_mode():
        for mask_in, has_mask, eager_mask in cases:
            out = model.decode_all(feats, coords, labels, mask_in, has_mask)
            single = model.decode(feats, coords, labels, eager_mask, multimask_output=False)
            multi = model.decode(feats, coords, labels, eager_mask, multimask_output=True)
            assert out.low_res_masks.shape == (1, 1 + spec.multimask_count, low, low)
            torch.testing.assert_close(out.low_res_masks, torch.cat([single.low_res_masks, multi.low_res_masks], 1),
                                       atol=1e-5, rtol=0)
            torch.testing.assert_close(out.iou_predictions,
                                       torch.cat([single.iou_predictions, multi.iou_predictions], 1), atol=1e-6, rtol=0)
            for name in spec.extra_outputs:
                torch.testing.assert_close(out.extras[name], single.extras[name], atol=1e-6, rtol=0)


def _check_validated(artifact: Artifact, external: bool = False) -> dict:
    info = artifact.info
    assert info["exporter"] in (("external",) if external else ("dynamo", "legacy")) and info["validation"]["passed"], info
    assert artifact.path.is_file() and info["validation"]["samples"] >= 1
    return info


@pytest.mark.parametrize("variant", DECODER_VARIANTS, indirect=True)
def test_decoder_exports_and_matches_torch(variant: Built) -> None:
    import onnxruntime as ort

    spec, model, feats = variant.spec, variant.model, variant.features
    artifact = ensure_export(variant.context(), "decoder", [variant.image])  # its features are cached
    _check_validated(artifact)
    session = ort.InferenceSession(str(artifact.path), providers=["CPUExecutionProvider"])
    sig = decoder_signature(spec, tuple(feats))
    assert tuple(i.name for i in session.get_inputs()) == sig.inputs
    assert tuple(o.name for o in session.get_outputs()) == sig.outputs
    # The point count stays dynamic: a prompt longer than the traced example (5 points + a box) runs and
    # agrees with torch (validation's prompts only had 2-3 points).
    rng = np.random.default_rng(1)
    frame = spec.preprocess.prompt_frame
    coords, labels = model.prepare_prompts(torch.from_numpy(rng.uniform(0, frame, (1, 5, 2)).astype(np.float32)),
                                           torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0]]),
                                           torch.tensor([[100.0, 120.0], [0.8 * frame, 0.9 * frame]]))
    feeds = {k: v.numpy() for k, v in feats.items()} | {"point_coords": coords.numpy(), "point_labels": labels.numpy()}
    if spec.accepts_mask_input:
        feeds |= {"mask_input": np.zeros((1, 1, spec.low_res_size, spec.low_res_size), np.float32),
                  "has_mask_input": np.zeros(1, np.float32)}
    got = session.run(None, feeds)
    with torch.inference_mode():
        ref = model.decode_all(feats, coords, labels, None, None)
    k = 1 + spec.multimask_count
    assert got[0].shape == (1, k, spec.low_res_size, spec.low_res_size) and got[1].shape == (1, k)
    np.testing.assert_allclose(got[0], ref.low_res_masks.numpy(), atol=max(spec.export_atol[1], 2e-3), rtol=0)
    np.testing.assert_allclose(got[1], ref.iou_predictions.numpy(), atol=max(spec.export_atol[1], 2e-3), rtol=0)


@pytest.mark.parametrize("variant", ENCODER_VARIANTS, indirect=True)
def test_encoder_exports_and_matches_torch(variant: Built) -> None:
    artifact = ensure_export(variant.context(), "encoder", [EXPORT_IMAGE])
    info = _check_validated(artifact, external=variant.encoder_onnx is not None)
    assert next(iter(info["validation"]["max_abs"])) == "image_embeddings"
