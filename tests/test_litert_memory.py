"""Static INT8 calibration's memory, checked before it starts (quant/litert_memory.py): the activation sum read
from the .tflite itself, the thread count that fits, and one clear error (exit 9) where nothing fits."""
from __future__ import annotations

import pytest

pytest.importorskip("ai_edge_litert", reason="ai_edge_litert is not installed (pip install -c constraints.txt -e '.[litert]')")

from edgekit.errors import ExitStatus, ResourceError  # noqa: E402
from edgekit.quant.litert_memory import PER_THREAD_FACTOR, activation_bytes, available_bytes, calibration_threads  # noqa: E402
from tests import tflite_models  # noqa: E402


@pytest.fixture
def model(tmp_path):
    return tflite_models.write_fp32_model(tmp_path / "tiny.tflite")


def test_activations_are_the_non_constant_tensors(model) -> None:
    # image (1,4,4,3) + offset, conv, add, probs (1,2,2,2 each): 80 float32s; the conv weights and bias are constants
    assert activation_bytes(model) == 80 * 4


def test_threads_shrink_to_what_fits_and_nothing_fitting_is_refused(model) -> None:
    one = int(PER_THREAD_FACTOR * 320)
    assert calibration_threads(model, 2, available=10 * one) == 2
    assert calibration_threads(model, 2, available=one + 1) == 1
    with pytest.raises(ResourceError) as info:
        calibration_threads(model, 2, available=one - 1)
    err = info.value
    assert err.status == ExitStatus.RESOURCES == 9
    assert "tiny.tflite" in err.message and "int8-dynamic" in err.hint


def test_this_machine_reports_its_available_memory() -> None:
    available = available_bytes()
    assert available is None or available > 0
