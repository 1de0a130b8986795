"""Core ML: MLComputePlan dumps (NSLog tool, CoreMLInspect) and E5RT per-op analytics (text and CSV)."""
