"""Checkpoint loading: strict, safe, and one clear error per kind of bad file."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from edgekit.checkpoints import build_variant, load_into, read_checkpoint, unwrap_state_dict
from edgekit.errors import CheckpointError, ExitStatus, InputError
from edgekit.synthetic import layout_of, synthetic_state_dict
from edgekit.variants.registry import get_spec


class NotAWeight:  # pickling this needs code: weights_only must refuse it
    pass


@pytest.fixture(scope="module")
def mobilesam_state() -> dict:
    with torch.device("meta"):
        rows = layout_of(get_spec("mobilesam").build().state_dict())
    return synthetic_state_dict(rows)


def test_missing_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_checkpoint(tmp_path / "nope.pt")


@pytest.mark.parametrize("content", [b"", b"\x00" * 64, b"PK\x03\x04 truncated zip"])
def test_corrupt_file_is_checkpoint_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="cannot read checkpoint") as info:
        read_checkpoint(path)
    assert info.value.status == ExitStatus.CHECKPOINT


def test_pickle_that_needs_code_is_refused_not_run(tmp_path: Path) -> None:
    path = tmp_path / "code.pt"
    torch.save({"model": NotAWeight()}, path)
    with pytest.raises(CheckpointError, match="would run code.*NotAWeight"):
        read_checkpoint(path)


def test_wrapped_and_plain_files_unwrap(tmp_path: Path) -> None:
    sd = {"a.weight": torch.zeros(2)}
    for obj in (sd, {"model": sd}, {"state_dict": sd}):
        torch.save(obj, tmp_path / "x.pt")
        assert list(read_checkpoint(tmp_path / "x.pt")) == ["a.weight"]
    with pytest.raises(CheckpointError, match="no state dict"):
        unwrap_state_dict({"epoch": 3})


def test_strict_load_round_trip(tmp_path: Path, mobilesam_state: dict) -> None:
    torch.save(mobilesam_state, tmp_path / "mobile_sam.pt")
    model = build_variant("mobilesam", checkpoint=tmp_path / "mobile_sam.pt")
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in mobilesam_state.items())


def test_layout_mismatch_names_the_difference_and_the_lookalike(mobilesam_state: dict) -> None:
    spec = get_spec("slimsam-77")
    with torch.device("meta"):
        model = spec.build()
    with pytest.raises(CheckpointError) as info:
        load_into(model, spec, mobilesam_state, source="mobile_sam.pt")
    text = info.value.render()
    assert "does not have the slimsam-77 layout" in text
    assert "missing" in text and "unexpected" in text
    assert "mobilesam" in text and "tinysam" in text  # the file matches both of these layouts


def test_one_missing_key_and_one_misshaped_key(mobilesam_state: dict) -> None:
    spec = get_spec("mobilesam")
    state = dict(mobilesam_state)
    dropped = next(iter(state))
    del state[dropped]
    state["mask_decoder.iou_token.weight"] = torch.zeros(2, 2)
    with torch.device("meta"):
        model = spec.build()
    with pytest.raises(CheckpointError) as info:
        load_into(model, spec, state)
    text = info.value.render()
    assert f"1 missing: {dropped}" in text
    assert "1 mis-shaped: mask_decoder.iou_token.weight: file (2, 2) float32" in text


def test_weights_arguments() -> None:
    with pytest.raises(InputError, match="no weights"):
        build_variant("mobilesam")
    with pytest.raises(InputError, match="unknown --weights"):
        build_variant("mobilesam", weights="random")
