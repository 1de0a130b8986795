"""INT8 you can act on: per-layer sensitivity of the INT8 pair, and automatic mixed precision.

`layer_sensitivity` ranks every quantized node of the encoder and decoder (quant/sensitivity.py) on held-out
images, cached in the store. `search_mixed` keeps the most sensitive nodes in float until the fidelity targets
(mask IoU and/or embedding SQNR against FP32) are met: it doubles the count of float nodes until the targets
pass, then bisects between the last failing and the first passing count, so it needs about 2·log2(n) trials;
each trial re-quantizes on the INT8 artifact's own ranges (no new calibration) and measures fidelity on the same
held-out images. Fidelity grows with the float count in practice, not by law: the search reports every trial.
"""
from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from edgekit.formats.base import PARTS, Artifact, Format, MakeJob
from edgekit.pipeline.artifacts import BuildSettings, decoder_calibration, encoder_calibration
from edgekit.pipeline.context import ModelContext
from edgekit.pipeline.fidelity import cached_fidelity
from edgekit.quant.calibration import CalibImage
from edgekit.store import step_id

log = logging.getLogger(__name__)
MIXED = "int8-mixed"
SENSITIVITY_IMAGES = 2  # held-out images the ranking is measured on (every layer's output is kept per image)


def layer_sensitivity(ctx: ModelContext, fmt: Format, fp32: dict[str, Artifact], int8: dict[str, Artifact],
                      settings: BuildSettings, images: Sequence[CalibImage]) -> dict:
    """{"images", "nodes": [...]}: every quantized node of both parts, most sensitive first."""
    from edgekit.quant.sensitivity import NodeSensitivity, rank

    images = list(images)[:SENSITIVITY_IMAGES]
    config = {"images": [im.sha256 for im in images], "revision": 1}
    parent = step_id(None, "pair", {"artifacts": [int8[p].entry.id for p in PARTS]})
    entry_id = step_id(parent, "sensitivity", config)
    entry = ctx.store.lookup(entry_id)
    if entry is None:
        started = time.perf_counter()
        ranked: list[tuple[str, NodeSensitivity]] = []
        with tempfile.TemporaryDirectory(prefix="edgekit-sens-") as tmp:
            for part in PARTS:
                folder = Path(tmp) / part
                folder.mkdir()
                feeds = (encoder_calibration(ctx, images) if part == "encoder" else
                         decoder_calibration(ctx, fmt, fp32["encoder"], images))
                for node in fmt.layer_sensitivity(fp32[part], int8[part], settings.preset, feeds, folder):
                    ranked.append((part, node))
        order = {id(n): p for p, n in ranked}
        nodes = [{"part": order[id(n)], **n.to_dict()} for n in rank([n for _, n in ranked])]
        result = {"images": len(images), "nodes": nodes}
        with ctx.store.build(entry_id, "sensitivity", parent, config) as folder:
            (folder / "sensitivity.json").write_text(json.dumps(result))
        ctx.log.add("sensitivity", time.perf_counter() - started, False)
        entry = ctx.store.get(entry_id)
    else:
        ctx.log.add("sensitivity", 0.0, True)
    return json.loads(entry.path(ctx.store.root, "sensitivity.json").read_text())


def ensure_mixed(ctx: ModelContext, fmt: Format, part: str, fp32: Artifact, int8: Artifact, float_nodes: Sequence[str],
                 settings: BuildSettings) -> Artifact:
    """The `int8-mixed` artifact of one part: INT8 with `float_nodes` in float, through the store."""
    name = fmt.artifact_name(ctx.spec.name, part, MIXED)
    config = {"file": name, "part": part, "format": fmt.name, "precision": MIXED, "float_nodes": sorted(float_nodes)}
    step = f"{fmt.name}-{MIXED}-{part}"
    entry_id = step_id(int8.entry.id, step, config)
    entry = ctx.store.lookup(entry_id)
    if entry is None:
        with ctx.store.build(entry_id, step, int8.entry.id, config) as folder:
            job = MakeJob(ctx=ctx, part=part, precision=MIXED, folder=folder, file=name, source=fp32,
                          preset=settings.preset, method=settings.method)
            info = fmt.make_mixed(job, int8, list(float_nodes))
            (folder / "info.json").write_text(json.dumps(info, indent=1))
        entry = ctx.store.get(entry_id)
        entry.reused = False
    return Artifact(part, MIXED, entry, ctx.store.root, format=fmt.name)


def fewest(n: int, passes: Callable[[int], bool]) -> int | None:
    """The smallest k in 1..n with passes(k), assuming passes(0) is False and passes grows with k: doubling until
    one passes, then bisecting between the last failure and it (about 2·log2(k) calls; each k asked once).
    None when even passes(n) is False."""
    if n < 1:
        return None
    low, k = 0, 1
    while not passes(k):
        if k == n:
            return None
        low, k = k, min(2 * k, n)
    high = k
    while high - low > 1:
        mid = (low + high) // 2
        if passes(mid):
            high = mid
        else:
            low = mid
    return high


@dataclass
class Targets:
    mask_iou: float | None = None
    embedding_sqnr_db: float | None = None

    def met(self, fidelity: dict) -> bool:
        if self.mask_iou is not None and (fidelity["mask_iou"] is None or fidelity["mask_iou"] < self.mask_iou):
            return False
        if self.embedding_sqnr_db is not None:
            sqnr = fidelity["embedding_sqnr_db"]  # None: identical outputs, which meets any target
            if sqnr is not None and sqnr < self.embedding_sqnr_db:
                return False
        return True

    def to_dict(self) -> dict:
        return {"mask_iou": self.mask_iou, "embedding_sqnr_db": self.embedding_sqnr_db}


def search_mixed(ctx: ModelContext, fmt: Format, fp32: dict[str, Artifact], int8: dict[str, Artifact],
                 ranking: list[dict], targets: Targets, settings: BuildSettings, held: Sequence[CalibImage],
                 progress: Callable[[str], None] = lambda text: None) -> dict:
    """The fewest most-sensitive nodes to keep in float for `targets`. Returns {"passed", "float_nodes",
    "artifacts" {part: Artifact} (the best found), "fidelity", "trials"}."""
    trials: list[dict] = []
    cache: dict[int, tuple[dict, dict[str, Artifact]]] = {}

    def trial(k: int) -> tuple[dict, dict[str, Artifact]]:
        if k in cache:
            return cache[k]
        chosen = ranking[:k]
        arts = {}
        for part in PARTS:
            names = [n["node"] for n in chosen if n["part"] == part]
            arts[part] = ensure_mixed(ctx, fmt, part, fp32[part], int8[part], names, settings) if names else int8[part]
        fidelity, _ = cached_fidelity(ctx, (fp32["encoder"], arts["encoder"]), (fp32["decoder"], arts["decoder"]), held)
        ok = targets.met(fidelity)
        trials.append({"float_nodes": k, "mask_iou": fidelity["mask_iou"],
                       "embedding_sqnr_db": fidelity["embedding_sqnr_db"], "passed": ok})
        progress(f"{k} layer(s) in float: mask IoU {fidelity['mask_iou']:.4f}" + (" (meets)" if ok else ""))
        cache[k] = (fidelity, arts)
        return cache[k]

    high = fewest(len(ranking), lambda k: targets.met(trial(k)[0]))
    if high is None:
        fidelity, arts = trial(len(ranking))
        return {"passed": False, "float_nodes": ranking, "artifacts": arts, "fidelity": fidelity, "trials": trials}
    fidelity, arts = cache[high]
    return {"passed": True, "float_nodes": ranking[:high], "artifacts": arts, "fidelity": fidelity, "trials": trials}
