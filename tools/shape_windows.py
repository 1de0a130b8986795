"""Training MobileSAM on windows of its official 1024 frame: a model built for a small input with the official
weights' keys and shapes, windows of a preprocessed scene with their targets, prompts and positional encoding in
the 1024 frame, and BatchNorm statistics re-estimated at 1024 (tools/train_shapes.py uses these)."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shapes import MIN_AREA_FRACTION, Scene, render_scene  # noqa: E402

from edgekit.preprocess import preprocess_image  # noqa: E402
from edgekit.variants.registry import get_spec  # noqa: E402

OFFICIAL_SIZE = 1024


def build_at(size: int):
    """The registered mobilesam architecture whose encoder takes a `size` x `size` window of the official 1024
    frame (prompts stay in that frame).

    TinyViT's parameters do not depend on the input size (window attention biases are per window; the neck is
    convolutional) and the prompt encoder's Fourier features are of coordinates in the 1024 frame, so a model built
    at 256 has exactly mobile_sam.pt's keys and shapes: the same weights train on 256 windows ~20x faster than on
    the whole 1024 input, and are evaluated and exported at 1024."""
    from edgekit.variants.sam_decoder import SamDecoderModel
    from edgekit.variants.sam_prompt_encoder import PromptEncoder
    from edgekit.variants.tiny_vit import TinyViT

    if size == OFFICIAL_SIZE:
        return get_spec("mobilesam").build()
    if size % 64 or not 64 <= size < OFFICIAL_SIZE:
        raise SystemExit(f"--size must be a multiple of 64 up to 1024 (TinyViT's 16x stride and the decoder's 4x "
                         f"mask upscaling), got {size}")
    return SamDecoderModel(TinyViT(img_size=size), PromptEncoder(image_embedding_size=(size // 16, size // 16),
                                                                 input_image_size=(OFFICIAL_SIZE, OFFICIAL_SIZE)))


@dataclass
class Window:
    """A square of the preprocessed 1024 frame: what one encoder pass trains on."""

    image: torch.Tensor | None  # (1, 3, S, S), normalised as the official input; None with `embedding`
    targets: torch.Tensor  # (M, S/4, S/4) 0/1: the masks' parts inside the window, in the decoder's low-res frame
    origin: tuple[int, int]  # (y, x) of the window in the 1024 frame, a multiple of 16 (one embedding cell)
    embedding: torch.Tensor | None = None  # the frozen encoder's output, when only the decoder trains


def training_windows(scene: Scene, size: int, count: int, rng: np.random.Generator) -> list[Window]:
    """`count` random size x size windows of the scene preprocessed exactly as at 1024 (same resize, same pad):
    shapes are as large in pixels and tokens as the official input makes them, and window_pe gives each window
    the positional encoding of its place in the 1024 frame, so nothing the model learns depends on the window size
    except how much context it sees. A window keeps the annotations with a part inside it."""
    recipe = get_spec("mobilesam").preprocess
    x, geo = preprocess_image(recipe, scene.rgb)
    full = lowres_targets(scene, recipe, geo)  # (M, 256, 256)
    nh, nw = geo.resized_hw
    windows = []
    for _ in range(count):
        y0 = 16 * int(rng.integers(0, max(0, nh - size) // 16 + 1))
        x0 = 16 * int(rng.integers(0, max(0, nw - size) // 16 + 1))
        t = full[:, y0 // 4:(y0 + size) // 4, x0 // 4:(x0 + size) // 4]
        keep = t.flatten(1).sum(1) >= MIN_AREA_FRACTION * (size // 4) ** 2
        if bool(keep.any()):
            image = torch.from_numpy(np.ascontiguousarray(x[:, :, y0:y0 + size, x0:x0 + size]))
            windows.append(Window(image=image, targets=t[keep], origin=(y0, x0)))
    return windows


def window_pe(model, origin: tuple[int, int], size: int) -> torch.Tensor:
    """(1, C, S/16, S/16): the dense positional encoding of the window's embedding cells, cut from the 1024
    frame's (for the whole frame it equals get_dense_pe())."""
    n = size // 16
    ys = origin[0] + 16 * (torch.arange(n, dtype=torch.float32) + 0.5)
    xs = origin[1] + 16 * (torch.arange(n, dtype=torch.float32) + 0.5)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (n, n, 2): [i, j] = (x_j, y_i)
    pe = model.prompt_encoder.pe_layer.forward_with_coords(grid.reshape(1, -1, 2), (OFFICIAL_SIZE, OFFICIAL_SIZE))
    return pe.reshape(n, n, -1).permute(2, 0, 1).unsqueeze(0)


def window_prompts(targets: torch.Tensor, origin: tuple[int, int], rng: np.random.Generator):
    """For each target: a point anywhere on its part in the window (+ SAM's padding point), then the box of that
    part (jittered by 5% of a side, at most 8 pixels), in the 1024 frame; two tokens each so one decoder batch
    carries both."""
    y0, x0 = origin
    coords, labels, boxes = [], [], []
    for t in targets.numpy() > 0.5:
        vs, us = np.nonzero(t)
        j = int(rng.integers(len(us)))
        coords.append([[x0 + 4 * us[j] + rng.uniform(0, 4), y0 + 4 * vs[j] + rng.uniform(0, 4)], [0.0, 0.0]])
        labels.append([1.0, -1.0])
        box = np.array([[x0 + 4 * us.min(), y0 + 4 * vs.min()], [x0 + 4 * (us.max() + 1), y0 + 4 * (vs.max() + 1)]],
                       np.float64)
        boxes.append(box + rng.normal(0, 1, (2, 2)) * np.minimum(0.05 * (box[1] - box[0]), 8))
    for box in boxes:
        coords.append(np.clip(box, 0, OFFICIAL_SIZE))
        labels.append([2.0, 3.0])
    return torch.tensor(np.array(coords), dtype=torch.float32), torch.tensor(labels, dtype=torch.float32)


def batchnorms(model) -> list[torch.nn.Module]:
    """The model's BatchNorm layers (TinyViT's convolutions carry them; the decoder has none)."""
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batchnorm(model, count: int = 16) -> None:
    """TinyViT's convolutions carry BatchNorm. Trained one window at a time, their running statistics describe
    windows, not a whole 1024 input; this re-estimates them (a plain average over `count` training scenes at
    1024; the model must be the official-size one) before evaluating or exporting."""
    recipe = get_spec("mobilesam").preprocess
    bns = batchnorms(model)
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    was_training = model.training
    model.eval()
    for m in bns:
        m.train()
    for seed in range(count):
        x, _ = preprocess_image(recipe, render_scene(seed).rgb)
        model.encode(torch.from_numpy(x))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.train(was_training)


def lowres_targets(scene: Scene, recipe, geo) -> torch.Tensor:
    """Ground-truth masks in the decoder's low-res frame: (M, 256, 256) float 0/1 (padding is background)."""
    nh, nw = geo.resized_hw
    s = recipe.input_size
    m = torch.from_numpy(np.stack(scene.masks).astype(np.float32))[:, None]
    m = F.interpolate(m, (nh, nw), mode="bilinear", align_corners=False)
    m = F.pad(m, (0, s - nw, 0, s - nh))
    return (F.avg_pool2d(m, 4) > 0.5).float()[:, 0]
