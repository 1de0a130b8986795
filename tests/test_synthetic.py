"""The product's synthetic-weight generator equals the workplace's reference generator bit for bit."""
from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from edgekit.synthetic import synthetic_tensor
from tests import support


@pytest.fixture(scope="module")
def reference():
    path = support.shared_path("tools", "synth_checkpoint.py")
    spec = importlib.util.spec_from_file_location("synth_checkpoint_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _layouts() -> list[str]:
    folder = support.SHARED / "layouts"
    return sorted(p.stem for p in folder.glob("*.txt")) if folder.exists() else []


@pytest.mark.parametrize("layout", _layouts() or [pytest.param("none", marks=pytest.mark.skip(reason="../shared absent"))])
def test_every_tensor_kind_matches_reference(reference, layout: str) -> None:
    rows = reference.read_layout(support.shared_path("layouts", f"{layout}.txt"))
    # Every key of every layout, except the largest kernels (their branch is covered by the smaller ones and by
    # the full-file comparison below); keeps the test at a few seconds.
    checked = 0
    for key, shape, dtype in rows:
        if math.prod(shape) > 300_000:
            continue
        ours = synthetic_tensor(0, key, shape, dtype)
        theirs = reference.synth_tensor(0, key, shape, dtype)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, key
        assert ours.tobytes() == theirs.tobytes(), f"{layout}: {key} differs"
        checked += 1
    assert checked > len(rows) // 2


def test_whole_mobilesam_file_matches_reference(reference) -> None:
    rows = reference.read_layout(support.shared_path("layouts", "mobile_sam_vit_t.txt"))
    for key, shape, dtype in rows:
        assert synthetic_tensor(0, key, shape, dtype).tobytes() == reference.synth_tensor(0, key, shape, dtype).tobytes(), key


def test_seed_and_key_change_values() -> None:
    a = synthetic_tensor(0, "image_encoder.blocks.0.attn.qkv.weight", (96, 32), "float32")
    assert not np.array_equal(a, synthetic_tensor(1, "image_encoder.blocks.0.attn.qkv.weight", (96, 32), "float32"))
    assert not np.array_equal(a, synthetic_tensor(0, "image_encoder.blocks.1.attn.qkv.weight", (96, 32), "float32"))
    assert synthetic_tensor(0, "x.num_batches_tracked", (), "int64").dtype == np.int64
