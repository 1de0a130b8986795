#!/usr/bin/env python3
"""Developer script: how long loading a variant and one prediction take on this machine.

    python3 tools/time_predict.py --model mobilesam --model sam-vit-b --image ../shared/images/dog.jpg

Synthetic weights are saved to a temporary checkpoint first, so "load" includes torch.load + strict loading, as
with an official file.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    import torch

    import edgekit
    from edgekit.checkpoints import build_variant
    from edgekit.io import read_rgb

    if args.threads:
        torch.set_num_threads(args.threads)
    rgb = read_rgb(args.image)
    h, w = rgb.shape[:2]
    for name in args.model:
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = Path(tmp) / f"{name}.pt"
            torch.save(build_variant(name, weights="synthetic").state_dict(), ckpt)
            t0 = time.perf_counter()
            predictor = edgekit.load(name, checkpoint=ckpt)
            t1 = time.perf_counter()
            predictor.set_image(rgb)
            t2 = time.perf_counter()
            predictor.predict(point_coords=[[w // 2, h // 2]], point_labels=[1])
            t3 = time.perf_counter()
        print(f"{name:<14} load {t1 - t0:6.2f} s   set_image {t2 - t1:6.2f} s   predict {1000 * (t3 - t2):7.1f} ms   "
              f"total {t3 - t0:6.2f} s   (threads {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
