"""Device profiles: every built-in validates, the validator names file and field, user profiles override by
name, `edgekit targets` lists them; facts are read in one framed round trip; `doctor` reads probes and tools."""
from __future__ import annotations

import json
import sys
from contextlib import closing
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from edgekit.errors import DeviceFailureError, UsageError
from edgekit.targets.profiles import ProfileError, builtin_dir, load_profiles, parse_profile
from tests import support

BUILTIN = {"raspberry-pi-4", "raspberry-pi-5", "jetson-orin", "jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin",
           "android-arm64", "mac-apple-silicon", "linux-generic", "local"}


def _pi4() -> dict:
    return yaml.safe_load((builtin_dir() / "raspberry-pi-4.yaml").read_text())


def test_builtin_profiles_validate_and_ship_as_package_data() -> None:
    profiles = load_profiles(user=Path("/nonexistent"))
    assert set(profiles) == BUILTIN
    for name, p in profiles.items():
        assert Path(p.source).stem == name and p.builtin
        assert p.runtime("onnxruntime") is not None, name  # deploy measures with ONNX Runtime everywhere
        if name != "local":
            assert "ssh" in p.transports and p.python and {"arch"} <= set(p.facts), name
    arm = [p for p in profiles.values() if p.arch in ("aarch64", "arm64")]
    assert len(arm) == 8 and all(p.defaults.int8_preset == ("tensorrt" if p.name == "jetson-orin" else "arm")
                                 for p in arm)
    orin = profiles["jetson-orin"]  # the family target: TensorRT on the GPU, facts read from the device
    assert (orin.defaults.format, orin.defaults.precision) == ("tensorrt", "fp16") and orin.runtime("tensorrt")
    assert {"power_mode", "clocks", "l4t_release", "tensorrt", "cuda", "trtexec", "model"} <= set(orin.facts)
    assert profiles["raspberry-pi-4"].probes["throttled"].parse == "vcgencmd"
    assert profiles["jetson-orin-nano"].probes["tegrastats"].parse == "tegrastats"
    assert {"trtexec"} <= set(profiles["jetson-agx-orin"].tools) and "benchmark_model" in profiles["raspberry-pi-5"].tools
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(support.REPO / "setup.cfg")
    assert "*.yaml" in cfg["options.package_data"]["edgekit.profiles"]
    assert cfg["options"]["package_dir"].split("edgekit.profiles =")[1].split()[0] == "profiles"


@pytest.mark.parametrize("path, value, field", [
    (("runtimez",), [], "runtimez"),
    (("defaults", "threads"), "four", "defaults.threads"),
    (("defaults", "threads"), 0, "defaults.threads"),
    (("defaults", "precision"), "int4", "defaults.precision"),
    (("defaults", "format"), "tflite2", "defaults.format"),
    (("facts", "cpuinfo"), "cat /proc/cpuinfo", "facts.cpuinfo"),
    (("probes", "temperature", "parse"), "magic", "probes.temperature.parse"),
    (("transports",), ["telnet"], "transports[0]"),
    (("python",), None, "python"),
])
def test_validator_errors_name_the_file_and_the_field(path, value, field, tmp_path) -> None:
    data = _pi4()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    source = tmp_path / "my-board.yaml"
    with pytest.raises(ProfileError) as info:
        parse_profile(data, source)
    assert str(source) in info.value.message and f"`{field}`" in info.value.message and info.value.hint
    missing = _pi4()
    del missing["defaults"]
    with pytest.raises(ProfileError, match="`defaults`.*required"):
        parse_profile(missing, source)


def test_user_profiles_override_by_name_and_list_in_edgekit_targets(tmp_path, monkeypatch) -> None:
    from edgekit.cli.main import cli

    mine = _pi4()
    mine["defaults"]["threads"] = 2
    mine["description"] = "my Pi with two cores isolated"
    (tmp_path / "raspberry-pi-4.yaml").write_text(yaml.safe_dump(mine))
    board = _pi4()
    board["name"] = "my-board"
    (tmp_path / "my-board.yaml").write_text(yaml.safe_dump(board))
    monkeypatch.setenv("EDGEKIT_TARGETS_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["targets", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert set(rows) == BUILTIN | {"my-board"}
    assert rows["raspberry-pi-4"]["defaults"]["threads"] == 2 and not rows["raspberry-pi-4"]["builtin"]
    assert rows["raspberry-pi-5"]["builtin"]
    table = CliRunner().invoke(cli, ["targets"])
    assert table.exit_code == 0 and "my-board" in table.output and str(tmp_path) in table.output
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    broken = CliRunner().invoke(cli, ["targets"])
    assert broken.exit_code != 0 and "broken.yaml" in str(broken.exception)


def test_target_defaults_and_usage_errors() -> None:
    from edgekit.targets.registry import default_preset, default_threads, open_target

    assert default_preset("raspberry-pi-4") == "arm" and default_preset("jetson-orin-nx") == "arm"
    assert default_preset("linux-generic", "aarch64") == "arm" and default_preset("linux-generic", "x86_64") == "x86"
    assert default_threads("raspberry-pi-5") == 4 and default_threads("linux-generic") is None
    with pytest.raises(UsageError, match="needs the device"):
        open_target("raspberry-pi-4")
    with pytest.raises(UsageError, match="unknown target") as info:
        open_target("raspberry-pi-9", "pi@x")
    assert "raspberry-pi-5" in info.value.hint
    with pytest.raises(UsageError, match="takes no --host"):
        open_target("local", "pi@x")


def test_facts_come_back_framed_in_one_round_trip(tmp_path) -> None:
    from edgekit.targets.local import LocalTransport
    from edgekit.targets.remote_facts import device_block, run_many

    calls = []
    t = LocalTransport(tmp_path)
    real = t.run
    t.run = lambda argv, timeout=None: calls.append(argv) or real(argv, timeout)  # count round trips
    answers = run_many(t, {"plain": ["echo", "hello"], "no newline": ["printf", "%s", "a\nb"],
                           "fails": ["sh", "-c", "echo partial; exit 3"], "missing": ["edgekit-no-such-tool"],
                           "marker-like": ["printf", "@@ end plain 0\n"], "quoted": ["echo", "$(id) 'x'"]})
    assert len(calls) == 1
    assert answers["plain"] == (0, "hello\n") and answers["no newline"] == (0, "a\nb")
    assert answers["fails"] == (3, "partial\n") and answers["missing"][0] == 127
    assert answers["marker-like"] == (0, "@@ end plain 0\n") and answers["quoted"] == (0, "$(id) 'x'\n")
    cpuinfo = support.shared_path("fixtures", "raspberrypi", "proc_cpuinfo_rpi4_rev1.1_arm64_kernel6.1_epoptes_issue200.txt")
    block = device_block({"cpuinfo": cpuinfo.read_text(), "arch": "aarch64\n", "nproc": "4\n",
                          "model": "Raspberry Pi 4 Model B Rev 1.4\x00", "memory_bytes": str(4 << 30)})
    assert block["model"] == "Raspberry Pi 4 Model B Rev 1.4" and block["arch"] == "aarch64" and block["cpus"] == 4
    assert block["memory_gb"] == 4.0
    assert device_block({"cpuinfo": cpuinfo.read_text()})["model"].startswith("Raspberry Pi 4")


def test_doctor_reads_probes_runtimes_and_tools_through_the_transport(tmp_path) -> None:
    from edgekit.targets import doctor
    from edgekit.targets.local import LocalTransport

    data = _pi4()
    vcgencmd = support.shared_path("fixtures", "raspberrypi",
                                   "vcgencmd_measure_temp_get_throttled_rpi3_firmware_issue615_run1.txt")
    tegra = support.shared_path("fixtures", "jetson", "tegrastats_xavier_nx_l4t35_timestamped_mW.log")
    data["arch"] = "any"
    data["probes"] = {"throttled": {"argv": ["cat", str(vcgencmd)], "parse": "vcgencmd"},
                      "tegrastats": {"argv": ["head", "-n", "1", str(tegra)], "parse": "tegrastats"},
                      "absent": {"argv": ["edgekit-no-such-probe"], "parse": "vcgencmd"}}
    data["tools"] = {"sh": {"argv": ["sh", "-c", "command -v sh"]},
                     "benchmark_model": {"argv": ["sh", "-c", "command -v edgekit-no-such-tool"], "install": "get it"}}
    profile = parse_profile(data, tmp_path / "fake.yaml")
    with closing(LocalTransport(tmp_path / "dev")) as t:
        checks = {c.name: c for c in doctor.diagnose(t, profile, sys.executable)}
        assert checks["python"].status == "ok" and checks["onnxruntime"].status == "ok" and checks["numpy"].status == "ok"
        assert checks["disk"].status in ("ok", "warn") and "free in" in checks["disk"].value
        assert checks["throttled"].value.startswith("throttled=0x50000") and "since boot" in checks["throttled"].value
        assert "CPU 40.0 C" in checks["tegrastats"].value and checks["absent"].status == "info"
        assert checks["sh"].status == "ok" and (checks["benchmark_model"].status, checks["benchmark_model"].hint) == ("warn", "get it")
        doctor.raise_for(list(checks.values()), "here")  # nothing required is missing
        bad = doctor.diagnose(t, profile, "/nonexistent/python3")
    assert [c.name for c in doctor.failures(bad)] == ["python"]
    with pytest.raises(DeviceFailureError, match="python") as info:
        doctor.raise_for(bad, "pi@x")
    assert "--device-python" in info.value.hint

