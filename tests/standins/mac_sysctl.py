"""A stand-in `sysctl -n KEY` of an M2 MacBook Air (8 cores, 16 GB)."""
import sys

values = {"hw.ncpu": "8", "hw.model": "Mac14,2", "machdep.cpu.brand_string": "Apple M2", "hw.memsize": "17179869184"}
key = sys.argv[-1]
if key not in values:
    sys.exit("sysctl: unknown oid '%s'" % key)
print(values[key])
