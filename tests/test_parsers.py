"""Every device-tool parser on every fixture of its kind (discovered from ../shared/fixtures), the registry, the
JSON shape the issue promises, and `edgekit parse` end to end. Per-tool values are in test_parsers_values.py."""
from __future__ import annotations

import json
import math

import pytest

from edgekit.cli.main import main
from edgekit.errors import ExitStatus, ParseError, UsageError
from edgekit.targets.parsers import PARSERS, get_parser
from tests import support
from tests.parser_fixtures import FIXTURES, KIND_GLOBS, NOT_TOOL_OUTPUT, fixture_files, samples

PROFILERS = ("trtexec", "trtexec-profile", "benchmark-model", "ort-profile")


def _cases() -> list:
    cases = [pytest.param(kind, name, id=f"{kind}:{name}") for kind in PARSERS for name, _ in samples(kind)]
    if not FIXTURES.exists():
        cases.append(pytest.param(None, None, marks=pytest.mark.skip(reason=f"{FIXTURES} is absent")))
    return cases


def test_every_kind_has_a_fixture_pattern_and_a_parser() -> None:
    assert set(KIND_GLOBS) == set(PARSERS)
    for kind in PARSERS:
        assert callable(get_parser(kind)), kind
    for name in PROFILERS:  # the four profiler kinds the issue names
        assert PARSERS[name].profiler


def test_unknown_kind_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown parser kind"):
        get_parser("nvprof")


def test_every_fixture_file_belongs_to_exactly_one_kind() -> None:
    """A new capture dropped into ../shared/fixtures must be claimed by a kind (or listed as not tool output)."""
    root = support.shared_path("fixtures")
    claimed: dict[str, list[str]] = {}
    for kind in PARSERS:
        for path in fixture_files(kind):
            claimed.setdefault(path.relative_to(root).as_posix(), []).append(kind)
    excluded = {p.relative_to(root).as_posix() for pattern in NOT_TOOL_OUTPUT for p in root.glob(pattern)}
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert files - excluded == set(claimed), sorted((files - excluded) ^ set(claimed))
    assert all(len(kinds) == 1 for kinds in claimed.values()), claimed


@pytest.mark.parametrize(("kind", "name"), _cases())
def test_fixture_parses_to_the_promised_json(kind: str, name: str) -> None:
    text = dict(samples(kind))[name]
    result = get_parser(kind)(text)
    data = result.to_dict()
    json.dumps(data, allow_nan=False)  # plain JSON: no NaN, no tuples, no dataclasses left
    if PARSERS[kind].profiler:
        assert set(data) >= {"layers", "runs", "summary", "meta"}
        assert {"iterations", "total_ms"} <= set(data["summary"])
        assert data["layers"] or data["runs"], "a profile with neither layers nor runs"
        for layer in data["layers"]:
            assert {"name", "op_type", "mean_ms", "share"} <= set(layer)
            assert isinstance(layer["name"], str) and layer["name"]
            assert layer["share"] is None or -1e-9 <= layer["share"] <= 1.0 + 1e-9
            assert layer["mean_ms"] is None or (math.isfinite(layer["mean_ms"]) and layer["mean_ms"] >= 0)
        for run in data["runs"]:
            assert "mean_ms" in run
    if kind == "tegrastats":
        sample = data["samples"][0]
        assert {"ram_used_mb", "ram_total_mb", "cpus", "temps_c", "power_mw"} <= set(sample)
        assert all({"load_pct", "mhz"} <= set(c) for c in sample["cpus"])
        assert all(set(v) == {"cur", "avg"} for v in sample["power_mw"].values())
    if kind == "cpuinfo":
        assert {"model", "hardware", "cores", "arch"} <= set(data)


@pytest.mark.parametrize("kind", list(PARSERS))
def test_empty_and_foreign_input_is_a_parse_error(kind: str) -> None:
    parser = get_parser(kind)
    with pytest.raises(ParseError):
        parser("")
    with pytest.raises(ParseError):
        parser("this is not the output of any device tool\nat all\n")


# --- edgekit parse (the CLI) ------------------------------------------------------------------------------------


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_cli_prints_a_layer_table(capsys: pytest.CaptureFixture[str]) -> None:
    path = support.shared_path("fixtures", "tensorrt", "trtexec_trt8.5.2_jetson_xavier_nx_dumpProfile_name_first_excerpt.log")
    code, out, _ = _run(["parse", "trtexec", str(path), "--top", "3"], capsys)
    assert code == 0
    assert "trt_version=8.5.2" in out
    assert "{ForeignNode[lstm_W...Max_reduce_min]}" in out and "69.4%" in out
    assert "the 3 slowest of 28" in out


def test_cli_json_is_the_parsers_dict(capsys: pytest.CaptureFixture[str]) -> None:
    path = support.shared_path("fixtures", "onnxruntime", "generated_here_ort1.31.1_x86_64_cpu_tiny_graph_profile.json")
    code, out, _ = _run(["parse", "ort-profile", str(path), "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert [layer["name"] for layer in data["layers"]][:2] == ["r_nchwc", "ReorderOutput"]
    assert len(data["runs"]) == 3


def test_cli_device_facts_and_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"temp=52.1'C\nthrottled=0x50005\n")))
    code, out, _ = _run(["parse", "vcgencmd", "-"], capsys)
    assert code == 0
    assert "temp_c: 52.1" in out and "throttled.now.under_voltage: True" in out


def test_cli_errors_are_one_message_and_an_exit_code(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["parse", "cpuinfo", str(tmp_path / "missing.txt")], capsys)
    assert code == ExitStatus.INPUT and "cannot read" in err and "Traceback" not in err
    bad = tmp_path / "bad.json"
    bad.write_text("[{\"count\": 3}, {\"name\": 5}]")
    code, _, err = _run(["parse", "trtexec-profile", str(bad)], capsys)
    assert code == ExitStatus.INPUT and "no layer name" in err
    code, _, err = _run(["parse", "nvprof", str(bad)], capsys)
    assert code == ExitStatus.USAGE


def test_cli_reads_utf16_captures(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """PowerShell's `>` writes UTF-16 with a BOM; a capture made that way must still parse."""
    path = tmp_path / "meminfo.txt"
    path.write_bytes("MemTotal:  1000 kB\r\nMemFree:  500 kB\r\n".encode("utf-16"))
    code, out, _ = _run(["parse", "meminfo", str(path)], capsys)
    assert code == 0 and "total_kb: 1000" in out
