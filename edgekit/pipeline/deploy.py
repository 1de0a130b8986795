"""`edgekit deploy` as a function: export -> quantize -> measure -> report for one model on one target."""
from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from edgekit.errors import InputError, ValidationError
from edgekit.pipeline.artifacts import PARTS, Artifact, BuildSettings, ensure_artifact
from edgekit.pipeline.context import ModelContext, testcard
from edgekit.pipeline.fidelity import cached_fidelity, check_target
from edgekit.pipeline.mixed import MIXED, Targets, layer_sensitivity, search_mixed
from edgekit.progress import Steps
from edgekit.store import Store
from edgekit.targets.base import MeasureConfig

log = logging.getLogger(__name__)
VALIDATION_IMAGES = 2


@dataclass
class DeployConfig:
    model: str
    out: Path
    target: str = "local"
    precision: str = "fp32"
    format: str | None = None  # None: the target profile's defaults.format
    checkpoint: Path | None = None
    encoder_onnx: Path | None = None  # an external image encoder (NanoSAM's ONNX release, or the user's own)
    calib: Path | None = None
    calib_count: int = 32
    held_out: int = 4
    preset: str = "x86"
    method: str = "minmax"
    fidelity_target: float | None = None  # mask IoU against FP32
    sqnr_target: float | None = None  # embedding SQNR (dB) against FP32
    eval_data: Path | None = None  # ground truth (SA-1B layout): mIoU of every measured precision
    eval_limit: int | None = None
    sensitivity: bool | None = None  # per-layer INT8 sensitivity; None: when a fidelity or SQNR target is given
    exporter: str = "dynamo"
    store: Path | None = None
    measure: MeasureConfig = field(default_factory=MeasureConfig)  # threads <= 0: every core of the device
    progress: bool = True
    host: str | None = None  # the device (ssh targets): user@host[:port] or a ~/.ssh/config alias
    serial: str | None = None  # an Android phone over adb (None on an adb profile without --host: the only one)
    device_python: str | None = None  # overrides the profile's `python:`
    accept_new_host_key: bool = False  # record an unknown host key instead of refusing it
    # runtime -> backend options that differ from the defaults (litert: op_profiler, kernel_mode; onnxruntime:
    # providers), from the CLI's --op-profiler / --kernel-mode / --providers
    backend_options: dict[str, dict[str, str]] = field(default_factory=dict)


def _images(cfg: DeployConfig):
    from edgekit.quant.calibration import list_images, split

    if cfg.calib is None:
        if cfg.precision == "int8":
            raise InputError("static INT8 needs calibration images",
                             hint="pass --calib DIR (32 real photographs is the default), or --precision int8-dynamic "
                                  "where the format has it")
        return [], [], [testcard()]
    images = list_images(cfg.calib)
    calib, held = split(images, cfg.calib_count, cfg.held_out)
    return calib, held, list(held[:VALIDATION_IMAGES])


def _link(src: Path, dst: Path) -> None:
    """Artifacts appear in the run folder as hard links into the store (copies across file systems); a folder
    artifact (a Core ML .mlpackage) as a tree of links, replacing any earlier one whole."""
    tmp = dst.with_name(f".{dst.name}.part")
    if tmp.is_dir():
        shutil.rmtree(tmp)
    tmp.unlink(missing_ok=True)
    if src.is_dir():
        def link_or_copy(a: str, b: str) -> None:
            try:
                os.link(a, b)
            except OSError:
                shutil.copyfile(a, b)

        shutil.copytree(src, tmp, copy_function=link_or_copy)
        if dst.is_dir():
            shutil.rmtree(dst)
        os.replace(tmp, dst)
        return
    if dst.is_file() and os.path.samefile(src, dst):
        return  # already this very file (rename would leave the .part link behind: two links to one inode)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def deploy_format(cfg: DeployConfig):
    """The Format a deploy makes: --format, else the target profile's default; checked against the precision and
    this machine before any work starts."""
    from edgekit.errors import InputError
    from edgekit.formats import get_format

    name = cfg.format
    if name is None:
        from edgekit.targets.profiles import get_profile

        name = get_profile(cfg.target).defaults.format
    fmt = get_format(name)
    fmt.check_precision(cfg.precision)
    problem = fmt.available()
    if problem:
        raise InputError(f"--format {fmt.name} cannot be made here: {problem}")
    return fmt


def build_artifacts(cfg: DeployConfig, ctx: ModelContext, images: tuple, step: Callable[[], None] = lambda: None,
                    ) -> tuple[list[Artifact], dict | None]:
    """Make both parts at FP32 and, for any other precision, at that precision too with its fidelity against FP32,
    all through the store; `images` is _images(cfg). Returns the artifacts in measuring order and the fidelity
    block (None for FP32). Fleets call it once before their devices start, so that every device finds everything
    built."""
    from edgekit.quant.presets import PRESETS

    calib, held, validation = images
    fmt = deploy_format(cfg)
    settings = BuildSettings(validation=validation, calib=calib, preset=PRESETS[cfg.preset], method=cfg.method,
                             options={"exporter": cfg.exporter})
    fp32 = {}
    for part in PARTS:
        fp32[part] = ensure_artifact(ctx, fmt, part, "fp32", settings)
        step()
    artifacts: list[Artifact] = [fp32[p] for p in PARTS]
    if cfg.precision == "fp32":
        return artifacts, None
    low = {}
    for part in PARTS:
        low[part] = ensure_artifact(ctx, fmt, part, cfg.precision, settings, source=fp32[part],
                                    encoder_fp32=fp32["encoder"])
        step()
    reason = fmt.unmeasured_fidelity(cfg.precision)
    if reason:  # the precision is chosen on the device: nothing here runs what it will run
        return artifacts + [low[p] for p in PARTS], {
            "reference": "fp32", "precision": cfg.precision, "format": fmt.name, "images": 0, "embedding_sqnr_db": None,
            "logits_sqnr_db": None, "mask_iou": None, "mask_iou_point": None, "mask_iou_box": None, "target": None,
            "passed": None, "note": reason}
    if not held:  # no --calib: no held-out photographs to measure the cost on (the report says so)
        return artifacts + [low[p] for p in PARTS], None
    fidelity, _ = cached_fidelity(ctx, (fp32["encoder"], low["encoder"]), (fp32["decoder"], low["decoder"]), held,
                                  cfg.fidelity_target)
    targets = Targets(cfg.fidelity_target, cfg.sqnr_target)
    fidelity["sqnr_target"] = cfg.sqnr_target
    if cfg.sqnr_target is not None:
        fidelity["passed"] = targets.met(fidelity)
    step()
    made = artifacts + [low[p] for p in PARTS]
    wanted = cfg.sensitivity if cfg.sensitivity is not None else (
        cfg.fidelity_target is not None or cfg.sqnr_target is not None)
    if fmt.mixed_precision and cfg.precision == "int8" and wanted:
        ctx.quality["sensitivity"] = layer_sensitivity(ctx, fmt, fp32, low, settings, held)
        if fidelity["passed"] is False:
            found = search_mixed(ctx, fmt, fp32, low, ctx.quality["sensitivity"]["nodes"], targets, settings, held,
                                 progress=lambda text: log.info("mixed precision: %s", text))
            mixed = [found["artifacts"][p] for p in PARTS if found["artifacts"][p].precision == MIXED]
            made += mixed
            ctx.quality["mixed_precision"] = {
                "targets": targets.to_dict(), "passed": found["passed"],
                "float_nodes": found["float_nodes"], "fidelity": {k: found["fidelity"][k] for k in (
                    "embedding_sqnr_db", "logits_sqnr_db", "mask_iou", "mask_iou_point", "mask_iou_box")},
                "artifacts": [a.name for a in mixed], "trials": found["trials"]}
    return made, fidelity


def run_deploy(cfg: DeployConfig) -> dict:
    """Run the whole job and write RUN_DIR; returns the report dict."""
    from edgekit.pipeline.report_builder import build_report
    from edgekit.quant.presets import PRESETS
    from edgekit.targets.registry import open_target
    from edgekit.variants.registry import get_spec

    cfg = replace(cfg, format=deploy_format(cfg).name)  # resolved once: the report and the fleet name it
    spec = get_spec(cfg.model)
    fmt = deploy_format(cfg)
    refusal = fmt.supports(spec)
    if refusal:
        raise ValidationError(f"{spec.name} does not convert to {fmt.name}: {refusal}",
                              hint="pick another --format (`edgekit models` lists the formats each variant converts to)")
    for runtime, options in cfg.backend_options.items():
        if options and runtime != fmt.runtime:
            flags = ", ".join("--" + k.replace("_", "-") for k in options)
            what = {"litert": "LiteRT", "onnxruntime": "ONNX Runtime"}.get(runtime, runtime)
            owner = {"litert": "litert", "onnxruntime": "onnx"}.get(runtime, runtime)
            raise InputError(f"{flags} set how {what} runs its artifacts, and --format {fmt.name} makes none for it",
                             hint=f"add --format {owner}, or drop {flags}")
    if cfg.fidelity_target is not None and fmt.unmeasured_fidelity(cfg.precision):
        raise InputError(f"--fidelity-target cannot be checked for {fmt.name} {cfg.precision}: "
                         + fmt.unmeasured_fidelity(cfg.precision),
                         hint="drop --fidelity-target, or deploy --precision int8 --calib DIR, whose fidelity is measured"
                         if fmt.runs_here else "drop --fidelity-target: the device checks each package against torch's "
                                               "reference outputs (the report's device validation)")
    if cfg.encoder_onnx is not None and fmt.name not in ("onnx", "tensorrt"):
        raise InputError("--encoder-onnx plugs an ONNX encoder in: it works with --format onnx or tensorrt only",
                         hint="drop --format, or give --format onnx")
    if cfg.preset not in PRESETS:
        raise InputError(f"unknown --preset {cfg.preset!r}", hint="use one of: " + ", ".join(PRESETS))
    if cfg.checkpoint is not None and not Path(cfg.checkpoint).is_file():
        raise InputError(f"checkpoint not found: {cfg.checkpoint}", hint="pass the official release file, or --weights synthetic")
    from edgekit.variants.onnx_encoder import check_encoder_file

    check_encoder_file(spec, cfg.encoder_onnx)
    if cfg.eval_data is not None:
        if cfg.checkpoint is None:
            import warnings

            warnings.warn("--eval with synthetic weights: the mIoU figures only show the evaluation ran", stacklevel=2)
        from edgekit.accuracy.dataset import load_dataset

        load_dataset(cfg.eval_data, cfg.eval_limit)  # a bad folder fails now, not after the exports
    calib, held, validation = _images(cfg)
    target = open_target(cfg.target, cfg.host, device_python=cfg.device_python,
                         accept_new_host_key=cfg.accept_new_host_key, serial=cfg.serial)
    for runtime, options in cfg.backend_options.items():
        target.backend_options[runtime] = {**target.backend_options.get(runtime, {}), **options}
    try:
        _check_device(target, fmt)
    except BaseException:
        target.close()
        raise
    if cfg.measure.threads <= 0:  # "every core": known only now, from the device's facts
        cfg = replace(cfg, measure=replace(cfg.measure, threads=int(target.device.get("cpus") or 1)))
    ctx = ModelContext(spec=spec, checkpoint=cfg.checkpoint, store=Store(cfg.store), encoder_onnx=cfg.encoder_onnx)
    low = cfg.precision != "fp32"
    names = [f"export {p}" for p in PARTS] + ([f"quantize {p}" for p in PARTS] + ["fidelity"] if low else [])
    names += [f"measure {p} {q}" for q in (("fp32", cfg.precision) if low else ("fp32",)) for p in PARTS] + ["report"]
    measurements = []
    fidelity = None
    try:
        with Steps(names, enabled=cfg.progress) as bar:
            artifacts, fidelity = build_artifacts(cfg, ctx, (calib, held, validation), bar.next)
            if cfg.eval_data is not None:
                ctx.quality["accuracy"] = ground_truth(cfg, ctx, artifacts)
            raw_dir = cfg.out / "raw"
            for artifact in artifacts:
                started = time.perf_counter()
                measurements.append((artifact, target.measure(artifact.path, artifact.inputs, artifact.layer_map,
                                                              cfg.measure, raw_dir / artifact.name, runtime=fmt.runtime)))
                ctx.log.add(f"measure {artifact.part} {artifact.precision}", time.perf_counter() - started, False)
                bar.next()
            for artifact in artifacts:
                for f in artifact.files():
                    _link(f, cfg.out / f.name)
            report = build_report(cfg, ctx, target, measurements, fidelity)
            from edgekit.report.write import write_report

            write_report(report, cfg.out)
            bar.next()
    finally:
        target.close()
    mixed = ctx.quality.get("mixed_precision")
    if fidelity is not None and not (mixed and mixed["passed"]):
        try:
            check_target(fidelity, mixed, fmt)
        except ValidationError as exc:
            exc.report = report  # written and complete: a comparison run still sets it beside the others
            raise
    return report


def ground_truth(cfg: DeployConfig, ctx: ModelContext, artifacts: list[Artifact]) -> dict:
    """mIoU against the ground truth of --eval for each precision's encoder + decoder pair."""
    from edgekit.accuracy.dataset import load_dataset
    from edgekit.accuracy.miou import evaluate
    from edgekit.accuracy.runners import artifact_runner

    data = load_dataset(cfg.eval_data, cfg.eval_limit)
    pairs: dict[str, dict[str, Artifact]] = {}
    for a in artifacts:
        pairs.setdefault(a.precision, {})[a.part] = a
    block: dict = {"dataset": str(cfg.eval_data), "images": len(data)}
    fmt = deploy_format(cfg)
    for precision, pair in pairs.items():
        if fmt.unmeasured_fidelity(precision):  # chosen on the device (TensorRT fp16): nothing here runs it
            continue
        started = time.perf_counter()
        result = evaluate(artifact_runner(ctx, pair["encoder"], pair["decoder"]), ctx.spec, ctx.model, data)
        block["masks"] = result["masks"]
        block[precision] = {"point_miou": result["point_miou"], "box_miou": result["box_miou"]}
        ctx.log.add(f"evaluate {precision}", time.perf_counter() - started, False)
    return block


def _check_device(target, fmt) -> None:
    """Before the exports: the device runs the format's runtime (trtexec for TensorRT), and what it says about
    itself that a user should fix (a Jetson's power mode and clocks) is shown now and kept in the report."""
    import warnings

    if target.runtimes is not None and fmt.runtime not in target.runtimes:
        from edgekit.errors import UsageError

        raise UsageError(f"target {target.name} lists no {fmt.runtime} runtime, which --format {fmt.name} needs",
                         hint=f"pick a --format this target runs ({', '.join(target.runtimes)}), or another --target")
    if fmt.runtime == "tensorrt":
        from edgekit.targets.tensorrt.backend import require_trtexec

        require_trtexec(target)
    if fmt.runtime == "coreml":
        from edgekit.targets.coreml.backend import require_mac

        require_mac(target)
    for message in target.device.get("warnings", []):
        warnings.warn(f"{target.name}: {message}", stacklevel=3)


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
