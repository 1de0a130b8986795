"""The mixed-precision search and its verdicts, as pure functions: the fewest float layers for a target, asking
each count once; targets on mask IoU and embedding SQNR; the exit-7 message naming what was tried."""
from __future__ import annotations

import pytest

from edgekit.errors import ValidationError
from edgekit.pipeline.fidelity import check_target
from edgekit.pipeline.mixed import Targets, fewest


@pytest.mark.parametrize("n", [1, 2, 5, 13, 100, 155])
def test_fewest_finds_the_threshold_asking_each_count_once(n: int) -> None:
    for threshold in range(1, n + 2):
        asked: list[int] = []

        def passes(k: int) -> bool:
            asked.append(k)
            return k >= threshold

        assert fewest(n, passes) == (threshold if threshold <= n else None)
        assert len(asked) == len(set(asked))
        assert len(asked) <= 2 * max(1, threshold).bit_length() + 2  # doubling then bisection, not a scan


def test_fewest_with_nothing_to_search() -> None:
    assert fewest(0, lambda k: True) is None


def test_targets() -> None:
    fid = {"mask_iou": 0.96, "embedding_sqnr_db": 18.0}
    assert Targets(0.95).met(fid) and not Targets(0.97).met(fid)
    assert Targets(None, 15.0).met(fid) and not Targets(0.95, 20.0).met(fid)
    assert Targets(None, 90.0).met({"mask_iou": 1.0, "embedding_sqnr_db": None})  # identical outputs meet anything


def _fidelity(**over) -> dict:
    return {"precision": "int8", "mask_iou": 0.81, "mask_iou_point": 0.8, "mask_iou_box": 0.82,
            "embedding_sqnr_db": 12.5, "target": 0.95, "sqnr_target": None, "passed": False, **over}


def test_exit_7_names_the_target_and_the_way_out() -> None:
    class TensorRT:  # a format that cannot keep layers in float
        name, mixed_precision = "tensorrt", False

    with pytest.raises(ValidationError, match=r"mask IoU 0\.9500.*0\.8100") as exc:
        check_target(_fidelity(), None, TensorRT())
    assert "--format onnx" in exc.value.hint
    mixed = {"float_nodes": [{}] * 150, "fidelity": {"mask_iou": 0.9}}
    with pytest.raises(ValidationError, match="all 150 quantized layers searched") as exc:
        check_target(_fidelity(target=None, sqnr_target=30.0), mixed)
    assert "embedding SQNR 30.0 dB" in str(exc.value)
    check_target(_fidelity(passed=True))  # a pass says nothing
