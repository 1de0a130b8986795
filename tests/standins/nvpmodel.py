"""A stand-in `nvpmodel -q` of an Orin Nano: `NV Power Mode: <name>` then the mode id (MODE beside it overrides,
as `<name> <id>`, to play a board that is not in its maximum mode)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
name, mode = "MAXN_SUPER", "2"
override = os.path.join(HERE, "MODE")
if os.path.exists(override):
    name, mode = open(override).read().split()
if sys.argv[1:] == ["-q"]:
    print("NV Power Mode: %s\n%s" % (name, mode))
    sys.exit(0)
sys.exit("nvpmodel stand-in: only -q")
