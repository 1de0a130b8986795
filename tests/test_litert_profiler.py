"""The LiteRT C profiler (targets/device/litert_profiler.py through litert_capi.py) on the real runtime and real tiny
.tflite models (tests/tflite_models.py): outputs against numpy, events aligned to TFLite nodes, the runner's
litert_ops.json and result.json, the backend's rows, and the errors that name the fix.

Nothing is mocked: every event comes from the libLiteRt.so of the installed ai-edge-litert wheel. Skipped where
that wheel is not installed (the `litert` extra).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert", reason="ai_edge_litert is not installed (pip install -c constraints.txt -e '.[litert]')")

from edgekit.exporters.layer_map import LayerMap  # noqa: E402
from edgekit.targets.base import MeasureConfig  # noqa: E402
from edgekit.targets.device import litert_capi, litert_profiler as lp, litert_runner  # noqa: E402
from edgekit.targets.litert.parse_litert_ops import parse_litert_ops  # noqa: E402
from edgekit.targets.litert.xnnpack_align import Node, align  # noqa: E402
from tests import tflite_models  # noqa: E402

RUNNER = Path(litert_runner.__file__)
RNG = np.random.default_rng(11)
OP_TYPES = ("OPERATOR_INVOKE", "DELEGATE_PROFILED_OPERATOR_INVOKE")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tflite")
    return {"fp32": tflite_models.write_fp32_model(folder / "tiny_fp32.tflite"),
            "int8": tflite_models.write_int8_model(folder / "tiny_int8.tflite"),
            "mixed": tflite_models.write_mixed_model(folder / "tiny_mixed.tflite")}


def interpreter_nodes(model: Path) -> list[Node]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    return [Node(n["index"], n["op"], tuple(n["outputs"])) for n in litert_runner._nodes(interpreter)]


def op_events(run: list[dict]) -> list[dict]:
    return [e for e in run if e["type"] in OP_TYPES]


def test_fp32_profile_matches_numpy_and_every_xnnpack_op_has_its_node(models) -> None:
    image = RNG.standard_normal((1, 4, 4, 3)).astype(np.float32)
    offset = RNG.standard_normal((1, 2, 2, 2)).astype(np.float32)
    got = lp.profile(str(models["fp32"]), {"image": image, "offset": offset}, runs=4, num_threads=1)
    np.testing.assert_allclose(got["outputs"]["probs"], tflite_models.fp32_reference(image, offset), rtol=1e-5, atol=1e-6)
    assert got["fully_accelerated"] is True and got["version"] == litert_capi.wheel_version(litert_capi.package_dir())
    runs = lp.split_runs(got["events"])
    assert len(runs) == 4 and all(run[0]["tag"] == lp.RUN_START_TAG for run in runs)  # warm-ups not recorded
    for run in runs:
        ops = op_events(run)
        assert [e["tag"] for e in ops] == ["Convolution (NHWC, F32) IGEMM", "Add (ND)", "Softmax (NC, F32)"]
        assert [e["meta1"] for e in ops] == [0, 1, 2] and {e["type"] for e in ops} == {"DELEGATE_PROFILED_OPERATOR_INVOKE"}
        invoke = [e for e in run if e["tag"] == "Invoke" and e["type"] == "DEFAULT"]
        assert len(invoke) == 1 and sum(e["elapsed_us"] for e in ops) <= invoke[0]["elapsed_us"]
    alignment = align(interpreter_nodes(models["fp32"]), op_events(runs[0]))
    assert [(a.node, a.how) for a in alignment.assignments] == [(0, "type"), (1, "type"), (2, "type")]
    assert alignment.unmatched_nodes == ()


def test_builtin_kernels_give_exact_node_indices_in_interpreter_order(models) -> None:
    image = RNG.standard_normal((1, 4, 4, 3)).astype(np.float32)
    for name in ("fp32", "mixed"):
        feeds = {"image": image, "offset": np.zeros((1, 2, 2, 2), np.float32)} if name == "fp32" else {"image": image}
        got = lp.profile(str(models[name]), feeds, runs=2, kernel_mode="builtin")
        assert got["fully_accelerated"] is False and got["kernel_mode"] == "builtin"
        nodes = interpreter_nodes(models[name])
        for run in lp.split_runs(got["events"]):
            ops = op_events(run)
            assert {e["type"] for e in ops} == {"OPERATOR_INVOKE"}
            assert [(e["meta1"], e["tag"]) for e in ops] == [(n.index, n.op) for n in nodes]  # node i is op i
            assert all(e["meta2"] == 0 for e in ops)  # subgraph 0
        reference = (tflite_models.fp32_reference(image, feeds["offset"]) if name == "fp32"
                     else tflite_models.mixed_reference(image))
        np.testing.assert_allclose(got["outputs"]["probs"], reference, rtol=1e-5, atol=1e-6)


def test_int8_profile_matches_the_integer_reference_and_attaches_xnnpack_helpers(models) -> None:
    x = RNG.integers(-128, 128, size=(1, 8)).astype(np.int8)
    got = lp.profile(str(models["int8"]), {"x": x}, runs=2)
    assert got["outputs"]["y"].dtype == np.int8
    assert np.abs(got["outputs"]["y"].astype(int) - tflite_models.int8_reference(x).astype(int)).max() <= 1
    ops = op_events(lp.split_runs(got["events"])[0])
    # XNNPACK runs the rank-2 FULLY_CONNECTED as a reshape and the quantized GEMM: both are node 0's time
    assert [e["tag"] for e in ops] == ["Static Reshape (NC)", "Fully Connected (NC, QS8, QC8W) GEMM"]
    alignment = align(interpreter_nodes(models["int8"]), ops)
    assert [(a.node, a.how) for a in alignment.assignments] == [(0, "helper"), (0, "type")]
    with pytest.raises(lp.LiteRtProfilerError, match="input x is float32 but the model takes int8"):
        lp.profile(str(models["int8"]), {"x": x.astype(np.float32)}, runs=1)  # the runner quantizes first


def test_partly_delegated_model_interleaves_builtin_and_xnnpack_events(models) -> None:
    image = RNG.standard_normal((1, 4, 4, 3)).astype(np.float32)
    got = lp.profile(str(models["mixed"]), {"image": image}, runs=2)
    np.testing.assert_allclose(got["outputs"]["probs"], tflite_models.mixed_reference(image), rtol=1e-5, atol=1e-6)
    assert got["fully_accelerated"] is False  # CUMSUM has no XNNPACK kernel
    ops = op_events(lp.split_runs(got["events"])[0])
    # two XNNPACK partitions (meta1 restarts at 0) around the builtin CUMSUM, whose meta1 is its node index
    assert [(e["type"][:8], e["tag"], e["meta1"]) for e in ops] == [
        ("DELEGATE", "Convolution (NHWC, F32) IGEMM", 0), ("OPERATOR", "CUMSUM", 1), ("DELEGATE", "Softmax (NC, F32)", 0)]
    alignment = align(interpreter_nodes(models["mixed"]), ops)
    assert [(a.node, a.how) for a in alignment.assignments] == [(0, "type"), (1, "exact"), (2, "type")]


def run_runner(model: Path, out: Path, *args: str, runner: Path = RUNNER) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(runner), "--model", str(model), "--out", str(out), "--min-seconds", "0",
                           "--threads", "1", *args], capture_output=True, text=True, timeout=300)


def test_runner_writes_litert_ops_json_beside_result_json(models, tmp_path) -> None:
    image = RNG.standard_normal((1, 4, 4, 3)).astype(np.float32)
    np.savez(tmp_path / "in.npz", image=image)
    proc = run_runner(models["mixed"], tmp_path / "out", "--inputs", str(tmp_path / "in.npz"), "--warmup", "1",
                      "--runs", "3", "--profile-runs", "5", "--save-outputs")
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert len(result["latency_ms"]) == 3  # the timed runs, unchanged: the Interpreter with no profiler
    assert (result["op_profiler"], result["ops_file"], result["kernel_mode"], result["delegate"]) == (
        "litert", "litert_ops.json", "xnnpack", "xnnpack")
    assert result["profile_file"] is None and result["profile_note"] is None
    assert result["profile_runs"] == 5 and result["profile_warmup_runs"] == 2
    profiler = result["profiler"]
    assert profiler["tool"] == "litert" and profiler["runs"] == profiler["profiled_runs_found"] == 5
    assert profiler["threads"] == 1 and profiler["fully_accelerated"] is False and profiler["nodes"] == 3
    assert profiler["op_events"] == 15 and profiler["output_max_abs_diff"] < 1e-6  # same outputs as the Interpreter
    ops = json.loads((tmp_path / "out" / "litert_ops.json").read_text())
    assert ops["format"] == "edgekit-litert-ops/1" and ops["version"] == profiler["version"]
    # the nodes with their tensors: names (module paths, for attribution) and ids (which partition holds them)
    assert ops["nodes"] == [{"index": 0, "op": "CONV_2D", "outputs": ["conv"], "inputs": [0, 1, 2], "output_ids": [4]},
                            {"index": 1, "op": "CUMSUM", "outputs": ["cumsum"], "inputs": [4, 3], "output_ids": [5]},
                            {"index": 2, "op": "SOFTMAX", "outputs": ["probs"], "inputs": [5], "output_ids": [6]}]
    assert len(ops["runs"]) == 5 and all(not e["type"].startswith("TELEMETRY") for run in ops["runs"] for e in run)
    assert set(ops["runs"][0][0]) == {"tag", "type", "start_us", "elapsed_us", "meta1", "meta2"}
    parsed = parse_litert_ops(json.dumps(ops))
    assert [(row.name, row.op_type, row.extra["node_index"]) for row in parsed.layers] == [
        ("conv", "CONV_2D", 0), ("cumsum", "CUMSUM", 1), ("probs", "SOFTMAX", 2)]
    assert parsed.summary["delegated_nodes"] == 2 and parsed.summary["builtin_nodes"] == 1
    assert parsed.summary["unmatched_nodes"] == [] and parsed.summary["unmatched_ops"] == 0


def test_runner_says_why_when_the_c_profiler_cannot_run(models, tmp_path) -> None:
    # A runner pushed alone (an old runner job): auto falls back, and the note names both reasons.
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(RUNNER, lone / RUNNER.name)
    proc = run_runner(models["fp32"], tmp_path / "a", "--runs", "1", "--benchmark-model", str(tmp_path / "none"),
                      runner=lone / RUNNER.name)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "a" / "result.json").read_text())
    assert result["op_profiler"] is None and result["ops_file"] is None
    assert result["profile_note"].startswith("no per-op profile: the LiteRT C profiler is unavailable")
    assert "litert_profiler.py is not beside the runner" in result["profile_note"] and "benchmark_model" in result["profile_note"]
    # asked for explicitly, it fails instead
    proc = run_runner(models["fp32"], tmp_path / "b", "--runs", "1", "--op-profiler", "litert", runner=lone / RUNNER.name)
    assert proc.returncode != 0 and "--op-profiler litert" in proc.stderr
    proc = run_runner(models["fp32"], tmp_path / "c", "--runs", "1", "--op-profiler", "none")
    assert proc.returncode == 0 and json.loads((tmp_path / "c" / "result.json").read_text())["profile_note"] == (
        "no per-op profile: --op-profiler none")


def test_missing_or_old_library_raises_an_error_naming_the_fix(tmp_path) -> None:
    with pytest.raises(lp.LiteRtProfilerError, match=r"no libLiteRt\.so in .*pip install \"ai-edge-litert>=2\.1\.6\""):
        litert_capi.load_library(str(tmp_path))  # a folder without the library
    old = tmp_path / "old"
    old.mkdir()
    (old / "__init__.py").write_text('__version__ = "2.1.0"\n')
    with pytest.raises(lp.LiteRtProfilerError, match=r"ai-edge-litert 2\.1\.0 is too old .*>=2\.1\.6"):
        lp.ProfiledModel("any.tflite", library_dir=str(old))
    (old / "__init__.py").write_text('__version__ = "2.3.0"\n')
    (old / "libLiteRt.so").write_bytes(b"not an ELF file")
    with pytest.raises(lp.LiteRtProfilerError, match="cannot load .*libLiteRt.so"):
        litert_capi.load_library(str(old))
    libm = next((p for p in ("/lib/x86_64-linux-gnu/libm.so.6", "/lib/aarch64-linux-gnu/libm.so.6", "/usr/lib/libm.so.6")
                 if Path(p).exists()), None)
    if libm:  # a real shared library that is not LiteRT: the missing symbols are named
        shutil.copy(libm, old / "libLiteRt.so")
        with pytest.raises(lp.LiteRtProfilerError, match="lacks LiteRtCreateEnvironment"):
            litert_capi.load_library(str(old))


def local_target(**backend_options):
    from edgekit.targets.registry import open_target

    target = open_target("local")
    target.backend_options["litert"] = backend_options
    return target


def test_backend_rows_come_from_the_c_profiler_and_attribute_by_tensor_then_node(models, tmp_path) -> None:
    image = RNG.standard_normal((1, 4, 4, 3)).astype(np.float32)
    np.savez(tmp_path / "in.npz", image=image, offset=np.zeros((1, 2, 2, 2), np.float32))
    config = MeasureConfig(warmup=1, runs=3, min_seconds=0, threads=1, profile_runs=6)
    layer_map = LayerMap(nodes={"node:2": "head.softmax"}, tensors={"conv": "backbone.conv"})
    with closing(local_target()) as target:  # defaults: auto -> the C profiler
        m = target.measure(models["fp32"], tmp_path / "in.npz", layer_map, config, tmp_path / "raw")
    assert set(m.files) == {"result", "ops"} and m.files["ops"].name == "litert_ops.json"
    assert [(r["name"], r["op_type"], r["module"], r["node_index"]) for r in m.layers] == [
        ("conv", "CONV_2D", "backbone.conv", 0), ("add", "ADD", "", 1), ("probs", "SOFTMAX", "head.softmax", 2)]
    assert m.layers[0]["runtime_ops"] == ["Convolution (NHWC, F32) IGEMM"] and m.layers[0]["match"] == "type"
    assert m.layers_note is None and m.runtime["op_profiler"] == "litert" and m.runtime["delegate"] == "xnnpack"
    assert m.runtime["nodes"] == m.runtime["delegated_nodes"] == 3 and m.runtime["fully_accelerated"] is True
    assert m.profiled_run_ms and m.profiled_run_ms > 0
    coverage = m.coverage()
    # operator events lie inside their run's Invoke; they count whole microseconds, and this model's three ops can
    # each take less than one on a fast core (the sum is checked against the span on a real model in
    # test_litert_profiler_torch.py)
    assert 0 <= coverage["sum_vs_profiled_run"] <= 1.0
    assert m.latency.count == 3  # the Interpreter's timed runs, as before
