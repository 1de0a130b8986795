"""Load official checkpoint files safely and strictly.

`torch.load(weights_only=True)` only: a release file that needs code to unpickle is refused, never run.
The state dict must match the variant's layout exactly (keys, shapes, dtypes), less the keys the variant
declares unused (SAM 2's memory modules). A mismatch is one error with the counts, the first few differing
keys, and the registered variant whose layout the file does match, if any.
"""
from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import torch

from edgekit.errors import CheckpointError, InputError
from edgekit.variants.base import SamModel, VariantSpec

_SHOWN = 5  # keys listed per kind of difference
_WRAPPERS = ("model", "state_dict")  # {"model": sd} (EfficientSAM, SAM 2), {"state_dict": sd} (EfficientViT-SAM)


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict inside a release file, unwrapped; raises InputError / CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"checkpoint not found: {path}", hint="pass the path of the official release file")
    if not path.is_file():
        raise InputError(f"checkpoint is not a file: {path}", hint="pass the path of the .pt/.pth file itself")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "allowed global" in text or "Unsupported global" in text:
            culprit = re.search(r"(?:Unsupported global: GLOBAL|global) ([\w.]+)", text)
            raise CheckpointError(
                f"refusing to load {path}: unpickling it would run code"
                + (f" ({culprit.group(1)})" if culprit else "") + ", which edgekit never does",
                hint="re-save only its state dict (torch.save(model.state_dict(), path)) in a trusted environment",
            ) from None
        raise _corrupt(path, _weights_unpickler_reason(text)) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise _corrupt(path, str(exc).strip().splitlines()[0].split(". ")[0][:200] if str(exc).strip() else "the file is empty or cut short") from None
    return unwrap_state_dict(obj, path)


def _weights_unpickler_reason(text: str) -> str:
    match = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", text, re.S)
    return match.group(1).strip()[:200] if match else "not a PyTorch checkpoint"


def _corrupt(path: Path, reason: str) -> CheckpointError:
    return CheckpointError(f"cannot read checkpoint {path}: {reason}",
                           hint="the file is truncated or not a PyTorch checkpoint; download it again")


def unwrap_state_dict(obj: Any, path: str | Path = "<checkpoint>") -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in _WRAPPERS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
        if obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
            return dict(obj)
    raise CheckpointError(
        f"{path} holds no state dict (found {type(obj).__name__}"
        + (f" with keys {list(obj)[:5]}" if isinstance(obj, Mapping) else "") + ")",
        hint="pass the official release file: a state dict, or one wrapped as {'model': ...} / {'state_dict': ...}",
    )


def layout_diff(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, mis-shaped-or-typed) keys, each in checkpoint/model order."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    mismatched = [
        f"{k}: file {tuple(found[k].shape)} {str(found[k].dtype).replace('torch.', '')}, "
        f"model {tuple(v.shape)} {str(v.dtype).replace('torch.', '')}"
        for k, v in expected.items()
        if k in found and (tuple(found[k].shape) != tuple(v.shape) or found[k].dtype != v.dtype)
    ]
    return missing, unexpected, mismatched


def drop_ignored(spec: VariantSpec, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if not k.startswith(spec.ignored_key_prefixes)} if spec.ignored_key_prefixes else dict(state)


def matching_variants(state: Mapping[str, torch.Tensor], exclude: str | None = None) -> list[str]:
    """Registered variants whose layout this state dict matches exactly (built on the meta device: no memory)."""
    from edgekit.variants.registry import REGISTRY

    matches = []
    for name, spec in REGISTRY.items():
        if name == exclude:
            continue
        try:
            with torch.device("meta"):
                expected = spec.build().state_dict()
        except Exception:  # a variant whose code is unavailable cannot be a match
            continue
        if layout_diff(expected, drop_ignored(spec, state)) == ([], [], []):
            matches.append(name)
    return matches


def upcast_half(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Half-precision copies of float32 weights (fp16 / bf16 files, such as the shapes checkpoint shipped in
    tests/data) load as float32: the upcast is exact, and every other dtype difference still fails the layout."""
    out = dict(state)
    for k, v in state.items():
        if k in expected and expected[k].dtype == torch.float32 and v.dtype in (torch.float16, torch.bfloat16):
            out[k] = v.float()
    return out


def load_into(model: SamModel, spec: VariantSpec, state: Mapping[str, torch.Tensor], source: str = "<checkpoint>") -> SamModel:
    """Copy `state` into `model` strictly; raises CheckpointError naming the differences."""
    expected = model.state_dict()
    state = upcast_half(expected, drop_ignored(spec, state))
    missing, unexpected, mismatched = layout_diff(expected, state)
    if missing or unexpected or mismatched:
        lines = [f"{source} does not have the {spec.name} layout ({spec.layout}):"]
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", mismatched)):
            if keys:
                more = f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
                lines.append(f"  {len(keys)} {label}: " + ", ".join(keys[:_SHOWN]) + more)
        others = matching_variants(state, exclude=spec.name)
        hint = (f"this file looks like {' / '.join(others)}: use --model {others[0]}" if others
                else f"pass the official {spec.checkpoint.file_name} for {spec.name}")
        raise CheckpointError("\n".join(lines), hint=hint)
    model.load_state_dict(state, strict=True)
    return model


def build_variant(name: str, checkpoint: str | Path | None = None, weights: str | None = None,
                  encoder_onnx: str | Path | None = None) -> SamModel:
    """The registered variant with official (checkpoint) or synthetic weights, in eval mode. `encoder_onnx`
    replaces its image encoder with an ONNX file (required by variants released that way: NanoSAM)."""
    from edgekit.synthetic import layout_of, synthetic_state_dict
    from edgekit.variants.registry import get_spec

    spec = get_spec(name)
    if spec.external_encoder and encoder_onnx is None:
        raise InputError(f"{name} releases its image encoder only as ONNX", hint=f"pass --encoder-onnx PATH "
                         f"({spec.checkpoint.note or 'the official encoder .onnx'})")
    if checkpoint is not None and weights is not None:
        raise InputError("give either a checkpoint or --weights, not both", hint="drop one of them")
    if checkpoint is None and weights is None:
        raise InputError(f"no weights for {name}",
                         hint=f"pass --checkpoint {spec.checkpoint.file_name} (the official file) or --weights synthetic")
    if weights is not None and weights != "synthetic":
        raise InputError(f"unknown --weights {weights!r}", hint="the only value is 'synthetic'")
    model = spec.build()
    if encoder_onnx is not None:
        from edgekit.variants.onnx_encoder import attach_onnx_encoder

        attach_onnx_encoder(model, spec, Path(encoder_onnx))
    if checkpoint is not None:
        if encoder_onnx is not None and "image_encoder." not in spec.ignored_key_prefixes:
            # the ONNX file is the encoder now: the release file's own encoder tensors are unused, as declared
            # for NanoSAM in the registry
            spec = replace(spec, ignored_key_prefixes=(*spec.ignored_key_prefixes, "image_encoder."))
        load_into(model, spec, read_checkpoint(checkpoint), source=str(checkpoint))
    elif encoder_onnx is not None:
        # The synthetic file of the variant's whole layout, so the decoder gets the values it has without an
        # external encoder (the encoder's own synthetic tensors are dropped, as a release file's would be).
        with torch.device("meta"):
            layout = layout_of(spec.build().state_dict())
        keep = set(model.state_dict())
        model.load_state_dict({k: v for k, v in synthetic_state_dict(layout).items() if k in keep}, strict=True)
    else:
        model.load_state_dict(synthetic_state_dict(layout_of(model.state_dict())), strict=True)
    return model.eval()
