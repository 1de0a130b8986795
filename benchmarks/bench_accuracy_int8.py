"""On demand: ground-truth mIoU and encoder latency of MobileSAM FP32, INT8 and mixed precision, for ONNX Runtime
and LiteRT, on one checkpoint (issue 10's table). Latencies are interleaved in one run (ratios, not absolutes).

    python3 tools/shapes.py --out /tmp/shapes-eval --count 40
    python3 tools/shapes.py --out /tmp/shapes-calib --count 36 --seed 2000000
    python3 benchmarks/bench_accuracy_int8.py -c tests/data/shapes/mobilesam_shapes.pt \\
        --calib /tmp/shapes-calib --eval /tmp/shapes-eval --fidelity-target 0.95

Artifacts come from (and stay in) the artifact store, so `edgekit deploy` / `edgekit eval` reuse them.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--checkpoint", type=Path, required=True)
    parser.add_argument("--calib", type=Path, required=True)
    parser.add_argument("--eval", type=Path, required=True)
    parser.add_argument("--fidelity-target", type=float, default=0.95)
    parser.add_argument("--formats", default="onnx,litert")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--store", type=Path, default=None)
    args = parser.parse_args()

    from edgekit.accuracy.dataset import load_dataset
    from edgekit.accuracy.miou import evaluate
    from edgekit.accuracy.runners import artifact_runner
    from edgekit.formats import get_format
    from edgekit.pipeline.artifacts import BuildSettings, ensure_artifact
    from edgekit.pipeline.context import ModelContext
    from edgekit.pipeline.fidelity import cached_fidelity
    from edgekit.pipeline.mixed import Targets, layer_sensitivity, search_mixed
    from edgekit.quant.calibration import list_images, load_inputs, split
    from edgekit.quant.presets import PRESETS
    from edgekit.store import Store
    from edgekit.targets.registry import default_preset
    from edgekit.variants.registry import get_spec

    spec = get_spec("mobilesam")
    ctx = ModelContext(spec=spec, checkpoint=args.checkpoint, store=Store(args.store))
    calib, held = split(list_images(args.calib), 32, 4)
    settings = BuildSettings(validation=held[:2], calib=calib, preset=PRESETS[default_preset("local")])
    data = load_dataset(args.eval)
    x = load_inputs(spec.preprocess, held[0])[0]
    rows = []
    for name in args.formats.split(","):
        fmt = get_format(name)
        pairs = {}
        for precision in ("fp32", "int8"):
            enc = ensure_artifact(ctx, fmt, "encoder", precision, settings)
            dec = ensure_artifact(ctx, fmt, "decoder", precision, settings,
                                  encoder_fp32=ensure_artifact(ctx, fmt, "encoder", "fp32", settings))
            pairs[precision] = {"encoder": enc, "decoder": dec}
        fidelity, _ = cached_fidelity(ctx, (pairs["fp32"]["encoder"], pairs["int8"]["encoder"]),
                                      (pairs["fp32"]["decoder"], pairs["int8"]["decoder"]), held)
        note = {"int8": f"IoU vs FP32 {fidelity['mask_iou']:.4f}"}
        if fmt.mixed_precision:
            targets = Targets(args.fidelity_target)
            if not targets.met(fidelity):
                ranking = layer_sensitivity(ctx, fmt, pairs["fp32"], pairs["int8"], settings, held)["nodes"]
                found = search_mixed(ctx, fmt, pairs["fp32"], pairs["int8"], ranking, targets, settings, held,
                                     progress=lambda text: print(f"{name} mixed precision: {text}", flush=True))
                pairs["int8-mixed"] = found["artifacts"]
                note["int8-mixed"] = (f"{len(found['float_nodes'])} layers float, IoU vs FP32 "
                                      f"{found['fidelity']['mask_iou']:.4f}")
        sessions = {p: fmt.session(pair["encoder"].path) for p, pair in pairs.items()}
        for s in sessions.values():  # warm-up: a fresh session's first runs are slow
            for _ in range(2):
                s.run({"image": x})
        times = {p: [] for p in sessions}
        for _ in range(args.rounds):
            for p, s in sessions.items():
                t = time.perf_counter()
                s.run({"image": x})
                times[p].append((time.perf_counter() - t) * 1000)
        for p, pair in pairs.items():
            acc = evaluate(artifact_runner(ctx, pair["encoder"], pair["decoder"]), spec, ctx.model, data)
            rows.append((name, p, acc["point_miou"], acc["box_miou"], statistics.median(times[p]), note.get(p, "")))
    print(f"{'format':8} {'precision':11} {'point mIoU':>10} {'box mIoU':>9} {'encoder ms':>11}  note")
    for name, p, point, box, ms, note in rows:
        print(f"{name:8} {p:11} {point:10.4f} {box:9.4f} {ms:11.1f}  {note}")


if __name__ == "__main__":
    main()
