"""Train the registered `mobilesam` architecture (TinyViT-5M + SAM's decoder, official 1024 input) from scratch on
generated shapes (tools/shapes.py) until its FP32 mIoU on held-out generated scenes reaches the target.

Why: no pretrained SAM weights can be downloaded where edgekit is tested, and synthetic weights make INT8 figures
meaningless; a checkpoint that really segments something gives the accuracy gate a ground truth.

The run resumes from WORK/state.pt (model, optimizer, step, data position) after an interruption, logs each
evaluation to WORK/log.jsonl, and writes the result in MobileSAM's official layout (a plain state dict with the
`image_encoder.` / `prompt_encoder.` / `mask_decoder.` keys of mobile_sam.pt), in fp16 to keep the repository
small:

    python tools/train_shapes.py --work /tmp/shapes-train --out tests/data/shapes/mobilesam_shapes.pt

Training scenes are seeds 0.. (one per step); held-out scenes are seeds from 1,000,000 (tools/shapes.py's
default for evaluation sets), never seen in training.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shapes import Scene, render_scene  # noqa: E402

from edgekit.preprocess import binarize, preprocess_image, transform_coords, upsample_logits  # noqa: E402
from edgekit.variants.registry import get_spec  # noqa: E402

HELD_OUT_SEED = 1_000_000
PROMPTS_PER_SCENE = 3  # annotations used per step, each as a point and a box prompt (the decoder costs ~0.4 s each)


def _targets(scene: Scene, recipe, geo) -> torch.Tensor:
    """Ground-truth masks in the decoder's low-res frame: (M, 256, 256) float 0/1 (padding is background)."""
    nh, nw = geo.resized_hw
    s = recipe.input_size
    m = torch.from_numpy(np.stack(scene.masks).astype(np.float32))[:, None]
    m = F.interpolate(m, (nh, nw), mode="bilinear", align_corners=False)
    m = F.pad(m, (0, s - nw, 0, s - nh))
    return (F.avg_pool2d(m, s // 256) > 0.5).float()[:, 0]


def _prompts(scene: Scene, idx: list[int], recipe, geo, rng: np.random.Generator, jitter: bool):
    """Point prompts (one positive point + SAM's padding point) then box prompts (two corners), all with two
    tokens so one decoder batch carries both."""
    coords, labels = [], []
    for i in idx:
        if jitter:  # any pixel of the mask, not only the well-inside point the annotations carry
            ys, xs = np.nonzero(scene.masks[i])
            j = int(rng.integers(len(xs)))
            p = (float(xs[j]), float(ys[j]))
        else:
            p = scene.points[i]
        coords.append([transform_coords(recipe, geo, np.array([p]))[0], [0.0, 0.0]])
        labels.append([1.0, -1.0])
    for i in idx:
        ys, xs = np.nonzero(scene.masks[i])
        box = np.array([[xs.min(), ys.min()], [xs.max() + 1, ys.max() + 1]], np.float64)
        if jitter:
            side = box[1] - box[0]
            box = box + rng.normal(0, 1, (2, 2)) * np.minimum(0.05 * side, 8)
            h, w = geo.original_hw
            box = np.clip(box, 0, [w, h])
        coords.append(transform_coords(recipe, geo, box))
        labels.append([2.0, 3.0])
    return torch.tensor(np.array(coords), dtype=torch.float32), torch.tensor(labels, dtype=torch.float32)


def _balanced_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the foreground weighted by the background/foreground ratio (capped at 20).

    SAM's focal loss assumes a pretrained encoder; from scratch it lets every mask collapse to background within
    100 steps (measured: mIoU 0.0 at step 100, the dice term's gradient vanishing with the sigmoid). Balancing
    the two classes keeps a gradient on the shape from the first step."""
    pos = target.flatten(-2).mean(-1).clamp(min=1e-4)
    weight = ((1 - pos) / pos).clamp(max=20.0)[..., None, None]
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (ce * (1 + (weight - 1) * target)).flatten(-2).mean(-1)


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


def train_step(model, scene: Scene, recipe, rng: np.random.Generator) -> dict[str, float]:
    """SAM's loss shape (a pixel loss + dice on the mask, MSE on the IoU prediction) with a class-balanced
    cross-entropy in place of focal loss (see _balanced_bce); for point prompts only the best
    of the three multimask candidates is trained (the prompt is ambiguous), for boxes the single mask."""
    x, geo = preprocess_image(recipe, scene.rgb)
    m = len(scene.masks)
    idx = list(rng.permutation(m)[:PROMPTS_PER_SCENE])
    target = _targets(scene, recipe, geo)[idx]
    coords, labels = _prompts(scene, idx, recipe, geo, rng, jitter=True)
    features = model.encode(torch.from_numpy(x))
    out = model.decode_all(features, coords, labels, None, None)
    masks, iou_pred = out.low_res_masks, out.iou_predictions  # (2k, 4, 256, 256), (2k, 4)
    k = len(idx)
    t2 = torch.cat([target, target])[:, None].expand(-1, 4, -1, -1)
    mask_loss = _balanced_bce(masks, t2) + _dice(masks, t2)  # (2k, 4)
    iou_true = _iou(masks.detach(), t2)
    best = mask_loss[:k, 1:].argmin(1) + 1
    chosen = torch.cat([mask_loss[:k].gather(1, best[:, None])[:, 0], mask_loss[k:, 0]])
    iou_loss = torch.cat([F.mse_loss(iou_pred[:k, 1:], iou_true[:k, 1:], reduction="none").mean(1),
                          F.mse_loss(iou_pred[k:, 0], iou_true[k:, 0], reduction="none")])
    loss = chosen.mean() + iou_loss.mean()
    loss.backward()
    return {"loss": float(loss.detach()), "point_iou": float(iou_true[:k].gather(1, best[:, None]).mean()),
            "box_iou": float(iou_true[k:, 0].mean())}


@torch.inference_mode()
def evaluate(model, recipe, count: int) -> dict[str, float]:
    """mIoU at the original resolution on held-out scenes, as `edgekit eval` measures it: the annotation's point
    (multimask, the candidate with the highest predicted IoU) and its box (single mask)."""
    model.eval()
    point, box = [], []
    for seed in range(HELD_OUT_SEED, HELD_OUT_SEED + count):
        scene = render_scene(seed)
        x, geo = preprocess_image(recipe, scene.rgb)
        features = model.encode(torch.from_numpy(x))
        idx = list(range(len(scene.masks)))
        coords, labels = _prompts(scene, idx, recipe, geo, np.random.default_rng(0), jitter=False)
        out = model.decode_all(features, coords, labels, None, None)
        masks, pred = out.low_res_masks.numpy(), out.iou_predictions.numpy()
        k = len(idx)
        for j, i in enumerate(idx):
            gt = scene.masks[i]
            c = 1 + int(np.argmax(pred[j, 1:]))
            for kind, row, ch in (("point", j, c), ("box", k + j, 0)):
                got = binarize(recipe, upsample_logits(recipe, geo, masks[row:row + 1, ch:ch + 1]))[0, 0]
                union = np.logical_or(got, gt).sum()
                v = 1.0 if union == 0 else float(np.logical_and(got, gt).sum() / union)
                (point if kind == "point" else box).append(v)
    model.train()
    return {"point_miou": float(np.mean(point)), "box_miou": float(np.mean(box)), "masks": len(point)}


def _lr(step: int, base: float, warmup: int, total: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".part")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _record(step: int, seconds: float, result: dict, args: argparse.Namespace) -> dict:
    return {"architecture": "mobilesam", "step": step, "train_seconds": round(seconds),
            "held_out": {"scenes": args.eval_count, "first_seed": HELD_OUT_SEED,
                         "point_miou": result["point_miou"], "box_miou": result["box_miou"]},
            "target": args.target}


def export_official(model, out: Path, record: dict) -> None:
    """The weights as MobileSAM's release file is laid out (a plain state dict), in fp16, and beside them
    `<out>.json`: the step, training time and held-out mIoU they were written at (tests read it)."""
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    _save_atomic(state, out)
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="folder for state.pt (resume) and log.jsonl")
    parser.add_argument("--out", type=Path, required=True, help="where to write the trained fp16 checkpoint")
    parser.add_argument("--steps", type=int, default=6000, help="learning-rate schedule length (default 6000)")
    parser.add_argument("--lr", type=float, default=4e-4)
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--target", type=float, default=0.75,
                        help="stop once held-out point AND box mIoU reach this (default 0.75)")
    parser.add_argument("--eval-every", type=int, default=150)
    parser.add_argument("--eval-count", type=int, default=12, help="held-out scenes per evaluation")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--init", type=Path, default=None,
                        help="start from these weights (an earlier --out: training continued on another machine, "
                             "with a fresh optimizer) instead of a random initialisation")
    parser.add_argument("--export-now", action="store_true",
                        help="write --out from WORK/state.pt as it is (evaluated on the held-out scenes) and stop")
    parser.add_argument("--start-step", type=int, default=0,
                        help="with --init: the step it stopped at (keeps the data and learning-rate schedule going)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    spec = get_spec("mobilesam")
    recipe = spec.preprocess
    model = spec.build().train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    args.work.mkdir(parents=True, exist_ok=True)
    state_path, log_path = args.work / "state.pt", args.work / "log.jsonl"
    step, seconds = 0, 0.0
    if args.init is not None and not state_path.exists():
        from edgekit.checkpoints import load_into, read_checkpoint

        load_into(model, spec, read_checkpoint(args.init), source=str(args.init))
        step = args.start_step
        print(f"initialised from {args.init} at step {step}", flush=True)
    if state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
        seconds = float(state.get("seconds", 0.0))
        print(f"resumed at step {step}", flush=True)

    started, window = time.time(), []
    last = time.time()
    result = None
    while step < args.steps and not args.export_now:
        for group in opt.param_groups:
            group["lr"] = _lr(step, args.lr, args.warmup, args.steps)
        scene = render_scene(step)
        if not scene.masks:
            step += 1
            continue
        opt.zero_grad(set_to_none=True)
        window.append(train_step(model, scene, recipe, np.random.default_rng(step)))
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 10 == 0:
            mean = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
            print(f"step {step}: loss {mean['loss']:.4f} train IoU point {mean['point_iou']:.3f} box "
                  f"{mean['box_iou']:.3f} ({(time.time() - started) / len(window):.2f} s/step)", flush=True)
            window, started = [], time.time()
        if step % args.eval_every == 0 or step == args.steps:
            seconds += time.time() - last
            _save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                          "seconds": seconds}, state_path)
            result = evaluate(model, recipe, args.eval_count)
            last = time.time()
            result.update(step=step, train_seconds=round(seconds))
            with log_path.open("a") as f:
                f.write(json.dumps(result) + "\n")
            print(f"eval at step {step}: point mIoU {result['point_miou']:.4f}, box mIoU {result['box_miou']:.4f}",
                  flush=True)
            record = _record(step, seconds, result, args)
            if min(result["point_miou"], result["box_miou"]) >= args.target:
                export_official(model.eval(), args.out, {**record, "reached_target": True})
                print(f"target {args.target} reached: wrote {args.out}", flush=True)
                return 0
            started = time.time()
    if result is None or result["step"] != step:  # --export-now, or resumed at the end of the schedule
        result = {**evaluate(model.eval(), recipe, args.eval_count), "step": step}
    record = _record(step, seconds, result, args)
    reached = min(record["held_out"]["point_miou"], record["held_out"]["box_miou"]) >= args.target
    export_official(model.eval(), args.out, {**record, "reached_target": reached})
    if args.export_now:
        print(f"wrote {args.out} from step {step} (held-out point mIoU {record['held_out']['point_miou']:.4f}, box "
              f"{record['held_out']['box_miou']:.4f})", flush=True)
        return 0
    print(f"schedule ended below the target: wrote {args.out} anyway", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
