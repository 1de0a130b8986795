"""The accuracy blocks of a report as plain rows (strings), shared by report.md and report.html: per-layer INT8
sensitivity, what mixed precision kept in float and what it cost, and mIoU against ground truth."""
from __future__ import annotations

from edgekit.report import breakdown as bd

SENSITIVITY_HEADERS = ["#", "part", "node", "op", "module", "alone SQNR", "in-graph SQNR"]
SENSITIVITY_NOTE = ("Each quantized layer's output against the float model on held-out images: *alone* with only "
                    "that layer quantized (the error it adds itself), *in graph* in the fully quantized model (the "
                    "error accumulated up to it). Lowest alone SQNR first: mixed precision keeps these in float first.")


def sensitivity_rows(report: dict, top_n: int = 15) -> list[list[str]]:
    block = report.get("sensitivity") or {}
    return [[str(i + 1), n["part"], n["node"], n["op"], n["module"] or bd.UNATTRIBUTED, bd.db(n["alone_sqnr_db"]),
             bd.db(n["in_graph_sqnr_db"])] for i, n in enumerate(block.get("nodes", [])[:top_n])]


def mixed_summary(report: dict) -> list[list[str]]:
    mixed = report.get("mixed_precision")
    if not mixed:
        return []
    t, f, lat = mixed["targets"], mixed["fidelity"], mixed.get("latency_ms") or {}
    rows = [["targets", ", ".join(x for x in (
                f"mask IoU ≥ {t['mask_iou']:.4f}" if t["mask_iou"] is not None else "",
                f"embedding SQNR ≥ {t['embedding_sqnr_db']:.1f} dB" if t["embedding_sqnr_db"] is not None else "") if x)],
            ["verdict", "met" if mixed["passed"] else "NOT met, even with every layer searched"],
            ["layers kept in float", str(len(mixed["float_nodes"]))],
            ["mask IoU reached", bd.num(f["mask_iou"])], ["embedding SQNR reached", bd.db(f["embedding_sqnr_db"])],
            ["trials", str(len(mixed["trials"]))]]
    for part in ("encoder", "decoder"):
        fp32, int8, mix = (lat.get(f"{part}_{p}") for p in ("fp32", "int8", "int8-mixed"))
        if fp32 and int8:
            cost = f"{bd.ms(mix)} ms: {mix / int8:.2f}x full INT8, {mix / fp32:.2f}x FP32" if mix else \
                "no float layers (full INT8 kept)"
            rows.append([f"{part} latency", f"FP32 {bd.ms(fp32)} ms, INT8 {bd.ms(int8)} ms, mixed {cost}"])
    return rows


def float_rows(report: dict) -> list[list[str]]:
    mixed = report.get("mixed_precision") or {}
    return [[n["part"], n["node"], n["op"], n["module"] or bd.UNATTRIBUTED, bd.db(n["alone_sqnr_db"])]
            for n in mixed.get("float_nodes", [])]


def accuracy_rows(report: dict) -> list[list[str]]:
    acc = report.get("accuracy")
    if not acc:
        return []
    return [[k, bd.num(v["point_miou"], 4), bd.num(v["box_miou"], 4)] for k, v in acc.items() if isinstance(v, dict)]


def accuracy_caption(report: dict) -> str:
    acc = report["accuracy"]
    return (f"{acc['images']} images, {acc['masks']} masks of {acc['dataset']}: each annotation's first point "
            "(multimask, highest predicted IoU) and its box (single mask), mIoU at the original resolution.")
