"""`edgekit deploy --format coreml --target mac-apple-silicon`: the job for a Mac, and everything that refuses a
host that is not one.

- A host that is not a Mac (a real loopback sshd on Linux) is refused before any export, naming the fix.
- A stand-in Mac (tests/mac_standin.py: real sshd, stand-in uname / sw_vers / sysctl / xcrun) gets the whole job:
  the packages are made, zipped, pushed with torch's reference outputs, and the real runner runs there; under this
  Linux Python it finds no macOS and the deploy fails with the runner's own message and the fix, writing no report.
- The runner's Mac-only steps are checked as functions: the compile argv, the comparison with the reference, the
  compute plan written in CoreMLInspect's form (MLComputePlan's objects stood in: it exists only on macOS) and
  parsed into per-layer rows on module paths.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgekit.errors import ExitStatus
from tests import support

RUNNER = Path(__file__).resolve().parents[1] / "targets" / "device" / "coreml_runner.py"
sys.path.insert(0, str(RUNNER.parent))
import coreml_runner  # noqa: E402  (the device-side script, standard library + numpy)

CKPT = Path(__file__).resolve().parent / "data" / "shapes" / "mobilesam_shapes.pt"
FAST = ["--runs", "5", "--min-seconds", "0", "--warmup", "1"]


def edgekit(client_config: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    env = {**os.environ, "EDGEKIT_SSH_CONFIG": str(client_config)}
    return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_a_linux_host_is_refused_before_any_export(tmp_path: Path) -> None:
    from tests.sshd import LoopbackSshd

    with LoopbackSshd(tmp_path / "linux") as host:
        proc = edgekit(host.client_config, "deploy", "-m", "mobilesam", "--weights", "synthetic", "--format", "coreml",
                       "--target", "mac-apple-silicon", "--host", host.spec, "--store", str(tmp_path / "store"),
                       "--out", str(tmp_path / "run"), *FAST, timeout=300)
    assert proc.returncode == int(ExitStatus.DEVICE_FAILURE), proc.stderr[-2000:]
    assert "runs Linux, not macOS: Core ML packages compile and run only on a Mac" in proc.stderr
    assert "xcode-select --install" in proc.stderr and "coremltools>=8.1" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "report.json").exists()
    assert not any((tmp_path / "store").glob("*/*.mlpackage"))  # refused before anything was made


@pytest.mark.skipif(not support.has_shared("images"), reason="../shared/images is absent")
def test_a_mac_gets_the_whole_job_and_the_runner_names_what_is_missing(tmp_path: Path) -> None:
    pytest.importorskip("coremltools", reason="coremltools is not installed (the coreml extra)")
    from tests.mac_standin import MacStandin

    with MacStandin(tmp_path / "mac") as mac:
        proc = edgekit(mac.client_config, "deploy", "-m", "mobilesam", "-c", str(CKPT), "--format", "coreml",
                       "--target", "mac-apple-silicon", "--host", mac.spec, "--store", str(tmp_path / "store"),
                       "--out", str(tmp_path / "run"), *FAST)
        calls = mac.argv()
        pushed = sorted(str(p.relative_to(mac.remote_cache)) for p in mac.remote_cache.rglob("*") if p.is_file())
    assert proc.returncode == int(ExitStatus.DEVICE_FAILURE), proc.stderr[-3000:]
    assert "Core ML on" in proc.stderr and "this is Linux, not macOS: Core ML runs only on a Mac" in proc.stderr
    assert "xcode-select --install" in proc.stderr
    assert ["xcrun", "--find", "coremlcompiler"] in calls  # the pre-check found the compiler
    # the package travelled zipped, with torch's reference outputs and the inputs beside it
    # (content-addressed: models/<sha256 prefix>-<name>/<name>, companions beside it)
    package = next((n for n in pushed if n.endswith("-mobilesam.encoder.fp32.mlpackage.zip/mobilesam.encoder.fp32"
                                                     ".mlpackage.zip")), None)
    assert package is not None, pushed
    assert str(Path(package).parent / "reference.npz") in pushed
    assert any(n.endswith("-inputs.npz") for n in pushed) and any(n.endswith("/coreml_runner.py") for n in pushed)
    assert not (tmp_path / "run" / "report.json").exists()


def test_the_runner_refuses_a_machine_that_is_not_a_mac(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(RUNNER), "--model", str(tmp_path / "m.mlpackage.zip"), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0  # failures travel in result.json, with the logs
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["error"]["code"] == 3 and "not macOS" in result["error"]["message"]
    bad = subprocess.run([sys.executable, str(RUNNER), "--model", "m.zip", "--out", str(tmp_path / "o2"),
                          "--compute-units", "ALL,GPU_ONLY"], capture_output=True, text=True, timeout=120)
    result = json.loads((tmp_path / "o2" / "result.json").read_text())
    assert bad.returncode == 0 and result["error"]["code"] == 2 and "GPU_ONLY" in result["error"]["message"]


def test_versions_and_the_compile_argv() -> None:
    assert coreml_runner.version_tuple("14.4.1") == (14, 4, 1) >= coreml_runner.MIN_MACOS
    assert coreml_runner.version_tuple("13.6") < coreml_runner.MIN_MACOS
    assert coreml_runner.version_tuple("8.0b1") < coreml_runner.MIN_COREMLTOOLS <= coreml_runner.version_tuple("8.1")
    assert coreml_runner.compile_argv("/w/a.mlpackage", "/w/c") == ["xcrun", "coremlcompiler", "compile",
                                                                     "/w/a.mlpackage", "/w/c"]


def test_prediction_is_compared_with_the_reference_by_the_precisions_tolerance() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(1, 256, 8, 8))
    masks = rng.normal(size=(1, 4, 16, 16))
    ref = {"image_embeddings": emb}
    close = coreml_runner.compare({"image_embeddings": emb + 1e-3 * np.abs(emb).max()}, ref,
                                  {"embedding_rel": 1e-2, "mask_iou": 0.99}, np)
    assert close["passed"] is True and close["outputs"]["image_embeddings"]["rel_max"] == pytest.approx(1e-3)
    far = coreml_runner.compare({"image_embeddings": emb * 1.05}, ref, {"embedding_rel": 1e-2}, np)
    assert far["passed"] is False and 25 < far["outputs"]["image_embeddings"]["sqnr_db"] < 27  # 20*log10(1/0.05)
    flipped = masks.copy()
    flipped[0, 0, :4] *= -1  # a quarter of one mask's logits change sign
    dec = coreml_runner.compare({"low_res_masks": flipped}, {"low_res_masks": masks}, {"mask_iou": 0.99}, np)
    assert dec["passed"] is False and 0.8 < dec["outputs"]["low_res_masks"]["mask_iou"] < 0.99
    ungated = coreml_runner.compare({"low_res_masks": flipped}, {"low_res_masks": masks}, {"mask_iou": None}, np)
    assert ungated["passed"] is None and "mask_iou" in ungated["outputs"]["low_res_masks"]
    missing = coreml_runner.compare({}, ref, {"embedding_rel": 1e-2}, np)
    assert missing["passed"] is False and "missing" in missing["outputs"]["image_embeddings"]["error"]


class _Device:  # MLComputePlan's device classes are told apart by their names
    pass


def _device(kind: str):
    return type(kind, (_Device,), {})()


def _plan():
    """MLComputePlan as coremltools exposes it on macOS (stood in: the class loads only there)."""
    ops = [("const", "w", None, None, None),
           ("ios17.conv", "input_3_cast_fp16", "MLNeuralEngineComputeDevice", ["MLNeuralEngineComputeDevice",
                                                                               "MLCPUComputeDevice"], 0.6),
           ("ios17.gelu", "input_5_cast_fp16", "MLCPUComputeDevice", ["MLCPUComputeDevice", "MLGPUComputeDevice"], 0.3),
           ("ios17.select", "x_cast_fp16", "MLGPUComputeDevice", ["MLGPUComputeDevice"], 0.1)]
    operations = [SimpleNamespace(operator_name=o, outputs=[SimpleNamespace(name=n)], device=d, supported=s, cost=c)
                  for o, n, d, s, c in ops]
    function = SimpleNamespace(inputs=[SimpleNamespace(name="image")], block=SimpleNamespace(operations=operations))
    plan = SimpleNamespace(model_structure=SimpleNamespace(program=SimpleNamespace(functions={"main": function})))
    plan.get_compute_device_usage_for_mlprogram_operation = lambda op: SimpleNamespace(
        preferred_compute_device=_device(op.device), supported_compute_devices=[_device(d) for d in op.supported])
    plan.get_estimated_cost_for_mlprogram_operation = lambda op: SimpleNamespace(weight=op.cost)
    return plan


def test_the_compute_plan_becomes_per_layer_rows_on_module_paths(tmp_path: Path, monkeypatch) -> None:
    from edgekit.exporters.layer_map import LayerMap
    from edgekit.targets.coreml.backend import parse_results

    plan = _plan()
    fake_ct = SimpleNamespace(ComputeUnit=SimpleNamespace(ALL="ALL"))
    import types

    module = types.ModuleType("coremltools.models.compute_plan")
    module.MLComputePlan = SimpleNamespace(load_from_path=lambda path, compute_units: plan)
    monkeypatch.setitem(sys.modules, "coremltools.models.compute_plan", module)
    lines = coreml_runner.plan_lines(fake_ct, "/x.mlmodelc")
    assert lines[0] == "func main(image) {" and lines[1] == "    w = const()" and lines[-1] == "}"
    assert lines[2] == "60.0000% N|CN  input_3_cast_fp16 = ios17.conv()"
    plan_file = tmp_path / "compute_plan.txt"
    plan_file.write_text("Analyzing model for compute unit [ALL]\n" + "\n".join(lines) + "\n")
    raw = {"coremltools": "8.3", "macos": "14.5",
           "units": {"ALL": {"latency_ms": [10.0, 12.0, 11.0], "load_ms": 300.0,
                             "validation": {"passed": True, "outputs": {}}},
                     "CPU_ONLY": {"latency_ms": [40.0, 42.0], "load_ms": 90.0}}}
    layer_map = LayerMap(nodes={"input_3_cast_fp16": "image_encoder.patch_embed.seq.0.bn",
                                "input_5_cast_fp16": "image_encoder.patch_embed.seq.1"})
    m = parse_results("mobilesam.encoder.fp16.mlpackage", raw, {"plan": plan_file}, layer_map)
    assert m.latency.mean_ms == pytest.approx(11.0) and m.load_ms == 300.0
    assert [r["device"] for r in m.layers] == ["ANE", "CPU", "GPU"]
    assert [r["module"] for r in m.layers][:2] == ["image_encoder.patch_embed.seq.0.bn", "image_encoder.patch_embed.seq.1"]
    assert m.layers[0]["mean_ms"] == pytest.approx(0.6 * 11.0) and all(r["estimated"] for r in m.layers)
    assert m.layers[0]["supported"] == ["CPU", "ANE"]
    assert m.runtime["by_compute_units"]["CPU_ONLY"]["mean_ms"] == pytest.approx(41.0)
    assert m.runtime["device_validation"]["passed"] is True and "estimate" in m.layers_note


def test_the_package_travels_as_one_deterministic_zip(tmp_path: Path) -> None:
    from edgekit.targets.coreml.backend import CoreMLBackend, runner_arguments, zip_package

    pkg = tmp_path / "m.mlpackage"
    (pkg / "Data" / "com.apple.CoreML" / "weights").mkdir(parents=True)
    (pkg / "Manifest.json").write_text("{}")
    (pkg / "Data" / "com.apple.CoreML" / "weights" / "weight.bin").write_bytes(b"\x01" * 100)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = zip_package(pkg, tmp_path / "a")
    first = a.read_bytes()
    os.utime(pkg / "Manifest.json", (1, 1))  # a touched file (new mtime) is still the same package
    b = zip_package(pkg, tmp_path / "b")
    assert first == b.read_bytes()  # same content, same bytes: a re-run skips the upload
    import zipfile

    assert sorted(zipfile.ZipFile(a).namelist()) == ["m.mlpackage/Data/com.apple.CoreML/weights/weight.bin",
                                                     "m.mlpackage/Manifest.json"]
    assert runner_arguments({"mask_iou": 0.99}) == ("--tolerances", '{"mask_iou": 0.99}', "--compute-units",
                                                    "ALL,CPU_AND_NE,CPU_AND_GPU,CPU_ONLY")
    from edgekit.errors import InputError

    with pytest.raises(InputError, match="not a Core ML package"):
        CoreMLBackend().measure(None, tmp_path / "m.onnx", None, None, None, tmp_path)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="GPU_ONLY"):
        CoreMLBackend(compute_units=("ALL", "GPU_ONLY"))


def test_a_core_ml_report_keeps_devices_estimates_and_warnings() -> None:
    """The Mac's rows and the package's Neural Engine warnings as report.json, report.md and report.html carry them."""
    from edgekit.report.render_html import render_html
    from edgekit.report.render_md import render_md
    from edgekit.report.schema import validate
    from tests.test_report import make_report

    report = make_report(precisions=("fp32", "fp16"))
    report["format"] = "coreml"
    for m in report["measurements"]:
        m["format"] = "coreml"
        m["runtime"] = {"name": "coreml", "version": "8.3", "threads": 0, "compute_units": "ALL",
                        "by_compute_units": {"ALL": {"mean_ms": 9.0}, "CPU_ONLY": {"mean_ms": 40.0}}}
        for row in m["layers"]:
            row.update(device="ANE", estimated=True)
    report["artifacts"][0]["warnings"] = ["gelu x23 in EXACT (erf) mode: the Neural Engine has no erf"]
    validate(report)
    md, html = render_md(report), render_html(report)
    assert "## Artifact warnings" in md and "gelu x23 in EXACT (erf) mode" in md
    assert 'id="artifact-warnings"' in html and "gelu x23 in EXACT (erf) mode" in html
    report["artifacts"][0]["warnings"] = "not a list"
    from edgekit.errors import InputError

    with pytest.raises(InputError, match="warnings"):
        validate(report)
