"""ONNX Runtime: the profiling JSON (SessionOptions.enable_profiling) and onnxruntime_perf_test's console summary."""
