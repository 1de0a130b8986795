"""One training step of tools/train_shapes.py: the prompts and targets of a window, SAM's loss shape, the update's
statistics. The targets are the shapes' masks, or, in the warm-up (--geometric-steps), shapes made from the
prompts alone."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from shape_windows import Window, window_pe, window_prompts

# A window's annotations (up to 8) each prompt twice as a point and twice as a box, drawn independently: on a 256
# window the decoder is cheap beside the encoder, and the prompts are what a from-scratch decoder learns slowest
PROMPTS_PER_WINDOW = 8
DRAWS_PER_PROMPT = 2
GEOMETRIC_RADIUS = 96.0  # pixels of the 1024 frame: the point targets of --geometric-steps


def _bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Plain per-pixel cross-entropy. SAM's focal loss assumes a pretrained encoder: from scratch it let every
    mask collapse to background within 100 steps (measured). A foreground weight of background/foreground (up to
    20) avoided that but over-segmented: train IoU stayed under 0.3 at 1024 for 300 steps (measured), the
    weighted optimum lying outside the shape's edge. The dice term beside it keeps the gradient on small shapes."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(-2).mean(-1)


def _dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits).flatten(-2)
    t = target.flatten(-2)
    return 1 - (2 * (p * t).sum(-1) + 1) / (p.sum(-1) + t.sum(-1) + 1)


def _iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    pred = (logits > 0).flatten(-2)
    t = target.flatten(-2) > 0.5
    inter = (pred & t).sum(-1).float()
    union = (pred | t).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))


def geometric_targets(coords: torch.Tensor, origin: tuple[int, int], side: int) -> torch.Tensor:
    """The warm-up stage's targets, from the prompts alone: a disk of GEOMETRIC_RADIUS around each point prompt (the
    first half of `coords`), the filled rectangle of each box (the second half), on the side x side low-res grid
    of a window at `origin` (4 pixels a cell)."""
    y0, x0 = origin
    k = coords.shape[0] // 2
    centres = (torch.arange(side, dtype=torch.float32) + 0.5) * 4
    ys, xs = (centres + y0)[:, None], (centres + x0)[None, :]
    out = []
    for i in range(k):
        px, py = coords[i, 0]
        out.append(((xs - px) ** 2 + (ys - py) ** 2 <= GEOMETRIC_RADIUS ** 2).float())
    for i in range(k, 2 * k):
        (ax, ay), (bx, by) = coords[i]
        out.append(((xs >= ax) & (xs <= bx) & (ys >= ay) & (ys <= by)).float())
    return torch.stack(out)


def train_step(model, window: Window, rng: np.random.Generator, scale: float = 1.0,
               prompts: tuple[int, int] = (PROMPTS_PER_WINDOW, DRAWS_PER_PROMPT),
               geometric: bool = False) -> dict[str, float]:
    """SAM's loss shape (a pixel loss + dice on the mask, MSE on the IoU prediction) with plain cross-entropy in
    place of focal loss (see _bce); for point prompts all four outputs are trained (see below; the reported train
    IoU is still the best multimask candidate's), for boxes the single mask. The loss is multiplied by `scale`
    before backward (the window's share of the step). `prompts`: how many annotations, and how many draws of each;
    `geometric`: train on geometric_targets instead of the shapes."""
    idx = list(rng.permutation(len(window.targets))[:prompts[0]])
    target = window.targets[idx].repeat(prompts[1], 1, 1)
    coords, labels = window_prompts(target, window.origin, rng)
    if window.embedding is not None:
        embedding = window.embedding
    else:
        embedding = model.encode(window.image)["image_embeddings"]
    size = 16 * embedding.shape[-1]  # the window's side in pixels of the 1024 frame
    sparse = model.prompt_encoder.embed_points(coords, labels)
    dense = model.prompt_encoder.no_mask_dense(sparse.shape[0])
    masks, iou_pred = model.mask_decoder.predict_masks(embedding, window_pe(model, window.origin, size), sparse, dense)
    k = len(target)  # masks (2k, 4, S/4, S/4), iou_pred (2k, 4)
    pair = geometric_targets(coords, window.origin, masks.shape[-1]) if geometric else torch.cat([target, target])
    t2 = pair[:, None].expand(-1, 4, -1, -1)
    mask_loss = _bce(masks, t2) + _dice(masks, t2)  # (2k, 4)
    iou_true = _iou(masks.detach(), t2)
    best = mask_loss[:k, 1:].argmin(1) + 1
    # every candidate of a point prompt is trained towards its shape, not only the best of the three as SAM does:
    # a shape scene has a handful of shapes and no part/whole ambiguity, so best-of-three let the decoder output up
    # to three shapes whatever the prompt (measured: held-out masks were crisp shapes, the same ones for every
    # prompt of a scene, train IoU 0.5-0.6 against held-out 0.28)
    chosen = torch.cat([mask_loss[:k].mean(1), mask_loss[k:, 0]])
    iou_loss = torch.cat([F.mse_loss(iou_pred[:k, 1:], iou_true[:k, 1:], reduction="none").mean(1),
                          F.mse_loss(iou_pred[k:, 0], iou_true[k:, 0], reduction="none")])
    loss = chosen.mean() + iou_loss.mean()
    (loss * scale).backward()
    return {"loss": float(loss.detach()), "point_iou": float(iou_true[:k].gather(1, best[:, None]).mean()),
            "box_iou": float(iou_true[k:, 0].mean())}
