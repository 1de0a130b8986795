"""The explicit registry of variants: one entry per released checkpoint, keyed by its CLI name.

Entries are data; the model code lives in one file per encoder family (`builder` names it). Facts about the
official files (names, origins, licences) are from the variants' public repositories.
"""
from __future__ import annotations

from edgekit.errors import UnknownVariantError
from edgekit.preprocess import IMAGENET_MEAN, IMAGENET_STD, SAM_MEAN, SAM_STD, Preprocess
from edgekit.variants.base import CheckpointSource, VariantSpec

_FB = "https://dl.fbaipublicfiles.com"
_SAM2_URL = f"{_FB}/segment_anything_2/092824"

# EfficientViT-SAM normalises with ToTensor (/255) and mean/std scaled to 0..1.
_EVIT_MEAN = tuple(m / 255 for m in SAM_MEAN)
_EVIT_STD = tuple(s / 255 for s in SAM_STD)


def _evit(size: int) -> Preprocess:
    return Preprocess(input_size=size, normalize_scale="0-1", mean=_EVIT_MEAN, std=_EVIT_STD, prompt_frame=1024)


_SAM2_PRE = Preprocess(resize="stretch_bilinear_antialias", normalize_scale="0-1", mean=IMAGENET_MEAN,
                       std=IMAGENET_STD, mask_upsample="direct_bilinear")
_EFFICIENTSAM_PRE = Preprocess(resize="stretch_bilinear", normalize_scale="0-1", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                               mask_upsample="direct_bicubic", mask_threshold_inclusive=True)
_SAM2_IGNORED = ("memory_attention.", "memory_encoder.", "maskmem_tpos_enc", "no_mem_pos_enc", "obj_ptr_proj.",
                 "obj_ptr_tpos_proj.", "mask_downsample.", "no_obj_ptr", "no_obj_embed_spatial")
_NONCOMMERCIAL = "S-Lab License 1.0 (weights: non-commercial use only)"


def _spec(name: str, family: str, builder: str, layout: str, file_name: str, url: str | None = None, *,
          license: str = "Apache-2.0", **kw) -> VariantSpec:
    return VariantSpec(name=name, family=family, builder=builder, layout=layout,
                       checkpoint=CheckpointSource(file_name=file_name, url=url, license=license), **kw)


_SPECS: tuple[VariantSpec, ...] = (
    # --- SAM (ViT) and its pruned SlimSAM ---
    _spec("sam-vit-b", "sam", "edgekit.variants.sam_vit:build_sam_vit_b", "sam_vit_b", "sam_vit_b_01ec64.pth",
          f"{_FB}/segment_anything/sam_vit_b_01ec64.pth", description="SAM ViT-B"),
    _spec("sam-vit-l", "sam", "edgekit.variants.sam_vit:build_sam_vit_l", "sam_vit_l", "sam_vit_l_0b3195.pth",
          f"{_FB}/segment_anything/sam_vit_l_0b3195.pth", description="SAM ViT-L"),
    _spec("sam-vit-h", "sam", "edgekit.variants.sam_vit:build_sam_vit_h", "sam_vit_h", "sam_vit_h_4b8939.pth",
          f"{_FB}/segment_anything/sam_vit_h_4b8939.pth", description="SAM ViT-H"),
    _spec("slimsam-50", "slimsam", "edgekit.variants.sam_vit:build_slimsam_50", "slimsam_vit_p50_uniform",
          "SlimSAM-50-uniform.pth", description="SlimSAM, 50% uniform-pruned ViT-B"),
    _spec("slimsam-77", "slimsam", "edgekit.variants.sam_vit:build_slimsam_77", "slimsam_vit_p77_uniform",
          "SlimSAM-77-uniform.pth", description="SlimSAM, 77% uniform-pruned ViT-B"),
    # --- TinyViT encoders distilled from SAM ---
    _spec("mobilesam", "mobilesam", "edgekit.variants.tiny_vit:build_mobilesam", "mobile_sam_vit_t", "mobile_sam.pt",
          "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",
          description="MobileSAM, TinyViT-5M encoder"),
    _spec("tinysam", "tinysam", "edgekit.variants.tiny_vit:build_tinysam", "tinysam_vit_t", "tinysam.pth",
          "https://github.com/xinghaochen/TinySAM/releases/download/1.0/tinysam.pth",
          description="TinySAM, MobileSAM's architecture with hard-mining distillation"),
    # --- issue 4: the rest of the zoo ---
    _spec("efficientsam-ti", "efficientsam", "edgekit.variants.efficientsam:build_efficientsam_ti", "efficient_sam_vitt",
          "efficient_sam_vitt.pt", "https://github.com/yformer/EfficientSAM/raw/main/weights/efficient_sam_vitt.pt",
          preprocess=_EFFICIENTSAM_PRE, wrap_key="model", accepts_mask_input=False,
          description="EfficientSAM ViT-Ti (SAMI-pretrained)"),
    _spec("efficientsam-s", "efficientsam", "edgekit.variants.efficientsam:build_efficientsam_s", "efficient_sam_vits",
          "efficient_sam_vits.pt", "https://github.com/yformer/EfficientSAM/raw/main/weights/efficient_sam_vits.pt.zip",
          preprocess=_EFFICIENTSAM_PRE, wrap_key="model", accepts_mask_input=False,
          description="EfficientSAM ViT-S (SAMI-pretrained)"),
    _spec("edgesam", "edgesam", "edgekit.variants.edgesam:build_edgesam", "edge_sam", "edge_sam.pth",
          "https://huggingface.co/spaces/chongzhou/EdgeSAM/resolve/main/weights/edge_sam.pth",
          license=_NONCOMMERCIAL, ignored_key_prefixes=("fpn.", "rpn_head."),  # see edgekit/variants/edgesam.py
          description="EdgeSAM, RepViT encoder distilled with prompts in the loop"),
    _spec("repvit-sam", "repvit-sam", "edgekit.variants.repvit:build_repvit_sam", "repvit_sam", "repvit_sam.pt",
          "https://github.com/THU-MIG/RepViT/releases/download/v1.0/repvit_sam.pt", description="RepViT-SAM, RepViT-M2.3"),
    *(
        _spec(f"efficientvit-sam-{m}", "efficientvit-sam", f"edgekit.variants.efficientvit:build_efficientvit_sam_{m}",
              f"efficientvit_sam_{m}", f"efficientvit_sam_{m}.pt",
              f"https://huggingface.co/mit-han-lab/efficientvit-sam/resolve/main/efficientvit_sam_{m}.pt",
              preprocess=_evit(512 if m.startswith("l") else 1024), description=f"EfficientViT-SAM {m.upper()}")
        for m in ("l0", "l1", "l2", "xl0", "xl1")
    ),
    *(
        _spec(f"sam2.1-hiera-{short}", "sam2", f"edgekit.variants.sam2:build_sam21_hiera_{short.replace('+', '_plus')}",
              f"sam2.1_hiera_{short}", f"sam2.1_hiera_{long}.pt", f"{_SAM2_URL}/sam2.1_hiera_{long}.pt",
              preprocess=_SAM2_PRE, wrap_key="model", ignored_key_prefixes=_SAM2_IGNORED,
              extra_outputs=("object_score_logits",), description=f"SAM 2.1 Hiera-{short.upper()} (image path)")
        for short, long in (("t", "tiny"), ("s", "small"), ("b+", "base_plus"), ("l", "large"))
    ),
    *(
        _spec(f"efficienttam-{m}", "efficienttam", f"edgekit.variants.sam2:build_efficienttam_{m}",
              f"efficienttam_{m}", f"efficienttam_{m}.pt",
              f"https://huggingface.co/yunyangx/efficient-track-anything/resolve/main/efficienttam_{m}.pt",
              preprocess=_SAM2_PRE, wrap_key="model", ignored_key_prefixes=_SAM2_IGNORED,
              extra_outputs=("object_score_logits",), description=f"EfficientTAM-{m.upper()} (image path)")
        for m in ("ti", "s")
    ),
)

# NanoSAM (NVIDIA-AI-IOT/nanosam): a ResNet18 image encoder distilled from MobileSAM, released as ONNX only, with
# MobileSAM's mask decoder behind it. The encoder comes from --encoder-onnx; the decoder's weights from MobileSAM's
# release file (its image_encoder.* tensors are not used).
_NANOSAM = VariantSpec(
    name="nanosam", family="nanosam", builder="edgekit.variants.tiny_vit:build_mobilesam", layout="mobile_sam_vit_t",
    checkpoint=CheckpointSource(
        file_name="mobile_sam.pt", url="https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",
        note="NanoSAM's resnet18_image_encoder.onnx from github.com/NVIDIA-AI-IOT/nanosam; decoder: mobile_sam.pt"),
    external_encoder=True, ignored_key_prefixes=("image_encoder.",),
    description="NanoSAM: ResNet18 encoder (ONNX) + MobileSAM's decoder")

REGISTRY: dict[str, VariantSpec] = {spec.name: spec for spec in (*_SPECS, _NANOSAM)}


def known_names() -> list[str]:
    return list(REGISTRY)


def get_spec(name: str) -> VariantSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownVariantError(
            f"unknown variant {name!r}",
            hint="choose one of: " + ", ".join(known_names()) + " (see `edgekit models`)",
        ) from None
