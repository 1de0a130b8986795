"""On demand: MobileSAM encoder, LiteRT fp32 / fp16 / int8 against ONNX Runtime fp32 / int8, interleaved in one run
at 1 and 2 threads (ratios within one run; absolute times drift with the machine's load).

    python3 benchmarks/bench_litert_vs_ort.py --calib ../shared/images [--checkpoint mobile_sam.pt] [--rounds 5]

Target (issue 8): LiteRT int8 <= 0.5x ONNX Runtime fp32. Artifacts come from (and stay in) the artifact store.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calib", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--store", type=Path, default=None)
    args = parser.parse_args()

    from edgekit.formats import get_format
    from edgekit.pipeline.artifacts import BuildSettings, ensure_artifact
    from edgekit.pipeline.context import ModelContext
    from edgekit.quant.calibration import list_images, load_inputs, split
    from edgekit.quant.presets import PRESETS
    from edgekit.store import Store
    from edgekit.targets.registry import default_preset
    from edgekit.variants.registry import get_spec

    spec = get_spec("mobilesam")
    ctx = ModelContext(spec=spec, checkpoint=args.checkpoint, store=Store(args.store))
    calib, held = split(list_images(args.calib), 32, 4)
    settings = BuildSettings(validation=held[:2], calib=calib, preset=PRESETS[default_preset("local")])
    x = load_inputs(spec.preprocess, held[0])[0]
    builds = {("onnx", "fp32"): None, ("onnx", "int8"): None, ("litert", "fp32"): None, ("litert", "fp16"): None,
              ("litert", "int8"): None}
    for fmt, precision in builds:
        builds[(fmt, precision)] = ensure_artifact(ctx, get_format(fmt), "encoder", precision, settings)
    for threads in (1, 2):
        sessions = {key: get_format(key[0]).session(a.path, threads) for key, a in builds.items()}
        for session in sessions.values():  # fresh sessions' first runs are slow
            for _ in range(3):
                session.run({"image": x})
        times: dict[tuple[str, str], list[float]] = {key: [] for key in sessions}
        for _ in range(args.rounds):  # interleaved: drift hits every artifact alike
            for key, session in sessions.items():
                started = time.perf_counter()
                session.run({"image": x})
                times[key].append((time.perf_counter() - started) * 1000)
        base = statistics.median(times[("onnx", "fp32")])
        print(f"\nthreads {threads}  (median of {args.rounds}; ratio to ONNX Runtime fp32)")
        for key, values in times.items():
            ms = statistics.median(values)
            print(f"  {key[0]:<7} {key[1]:<6} {ms:9.1f} ms   {ms / base:5.2f}x")
    print("\ntarget: litert int8 <= 0.50x onnx fp32")


if __name__ == "__main__":
    main()
