"""The on-device LiteRT runner (targets/device/litert_runner.py) and LiteRTBackend, on real .tflite models that
tests/tflite_models.py writes with known weights: the runtime's outputs are compared with numpy, not just run.

Skipped where ai_edge_litert is not installed (the `litert` extra). No runtime is mocked; benchmark_model, which
cannot be had here, is stood in for by a script that prints a captured real console log from ../shared/fixtures,
so its argv (checked exactly) and the fetch -> parse path are exercised as on a device (with --op-profiler
benchmark_model: by default the runner takes the LiteRT C profiler, tested in test_litert_profiler*.py).
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert", reason="ai_edge_litert is not installed (pip install -c constraints.txt -e '.[litert]')")

from edgekit.errors import InputError, UsageError  # noqa: E402
from edgekit.targets.base import MeasureConfig  # noqa: E402
from edgekit.targets.device import litert_runner  # noqa: E402
from tests import support, tflite_models  # noqa: E402

RUNNER = Path(litert_runner.__file__)
RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tflite")
    return {"fp32": tflite_models.write_fp32_model(folder / "tiny_fp32.tflite"),
            "int8": tflite_models.write_int8_model(folder / "tiny_int8.tflite")}


def run_runner(model: Path, out: Path, *args: str, python: tuple[str, ...] = (sys.executable,)) -> subprocess.CompletedProcess:
    return subprocess.run([*python, str(RUNNER), "--model", str(model), "--out", str(out), "--min-seconds", "0", *args],
                          capture_output=True, text=True, timeout=300)


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fp32_runner_writes_result_and_outputs_equal_to_numpy(models, tmp_path) -> None:
    image = RNG.standard_normal((1, 4, 4, 3)).astype(np.float32)
    offset = RNG.standard_normal((1, 2, 2, 2)).astype(np.float32)
    np.savez(tmp_path / "inputs.npz", offset=offset, image=image)  # by name: stored in the other order on purpose
    proc = run_runner(models["fp32"], tmp_path / "out", "--inputs", str(tmp_path / "inputs.npz"), "--warmup", "2",
                      "--runs", "7", "--threads", "1", "--benchmark-model", str(tmp_path / "none"), "--save-outputs",
                      "--op-profiler", "benchmark_model")
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["runner"] == "edgekit-litert-runner/1" and result["model"] == "tiny_fp32.tflite"
    assert result["model_sha256"] == sha256(models["fp32"])
    assert result["runtime"]["name"] == "litert" and result["runtime"]["threads"] == 1
    assert result["runtime"]["module"] == "ai_edge_litert" and result["runtime"]["version"][0].isdigit()
    assert result["warmup"] == 2 and len(result["latency_ms"]) == 7 and all(v > 0 for v in result["latency_ms"])
    assert result["load_ms"] > 0 and result["machine"] and result["python"]
    assert [i["name"] for i in result["inputs"]] == ["image", "offset"] and result["quantized_inputs"] == []
    assert result["outputs"] == [{"name": "probs", "shape": [1, 2, 2, 2], "dtype": "float32", "quantization": None}]
    # no per-op profiler: said so, and nothing pretends to be a profile
    assert result["profile_file"] is None and result["profiler"] is None and result["profile_runs"] == 0
    assert result["ops_file"] is None and result["op_profiler"] is None
    assert "no per-op profile" in result["profile_note"] and "benchmark_model" in result["profile_note"]
    with np.load(tmp_path / "out" / "outputs.npz") as out:
        probs = out["probs"]
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs, tflite_models.fp32_reference(image, offset), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-6)


def test_int8_runner_feeds_integer_io_and_matches_the_integer_reference(models, tmp_path) -> None:
    x = RNG.integers(-128, 128, size=(1, 8)).astype(np.int8)
    np.savez(tmp_path / "q.npz", x=x)
    proc = run_runner(models["int8"], tmp_path / "out", "--inputs", str(tmp_path / "q.npz"), "--warmup", "0",
                      "--runs", "3", "--profile-runs", "0", "--save-outputs")
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert len(result["latency_ms"]) == 3 and result["quantized_inputs"] == []
    scale, zero_point = result["inputs"][0]["quantization"]
    assert result["inputs"][0]["dtype"] == "int8" and scale == pytest.approx(0.05) and zero_point == -3
    assert result["outputs"][0]["dtype"] == "int8" and result["outputs"][0]["quantization"][1] == 5
    assert result["profile_note"] == "no per-op profile: --profile-runs 0"
    with np.load(tmp_path / "out" / "outputs.npz") as out:
        y = out["y"]
    assert y.dtype == np.int8
    # TFLite requantizes with a fixed-point multiplier: at most one step from the exact rounding
    assert np.abs(y.astype(int) - tflite_models.int8_reference(x).astype(int)).max() <= 1


def test_int8_runner_quantizes_float_inputs_and_defaults_to_the_zero_point(models, tmp_path) -> None:
    real = np.linspace(-2.0, 2.0, 8, dtype=np.float32).reshape(1, 8)
    np.savez(tmp_path / "f.npz", x=real)
    proc = run_runner(models["int8"], tmp_path / "f", "--inputs", str(tmp_path / "f.npz"), "--warmup", "0", "--runs", "1",
                      "--profile-runs", "0", "--save-outputs")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "f" / "result.json").read_text())["quantized_inputs"] == ["x"]
    q = np.clip(np.round(real / 0.05) - 3, -128, 127).astype(np.int8)  # what the runner fed
    with np.load(tmp_path / "f" / "outputs.npz") as out:
        assert np.abs(out["y"].astype(int) - tflite_models.int8_reference(q).astype(int)).max() <= 1
    # no inputs: "zeros" are real zeros, i.e. the input's zero point
    proc = run_runner(models["int8"], tmp_path / "z", "--warmup", "0", "--runs", "1", "--profile-runs", "0", "--save-outputs")
    assert proc.returncode == 0, proc.stderr
    zero = np.full((1, 8), -3, dtype=np.int8)
    with np.load(tmp_path / "z" / "outputs.npz") as out:
        assert np.abs(out["y"].astype(int) - tflite_models.int8_reference(zero).astype(int)).max() <= 1


def test_runner_errors_name_the_fix(models, tmp_path) -> None:
    np.savez(tmp_path / "wrong.npz", image=np.zeros((1, 4, 4, 3), np.float32))
    proc = run_runner(models["fp32"], tmp_path / "a", "--inputs", str(tmp_path / "wrong.npz"), "--runs", "1")
    assert proc.returncode != 0 and "inputs file lacks offset" in proc.stderr
    np.savez(tmp_path / "int.npz", x=np.zeros((1, 8), np.int32))
    proc = run_runner(models["int8"], tmp_path / "b", "--inputs", str(tmp_path / "int.npz"), "--runs", "1")
    assert proc.returncode != 0 and "input x is int32" in proc.stderr and "takes int8" in proc.stderr
    # -S: no site-packages, as on a device without the wheel
    proc = run_runner(models["fp32"], tmp_path / "c", "--runs", "1", python=(sys.executable, "-S"))
    assert proc.returncode != 0 and "no LiteRT runtime" in proc.stderr and "pip install ai-edge-litert" in proc.stderr


def test_benchmark_model_argv_is_exact() -> None:
    assert litert_runner.benchmark_argv("/opt/bin/benchmark_model", "/w/models/ab-m.tflite", 4, 2, 3) == [
        "/opt/bin/benchmark_model", "--graph=/w/models/ab-m.tflite", "--num_threads=4", "--warmup_runs=2",
        "--warmup_min_secs=0", "--num_runs=3", "--min_secs=0", "--max_secs=86400", "--enable_op_profiling=true",
        "--max_profiling_buffer_entries=65536"]
    # --kernel-mode builtin: TFLite's own kernels, XNNPACK off
    assert litert_runner.benchmark_argv("bm", "m.tflite", 1, 0, 1, xnnpack=False)[-1] == "--use_xnnpack=false"


def fake_benchmark_model(folder: Path, log: Path, exit_code: int = 0) -> Path:
    """An executable standing in for benchmark_model (none can be had here): records its argv, prints a real
    captured console log (to stderr, where the real tool logs) and exits with `exit_code`."""
    tool = folder / "benchmark_model"
    tool.write_text(f"#!{sys.executable}\nimport json, sys\n"
                    f"open({str(folder / 'argv.json')!r}, 'w').write(json.dumps(sys.argv))\n"
                    f"sys.stderr.write(open({str(log)!r}).read())\nsys.exit({exit_code})\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return tool


def local_target(**backend_options):
    from edgekit.targets.registry import open_target

    target = open_target("local")
    target.backend_options["litert"] = backend_options
    return target


def test_backend_fetches_benchmark_model_output_and_parses_it(models, tmp_path) -> None:
    from edgekit.targets.litert.parse_benchmark_model import parse_benchmark_model

    log = support.shared_path("fixtures", "tflite", "benchmark_model_tf2.8_mobilenetv1_riscv64_qemu_opprof_with_start_col.txt")
    tool = fake_benchmark_model(tmp_path, log)
    config = MeasureConfig(warmup=1, runs=3, min_seconds=0, threads=2, profile_runs=4)
    with closing(local_target(benchmark_model=str(tool), op_profiler="benchmark_model")) as target:
        m = target.measure(models["fp32"], None, None, config, tmp_path / "raw")
    argv = json.loads((tmp_path / "argv.json").read_text())
    remote_model = argv[1].split("=", 1)[1]
    assert Path(remote_model).name == "tiny_fp32.tflite" and Path(remote_model).parent.name.endswith("-tiny_fp32.tflite")
    assert argv == litert_runner.benchmark_argv(str(tool), remote_model, 2, 1, 4)
    assert (tmp_path / "raw" / "benchmark_model.txt").read_text() == log.read_text()  # raw, untouched
    expected = parse_benchmark_model(log.read_text())
    assert len(m.layers) == len(expected.layers) == 31
    first = m.layers[0]
    assert (first["name"], first["op_type"], first["module"]) == ("[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]:0", "CONV_2D", "")
    assert first["mean_ms"] == pytest.approx(60.957) and first["share"] == pytest.approx(0.02066)
    assert m.profiled_run_ms == pytest.approx(2950.34) and m.layers_note is None
    assert m.latency.count == 3 and m.runtime["name"] == "litert"  # the timings are the interpreter's own
    assert m.runtime["op_profiler"] == "benchmark_model" and "ops" not in m.files
    raw = json.loads(m.files["result"].read_text())
    assert raw["profiler"]["returncode"] == 0 and raw["profile_runs"] == 4 and raw["profile_warmup_runs"] == 1


def test_a_failed_or_whole_graph_delegate_profile_is_said_not_pretended(models, tmp_path) -> None:
    config = MeasureConfig(warmup=0, runs=1, min_seconds=0, threads=1, profile_runs=1)
    failing = tmp_path / "failed.log"
    failing.write_text("STARTING!\nGraph: [m.tflite]\nFailed to load model m.tflite\n")
    (tmp_path / "a").mkdir()
    with closing(local_target(benchmark_model=str(fake_benchmark_model(tmp_path / "a", failing, exit_code=1)),
                              op_profiler="benchmark_model")) as target:
        m = target.measure(models["fp32"], None, None, config, tmp_path / "raw-a")
    assert m.layers == [] and m.layers_note.startswith("benchmark_model failed (exit 1)")
    whole = support.shared_path("fixtures", "tflite", "benchmark_model_imx8mp_vx_delegate_npu_single_node_opprof.log")
    (tmp_path / "b").mkdir()
    with closing(local_target(benchmark_model=str(fake_benchmark_model(tmp_path / "b", whole)),
                              op_profiler="benchmark_model")) as target:
        m = target.measure(models["fp32"], None, None, config, tmp_path / "raw-b")
    assert len(m.layers) == 1 and "whole graph as one node" in m.layers_note


def test_local_target_measures_tflite_end_to_end(models, tmp_path) -> None:
    x = RNG.integers(-128, 128, size=(1, 8)).astype(np.int8)
    np.savez(tmp_path / "q.npz", x=x)
    config = MeasureConfig(warmup=1, runs=5, min_seconds=0, threads=1, profile_runs=1)
    with closing(local_target(save_outputs=True, benchmark_model=str(tmp_path / "absent"),
                              op_profiler="benchmark_model")) as target:
        m = target.measure(models["int8"], tmp_path / "q.npz", None, config, tmp_path / "raw")
        runs_left = os.listdir(Path(target.transport.workdir()) / "runs")
    assert m.artifact == "tiny_int8.tflite" and m.latency.count == 5 and len(m.raw_ms) == 5 and m.warmup == 1
    assert m.latency.mean_ms > 0 and m.latency.min_ms <= m.latency.median_ms <= m.latency.max_ms
    assert m.runtime["name"] == "litert" and m.runtime["threads"] == 1 and m.load_ms > 0
    assert m.layers == [] and "no per-op profile" in m.layers_note and m.coverage()["layer_sum_ms"] == 0
    assert set(m.files) == {"result", "outputs"} and runs_left == []  # fetched home; the run folder is gone
    with np.load(m.files["outputs"]) as out:
        assert np.abs(out["y"].astype(int) - tflite_models.int8_reference(x).astype(int)).max() <= 1


def test_backend_is_chosen_by_artifact_suffix(tmp_path) -> None:
    from edgekit.targets.backends import BACKENDS, entry_for
    from edgekit.targets.litert.backend import LiteRTBackend
    from edgekit.targets.ort.backend import OrtBackend
    from edgekit.targets.target import Target

    assert {e.suffix: r for r, e in BACKENDS.items() if r in ("onnxruntime", "litert")} == {
        ".onnx": "onnxruntime", ".tflite": "litert"}
    with closing(local_target()) as target:
        assert isinstance(target.backend_for(Path("m.tflite")), LiteRTBackend)
        assert isinstance(target.backend_for(Path("m.ONNX")), OrtBackend)
        assert isinstance(target.backend, OrtBackend) and target.backend.python == sys.executable
        assert target.backend_for(Path("a.tflite")) is target.backend_for(Path("b.tflite"))
    with pytest.raises(InputError, match="no runtime backend measures m.engine") as info:
        entry_for(Path("m.engine"))
    assert ".tflite (litert)" in info.value.hint
    from edgekit.targets.local import LocalTransport

    onnx_only = Target("pi", LocalTransport(tmp_path / "dev"), sys.executable, {}, runtimes=("onnxruntime",))
    with pytest.raises(UsageError, match="lists no litert runtime"):
        onnx_only.backend_for(Path("m.tflite"))


def test_report_says_why_a_measurement_has_no_layers() -> None:
    from edgekit.report.render_html import layers_block
    from edgekit.report.render_md import layer_sections

    note = "no per-op profile: LiteRT's Python interpreter has no op profiler and no benchmark_model was found"
    m = {"layers": [], "layers_note": note, "precision": "int8"}
    assert layer_sections(m, 10, None) == f"No per-layer rows were recorded for this artifact: {note}"
    assert "no op profiler and no benchmark_model" in layers_block(m, 10, None) and "&#x27;s" in layers_block(m, 10, None)
    assert layer_sections({"layers": []}, 10, None) == "No per-layer rows were recorded for this artifact."
