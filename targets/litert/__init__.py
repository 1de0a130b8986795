"""LiteRT / TensorFlow Lite: the benchmark_model parser (classic tool and the newer LiteRT CompiledModel tool)."""
