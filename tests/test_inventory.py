"""Fleet inventories (targets/inventory.py): Ansible INI and YAML, read by a pure function."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.errors import InputError, ParseError
from edgekit.targets.inventory import InventoryHost, parse_inventory, read_inventory

INI = """
# the lab
bench.local

[pis]
pi-a ansible_host=10.0.0.2 ansible_user=pi ansible_port=2222
pi-b ansible_host=10.0.0.3   # inline comment
pi[07:09].lab

[jetsons]
orin ansible_host=10.0.1.5 ansible_user="nvidia user"

[pis:vars]
ansible_user=pi
ansible_port=22

[all:vars]
ansible_user=root

[edge:children]
pis
jetsons
"""


def by_alias(hosts: list[InventoryHost]) -> dict[str, InventoryHost]:
    return {h.alias: h for h in hosts}


def test_ini_groups_vars_ranges_and_precedence() -> None:
    hosts = parse_inventory(INI)
    assert [h.alias for h in hosts] == ["bench.local", "pi-a", "pi-b", "pi07.lab", "pi08.lab", "pi09.lab", "orin"]
    h = by_alias(hosts)
    # a host's own vars beat its group's, which beat [all:vars]
    assert (h["pi-a"].hostname, h["pi-a"].user, h["pi-a"].port) == ("10.0.0.2", "pi", 2222)
    assert (h["pi-b"].hostname, h["pi-b"].user, h["pi-b"].port) == ("10.0.0.3", "pi", 22)
    assert h["pi08.lab"].hostname == "pi08.lab" and h["pi08.lab"].user == "pi"
    assert h["orin"].user == "nvidia user" and h["orin"].port is None
    assert (h["bench.local"].user, h["bench.local"].groups) == ("root", ("ungrouped",))
    assert h["pi-a"].groups == ("pis", "edge") and h["orin"].groups == ("jetsons", "edge")
    assert h["pi-a"].spec == "pi@10.0.0.2:2222" and h["bench.local"].spec == "root@bench.local"


def test_a_host_in_two_groups_is_one_device() -> None:
    hosts = parse_inventory("[a]\npi ansible_host=10.0.0.2\n[b]\npi ansible_user=me\n")
    assert len(hosts) == 1 and hosts[0].groups == ("a", "b") and hosts[0].spec == "me@10.0.0.2"


def test_yaml_ansible_layout() -> None:
    text = """
all:
  vars: {ansible_user: pi}
  hosts:
    bench: {ansible_host: 192.168.1.9, ansible_user: root}
  children:
    pis:
      vars: {ansible_port: 2200}
      hosts:
        pi-a: {ansible_host: 10.0.0.2}
        pi-b:
    jetsons:
      hosts: {orin: {ansible_host: "fe80::1", ansible_port: 22}}
"""
    h = by_alias(parse_inventory(text))
    assert h["bench"].spec == "root@192.168.1.9"
    assert h["pi-a"].spec == "pi@10.0.0.2:2200" and set(h["pi-a"].groups) == {"pis", "all"}
    assert h["pi-b"].hostname == "pi-b" and h["pi-b"].port == 2200
    assert h["orin"].spec == "pi@[fe80::1]:22"


def test_yaml_plain_lists() -> None:
    hosts = parse_inventory("- pi@10.0.0.2\n- root@10.0.0.3:2222\n- {name: orin, host: 10.0.1.5, user: nvidia}\n")
    assert [h.spec for h in hosts] == ["pi@10.0.0.2", "root@10.0.0.3:2222", "nvidia@10.0.1.5"]
    assert hosts[2].alias == "orin"
    assert [h.spec for h in parse_inventory("hosts:\n  - a@b\n  - c\n")] == ["a@b", "c"]


def test_format_is_guessed_and_bare_names_are_ini() -> None:
    assert [h.alias for h in parse_inventory("pi.local\norin.local\n")] == ["pi.local", "orin.local"]
    assert parse_inventory("pi ansible_host=10.0.0.2\n")[0].hostname == "10.0.0.2"
    assert parse_inventory("- pi.local\n")[0].alias == "pi.local"


@pytest.mark.parametrize("text, fmt, needle", [
    ("[pis\npi\n", "ini", "section header"),
    ("[pis:bogus]\n", "ini", "unknown section kind"),
    ("pi ansible_host\n", "ini", "key=value"),
    ("pi ansible_port=twenty\n", "ini", "not a number"),
    ("pi ansible_port=70000\n", "ini", "out of range"),
    ("pi ansible_host='unclosed\n", "ini", "cannot read"),
    ("pi[5:1]\n", "ini", "empty range"),
    ("[a]\npi\n[b]\npi\n", "yaml", "not YAML"),
    ("all: [1, 2]\n", "yaml", "must be a mapping"),
    ("- 42\n", "yaml", "cannot read the hosts entry"),
    ("- {name: x, host: 10.0.0.1, port: -3}\n", "yaml", "out of range"),
    ("- a@b\n- a@b\n", "yaml", "listed twice"),
])
def test_malformed_inventories_raise_parse_error(text: str, fmt: str, needle: str) -> None:
    with pytest.raises(ParseError, match=needle):
        parse_inventory(text, fmt)


def test_read_inventory_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "fleet.yml").write_text("- pi@10.0.0.2\n")
    assert read_inventory(tmp_path / "fleet.yml")[0].user == "pi"
    (tmp_path / "bad.ini").write_text("[x\n")
    with pytest.raises(InputError, match="bad.ini"):
        read_inventory(tmp_path / "bad.ini")
    (tmp_path / "empty.ini").write_text("# nothing\n")
    with pytest.raises(InputError, match="no hosts"):
        read_inventory(tmp_path / "empty.ini")
    with pytest.raises(InputError, match="not found"):
        read_inventory(tmp_path / "missing.ini")


def test_fuzzed_inventories_raise_only_parse_error() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    pieces = st.sampled_from(["[", "]", ":vars", ":children", "=", "ansible_host", "ansible_port", "pi", "[1:3]",
                              "\n", " ", "'", '"', "#", "- ", "all:", "  hosts:", "  vars:", "  children:", "[1]", "{", "}",
                              "@", ":22", "-1", "\t", "ansible_user: x"])

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.one_of(pieces, st.text(max_size=4)), max_size=30), st.sampled_from([None, "ini", "yaml"]))
    def check(parts: list[str], fmt: str | None) -> None:
        try:
            hosts = parse_inventory("".join(parts), fmt)
        except ParseError:
            return
        for host in hosts:
            assert host.alias and isinstance(host.spec, str)

    check()
