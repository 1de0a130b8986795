"""TensorRT: parsers for trtexec's console log and its --exportProfile / --exportLayerInfo / --exportTimes JSON."""
