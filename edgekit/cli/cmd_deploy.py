"""`edgekit deploy`: the main job — export, quantize, profile on a target, report."""
from __future__ import annotations

from pathlib import Path

import click

from edgekit.errors import EdgekitError, InputError, PartialError
from edgekit.quant.presets import PRESETS


def _read_models(models: tuple[str, ...], models_file: Path | None) -> list[str]:
    names = list(models)
    if models_file is not None:
        if not models_file.is_file():
            raise InputError(f"models file not found: {models_file}", hint="one variant name per line")
        names += [line.split("#", 1)[0].strip() for line in models_file.read_text().splitlines()]
    names = [n for n in dict.fromkeys(names) if n]
    if not names:
        raise InputError("no model given", hint="pass --model NAME (repeatable) or --models-file FILE")
    return names


@click.command("deploy")
@click.option("--model", "-m", "models", multiple=True, metavar="NAME",
              help="Registered variant (see `edgekit models`); repeat for a comparison run.")
@click.option("--models-file", type=click.Path(path_type=Path), default=None, help="A file with one variant per line.")
@click.option("--target", "-t", default="local", show_default=True, help="Where to run (see `edgekit targets`).")
@click.option("--serial", default=None, metavar="SERIAL",
              help="An Android phone over adb (android-arm64; `adb devices -l` lists serials; default: the only one).")
@click.option("--host", "hosts", multiple=True, metavar="HOST",
              help="The device to reach (ssh targets): user@host[:port] or a ~/.ssh/config alias; repeat for a fleet.")
@click.option("--inventory", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="A fleet: Ansible INI or YAML hosts file; every device in parallel, exit 8 when some fail.")
@click.option("--device-python", default=None, metavar="PATH",
              help="The device's Python with onnxruntime and numpy (default: the target profile's `python:`).")
@click.option("--accept-new-host-key", is_flag=True,
              help="Record the device's host key in ~/.ssh/known_hosts when it is unknown (default: refuse).")
@click.option("--checkpoint", "-c", type=click.Path(path_type=Path), default=None,
              help="The official release file. Without it, synthetic weights are used (latency only).")
@click.option("--weights", type=click.Choice(["synthetic"]), default=None, help="Synthetic weights, explicitly.")
@click.option("--encoder-onnx", type=click.Path(path_type=Path), default=None, metavar="PATH",
              help="An image encoder as ONNX in place of the variant's (NanoSAM's resnet18_image_encoder.onnx, or "
                   "your own); with several models it goes to those that need one (nanosam).")
@click.option("--format", "fmt", default=None, metavar="FORMAT",
              help="onnx, litert (.tflite) or tensorrt (TensorRT-ready ONNX, engines built on the device); "
                   "default: the target profile's (onnx for local, tensorrt for jetson-orin).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "int8-dynamic", "int8"]), default="auto",
              show_default=True,
              help="Anything but fp32 also measures fp32 and the accuracy cost against it; auto = int8 when --calib is "
                   "given, else the target profile's precision where the format makes it (fp16 on jetson-orin), else "
                   "fp32. onnx makes fp32/int8, litert fp32/fp16/int8-dynamic/int8, tensorrt fp32/fp16/int8.")
@click.option("--calib", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Folder of real images for INT8 calibration (and export validation).")
@click.option("--calib-count", type=click.IntRange(min=1), default=32, show_default=True,
              help="Calibration images (warns below 16).")
@click.option("--held-out", type=click.IntRange(min=1), default=4, show_default=True,
              help="Further images for the INT8 fidelity check.")
@click.option("--calib-method", type=click.Choice(["minmax", "percentile", "entropy"]), default="minmax", show_default=True)
@click.option("--preset", type=click.Choice(list(PRESETS)), default=None,
              help="INT8 preset (default: the target profile's; x86 or arm from the CPU for local). x86-sam / arm-sam: "
                   "the known SAM recipe, attention's q·kᵀ and attn·v kept in float. x86-ptq4sam / arm-ptq4sam: "
                   "PTQ4SAM's bimodal integration, q·kᵀ in int8 on keys made one-sided by an exact sign flip.")
@click.option("--fidelity-target", type=float, default=None, metavar="IOU",
              help="Mask IoU against FP32 that INT8 must reach, e.g. 0.95. ONNX and LiteRT: when full INT8 misses it, the most "
                   "sensitive layers stay in float until it is met (the report lists them and their latency cost); "
                   "exit 7 when even that fails, or for formats that cannot keep layers in float.")
@click.option("--sqnr-target", type=float, default=None, metavar="DB",
              help="Embedding SQNR against FP32 (dB) that INT8 must reach; with --fidelity-target both must hold.")
@click.option("--sensitivity/--no-sensitivity", default=None,
              help="Rank every quantized layer by its INT8 error (ONNX and LiteRT int8; default: on when --fidelity-target or "
                   "--sqnr-target is given). Costs about two runs of the model per held-out image. "
                   "--no-sensitivity also turns off the float fallback of --fidelity-target.")
@click.option("--eval", "eval_data", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Ground truth in SA-1B's layout (NAME.jpg + NAME.json): the report adds the point and box mIoU of "
                   "every measured precision (see `edgekit eval`).")
@click.option("--eval-limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="Evaluate on the first N images of --eval only.")
@click.option("--runs", type=click.IntRange(min=1), default=50, show_default=True,
              help="Timed runs per artifact (at least).")
@click.option("--min-seconds", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="...and at least this long.")
@click.option("--warmup", type=click.IntRange(min=0), default=5, show_default=True,
              help="Untimed runs first; ONNX Runtime CPU sessions need 2-3 to reach steady speed (0: none, for "
                   "emulated devices).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Runtime threads (default: the target profile's, else all cores).")
@click.option("--profile-runs", type=click.IntRange(min=0), default=3, show_default=True,
              help="Runs under ONNX Runtime's profiler.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=3600.0, show_default=True,
              metavar="SECONDS",
              help="Bounds one runner job on the device (one artifact's warm-up, timed and profiled runs): past it "
                   "the job is stopped and the deploy fails (exit 6).")
@click.option("--op-profiler", type=click.Choice(["auto", "litert", "benchmark_model", "none"]), default="auto",
              show_default=True,
              help="LiteRT artifacts: where per-op rows come from. auto: the LiteRT C profiler in the device's "
                   "ai-edge-litert wheel, else a benchmark_model binary on the device, else none (timed only).")
@click.option("--kernel-mode", type=click.Choice(["xnnpack", "builtin"]), default="xnnpack", show_default=True,
              help="LiteRT artifacts: xnnpack profiles the deployed XNNPACK path (operators aligned to nodes); builtin "
                   "profiles TFLite's builtin kernels instead (exact nodes, several times slower, not what ships).")
@click.option("--benchmark-model", default=None, metavar="PATH",
              help="LiteRT on Android over adb: the benchmark_model binary, a file here (pushed once) or a path on "
                   "the phone (default /data/local/tmp/benchmark_model, then PATH).")
@click.option("--delegate", type=click.Choice(["xnnpack", "gpu"]), default="xnnpack", show_default=True,
              help="LiteRT on Android over adb: benchmark_model's delegate.")
@click.option("--providers", default="auto", show_default=True, metavar="auto|LIST",
              help="ONNX artifacts: ONNX Runtime's execution providers on the device. auto takes TensorRT and CUDA "
                   "where its onnxruntime build has them (onnxruntime-gpu on a Jetson), then the CPU; or name them: "
                   "CUDAExecutionProvider,CPUExecutionProvider. The report says which provider ran each node.")
@click.option("--exporter", type=click.Choice(["dynamo", "legacy"]), default="dynamo", show_default=True)
@click.option("--store", type=click.Path(path_type=Path), default=None, help="Artifact store (default ~/.cache/edgekit/store).")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Run folder (default edgekit-runs/MODEL-TARGET).")
@click.option("--json", "as_json", is_flag=True, help="Print the report summary as JSON.")
def deploy(models: tuple[str, ...], models_file: Path | None, target: str, serial: str | None, hosts: tuple[str, ...],
           inventory: Path | None, device_python: str | None,
           accept_new_host_key: bool, checkpoint: Path | None, weights: str | None, encoder_onnx: Path | None, fmt: str | None, precision: str, calib: Path | None, calib_count: int, held_out: int, calib_method: str,
           preset: str | None, fidelity_target: float | None, sqnr_target: float | None, eval_data: Path | None,
           eval_limit: int | None, sensitivity: bool | None, runs: int, min_seconds: float, warmup: int,
           threads: int | None, profile_runs: int, timeout: float, op_profiler: str, kernel_mode: str,
           benchmark_model: str | None, delegate: str, providers: str,
           exporter: str,
           store: Path | None, out: Path | None,
           as_json: bool) -> None:
    """Export a variant's encoder and decoder to ONNX (validated against torch), quantize them to INT8
    (calibrated on real images, with the accuracy cost measured on held-out ones), profile every artifact per
    layer on the target, and write report.json, report.md, report.html and trace.json into the run folder.
    Artifacts are cached: running the same deploy again reuses them and says so.

    \b
    Examples:
      edgekit deploy --model mobilesam --target local
      edgekit deploy -m mobilesam -c mobile_sam.pt --calib photos/ --precision int8 --out runs/mobilesam
      edgekit deploy -m mobilesam --format litert --precision int8 --calib photos/
      edgekit deploy -m mobilesam -c tests/data/shapes/mobilesam_shapes.pt --precision int8 --calib photos/ \
          --fidelity-target 0.95 --eval shapes-eval/     (mixed precision + ground-truth mIoU)
      edgekit deploy -m mobilesam -m efficientvit-sam-l0 --calib photos/ --out runs/compare
      edgekit deploy -m nanosam --encoder-onnx resnet18_image_encoder.onnx -c mobile_sam.pt --calib photos/
      edgekit deploy -m mobilesam --target raspberry-pi-4 --host pi@raspberrypi.local --calib photos/
      edgekit deploy -m mobilesam --target raspberry-pi-4 --inventory lab.ini --out runs/lab   (a fleet)
      edgekit deploy -m mobilesam --target android-arm64 --serial R58M123ABC --format litert --precision int8 \
          --calib photos/ --benchmark-model ./android_aarch64_benchmark_model
    """
    import json
    import os
    import warnings

    from edgekit.pipeline.deploy import DeployConfig, run_deploy
    from edgekit.targets.base import MeasureConfig
    from edgekit.targets.registry import default_preset, default_threads

    names = _read_models(models, models_file)
    from edgekit.cli.fleet import deploy_fleet_cli, fleet_hosts  # fleet branch: several --host or --inventory

    fleet = fleet_hosts(target, hosts, inventory, names)
    host = hosts[0] if hosts else None
    if checkpoint is not None and weights is not None:
        raise InputError("give either --checkpoint or --weights synthetic, not both")
    if checkpoint is not None and len(names) > 1:
        raise InputError("--checkpoint belongs to one model", hint="deploy models with checkpoints one at a time")
    if checkpoint is None:
        warnings.warn("no --checkpoint: using synthetic weights — latency figures are real, accuracy figures are not",
                      stacklevel=1)
    chosen = precision if precision != "auto" else ("int8" if calib else _profile_precision(target, fmt))
    preset = preset or default_preset(target)  # the profile's; x86/arm from this CPU for local (and `auto`)
    if threads is None:  # remote: the profile's count, or 0 = every core the device reports (resolved on connect)
        threads = (os.cpu_count() or 1) if target == "local" else (default_threads(target) or 0)
    measure = MeasureConfig(warmup=warmup, runs=runs, min_seconds=min_seconds, threads=threads,
                            profile_runs=profile_runs, timeout_s=timeout)
    # runtimes' own settings, only where they differ from their defaults (run_deploy refuses them for formats that
    # the runtime does not run)
    defaults = {"op_profiler": "auto", "kernel_mode": "xnnpack", "benchmark_model": None, "delegate": "xnnpack"}
    backend_options = {"litert": {k: v for k, v in (("op_profiler", op_profiler), ("kernel_mode", kernel_mode),
                                                    ("benchmark_model", benchmark_model), ("delegate", delegate))
                                  if v != defaults[k]},
                       "onnxruntime": {"providers": providers} if providers != "auto" else {}}
    backend_options = {k: v for k, v in backend_options.items() if v}
    root = out or Path("edgekit-runs") / (names[0] + f"-{target}" if len(names) == 1 else f"compare-{target}")
    from edgekit.io import ensure_writable_dir

    ensure_writable_dir(root)  # now, not after the exports: an unwritable run folder must not cost the long work
    from edgekit.variants.registry import get_spec

    specs = {name: get_spec(name) for name in names}  # every name checked before the first model starts
    reports, failures = [], []
    for name in names:
        run_dir = root if len(names) == 1 else root / name
        own_encoder = encoder_onnx if len(names) == 1 or specs[name].external_encoder else None
        cfg = DeployConfig(model=name, out=run_dir, target=target, precision=chosen, format=fmt, checkpoint=checkpoint,
                           encoder_onnx=own_encoder,
                           calib=calib, calib_count=calib_count, held_out=held_out, preset=preset, method=calib_method,
                           fidelity_target=fidelity_target, sqnr_target=sqnr_target, eval_data=eval_data,
                           eval_limit=eval_limit, sensitivity=sensitivity, exporter=exporter, store=store, measure=measure,
                           progress=not as_json, host=host, serial=serial, device_python=device_python,
                           accept_new_host_key=accept_new_host_key, backend_options=backend_options)
        if fleet:  # every device in parallel: RUN/<device>/, fleet.json, compare.*; FleetError = exit 8
            return deploy_fleet_cli(cfg, fleet, as_json)
        if len(names) == 1:
            report = run_deploy(cfg)
        else:  # a comparison run: one model's failure is reported and the others still run
            try:
                report = run_deploy(cfg)
            except EdgekitError as exc:
                failures.append((name, exc))
                click.echo(f"{name}: failed (exit {int(exc.status)}): {exc.message}", err=True)
                if getattr(exc, "report", None) is None:
                    continue
                report = exc.report  # below --fidelity-target, yet measured and written: it belongs in the comparison
        reports.append((str(run_dir), report))
        if not as_json:
            _print_summary(report, run_dir)
    if len(reports) > 1:
        from edgekit.report.write import write_compare

        paths, _ = write_compare(reports, root)
        if not as_json:
            click.echo(f"comparison: {paths[0]}")
    if as_json:
        click.echo(json.dumps([{"run_dir": d, "model": r["model"], "precision": r["precision"],
                                "latency_ms": {k: v for k, v in r["latency_ms"].items() if k != "raw"},
                                "fidelity": r["fidelity"], "steps": r["steps"]} for d, r in reports], indent=2))
    if len(failures) == len(names) and len({exc.status for _, exc in failures}) == 1:
        raise failures[0][1]  # every model failed alike: that error says more than "partial"
    if failures:
        listed = "; ".join(f"{name}: {exc.message.splitlines()[0]}" for name, exc in failures)
        raise PartialError(f"{len(failures)} of {len(names)} models failed ({listed})",
                           hint="the finished models' reports are in their folders; fix the failed ones and deploy "
                                "them again (finished artifacts are reused)")


def _profile_precision(target: str, fmt: str | None) -> str:
    """--precision auto without --calib: the profile's precision where the deploy's format makes it, else fp32."""
    from edgekit.formats import get_format
    from edgekit.targets.profiles import get_profile

    defaults = get_profile(target).defaults
    precision = defaults.precision
    return precision if precision in get_format(fmt or defaults.format).precisions and precision != "int8" else "fp32"


def _print_summary(report: dict, run_dir: Path) -> None:
    reused = [s["name"] for s in report["steps"] if s.get("reused")]
    if reused:
        click.echo(f"reused from the artifact store: {', '.join(reused)}")
    for m in report["measurements"]:
        lat = m["latency_ms"]
        click.echo(f"{m['artifact']:<40} mean {lat['mean']:9.2f} ms  p50 {lat['p50']:9.2f}  p90 {lat['p90']:9.2f}  "
                   f"({lat['runs']} runs; layers cover {m['coverage']['attributed_share']:.0%})")
        engine = (m.get("runtime") or {}).get("engine")
        if engine:
            click.echo("  engine reused from the device's cache (nothing built)" if engine["reused"] else
                       f"  engine built on the device in {engine['build_seconds'] or 0:.1f} s")
        power = m.get("power")
        if power and power.get("energy_mj_per_inference") is not None:
            click.echo(f"  power {power['busy_input_mw']:.0f} mW busy, {power['idle_input_mw']:.0f} mW idle: "
                       f"{power['energy_mj_per_inference']:.2f} mJ per inference")
    f = report.get("fidelity")
    if f and f.get("mask_iou") is None and f.get("note"):
        click.echo(f"{f['precision']} fidelity: not measured ({f['note']})")
    elif f:
        sq = "n/a" if f["embedding_sqnr_db"] is None else f"{f['embedding_sqnr_db']:.1f} dB"
        click.echo(f"INT8 fidelity: embedding SQNR {sq}, mask IoU {f['mask_iou']:.4f} "
                   f"(points {f['mask_iou_point']:.4f}, boxes {f['mask_iou_box']:.4f}) on {f['images']} held-out images")
    mixed = report.get("mixed_precision")
    if mixed:
        verdict = "meets the target" if mixed["passed"] else "still misses the target"
        click.echo(f"mixed precision: {len(mixed['float_nodes'])} layer(s) kept in float, mask IoU "
                   f"{mixed['fidelity']['mask_iou']:.4f} ({verdict}, {len(mixed['trials'])} trials)")
    acc = report.get("accuracy")
    if acc:
        figures = ", ".join(f"{k} point {v['point_miou']:.4f} / box {v['box_miou']:.4f}" for k, v in acc.items()
                            if isinstance(v, dict))
        click.echo(f"ground-truth mIoU on {acc['images']} images ({acc['masks']} masks): {figures}")
    if report["weights"]["kind"] == "synthetic":
        click.echo("note: synthetic weights — latency only; outputs (and fidelity) say nothing about the real model")
    click.echo(f"report: {run_dir / 'report.html'}")
