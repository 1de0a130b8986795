"""Per-tool parser results checked against values read by eye from the real captures in ../shared/fixtures, plus
the format quirks FORMATS.md lists that no fixture shows (constructed inputs, each marked as such)."""
from __future__ import annotations

import pytest

from edgekit.errors import ParseError
from edgekit.targets.parsers import parse
from tests import support
from tests.parser_fixtures import JETSON_RELEASE_SAMPLES


def fixture(*parts: str) -> str:
    return support.shared_path("fixtures", *parts).read_text(encoding="utf-8")


def layer(result, name: str):
    return next(x for x in result.layers if x.name == name)


# --- TensorRT ---------------------------------------------------------------------------------------------------

def test_trtexec_name_first_table_with_median_8_5_jetson() -> None:
    r = parse("trtexec", fixture("tensorrt", "trtexec_trt8.5.2_jetson_xavier_nx_dumpProfile_name_first_excerpt.log"))
    assert r.meta["trt_version"] == "8.5.2" and r.meta["status"] == "PASSED"
    assert len(r.layers) == 28 and r.runs == ()  # --dumpProfile without --separateProfileRun: no summary
    island = layer(r, "{ForeignNode[lstm_W...Max_reduce_min]}")
    assert (island.mean_ms, island.share, island.extra["median_ms"]) == (6.8952, 0.694, 6.2962)
    assert island.op_type == "myelin_island"
    assert layer(r, "[HostToDeviceCopy 0]").extra["kind"] == "dma"
    assert layer(r, "Reformatting CopyNode for Output Tensor 1 to {ForeignNode[lstm_W...Max_reduce_min]}").op_type \
        == "reformat"
    assert r.summary["iterations"] == 309 and r.summary["total_ms"] == 3068.65 and r.summary["e2e_reported"] is False
    assert r.summary["profile"]["layout"] == "name_first_median"


def test_trtexec_name_last_table_10_14() -> None:
    r = parse("trtexec", fixture("tensorrt", "trtexec_trt10.14_rtx6000ada_dumpProfile_myelin.log"))
    assert r.meta["trt_version"] == "10.14.1" and r.meta["trt_build"] == "b48"
    assert r.meta["device"]["name"] == "NVIDIA RTX 6000 Ada Generation" and r.meta["device"]["sms"] == 142
    assert len(r.layers) == 16 and r.summary["profile"]["layout"] == "name_last"
    pwn = layer(r, "PWN((Unnamed Layer* 11) [ElementWise] + node_relu_2)")
    assert (pwn.mean_ms, pwn.extra["total_ms"], pwn.share) == (0.0036, 76.13, 0.05)
    assert layer(r, "__mye26_0_myl7_0").op_type == "myelin_kernel"
    assert r.summary["profile"]["iterations"] == 21248 and r.summary["profile"]["mean_ms"] == 0.0710


def test_trtexec_8_0_perf_summary_with_end_to_end_and_integer_version() -> None:
    r = parse("trtexec", fixture("tensorrt", "trtexec_trt8001_jetson_nano_fast_scnn_fp16_perf.log"))
    assert r.meta["trt_version"] == "8.0.1"  # `TensorRT version: 8001` and `[TensorRT v8001]`
    assert r.meta["device"] == {"name": "NVIDIA Tegra X1", "compute_capability": "5.3", "sms": 1,
                                "compute_clock_ghz": 0.9216, "global_memory_mib": 3964, "shared_memory_kib": 64,
                                "memory_bus_bits": 64, "memory_clock_ghz": 0.01275}
    (run,) = r.runs
    assert (run.mean_ms, run.min_ms, run.median_ms, run.count) == (18.0395, 17.9924, 18.0406, 169)
    assert run.percentiles_ms == {"99": 18.0896}
    assert run.extra["end_to_end_host_ms"]["mean"] == 18.0521
    assert run.extra["gpu_compute_ms"]["mean"] == 16.8028 and run.extra["throughput_qps"] == 55.3927
    assert run.extra["warmup_queries"] == 11 and len(run.extra["trace_averages"]) == 16
    assert r.summary["total_ms"] == 3050.94


def test_trtexec_10_16_three_percentiles_and_zero_transfers() -> None:
    r = parse("trtexec", fixture("tensorrt", "trtexec_trt10.16_cudagraph_perf_summary_verbose.log"))
    (run,) = r.runs
    assert run.percentiles_ms == {"90": 0.0388489, "95": 0.0389404, "99": 0.0390625}
    assert run.extra["h2d_ms"]["mean"] == 0 and run.count == 74692
    assert "end_to_end_host_ms" not in run.extra  # removed in 8.4


def test_trtexec_verbose_layer_lines_8_0_and_dump_layer_info_10_16() -> None:
    r8 = parse("trtexec", fixture("tensorrt", "trtexec_trt8003_gtx1070_build_perf_verbose.log"))
    assert r8.meta["trt_version"] == "8.0.3" and len(r8.runs) == 1 and r8.runs[0].mean_ms == 0.158729
    assert [x.op_type for x in r8.layers][:3] == ["CaskConvolution", "TiledPooling", "Reformat"]
    assert r8.layers[-1].name == "y + z" and r8.layers[-1].extra["tactic"] == "1001"
    r10 = parse("trtexec", fixture("tensorrt", "trtexec_trt10.16_dumpLayerInfo_text.log"))
    assert len(r10.layers) == 9 and r10.meta["bindings"] == ["x", "y", "z"]
    first = r10.layers[0]
    assert (first.name, first.op_type) == ("node_conv2d + node_relu", "CaskConvolution")
    assert first.extra["onnx_layers"] == ["node_conv2d", "node_relu"]
    assert layer(r10, "__myl_MulSum_myl4_1").op_type == "kgen"
    # a Myelin kernel that fused two ONNX nodes separates them with U+001F
    detailed = parse("trtexec-layerinfo", fixture("tensorrt", "layerinfo_trt10.16_detailed_myelin_metadata.json"))
    assert layer(detailed, "node_linear_myl4_0").extra["onnx_layers"] == ["node_linear", "node_relu_2"]


def test_trtexec_wrapped_8_2_header_and_doubled_timestamps() -> None:
    """Constructed from FORMATS.md: <= 8.2 layout, header wrapped by a narrow terminal (TensorRT#3842)."""
    log = ("[01/15/2022-17:04:29] [01/15/2022-17:04:29] [I] === Profile (10 iterations ) ===\n"
           "[01/15/2022-17:04:29] [I]    Layer   Time (ms)   Avg. Time (ms)   Time\n"
           "[01/15/2022-17:04:29] [I] %\n"
           "[01/15/2022-17:04:29] [I]  conv 1 + relu       5.00           0.5000      62.5\n"
           "[01/15/2022-17:04:29] [I]           pool 2       3.00           0.3000      37.5\n"
           "[01/15/2022-17:04:29] [I]            Total       8.00           0.8000     100.0\n")
    r = parse("trtexec", log)
    assert [(x.name, x.mean_ms, x.share) for x in r.layers] == [("conv 1 + relu", 0.5, 0.625), ("pool 2", 0.3, 0.375)]
    assert r.summary["profile"]["layout"] == "name_first" and r.summary["profile"]["complete"]


def test_trtexec_profile_json_with_and_without_median() -> None:
    r82 = parse("trtexec-profile", fixture("tensorrt", "profile_trt82_mobilenet_qat_nomedian.json"))
    assert r82.summary["iterations"] == 4216 and len(r82.layers) == 85 and not r82.summary["has_median"]
    q = layer(r82, "QuantizeLinear_2")
    assert (q.mean_ms, q.extra["total_ms"], q.share, q.extra["median_ms"]) == (0.0122041, 51.4526, 0.0188608, None)
    detr = parse("trtexec-profile", fixture("tensorrt", "profile_detr_r50_int8_myelin_parallel.json"))
    assert len(detr.layers) == 840 and detr.summary["zero_time_layers"] == 340 and detr.summary["iterations"] == 641
    kinds = {x.op_type for x in detr.layers}
    assert {"parallel", "myelin_kernel", "reformat", "pointwise"} <= kinds
    a100 = parse("trtexec-profile", fixture("tensorrt", "profile_trt84_resnet50_a100_fp16_count1.json"))
    conv = layer(a100, "Conv_0 + Relu_1")
    assert a100.summary["iterations"] == 1 and conv.mean_ms == conv.extra["total_ms"] == conv.extra["median_ms"]


def test_trtexec_profile_json_tolerates_unescaped_names() -> None:
    """trtexec writes names without JSON escaping; constructed file with a `"` and a `\\` in a name."""
    text = ('[\n  { "count" : 3 }\n'
            ', { "name" : "cast "x" \\ y", "timeMs" : 1.5, "averageMs" : 0.5, "medianMs" : 0.5, "percentage" : 75 }\n'
            ', { "name" : "z", "timeMs" : 0.5, "averageMs" : 0.166667, "percentage" : 25 }\n]\n')
    r = parse("trtexec-profile", text)
    assert [x.name for x in r.layers] == ['cast "x" \\ y', "z"] and r.meta["tolerant_fallback"]
    assert r.summary["iterations"] == 3 and r.layers[1].extra["median_ms"] is None


def test_trtexec_layer_info_json_forms() -> None:
    names = parse("trtexec-layerinfo", fixture("tensorrt", "layerinfo_trt84_names_only_not_detailed.json"))
    assert len(names.layers) == 12 and not names.summary["detailed"] and names.meta["bindings"] == ["tensor-0", "tensor-15"]
    detailed = parse("trtexec-layerinfo", fixture("tensorrt", "layerinfo_trt10.16_detailed_myelin_metadata.json"))
    assert detailed.layers[0].extra["onnx_layers"] == ["node_conv2d", "node_relu"]
    assert detailed.layers[0].extra["inputs"][0]["location"] == "Device"
    old = parse("trtexec-layerinfo", fixture("tensorrt", "layerinfo_trt82_mobilenet_qat_nolocation.json"))
    assert len(old.layers) == 85 and "location" not in old.layers[0].extra["inputs"][0]
    assert old.layers[1].op_type == "CaskConvolution"


def test_trtexec_times_json() -> None:
    r = parse("trtexec-times", fixture("tensorrt", "times_trt84_resnet50_rtx3090_fp32.json"))
    (run,) = r.runs
    assert run.count == 263 and run.min_ms == 12.0986 and run.max_ms == 13.0181
    assert run.extra["latency_samples_ms"][0] == 13.0181 and run.extra["h2d_mean_ms"] == 0
    assert abs(run.mean_ms - 12.2299) < 1e-4 and not r.summary["has_end_to_end"]


# --- TFLite / LiteRT benchmark_model ---------------------------------------------------------------------------

def test_benchmark_model_old_table_with_start_column() -> None:
    r = parse("benchmark-model", fixture("tflite", "benchmark_model_tf2.8_mobilenetv1_riscv64_qemu_opprof_with_start_col.txt"))
    assert len(r.layers) == 31 and r.summary["op_profile"]["layout"] == "with_start"
    conv = layer(r, "[MobilenetV1/MobilenetV1/Conv2d_5_pointwise/Relu6]:10")
    assert (conv.op_type, conv.mean_ms, conv.share, conv.extra["start_ms"]) == ("CONV_2D", 277.374, 0.09403, 898.426)
    (run,) = r.runs
    assert run.mean_ms == 2950.34 and run.count == 50 and run.extra["threads"] == 4  # 2.95034e+06 us
    assert run.extra["memory_mb"] == {"init": 4.21094, "overall": 46.0859, "measure": "delta"}
    assert r.summary["op_profile"]["by_node_type"][0]["node_type"] == "CONV_2D"


def test_benchmark_model_litert_new_format() -> None:
    r = parse("benchmark-model", fixture("tflite", "litert_benchmark_model_android_sme2_kleidiai_use_profiler_newformat.txt"))
    assert r.meta["flavor"] == "litert" and r.summary["op_profile"]["layout"] == "without_start"
    fc = layer(r, "Delegate/Fully Connected (NC, PF32) GEMM:1")
    assert (fc.op_type, fc.mean_ms, fc.share) == ("Fully Connected (NC, PF32) GEMM", 0.382, 0.92948)
    assert r.summary["op_profile"]["init_rows"] == ["AllocateTensors/0"]  # times called 0: not a layer
    (run,) = r.runs
    assert (run.count, run.median_ms, run.percentiles_ms) == (2112, 0.462, {"5": 0.46, "95": 0.478})
    assert run.extra["init_ms"] == 4.478 and run.extra["memory_mb"]["overall"] == 11.51


def test_benchmark_model_whole_graph_delegate_and_partial_delegate() -> None:
    npu = parse("benchmark-model", fixture("tflite", "benchmark_model_imx8mp_vx_delegate_npu_single_node_opprof.log"))
    assert npu.summary["op_profile"]["whole_graph_delegated"] and npu.layers[0].op_type == "Vx Delegate"
    assert npu.runs[0].extra["delegates"] == [{"name": "EXTERNAL", "coverage": "complete"}]
    gpu = parse("benchmark-model", fixture("tflite", "benchmark_model_imx8mp_vx_delegate_gpu_ssd_partial_opprof.log"))
    assert not gpu.summary["op_profile"]["whole_graph_delegated"] and len(gpu.layers) == 2
    assert gpu.layers[1].op_type == "TFLite_Detection_PostProcess"  # wider than its column
    assert gpu.runs[0].extra["memory_mb"]["measure"] == "peak"


def test_benchmark_model_multi_run_files() -> None:
    rpi = parse("benchmark-model", fixture("tflite", "benchmark_model_tf2.18_rpi4_64bit_efficientdet_multirun_summary.txt"))
    assert len(rpi.runs) == 48 and rpi.meta["log_prefixes"] == ["level"]
    assert [r.extra["threads"] for r in rpi.runs[:4]] == [1, 2, 3, 4] and rpi.runs[0].mean_ms == 328.651
    assert rpi.runs[-1].extra["graph"].endswith("efficientdet-lite4_int8.tflite")
    lichee = parse("benchmark-model", fixture("tflite", "benchmark_model_licheerv_riscv_xnnpack_summary.log"))
    assert len(lichee.runs) == 8
    assert lichee.runs[1].extra["delegates"][0]["coverage"] == "none"
    vf2 = parse("benchmark-model", fixture("tflite", "benchmark_model_visionfive2_riscv_gpu_delegate_summary.log"))
    assert len(vf2.runs) == 12 and vf2.runs[0].extra["delegates"][0] == {"name": "GPU", "coverage": "partial",
                                                                            "kernels": 1}


def test_benchmark_model_logcat_prefix_and_failure() -> None:
    """Constructed: the benchmark APK's logcat form (tensorflow#56301) and a failed NNAPI run."""
    log = ("05-31 10:31:13.023 21767 21767 I tflite  : STARTING!\n"
           "05-31 10:31:13.023 21767 21767 I tflite  : Num threads: [4]\n"
           "05-31 10:31:14.000 21767 21767 I tflite  : count=1 curr=2000\n"
           "05-31 10:31:14.100 21767 21767 I tflite  : count=50 first=1000 curr=900 min=800 max=1200 avg=950 std=10\n"
           "05-31 10:31:15.000 21767 21767 I tflite  : STARTING!\n"
           "05-31 10:31:15.100 21767 21767 E tflite  : Failed to apply NNAPI delegate.\n"
           "05-31 10:31:15.100 21767 21767 E tflite  : Benchmarking failed.\n")
    r = parse("benchmark-model", log)
    assert len(r.runs) == 2 and r.meta["log_prefixes"] == ["logcat"]
    assert r.runs[0].extra["threads"] == 4 and r.runs[0].mean_ms == 0.95 and r.runs[0].extra["warmup"]["avg_ms"] == 2
    assert r.runs[1].extra["status"] == "failed" and r.summary["failed_runs"] == 1


# --- ONNX Runtime ----------------------------------------------------------------------------------------------

def test_ort_profile_current_format_keeps_node_names_and_drops_warmup() -> None:
    r = parse("ort-profile", fixture("onnxruntime", "generated_here_ort1.31.1_x86_64_cpu_tiny_graph_profile.json"))
    assert [x.name for x in r.layers] == ["r_nchwc", "ReorderOutput", "/encoder/Reshape",
                                          "/encoder/attn/q_proj/MatMul/MatmulTransposeFusion/", "/encoder/attn/Softmax"]
    assert [x.op_type for x in r.layers] == ["Conv", "ReorderOutput", "Reshape", "FusedMatMul", "Softmax"]
    conv = r.layers[0]
    assert conv.mean_ms == pytest.approx((20 + 15) / 2 / 1000)  # 127 us warm-up run dropped
    assert conv.extra["provider"] == "CPUExecutionProvider" and conv.extra["node_index"] == 8
    assert [run.mean_ms for run in r.runs] == [0.249, 0.124, 0.135] and r.summary["warmup_runs_dropped"] == 1
    assert abs(sum(x.share for x in r.layers) - 1) < 1e-9


def test_ort_profile_caller_names_the_warmup_runs() -> None:
    from edgekit.targets.ort.parse_ort_profile import parse_ort_profile

    text = fixture("onnxruntime", "generated_here_ort1.31.1_x86_64_cpu_tiny_graph_profile.json")
    two = parse_ort_profile(text, warmup_runs=2)
    assert two.layers[0].mean_ms == pytest.approx(15 / 1000) and two.summary["warmup_runs_dropped"] == 2
    assert two.summary["mean_run_ms"] == pytest.approx(0.135) and [r.extra["warmup"] for r in two.runs] == [True, True, False]
    none = parse_ort_profile(text, warmup_runs=0)
    assert none.layers[0].mean_ms == pytest.approx((127 + 20 + 15) / 3 / 1000)
    assert parse_ort_profile(text, warmup_runs=9).summary["iterations"] == 1  # the last run is always kept


def test_ort_profile_2019_format_and_truncated_file() -> None:
    text = fixture("onnxruntime", "ort_2019_mnist_profile_no_provider_field_with_fences.json")
    r = parse("ort-profile", text)
    assert len(r.layers) == 12 and r.meta["format"] == "2019" and r.meta["fence_events"] == 24
    assert layer(r, "Convolution28").mean_ms == 1.702 and layer(r, "Convolution28").extra["provider"] is None
    assert len(r.runs) == 1 and r.runs[0].mean_ms == 2.455
    cut = text[: text.index('"name" :"Plus214_kernel_time"')]  # the process died mid-write
    partial = parse("ort-profile", cut)
    assert not partial.meta["complete_file"] and len(partial.layers) == 11


def test_ort_perf_test_mixed_units() -> None:
    r = parse("ort-perf-test", fixture("onnxruntime", "onnxruntime_perf_test_android_vivo_x300_resnet50v2_kleidiai_sme2.txt"))
    (run,) = r.runs
    assert (run.mean_ms, run.count, run.min_ms, run.median_ms) == (98.961997, 5, 95.8204, 99.5086)
    assert run.percentiles_ms["99.9"] == 101.519 and run.extra["session_creation_ms"] == 217.932
    assert run.extra["first_inference_ms"] == 196 and run.extra["peak_working_set_bytes"] == 271122432


# --- Core ML ----------------------------------------------------------------------------------------------------

def test_coreml_compute_plan_forms() -> None:
    plan = parse("coreml-plan", fixture("coreml", "mlcomputeplan_nslog_mobilenetedgetpu_macos_partial.txt"))
    assert len(plan.layers) == 13 and plan.layers[3].name == "ios17.conv#0" and plan.layers[3].extra["device"] == "ANE"
    assert plan.layers[0].share == 0.046175 and plan.layers[0].mean_ms is None
    inspect = parse("coreml-plan", fixture("coreml", "coremlinspect_mlcomputeplan_gpt2_macos_partial.txt"))
    assert [x.name for x in inspect.layers] == ["x_1_cast_fp16", "var_145_cast_fp16"]
    assert inspect.layers[1].extra["supported"] == ["CPU", "ANE"] and inspect.summary["const_ops"] == 5
    text = parse("coreml-plan", fixture("coreml", "e5rt_analytics_per_op_dump_mobilenetedgetpu_macos.txt"))
    csv = parse("coreml-plan", fixture("coreml", "e5rt_per_op_backend_estimates_mobilenetedgetpu_macos.csv"))
    assert len(text.layers) == len(csv.layers) == 119
    conv = layer(text, "ios17.conv:107:12")
    assert conv.extra["backend"] == "ane" and conv.extra["estimates"]["ane"] == pytest.approx(0.003661746555695056)
    assert text.summary["ops_by_device"] == {"CPU": 5, "ANE": 114}
    assert csv.layers[0].extra["rejected"] == {"slot_0": "Unsupported tensor format: fp32."}


# --- device facts -----------------------------------------------------------------------------------------------

def test_tegrastats_field_families() -> None:
    nx = parse("tegrastats", fixture("jetson", "tegrastats_xavier_nx_l4t35_timestamped_mW.log"))
    s = nx.samples[0]
    assert len(nx.samples) == 103 and s.timestamp == "10-01-2025 20:05:55"
    assert (s.ram_used_mb, s.ram_total_mb, s.swap_used_mb, s.swap_cached_mb) == (2274, 6834, 542, 2)
    assert s.cpus[4] == {"load_pct": None, "mhz": None, "online": False} and s.cpus[0]["mhz"] == 1189
    assert s.freqs["GR3D"] == {"load_pct": 22, "mhz": None}
    assert s.temps_c["thermal"] == 37.85 and "PMIC" not in s.temps_c and s.placeholder_temps_c == {"PMIC": 50.0}
    assert s.power_mw["VDD_CPU_GPU_CV"] == {"cur": 1594, "avg": 1594}
    tx2 = parse("tegrastats", fixture("jetson", "tegrastats_tx2_l4t32_with_date_lines_prefix120.txt"))
    assert len(tx2.samples) == 119 and tx2.skipped_lines == 1  # the `date` line
    assert tx2.samples[0].power_mw["VDD_IN"] == {"cur": 1840, "avg": 1840} and tx2.samples[0].timestamp is None
    old = parse("tegrastats", fixture("jetson", "tegrastats_tx2_old_l4t_no_gr3d_prefix60.txt"))
    assert old.samples[0].swap_total_mb is None and old.samples[0].freqs == {} and old.samples[0].unknown == ()


def test_tegrastats_jetpack6_tokens() -> None:
    """Constructed from FORMATS.md's JetPack 6 grammar (per-GPC clocks, engine states, lower-case sensors)."""
    line = ("08-06-2024 10:00:00 RAM 3000/62841MB (lfb 10x4MB) SWAP 0/31421MB (cached 0MB) CPU [1%@729,0%@729] "
            "EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305,305] NVENC off NVJPG1 off PVA0_FREQ off APE 174 cpu@47.687C "
            "tj@48C gpu@-256C VDD_GPU_SOC 2395mW/2395mW VIN_SYS_5V0 3325mW/3325mW")
    (s,) = parse("tegrastats", line).samples
    assert s.freqs["GR3D"] == {"load_pct": 0, "mhz": None, "mhz_per_gpc": [305, 305]} and s.freqs["EMC"]["mhz"] == 2133
    assert s.engines == {"NVENC": "off", "NVJPG1": "off", "PVA0_FREQ": "off", "APE": 174}
    assert s.temps_c == {"cpu": 47.687, "tj": 48.0} and s.disabled_sensors == ("gpu",)
    assert s.power_mw["VIN_SYS_5V0"]["avg"] == 3325 and s.unknown == ()


@pytest.mark.parametrize("name", sorted(JETSON_RELEASE_SAMPLES))
def test_jetson_release(name: str) -> None:
    r = parse("jetson-release", JETSON_RELEASE_SAMPLES[name])
    assert r.power_mode_id == 2 and r.libraries["CUDA"]
    if name.startswith("issue603"):
        assert (r.model, r.l4t, r.jetpack) == ("NVIDIA Jetson Orin NX Engineering Reference Developer Kit", "36.4.3", None)
        assert r.libraries["TensorRT"] == "10.3.0.30" and r.jetson_stats == "4.3.0" and r.power_mode == "15W"
        assert not any("serial" in k.lower() for s in r.sections.values() for k in s)
    else:
        assert (r.model, r.jetpack, r.l4t) == ("NVIDIA Jetson Xavier NX Developer Kit", "5.1.1", "35.3.1")


def test_cpuinfo_raspberry_pi_variants() -> None:
    pi4 = parse("cpuinfo", fixture("raspberrypi", "proc_cpuinfo_rpi4_rev1.1_arm64_kernel6.1_epoptes_issue200.txt"))
    assert (pi4.model, pi4.hardware, pi4.cores, pi4.arch) == ("Raspberry Pi 4 Model B Rev 1.1", "BCM2835", 4, "aarch64")
    pi3 = parse("cpuinfo", fixture("raspberrypi", "proc_cpuinfo_rpi3_armv7_kernel_no_model_line.txt"))
    assert (pi3.model, pi3.hardware, pi3.arch) == (None, "BCM2709", "armv7l")
    zero = parse("cpuinfo", fixture("raspberrypi", "proc_cpuinfo_rpi_zero_armv6.txt"))
    assert (zero.cores, zero.arch, zero.hardware) == (1, "armv6l", "BCM2708")
    assert "serial" not in pi4.to_dict()


def test_meminfo_vcgencmd_getprop_build_prop() -> None:
    mem = parse("meminfo", fixture("android", "proc_meminfo_aosp_libmeminfo_test_device_sample.txt"))
    assert (mem.total_kb, mem.available_kb, mem.entries_kb["CmaTotal"], mem.counts["HugePages_Total"]) == \
        (3019740, 2546560, 131072, 0)
    assert mem.entries_kb["Hugepagesize"] == 2048  # last line, no trailing newline
    vc = parse("vcgencmd", fixture("raspberrypi", "vcgencmd_measure_temp_get_throttled_rpi3_firmware_issue615_run2.txt"))
    assert vc.temp_c == 38.6 and [x["value"] for x in vc.readings if x["kind"] == "temp_c"] == [38.6, 38.6]
    assert vc.throttled["now"]["under_voltage"] and vc.throttled["occurred"]["throttled"]
    clock = parse("vcgencmd", fixture("raspberrypi", "vcgencmd_clock_temp_throttled_duckietown_issue358.txt"))
    assert clock.clocks_hz == {"45": 1400000000} and clock.temp_c == 62.3 and clock.throttled["value"] == 0
    props = parse("getprop", fixture("android", "getprop_nexus5_android5.1_indented_excerpt_flutter_issue4009.txt"))
    assert props.properties["ro.build.date"] == "Tue Jan  6 22:40:00 UTC 2015"
    assert props.facts["soc"] == "msm8974" and "ro.boot.serialno" not in props.properties
    build = parse("build-prop", fixture("android", "build_prop_pixel_android7.1.2.txt"))
    assert (build.facts["model"], build.facts["sdk"], build.facts["abi"]) == ("Pixel", 25, "arm64-v8a")
    with pytest.raises(ParseError):
        parse("getprop", fixture("android", "build_prop_pixel_android7.1.2.txt"))  # a different format
