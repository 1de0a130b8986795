#!/usr/bin/env python3
"""MobileSAM encoder: static INT8 (edgekit) vs FP32 vs dynamic INT8 vs PyTorch eager, interleaved in one run.

Run on demand (never part of the test suite — shared machines are noisy, so every contender runs in turn within
each round and the ratios come from medians of the same rounds):

    python3 benchmarks/bench_mobilesam_int8.py --calib ../shared/images --rounds 7

Targets (issue 3): INT8 <= 0.40x FP32, >= 1.5x faster than ONNX Runtime's quantize_dynamic model (what existing
SAM exporters ship), >= 4x faster than PyTorch eager FP32. Exit status 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calib", type=Path, required=True, help="folder of real images")
    parser.add_argument("--calib-count", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--store", type=Path, default=None)
    args = parser.parse_args()

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from edgekit.pipeline.artifacts import ensure_export, ensure_int8
    from edgekit.pipeline.context import ModelContext
    from edgekit.quant.calibration import list_images, load_inputs
    from edgekit.quant.presets import PRESETS
    from edgekit.store import Store
    from edgekit.variants.registry import get_spec

    images = list_images(args.calib)
    ctx = ModelContext(spec=get_spec("mobilesam"), checkpoint=None, store=Store(args.store))
    fp32 = ensure_export(ctx, "encoder", images[:1])
    int8 = ensure_int8(ctx, fp32, fp32, images[: args.calib_count], PRESETS["x86"], "minmax")
    tmp = Path(tempfile.mkdtemp(prefix="edgekit-bench-"))
    dynamic = tmp / "mobilesam.encoder.dynamic-int8.onnx"
    quantize_dynamic(str(fp32.path), str(dynamic), weight_type=QuantType.QInt8)
    x, _, _ = load_inputs(ctx.spec.preprocess, images[0])
    model = ctx.model.eval()
    failed = False
    for threads in args.threads:
        torch.set_num_threads(threads)
        contenders = {name: _session(path, threads) for name, path in
                      (("ort-fp32", fp32.path), ("ort-int8-static", int8.path), ("ort-int8-dynamic", dynamic))}
        runs = {name: [] for name in [*contenders, "torch-eager-fp32"]}
        feed = {"image": x}
        for session in contenders.values():  # warm-up
            session.run(None, feed)
        with torch.inference_mode():
            model.encode(torch.from_numpy(x))
            for _ in range(args.rounds):
                for name, session in contenders.items():
                    start = time.perf_counter()
                    session.run(None, feed)
                    runs[name].append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                model.encode(torch.from_numpy(x))
                runs["torch-eager-fp32"].append((time.perf_counter() - start) * 1000)
        med = {name: statistics.median(v) for name, v in runs.items()}
        print(f"\nthreads={threads}  rounds={args.rounds}  (median ms, interleaved)")
        for name, value in med.items():
            print(f"  {name:<20} {value:9.1f} ms   (min {min(runs[name]):.1f}, max {max(runs[name]):.1f})")
        checks = [
            ("INT8 / FP32", med["ort-int8-static"] / med["ort-fp32"], "<=", 0.40),
            ("dynamic / static INT8", med["ort-int8-dynamic"] / med["ort-int8-static"], ">=", 1.5),
            ("torch eager / static INT8", med["torch-eager-fp32"] / med["ort-int8-static"], ">=", 4.0),
        ]
        for label, value, op, target in checks:
            ok = value <= target if op == "<=" else value >= target
            failed |= not ok
            print(f"  {label:<26} {value:6.2f}   target {op} {target}   {'ok' if ok else 'MISSED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
