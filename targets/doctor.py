"""`edgekit doctor`: what a device has, checked through its transport with its profile's commands.

Each check is a row: status ok | warn | fail | info, what was found, and the fix for what is missing. `fail`
rows (no Python, no numpy / ONNX Runtime for the runner) mean a deploy there cannot work; `warn` rows
(throttling, a hot SoC, little disk, a missing vendor tool) mean its figures may mislead.
"""
from __future__ import annotations

import re

import json
from dataclasses import asdict, dataclass

from edgekit.errors import DeviceFailureError, ParseError
from edgekit.targets.base import Transport
from edgekit.targets.profiles import Profile
from edgekit.targets.remote_facts import run_many

MIN_FREE_KB = 1024 * 1024  # a model, its external data and the runner's outputs fit comfortably in 1 GiB
HOT_C = 80.0  # where a Pi 4/5 and most phones start throttling
ALTERNATIVE_MODULES = {"ai_edge_litert": ("tflite_runtime",)}  # LiteRT's older wheel name
_VERSIONS = ("import importlib, json, sys\nout = {}\nfor m in sys.argv[1:]:\n    try:\n        mod = importlib.import_module(m)\n"
             "    except Exception:\n        out[m] = None\n        continue\n    v = getattr(mod, '__version__', None)\n"
             "    if v is None:\n        try:\n            import importlib.metadata as md\n"
             "            d = md.packages_distributions().get(m.split('.')[0], [])\n"
             "            v = md.version(d[0]) if d else 'installed'\n        except Exception:\n"
             "            v = 'installed'\n    out[m] = str(v)\nprint(json.dumps(out))")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail | info
    value: str
    hint: str | None = None


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _temperature(kind: str, text: str) -> tuple[float | None, str]:
    """(hottest reading in C, a one-line summary) of a probe's output."""
    if kind == "thermal_zones":
        temps = {}
        for line in text.splitlines():
            name, _, value = line.strip().rpartition(" ")
            if value.lstrip("-").isdigit():
                temps[name or "zone"] = int(value) / 1000.0
        hot = max(temps.values(), default=None)
        return hot, ", ".join(f"{k} {v:.1f} C" for k, v in temps.items()) or "no thermal zones"
    if kind == "battery":  # Android's `dumpsys battery`: `temperature: 287` in tenths of a degree C
        found = re.search(r"^\s*temperature:\s*(-?\d+)\s*$", text, re.M)
        level = re.search(r"^\s*level:\s*(\d+)\s*$", text, re.M)
        if found is None:
            return None, _first_line(text) or "no battery state"
        temp = int(found.group(1)) / 10.0
        return temp, f"battery {temp:.1f} C" + (f", {level.group(1)}% charged" if level else "")
    if kind == "vcgencmd":
        from edgekit.targets.device.parse_vcgencmd import parse_vcgencmd

        r = parse_vcgencmd(text)
        if r.throttled is not None:
            now = [k for k, v in r.throttled["now"].items() if v]
            since = [k for k, v in r.throttled["occurred"].items() if v]
            return None, f"throttled={r.throttled['raw']}" + (f" NOW: {', '.join(now)}" if now else "") + \
                (f" (since boot: {', '.join(since)})" if since else "")
        return r.temp_c, f"{r.temp_c:.1f} C" if r.temp_c is not None else _first_line(text)
    if kind == "tegrastats":
        from edgekit.targets.device.parse_tegrastats import parse_tegrastats

        sample = parse_tegrastats(text).samples[0]
        hot = max(sample.temps_c.values(), default=None)
        return hot, ", ".join(f"{k} {v:.1f} C" for k, v in sample.temps_c.items()) or "no temperatures"
    return None, _first_line(text)


def diagnose(transport: Transport, profile: Profile, python: str) -> list[Check]:
    checks = [Check("connection", "ok", f"{transport.name} {transport.host}")]
    base = run_many(transport, {"arch": ["uname", "-m"], "os": ["uname", "-sr"],
                                "python": [python, "-c", "import platform; print(platform.python_version())"]})
    arch = _first_line(base.get("arch", (1, ""))[1])
    matches = profile.arch in ("any", arch)
    checks.append(Check("arch", "ok" if matches else "warn", arch or "unknown",
                        None if matches else f"the {profile.name} profile expects {profile.arch}: is this the right --target?"))
    checks.append(Check("os", "info", _first_line(base.get("os", (1, ""))[1]) or "unknown"))
    code, out = base.get("python", (127, ""))
    if code != 0 or not out.strip():
        checks.append(Check("python", "fail", f"{python}: not found or not working",
                            "install Python 3 on the device, or pass --device-python /path/to/python"))
        return checks + _disk(transport) + _probes(transport, profile) + _tools(transport, profile)
    checks.append(Check("python", "ok", f"{python} {out.strip()}"))
    return checks + _jetson(transport, profile) + _runtimes(transport, profile, python) + _disk(transport) + \
        _probes(transport, profile) + _tools(transport, profile)


def _jetson(transport: Transport, profile: Profile) -> list[Check]:
    """A Jetson's module, software, power mode and clocks, each with the fix a deploy would warn about."""
    if "power_mode" not in profile.facts:
        return []
    from edgekit.targets.device.parse_jetson import jetson_block

    answers = run_many(transport, profile.facts)
    block, _ = jetson_block({k: out for k, (code, out) in answers.items() if code == 0})
    mode, locked = block["power_mode"], block["clocks_locked"]
    return [
        Check("module", "ok" if block["module"] else "warn", block["module"] or "unreadable",
              None if block["module"] else "/proc/device-tree/model is hidden (a container?): deploys still run "
                                           "where trtexec is"),
        Check("l4t", "info", f"L4T {block['l4t'] or '?'} (JetPack {block['jetpack'] or '?'}), TensorRT "
                             f"{block['tensorrt'] or '?'}, CUDA {block['cuda'] or '?'}"),
        Check("power mode", "ok" if mode and mode["max"] else "warn",
              f"{mode['name']} (id {mode['id']})" if mode else "unknown",
              None if mode and mode["max"] else "sudo nvpmodel -m 0 (the maximum mode) for the board's best latency"),
        Check("clocks", "ok" if locked else "warn", {True: "locked", False: "not locked", None: "unknown"}[locked],
              None if locked else "sudo jetson_clocks, so that DVFS does not make latencies drift"),
    ]


def _runtimes(transport: Transport, profile: Profile, python: str) -> list[Check]:
    wanted = [("numpy", "numpy", "python3 -m pip install numpy", True)]
    for r in profile.runtimes:
        if r.module:
            wanted.append((r.name, r.module, r.install, r.name == "onnxruntime"))
    modules = [m for _, m, _, _ in wanted] + [alt for _, m, _, _ in wanted for alt in ALTERNATIVE_MODULES.get(m, ())]
    result = transport.run([python, "-c", _VERSIONS, *modules], timeout=300)  # importing under emulation is slow
    try:
        versions = json.loads(result.stdout.strip().splitlines()[-1]) if result.ok else {}
    except (json.JSONDecodeError, IndexError):
        versions = {}
    checks = []
    for name, module, install, required in wanted:
        found = versions.get(module) or next((f"{versions[a]} ({a})" for a in ALTERNATIVE_MODULES.get(module, ())
                                              if versions.get(a)), None)
        if found:
            checks.append(Check(name, "ok", found))
        else:
            checks.append(Check(name, "fail" if required else "warn", f"{module} not importable", install))
    for r in profile.runtimes:
        if not r.module:
            checks.append(Check(r.name, "info", "a command-line runtime: see the tools below", r.install))
    return checks


def _disk(transport: Transport) -> list[Check]:
    work = transport.workdir()
    code, out = run_many(transport, {"df": ["df", "-Pk", work]}).get("df", (1, ""))
    lines = out.strip().splitlines()
    fields = lines[-1].split() if code == 0 and len(lines) >= 2 else []
    if len(fields) < 4 or not fields[3].isdigit():
        return [Check("disk", "warn", f"cannot read the free space of {work}", "check `df -h` on the device")]
    free = int(fields[3])
    ok = free >= MIN_FREE_KB
    return [Check("disk", "ok" if ok else "warn", f"{free / 1024 / 1024:.1f} GiB free in {work}",
                  None if ok else "free space on the device, or set `workdir:` in the profile to a larger disk")]


def _probes(transport: Transport, profile: Profile) -> list[Check]:
    answers = run_many(transport, {k: p.argv for k, p in profile.probes.items()})
    checks = []
    for name, probe in profile.probes.items():
        code, out = answers.get(name, (1, ""))
        if code != 0 or not out.strip():
            checks.append(Check(name, "info", "not available on this device"))
            continue
        try:
            hot, summary = _temperature(probe.parse, out)
        except ParseError:
            checks.append(Check(name, "info", _first_line(out)))
            continue
        hot_now = hot is not None and hot >= HOT_C
        throttling = "NOW:" in summary
        status = "warn" if hot_now or throttling else "ok"
        checks.append(Check(name, status, summary, "cool the device (heatsink, fan) and let it settle before "
                            "measuring; check its power supply" if status == "warn" else None))
    return checks


def _tools(transport: Transport, profile: Profile) -> list[Check]:
    answers = run_many(transport, {k: t.argv for k, t in profile.tools.items()})
    checks = []
    for name, tool in profile.tools.items():
        code, out = answers.get(name, (1, ""))
        found = code == 0
        checks.append(Check(name, "ok" if found else "warn", _first_line(out) or "present" if found else "not found",
                            None if found else tool.install))
    return checks


def failures(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.status == "fail"]


def raise_for(checks: list[Check], host: str) -> None:
    bad = failures(checks)
    if bad:
        raise DeviceFailureError(f"{host} cannot run edgekit's runner yet: " + ", ".join(f"{c.name} ({c.value})" for c in bad),
                                 hint="; ".join(c.hint for c in bad if c.hint) or None)


def to_dicts(checks: list[Check]) -> list[dict]:
    return [asdict(c) for c in checks]
