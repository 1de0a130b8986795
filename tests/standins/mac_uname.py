"""A stand-in `uname` of a Mac with Apple silicon: -s Darwin, -m arm64, -n the host name (other flags: the real
uname's answer would be Darwin's; only these are asked)."""
import sys

answers = {"-s": "Darwin", "-m": "arm64", "-n": "edgekit-test-mac", "-r": "23.5.0"}
args = sys.argv[1:] or ["-s"]
print(" ".join(answers.get(a, "Darwin") for a in args))
