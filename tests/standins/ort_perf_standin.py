"""A stand-in Android `onnxruntime_perf_test` on the stand-in phone: records its argv (argv.jsonl beside it), checks
the model file, prints a real captured console summary of it on an Android phone (PERF_OUTPUT beside it) and, with
-p PREFIX, writes PREFIX_<date>.json from a real ONNX Runtime profile (PERF_PROFILE). The figures are the
captures', not the pushed model's: no Android phone can run here."""
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "argv.jsonl"), "a") as log:
    log.write(json.dumps(["onnxruntime_perf_test"] + sys.argv[1:]) + "\n")
args = sys.argv[1:]
if not args or not os.path.isfile(args[-1]):
    sys.exit("Error: model file %s does not exist" % (args[-1] if args else ""))
if "-p" in args:
    prefix = args[args.index("-p") + 1]
    shutil.copyfile(open(os.path.join(HERE, "PERF_PROFILE")).read().strip(), prefix + "_2026-12-03_12-00-00.json")
sys.stdout.write(open(open(os.path.join(HERE, "PERF_OUTPUT")).read().strip()).read())
