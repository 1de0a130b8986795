"""A stand-in `xcrun` with Xcode's command line tools: `--find coremlcompiler` answers a path; `coremlcompiler
compile PKG DIR` records its argv in argv.jsonl beside this script and writes DIR/<name>.mlmodelc holding the
package's model.mlmodel (what the real compiler turns into a compiled model); anything else fails as xcrun does."""
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "argv.jsonl"), "a") as log:
    log.write(json.dumps(["xcrun"] + sys.argv[1:]) + "\n")
args = sys.argv[1:]
if args == ["--find", "coremlcompiler"]:
    print("/Applications/Xcode.app/Contents/Developer/usr/bin/coremlcompiler")
    sys.exit(0)
if len(args) == 4 and args[:2] == ["coremlcompiler", "compile"]:
    package, out = args[2], args[3]
    name = os.path.basename(package.rstrip("/"))[: -len(".mlpackage")] + ".mlmodelc"
    os.makedirs(os.path.join(out, name), exist_ok=True)
    spec = os.path.join(package, "Data", "com.apple.CoreML", "model.mlmodel")
    shutil.copyfile(spec, os.path.join(out, name, "model.mlmodel"))
    print(os.path.join(out, name))
    sys.exit(0)
sys.exit("xcrun: error: unable to find utility \"%s\", not a developer tool or in PATH" % (args[0] if args else ""))
