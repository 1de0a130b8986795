"""Train the registered `mobilesam` architecture (TinyViT-5M + SAM's decoder, official 1024 input) from scratch on
generated shapes (tools/shapes.py) until its FP32 mIoU on held-out generated scenes reaches the target.

Why: no pretrained SAM weights can be downloaded where edgekit is tested, and synthetic weights make INT8 figures
meaningless; a checkpoint that really segments something gives the accuracy gate a ground truth.

The run resumes from WORK/state.pt (model, optimizer, step, data position) after an interruption, logs each
evaluation to WORK/log.jsonl, and writes the result in MobileSAM's official layout (a plain state dict with the
`image_encoder.` / `prompt_encoder.` / `mask_decoder.` keys of mobile_sam.pt), in fp16 to keep the repository
small. On 2 CPU cores a whole 1024 step takes ~4 s, so training runs in stages:

1. the encoder on 256-pixel windows of the 1024 frame (see build_at and training_windows), ~1 s a step of two:

    python tools/train_shapes.py --work /tmp/t1 --out /tmp/t1.pt --size 256 --batch 2 --steps 3000 --lr 6e-4

2. the encoder frozen, a fresh prompt encoder and decoder on its cached 1024 embeddings (~1 s a step), first on
   targets made from the prompts alone (--geometric-steps: where the prompt is), then on the shapes:

    python tools/train_shapes.py --work /tmp/t2 --out tests/data/shapes/mobilesam_shapes.pt --init /tmp/t1.pt \\
        --reset-decoder --pe-scale 1 --geometric-steps 300 --size 1024 --decoder-scenes 80 --steps 4000 \\
        --lr 5e-4 --warmup 30 --eval-every 300 --eval-count 8

3. the whole model on whole 1024 frames of fresh scenes, every shape of a scene prompted once (~4 s a step):

    python tools/train_shapes.py --work /tmp/t3 --out tests/data/shapes/mobilesam_shapes.pt \\
        --init tests/data/shapes/mobilesam_shapes.pt --size 1024 --prompts 4,1 --steps 1300 --warmup 50 --lr 2e-4

4. the same with BatchNorm frozen on its running statistics (--freeze-bn, see set_training), resumed from stage 3's
   state (here at step 2100: stage 3 went on for 800 steps with --steps 2100) with a fresh cosine schedule (a
   --warmup just past the step it resumes at starts the cosine there, at the full rate):

    python tools/train_shapes.py --work /tmp/t3 --out tests/data/shapes/mobilesam_shapes.pt --size 1024 \\
        --prompts 4,1 --freeze-bn --steps 2700 --warmup 2110 --lr 1.5e-4 --eval-every 150 --eval-count 20

   then four more restarts of it: --steps 3300 --warmup 2710 --lr 1.5e-4, then, with two draws of each shape's
   point and box a frame (~5 s a step), --prompts 4,2 --steps 3900 --warmup 3310 --lr 1.2e-4, the same with
   --steps 4500 --warmup 3910 --lr 1e-4, and --steps 5000 --warmup 4510 --lr 8e-5 (80 held-out scenes, point /
   box: 0.690 / 0.800 at 2700, 0.734 / 0.841 at 3900, 0.746 / 0.867 at 4500, 0.754 / 0.868 at 5000).
   A restart at the full rate first costs points (20-scene checks: 0.752 at step 2700, 0.671 at 2800, 0.780 at
   2900): judge a stage at its end, on 80 scenes (--export-now --eval-count 80).

Training scenes are seeds 0.. (one per step); held-out scenes are seeds from 1,000,000 (tools/shapes.py's
default for evaluation sets), never seen in training. Evaluation and export always run the official 1024 model,
after re-estimating its BatchNorm statistics at 1024 when training ran on windows (a run at 1024 keeps the
running statistics it trained with: measured, a 16-scene re-estimate after 600 whole-frame steps cost 0.03 mIoU).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shape_windows import (OFFICIAL_SIZE, Window, batchnorms, build_at, lowres_targets,  # noqa: E402
                           recalibrate_batchnorm, training_windows)
from shape_step import DRAWS_PER_PROMPT, PROMPTS_PER_WINDOW, train_step  # noqa: E402
from shapes import Scene, render_scene  # noqa: E402

from edgekit.preprocess import binarize, preprocess_image, transform_coords, upsample_logits  # noqa: E402
from edgekit.variants.registry import get_spec  # noqa: E402

HELD_OUT_SEED = 1_000_000
CACHE_SEED = 500_000  # the decoder stage's scenes: after every window step's seed, before the held-out ones
DECODER_STAGE_PROMPTS = (3, 1)  # a 64x64 decoder pass costs ~16x a window's: fewer prompts per step
# SAM draws its positional matrix at scale 1: two prompt positions stay alike over ~80 pixels of the 1024 frame (the
# Gaussian kernel's width), which pretrained attention sharpens. At 4 the kernel is ~20 pixels wide, about one
# embedding cell. Measured: window training went on as before after the switch (train IoU ~0.7 point, ~0.45 box);
# it did not cure the whole-frame decoder, whose cause was elsewhere (see reset_prompt_path).
PE_SCALE = 4.0


def _prompts(scene: Scene, idx: list[int], recipe, geo):
    """Evaluation prompts as `edgekit eval` makes them: each annotation's point (+ SAM's padding point), then its
    box, in the prompt frame."""
    coords, labels = [], []
    for i in idx:
        coords.append([transform_coords(recipe, geo, np.array([scene.points[i]]))[0], [0.0, 0.0]])
        labels.append([1.0, -1.0])
    for i in idx:
        ys, xs = np.nonzero(scene.masks[i])
        box = np.array([[xs.min(), ys.min()], [xs.max() + 1, ys.max() + 1]], np.float64)
        coords.append(transform_coords(recipe, geo, box))
        labels.append([2.0, 3.0])
    return torch.tensor(np.array(coords), dtype=torch.float32), torch.tensor(labels, dtype=torch.float32)


def decoder_stage(model, args: argparse.Namespace, step: int) -> list[Window]:
    """Freeze the encoder and cache its 1024 embeddings (BatchNorm re-estimated first, as the export does) of
    `--decoder-scenes` training scenes not drawn yet; the decoder then trains on whole frames.

    Why: the held-out frames are whole 1024 inputs, 4096 image cells for the decoder to find its prompt among, where
    a window shows it 256. The encoder needs no such stage: its 1024 embeddings, cut to windows, segmented them as
    well as its own windows did (measured: 0.51 against 0.45 IoU). With a decoder that had learned to ignore its
    prompts, this stage alone stayed at 0.2 (see reset_prompt_path)."""
    if args.size != OFFICIAL_SIZE:
        raise SystemExit("--decoder-scenes trains on whole 1024 frames: use it with --size 1024")
    for p in model.image_encoder.parameters():
        p.requires_grad_(False)
    recalibrate_batchnorm(model, args.bn_scenes)
    model.image_encoder.eval()
    recipe = get_spec("mobilesam").preprocess
    cache = []
    started = time.time()
    with torch.no_grad():
        for i in range(args.decoder_scenes):
            scene = render_scene(CACHE_SEED + step + i)
            if not scene.masks:
                continue
            x, geo = preprocess_image(recipe, scene.rgb)
            embedding = model.encode(torch.from_numpy(x))["image_embeddings"]
            cache.append(Window(image=None, targets=lowres_targets(scene, recipe, geo), origin=(0, 0),
                                embedding=embedding))
            if (i + 1) % 25 == 0:
                print(f"cached {i + 1}/{args.decoder_scenes} embeddings ({time.time() - started:.0f} s)", flush=True)
    return cache


def fresh_model(size: int, pe_scale: float):
    """A randomly initialised model at `size` whose prompt encoder draws its positional matrix at `pe_scale`."""
    model = build_at(size)
    with torch.no_grad():
        model.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix.mul_(pe_scale)
    return model


def reset_prompt_path(model, pe_scale: float) -> None:
    """Start the prompt encoder and mask decoder afresh (a new random initialisation, the positional matrix at
    `pe_scale`), keeping the image encoder's trained weights.

    Why: a decoder trained on 256 windows (one or two shapes in view) and with SAM's best-of-three loss learned to
    segment a salient shape whatever the prompt; at 1024 it kept doing so through 2000 more steps (measured), while
    a fresh decoder on the same embeddings learned where its prompts are (see --geometric-steps)."""
    fresh = fresh_model(16 * model.prompt_encoder.image_embedding_size[0], pe_scale)
    model.prompt_encoder.load_state_dict(fresh.prompt_encoder.state_dict())
    model.mask_decoder.load_state_dict(fresh.mask_decoder.state_dict())


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
        coords, labels = _prompts(scene, idx, recipe, geo)
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


def set_training(model, freeze_bn: bool) -> None:
    """Training mode, with BatchNorm kept in evaluation mode under `freeze_bn`: normalised by the running statistics
    the export will hold (and those left as they are) rather than by the current frame's.

    Why: with one frame a step, training-mode BatchNorm normalises each channel by that frame's own statistics, and
    the network came to rely on it. Measured at step 2100 on 40 held-out scenes: the same weights score point /
    box mIoU 0.649 / 0.777 with the running statistics (as exported) and 0.749 / 0.829 with each frame's own.
    Training on with BatchNorm frozen lets the rest of the network adapt to the statistics it will run with."""
    model.train()
    if freeze_bn:
        for m in batchnorms(model):
            m.eval()


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
            "target": args.target, "last_train_size": args.size}


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
    parser.add_argument("--eval-count", type=int, default=12,
                        help="held-out scenes per evaluation (default 12, a quick look while training: ~2 masks a "
                             "scene, so a figure to trust within a point or two, as in the record --export-now "
                             "writes, needs ~80)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--init", type=Path, default=None,
                        help="start from these weights (an earlier --out: training continued on another machine, "
                             "with a fresh optimizer) instead of a random initialisation")
    parser.add_argument("--export-now", action="store_true",
                        help="write --out from WORK/state.pt as it is (evaluated on the held-out scenes) and stop")
    parser.add_argument("--start-step", type=int, default=0,
                        help="with --init: the step it stopped at (keeps the data and learning-rate schedule going)")
    parser.add_argument("--size", type=int, default=OFFICIAL_SIZE,
                        help="train on size x size windows of the 1024 frame (a multiple of 64; default 1024, the "
                             "whole input). 256 trains the same weights ~20x faster (see build_at); evaluation and "
                             "export are always at 1024, after re-estimating BatchNorm statistics there when "
                             "training ran on windows")
    parser.add_argument("--batch", type=int, default=1,
                        help="windows per optimizer step, all from the step's scene (default 1)")
    parser.add_argument("--decoder-scenes", type=int, default=0,
                        help="last stage: freeze the encoder (with --size 1024), cache its embeddings of this many new "
                             "training scenes and train the decoder alone on whole 1024 frames (see decoder_stage)")
    parser.add_argument("--pe-scale", type=float, default=PE_SCALE,
                        help=f"scale of the prompt encoder's random Fourier matrix in a fresh model (default "
                             f"{PE_SCALE}; SAM draws it at 1). It is a buffer of the checkpoint, not architecture")
    parser.add_argument("--bn-scenes", type=int, default=16,
                        help="training scenes to re-estimate BatchNorm statistics on at 1024: before the decoder "
                             "stage, and before each evaluation and the export after window training (default 16)")
    parser.add_argument("--reset-decoder", action="store_true",
                        help="with --init: keep its image encoder, start the prompt encoder and mask decoder afresh "
                             "(--pe-scale applies). For a decoder that learned to ignore its prompts")
    parser.add_argument("--prompts", type=str, default=None, metavar="K,D",
                        help=f"annotations prompted per window and draws of each (a point and a box per draw). Default "
                             f"{PROMPTS_PER_WINDOW},{DRAWS_PER_PROMPT} on windows, {DECODER_STAGE_PROMPTS[0]},"
                             f"{DECODER_STAGE_PROMPTS[1]} with --decoder-scenes (a 64x64 decoder pass costs ~16x a "
                             f"256 window's). 4,1 prompts every shape of a scene once at 1024")
    parser.add_argument("--geometric-steps", type=int, default=0,
                        help="train the first N steps on targets made from the prompts alone (a disk around each "
                             "point, each box's rectangle) before the shapes' masks; see geometric_targets")
    parser.add_argument("--freeze-bn", action="store_true",
                        help="keep BatchNorm in evaluation mode while training (its running statistics fixed, as "
                             "the exported model runs); with --size 1024 only, see set_training")
    args = parser.parse_args(argv)
    if args.freeze_bn and args.size != OFFICIAL_SIZE:
        parser.error("--freeze-bn trains with the statistics of the 1024 model: use it with --size 1024 (windows "
                     "re-estimate them at 1024 before evaluating)")
    if args.batch < 1 or args.bn_scenes < 1:
        parser.error("--batch and --bn-scenes must be at least 1")
    if args.prompts is not None:
        raw = args.prompts
        try:
            args.prompts = tuple(int(v) for v in raw.split(","))
        except ValueError:
            args.prompts = ()
        if len(args.prompts) != 2 or min(args.prompts) < 1:
            parser.error(f"--prompts takes two positive integers K,D (e.g. 4,1), got {raw!r}")
    if args.reset_decoder and args.init is None:
        parser.error("--reset-decoder keeps the image encoder of --init: give --init (a fresh model is all fresh)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = fresh_model(args.size, args.pe_scale)  # --init and resumed weights bring their own matrix
    set_training(model, args.freeze_bn)
    official = build_at(OFFICIAL_SIZE)
    official_recipe = get_spec("mobilesam").preprocess

    def at_official():
        """The trained weights in the official-size model, BatchNorm statistics re-estimated at 1024 if they were
        trained on windows (the decoder stage re-estimated them itself before freezing the encoder)."""
        official.load_state_dict(model.state_dict())
        if args.size != OFFICIAL_SIZE:
            recalibrate_batchnorm(official, args.bn_scenes)
        return official.eval()

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    args.work.mkdir(parents=True, exist_ok=True)
    state_path, log_path = args.work / "state.pt", args.work / "log.jsonl"
    step, seconds = 0, 0.0
    if args.init is not None and not state_path.exists():
        from edgekit.checkpoints import load_into, read_checkpoint

        load_into(model, get_spec("mobilesam"), read_checkpoint(args.init), source=str(args.init))
        step = args.start_step
        print(f"initialised from {args.init} at step {step}", flush=True)
    if args.reset_decoder and not state_path.exists():
        reset_prompt_path(model, args.pe_scale)
        print(f"prompt encoder and mask decoder re-initialised (positional scale {args.pe_scale})", flush=True)
    if state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
        seconds = float(state.get("seconds", 0.0))
        print(f"resumed at step {step}", flush=True)

    started, recent = time.time(), []
    last = time.time()
    result = None
    # scenes are rendered in this process: rendering them one step ahead in a second one slowed the 256 model's
    # step 2.5x on 2 cores (measured)
    cache = decoder_stage(model, args, step) if args.decoder_scenes else None
    while step < args.steps and not args.export_now:
        for group in opt.param_groups:
            group["lr"] = _lr(step, args.lr, args.warmup, args.steps)
        opt.zero_grad(set_to_none=True)
        rng = np.random.default_rng(step)
        if cache is not None:
            windows = [cache[int(rng.integers(len(cache)))] for _ in range(args.batch)]
        else:
            scene = render_scene(step)
            windows = training_windows(scene, args.size, args.batch, rng) if scene.masks else []
        if not windows:
            step += 1
            continue
        prompts = args.prompts or (DECODER_STAGE_PROMPTS if cache is not None
                                   else (PROMPTS_PER_WINDOW, DRAWS_PER_PROMPT))
        geometric = step < args.geometric_steps
        stats = [train_step(model, w, rng, scale=1.0 / len(windows), prompts=prompts, geometric=geometric)
                 for w in windows]
        recent.append({k: float(np.mean([t[k] for t in stats])) for k in stats[0]})
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 10 == 0:
            mean = {k: float(np.mean([r[k] for r in recent])) for k in recent[0]}
            print(f"step {step}: loss {mean['loss']:.4f} train IoU point {mean['point_iou']:.3f} box "
                  f"{mean['box_iou']:.3f} ({(time.time() - started) / len(recent):.2f} s/step)", flush=True)
            recent, started = [], time.time()
        if step % args.eval_every == 0 or step == args.steps:
            seconds += time.time() - last
            _save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                          "seconds": seconds}, state_path)
            result = evaluate(at_official(), official_recipe, args.eval_count)
            set_training(model, args.freeze_bn)
            last = time.time()
            result.update(step=step, train_seconds=round(seconds))
            with log_path.open("a") as f:
                f.write(json.dumps(result) + "\n")
            print(f"eval at step {step}: point mIoU {result['point_miou']:.4f}, box mIoU {result['box_miou']:.4f}",
                  flush=True)
            record = _record(step, seconds, result, args)
            if min(result["point_miou"], result["box_miou"]) >= args.target:
                export_official(official, args.out, {**record, "reached_target": True})
                print(f"target {args.target} reached: wrote {args.out}", flush=True)
                return 0
            started = time.time()
    if result is None or result["step"] != step:  # --export-now, or resumed at the end of the schedule
        result = {**evaluate(at_official(), official_recipe, args.eval_count), "step": step}
    record = _record(step, seconds, result, args)
    reached = min(record["held_out"]["point_miou"], record["held_out"]["box_miou"]) >= args.target
    export_official(official, args.out, {**record, "reached_target": reached})
    if args.export_now:
        print(f"wrote {args.out} from step {step} (held-out point mIoU {record['held_out']['point_miou']:.4f}, box "
              f"{record['held_out']['box_miou']:.4f})", flush=True)
        return 0
    print(f"schedule ended below the target: wrote {args.out} anyway", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
