"""Device profiles: one YAML file per device kind (profiles/*.yaml, shipped as the edgekit.profiles package), plus the
user's own in ~/.config/edgekit/targets/*.yaml (or $EDGEKIT_TARGETS_DIR), which override built-ins by name.

A profile is data: which transports reach the device, its Python, its runtimes (with install hints), the
defaults a deploy uses there (format, precision, threads, INT8 preset), the commands that read its facts and
its thermal / throttling probes, and the vendor tools `edgekit doctor` looks for. The schema below is checked
in plain Python so that an error names the file and the field.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import InputError, UsageError

TARGETS_DIR_ENV = "EDGEKIT_TARGETS_DIR"
TRANSPORTS = ("local", "ssh", "adb")
FORMATS = ("onnx", "litert", "tensorrt", "coreml")  # edgekit's format names (edgekit/formats/), as --format takes them
PRECISIONS = ("fp32", "fp16", "int8")
PRESETS = ("x86", "arm", "tensorrt", "auto")  # auto: from the machine that runs edgekit (the local target)
PROBE_PARSERS = ("text", "vcgencmd", "tegrastats", "thermal_zones", "battery")
# facts with a meaning for the report's device block; others are kept as raw text for `edgekit doctor`
FACT_KEYS = ("cpuinfo", "meminfo", "arch", "os", "nproc", "model", "cpu", "hostname", "memory_bytes")


class ProfileError(InputError):
    pass


@dataclass(frozen=True)
class Runtime:
    name: str
    formats: tuple[str, ...]
    module: str | None = None  # the Python module the device's Python imports (None: a CLI tool)
    install: str | None = None


@dataclass(frozen=True)
class Defaults:
    format: str
    precision: str
    threads: int | None  # None: every core the device reports
    int8_preset: str


@dataclass(frozen=True)
class Probe:
    argv: tuple[str, ...]
    parse: str = "text"


@dataclass(frozen=True)
class Tool:
    argv: tuple[str, ...]  # exits 0 when the tool is there
    install: str | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    transports: tuple[str, ...]
    arch: str  # what `uname -m` says there ("any" for generic profiles)
    python: str | None
    defaults: Defaults
    runtimes: tuple[Runtime, ...]
    facts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    probes: dict[str, Probe] = field(default_factory=dict)
    tools: dict[str, Tool] = field(default_factory=dict)
    workdir: str | None = None
    notes: str | None = None
    source: str = ""  # the file it came from
    builtin: bool = True

    def runtime(self, name: str) -> Runtime | None:
        return next((r for r in self.runtimes if r.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def builtin_dir() -> Path:
    """profiles/, installed as the `edgekit.profiles` package (setup.cfg package_dir + package_data)."""
    import edgekit.profiles

    return Path(edgekit.profiles.__file__).resolve().parent


def user_dir() -> Path:
    if os.environ.get(TARGETS_DIR_ENV):
        return Path(os.environ[TARGETS_DIR_ENV]).expanduser()
    config = Path(os.environ.get("XDG_CONFIG_HOME") or "~/.config").expanduser()
    return config / "edgekit" / "targets"


class _Checker:
    """Reads one mapping with errors that say `file: field.path: what was expected, what was found`."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def fail(self, where: str, expected: str, got: Any) -> ProfileError:
        return ProfileError(f"invalid target profile {self.source}: `{where}`: expected {expected}, got {got!r}",
                            hint=f"fix `{where}` (see the built-in profiles in {builtin_dir()} for examples)")

    def mapping(self, value: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...]) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where or "(top level)", "a mapping", value)
        prefix = f"{where}." if where else ""
        for key in value:
            if key not in required + optional:
                raise self.fail(prefix + str(key), "one of the known fields " + ", ".join(required + optional),
                                "an unknown field")
        for key in required:
            if key not in value:
                raise self.fail(prefix + key, "a value", "nothing (the field is required)")
        return value

    def text(self, value: Any, where: str, choices: tuple[str, ...] = (), optional: bool = False) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, "a non-empty string", value)
        if choices and value not in choices:
            raise self.fail(where, "one of " + ", ".join(choices), value)
        return value

    def argv(self, value: Any, where: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value or not all(isinstance(a, (str, int, float)) for a in value):
            raise self.fail(where, "a non-empty list of arguments (an argv, not a shell string)", value)
        return tuple(str(a) for a in value)

    def texts(self, value: Any, where: str, choices: tuple[str, ...]) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(where, "a non-empty list", value)
        return tuple(self.text(v, f"{where}[{i}]", choices) for i, v in enumerate(value))


def parse_profile(data: Any, source: Path, builtin: bool = False) -> Profile:
    """Validate one profile's YAML data; raises ProfileError naming the file and the field."""
    c = _Checker(source)
    top = c.mapping(data, "", ("name", "description", "transports", "arch", "runtimes", "defaults"),
                    ("python", "workdir", "facts", "probes", "tools", "notes"))
    runtimes = []
    if not isinstance(top["runtimes"], list) or not top["runtimes"]:
        raise c.fail("runtimes", "a non-empty list", top["runtimes"])
    for i, item in enumerate(top["runtimes"]):
        r = c.mapping(item, f"runtimes[{i}]", ("name", "formats"), ("module", "install"))
        runtimes.append(Runtime(c.text(r["name"], f"runtimes[{i}].name"), c.texts(r["formats"], f"runtimes[{i}].formats", FORMATS),
                                c.text(r.get("module"), f"runtimes[{i}].module", optional=True),
                                c.text(r.get("install"), f"runtimes[{i}].install", optional=True)))
    d = c.mapping(top["defaults"], "defaults", ("format", "precision", "threads", "int8_preset"), ())
    threads = d["threads"]
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise c.fail("defaults.threads", "a whole number >= 1, or null for every core", threads)
    defaults = Defaults(c.text(d["format"], "defaults.format", FORMATS), c.text(d["precision"], "defaults.precision", PRECISIONS),
                        threads, c.text(d["int8_preset"], "defaults.int8_preset", PRESETS))
    if not any(defaults.format in r.formats for r in runtimes):
        raise c.fail("defaults.format", "a format one of the profile's runtimes runs", defaults.format)
    transports = c.texts(top["transports"], "transports", TRANSPORTS)
    python = c.text(top.get("python"), "python", optional=True)
    if python is None and "ssh" in transports:
        raise c.fail("python", "the device's Python (e.g. python3) for an ssh target", None)
    facts = {k: c.argv(v, f"facts.{k}") for k, v in c.mapping(top.get("facts") or {}, "facts", (),
                                                                tuple(top.get("facts") or {})).items()}
    probes = {}
    for name, item in (top.get("probes") or {}).items():
        p = c.mapping(item, f"probes.{name}", ("argv",), ("parse",))
        probes[name] = Probe(c.argv(p["argv"], f"probes.{name}.argv"),
                             c.text(p.get("parse", "text"), f"probes.{name}.parse", PROBE_PARSERS))
    tools = {}
    for name, item in (top.get("tools") or {}).items():
        t = c.mapping(item, f"tools.{name}", ("argv",), ("install",))
        tools[name] = Tool(c.argv(t["argv"], f"tools.{name}.argv"), c.text(t.get("install"), f"tools.{name}.install", optional=True))
    return Profile(name=c.text(top["name"], "name"), description=c.text(top["description"], "description"),
                   transports=transports, arch=c.text(top["arch"], "arch"), python=python, defaults=defaults,
                   runtimes=tuple(runtimes), facts=facts, probes=probes, tools=tools,
                   workdir=c.text(top.get("workdir"), "workdir", optional=True),
                   notes=c.text(top.get("notes"), "notes", optional=True), source=str(source), builtin=builtin)


def load_profile_file(path: Path, builtin: bool = False) -> Profile:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ProfileError(f"cannot read target profile {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"target profile {path} is not valid YAML: {exc}", hint="fix the YAML syntax") from exc
    return parse_profile(data, Path(path), builtin)


def load_profiles(user: Path | None = None) -> dict[str, Profile]:
    """Built-ins, then the user's files (a user profile replaces the built-in of the same name)."""
    found: dict[str, Profile] = {}
    for folder, builtin in ((builtin_dir(), True), (user or user_dir(), False)):
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
                profile = load_profile_file(path, builtin)
                found[profile.name] = profile
    return found


def get_profile(name: str, user: Path | None = None) -> Profile:
    profiles = load_profiles(user)
    if name not in profiles:
        raise UsageError(f"unknown target {name!r}", hint="choose one of: " + ", ".join(sorted(profiles)) +
                         f" (`edgekit targets`), or add {user or user_dir()}/{name}.yaml")
    return profiles[name]
