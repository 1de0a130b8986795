"""A stand-in Android `getprop` on the stand-in phone: every property of a real captured getprop (the file named
in GETPROP_FILE beside this script: a Nexus 5's, ../shared/fixtures/android), or one property's value."""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
text = open(open(os.path.join(HERE, "GETPROP_FILE")).read().strip()).read()
props = dict(re.findall(r"^\s*\[([^\]]+)\]: \[([^\]]*)\]", text, re.M))
if len(sys.argv) > 1:
    print(props.get(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""))
else:
    for key in sorted(props):
        print("[%s]: [%s]" % (key, props[key]))
