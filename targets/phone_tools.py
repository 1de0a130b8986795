"""What the Android measurers (LiteRT's benchmark_model, ONNX Runtime's onnxruntime_perf_test) share on a phone
reached over adb: the big cores to pin a run to, and the tool binary to run.

- Cores: cpufreq's `cpuinfo_max_freq` of every CPU; the `threads` fastest (big cores first) give the hex affinity
  mask for `taskset` (toybox), so the little cores do not make the timing noisy.
- Tools: a file on this machine is pushed once into the work folder (content-addressed, made executable); else the
  given path on the phone, then the default path, then PATH.
"""
from __future__ import annotations

import posixpath
from pathlib import Path

from edgekit.errors import DeviceFailureError
from edgekit.targets.base import Transport
from edgekit.targets.runner_job import remote_name

CPUFREQ = ('for c in /sys/devices/system/cpu/cpu[0-9]*; do '
           'echo "${c##*/} $(cat "$c/cpufreq/cpuinfo_max_freq" 2>/dev/null)"; done')


def parse_cpufreq(text: str) -> dict[int, int]:
    """`cpu4 2850000` lines -> {cpu: max kHz}; CPUs without cpufreq (or offline) are left out."""
    freqs = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].startswith("cpu") and parts[0][3:].isdigit() and parts[1].isdigit():
            freqs[int(parts[0][3:])] = int(parts[1])
    return freqs


def big_core_mask(freqs: dict[int, int], threads: int) -> str | None:
    """The hex affinity mask of the `threads` fastest CPUs (ties: the higher-numbered, where big cores sit);
    None when cpufreq said nothing (no pinning then)."""
    if not freqs:
        return None
    chosen = sorted(freqs, key=lambda c: (freqs[c], c), reverse=True)[:max(1, threads)]
    return format(sum(1 << c for c in chosen), "x")


def read_big_cores(transport: Transport, threads: int) -> tuple[dict[int, int], str | None]:
    """(each CPU's max kHz, the affinity mask of the `threads` fastest) as the phone reports them."""
    freqs = parse_cpufreq(transport.run(["sh", "-c", CPUFREQ], timeout=60).stdout)
    return freqs, big_core_mask(freqs, threads)


def find_tool(transport: Transport, given: str | None, default: str, name: str, install: str) -> str:
    """The tool to run on the phone: `given` as a local file (pushed once) or a phone path, else `default`, else
    `name` on PATH; DeviceFailureError naming `install` when there is none."""
    if given and Path(given).is_file():
        remote = posixpath.join(transport.workdir(), "bin", remote_name(Path(given)))
        transport.put(Path(given), remote)
        transport.run(["chmod", "755", remote], timeout=60)
        return remote
    candidates = [given] if given else [default, name]
    probe = transport.run(["sh", "-c", 'for b in "$@"; do if [ -x "$b" ]; then echo "$b"; exit 0; fi; '
                           'command -v "$b" && exit 0; done; exit 1', "sh", *candidates], timeout=60)
    if probe.ok and probe.stdout.strip():
        return probe.stdout.strip().splitlines()[0]
    raise DeviceFailureError(f"no {name} on {transport.host} (looked for {', '.join(candidates)})", hint=install)
