"""Exporters: torch variants -> deployable artifacts (ONNX now; LiteRT and Core ML later), each validated."""
