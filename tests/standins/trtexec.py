"""A stand-in `trtexec` for a Jetson that cannot exist here (TensorRT cannot be installed on this machine).

It records every argv it is given (one JSON line in argv.jsonl beside it) and answers in trtexec's real formats
(the banner and log lines of ../shared/fixtures/tensorrt, the JSON exports as FORMATS.md documents them):
- build (`--onnx --saveEngine`): reads the real ONNX (node names), writes an "engine" (JSON: the ONNX's nodes and
  the flags), prints the build log; fails like TensorRT's ONNX parser, naming a node, when FAIL_BUILD exists beside
  it (the file's text is the node it names);
- run (`--loadEngine`): groups the engine's ONNX nodes into fused layers as TensorRT does (`a + b`, a Myelin
  kernel, a reformat with no node), writes --exportTimes / --exportProfile / --exportLayerInfo, and marks the GPU
  busy (the BUSY file, which the stand-in tegrastats reads) while it "runs".
Nothing here is parsed by edgekit's code under test except through those real formats.
"""
import json
import os
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
STAMP = time.strftime("[%m/%d/%Y-%H:%M:%S]")
VERSION = "v101003"  # TensorRT 10.3.0, as JetPack 6.1 ships it


def log(level, text):
    print("%s [%s] %s" % (STAMP, level, text))


def options(argv):
    out = {}
    for arg in argv:
        if arg.startswith("--"):
            key, _, value = arg[2:].partition("=")
            out[key] = value
    return out


def build(opts):
    import onnx

    graph = onnx.load(opts["onnx"], load_external_data=False).graph
    log("I", "[TRT] ----------------------------------------------------------------")
    log("I", "[TRT] Input filename:   %s" % opts["onnx"])
    log("I", "[TRT] ONNX IR version:  0.0.8")
    fail = os.path.join(HERE, "FAIL_BUILD")
    if os.path.exists(fail):
        node = open(fail).read().strip() or graph.node[0].name
        index = next((i for i, n in enumerate(graph.node) if n.name == node), 0)
        bad = graph.node[index]
        log("E", "[TRT] ModelImporter.cpp:771: While parsing node number %d [%s -> \"%s\"]:" % (
            index, bad.op_type, bad.output[0]))
        log("E", "[TRT] ModelImporter.cpp:772: --- Begin node ---")
        log("E", "[TRT] ModelImporter.cpp:773: " + "\n".join(['input: "%s"' % i for i in bad.input]
                                                           + ['output: "%s"' % o for o in bad.output]
                                                           + ['name: "%s"' % bad.name, 'op_type: "%s"' % bad.op_type]))
        log("E", "[TRT] ModelImporter.cpp:774: --- End node ---")
        log("E", "[TRT] ModelImporter.cpp:777: ERROR: onnxOpImporters.cpp:4712 In function importOneHot:")
        print("[8] Assertion failed: UNSUPPORTED_NODE: depth must be a build-time constant")
        log("E", "Failed to parse onnx file")
        log("E", "Parsing model failed")
        log("E", "Failed to create engine from model or file.")
        log("E", "Engine set up failed")
        print("&&&& FAILED TensorRT.trtexec [TensorRT %s] # trtexec %s" % (VERSION, " ".join(sys.argv[1:])))
        return 1
    flags = [a for a in sys.argv[1:] if a in ("--fp16", "--stronglyTyped", "--int8", "--best")]
    engine = {"onnx": opts["onnx"], "nodes": [n.name for n in graph.node], "ops": [n.op_type for n in graph.node],
              "flags": flags, "shapes": {k: opts[k] for k in ("minShapes", "optShapes", "maxShapes") if k in opts}}
    with open(opts["saveEngine"], "w") as handle:
        json.dump(engine, handle)
    log("I", "Engine built in 1.25 sec.")
    log("I", "Created engine with size: %.4f MiB" % (os.path.getsize(opts["onnx"]) / 2 ** 20))
    print("&&&& PASSED TensorRT.trtexec [TensorRT %s] # trtexec %s" % (VERSION, " ".join(sys.argv[1:])))
    return 0


def layers_of(engine):
    """TensorRT-style layers over the ONNX nodes: a reformat first, fused pairs, every fifth a Myelin kernel."""
    nodes = engine["nodes"]
    out = [{"Name": "Reformatting CopyNode for Input Tensor 0 to %s" % nodes[0], "LayerType": "Reformat",
            "Metadata": ""}]
    i, k = 0, 0
    while i < len(nodes):
        group = nodes[i:i + 2]
        if k % 5 == 4:
            out.append({"Name": "__myl_%s_myl%d_%d" % ("".join(engine["ops"][i:i + 2]), k, k), "LayerType": "kgen",
                        "Metadata": "\x1f".join("[ONNX Layer: %s]" % n for n in group)})
        else:
            out.append({"Name": " + ".join(group), "LayerType": "CaskConvolution" if "Conv" in engine["ops"][i]
                        else "CaskGemm", "Metadata": "\x1e".join("[ONNX Layer: %s]" % n for n in group)})
        i, k = i + 2, k + 1
    return out


def run(opts):
    with open(opts["loadEngine"]) as handle:
        engine = json.load(handle)
    log("I", "Engine loaded in 0.0421 sec.")
    log("I", "Engine deserialized in 0.0245724 sec.")
    layers = layers_of(engine)
    iterations = max(int(opts.get("iterations", "10")), 1)
    busy = os.path.join(HERE, "BUSY")
    open(busy, "w").close()
    try:
        time.sleep(float(os.environ.get("EDGEKIT_STANDIN_RUN_SECONDS", "0.6")))  # the GPU "works": tegrastats sees it
    finally:
        os.remove(busy)
    per_layer = [0.002 + (zlib.crc32(l["Name"].encode()) % 100) / 10000.0 for l in layers]
    total = sum(per_layer)
    if "exportTimes" in opts:
        times, t = [], 10.0
        for i in range(iterations):
            compute = total * (1.0 + 0.01 * (i % 3))
            times.append({"startEnqMs": t, "endEnqMs": t + 0.01, "startH2dMs": t, "endH2dMs": t + 0.02,
                          "startComputeMs": t + 0.02, "endComputeMs": t + 0.02 + compute, "startD2hMs": t + 0.02 + compute,
                          "endD2hMs": t + 0.03 + compute, "h2dMs": 0.02, "computeMs": compute, "d2hMs": 0.01,
                          "latencyMs": compute + 0.03})
            t += compute + 0.05
        with open(opts["exportTimes"], "w") as handle:
            handle.write("[\n" + "\n, ".join(json.dumps(x) for x in times) + "\n]\n")
    if "exportProfile" in opts:
        rows = [{"count": iterations}] + [
            {"name": l["Name"], "timeMs": ms * iterations, "averageMs": ms, "medianMs": ms,
             "percentage": 100.0 * ms / total} for l, ms in zip(layers, per_layer)]
        with open(opts["exportProfile"], "w") as handle:
            handle.write("[\n" + "\n, ".join(json.dumps(r) for r in rows) + "\n]\n")
    if "exportLayerInfo" in opts:
        with open(opts["exportLayerInfo"], "w") as handle:
            json.dump({"Layers": layers, "Bindings": ["input", "output"]}, handle)
    log("I", "=== Performance summary ===")
    log("I", "Latency: min = %g ms, max = %g ms, mean = %g ms" % (total, total * 1.02, total * 1.01))
    print("&&&& PASSED TensorRT.trtexec [TensorRT %s] # trtexec %s" % (VERSION, " ".join(sys.argv[1:])))
    return 0


def main():
    with open(os.path.join(HERE, "argv.jsonl"), "a") as handle:
        handle.write(json.dumps(sys.argv[1:]) + "\n")
    print("&&&& RUNNING TensorRT.trtexec [TensorRT %s] [b37] # trtexec %s" % (VERSION, " ".join(sys.argv[1:])))
    opts = options(sys.argv[1:])
    if "onnx" in opts and "saveEngine" in opts:
        return build(opts)
    if "loadEngine" in opts:
        return run(opts)
    log("E", "Model missing or format not recognized")
    return 1


if __name__ == "__main__":
    sys.exit(main())
