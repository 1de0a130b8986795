"""A stand-in Android `benchmark_model` on the stand-in phone: records its argv (argv.jsonl beside it), checks
that --graph names a file it can read, and prints a real captured output of LiteRT's benchmark_model on an Android
phone (the file named in BENCHMARK_OUTPUT beside it: ../shared/fixtures/tflite). Its figures are that capture's
model's, not the pushed one's: no Android phone can run here."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "argv.jsonl"), "a") as log:
    log.write(json.dumps(["benchmark_model"] + sys.argv[1:]) + "\n")
graph = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--graph=")), None)
if graph is None or not os.path.isfile(graph):
    print("ERROR: Could not open '%s'." % graph)
    print("ERROR: Failed to load model")
    sys.exit(1)
sys.stdout.write(open(open(os.path.join(HERE, "BENCHMARK_OUTPUT")).read().strip()).read())
