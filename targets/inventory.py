"""Fleet inventories: which devices a fleet run reaches, read by a pure function.

Two formats, both what people already keep:
- Ansible INI: `[group]` sections, `alias ansible_host=... ansible_user=... ansible_port=...` host lines,
  `[group:vars]` (group-wide variables; a host's own win), `[group:children]`, and numeric ranges
  (`pi[01:03].lab`). Hosts before any section are "ungrouped".
- YAML: a plain list (`- pi@10.0.0.2:22` or `- {name: a, host: 10.0.0.2, user: pi, port: 22}`), a mapping
  `{hosts: [...]}`, or Ansible's YAML layout (`all: {hosts: {...}, children: {g: {hosts: ..., vars: ...}}}`).
A host listed in several groups is one device (groups merged); order is first appearance.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.errors import InputError, ParseError, UsageError

_RANGE = re.compile(r"\[(\d+):(\d+)\]")


@dataclass(frozen=True)
class InventoryHost:
    alias: str  # the name reports and folders use
    hostname: str  # ansible_host, else the alias (which may be an ~/.ssh/config alias)
    user: str | None = None
    port: int | None = None
    groups: tuple[str, ...] = ()
    vars: dict = field(default_factory=dict, compare=False)

    @property
    def spec(self) -> str:
        """The `user@host[:port]` the SSH transport reads (IPv6 in brackets when a port follows)."""
        host = f"[{self.hostname}]" if ":" in self.hostname and self.port else self.hostname
        return (f"{self.user}@" if self.user else "") + host + (f":{self.port}" if self.port else "")


def _expand(pattern: str) -> list[str]:
    """Ansible's numeric ranges: pi[01:03] -> pi01, pi02, pi03 (zero padding kept)."""
    match = _RANGE.search(pattern)
    if not match:
        return [pattern]
    lo, hi = match.group(1), match.group(2)
    if int(hi) < int(lo):
        raise ParseError(f"empty range {match.group(0)} in {pattern!r}")
    width = len(lo) if lo.startswith("0") else 0
    return [x for n in range(int(lo), int(hi) + 1)
            for x in _expand(pattern[:match.start()] + str(n).zfill(width) + pattern[match.end():])]


def _host(alias: str, hvars: dict, groups: list[str], line: int | None = None) -> InventoryHost:
    port = hvars.get("ansible_port", hvars.get("port"))
    try:
        port = int(port) if port not in (None, "") else None
    except (TypeError, ValueError):
        raise ParseError(f"host {alias!r}: port {port!r} is not a number", line) from None
    if port is not None and not 0 < port < 65536:
        raise ParseError(f"host {alias!r}: port {port} is out of range", line)
    hostname = hvars.get("ansible_host", hvars.get("host")) or alias
    user = hvars.get("ansible_user", hvars.get("user"))
    if not isinstance(hostname, str) or not hostname.strip() or (user is not None and not isinstance(user, str)):
        raise ParseError(f"host {alias!r}: host and user must be text", line)
    return InventoryHost(str(alias), hostname.strip(), user, port, tuple(dict.fromkeys(groups)), dict(hvars))


def _merge(order: dict[str, tuple[dict, list[str]]], alias: str, hvars: dict, groups: list[str]) -> None:
    old_vars, old_groups = order.setdefault(alias, ({}, []))
    old_vars.update(hvars)
    old_groups.extend(g for g in groups if g not in old_groups)


def parse_ini(text: str) -> list[InventoryHost]:
    hosts: dict[str, tuple[dict, list[str]]] = {}
    lines: dict[str, int] = {}
    group_vars: dict[str, dict] = {}
    children: dict[str, list[str]] = {}
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise ParseError(f"cannot read the section header {line!r}", number)
            section, _, kind = line[1:-1].strip().partition(":")
            kind = kind or "hosts"
            if kind not in ("hosts", "vars", "children"):
                raise ParseError(f"unknown section kind {kind!r}", number, hint="use [group], [group:vars] or [group:children]")
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise ParseError(f"cannot read {line!r}: {exc}", number) from None
        if not words:
            continue
        if kind == "children":
            children.setdefault(section, []).extend(words[:1])
            continue
        pairs = words if kind == "vars" else words[1:]
        bad = [w for w in pairs if "=" not in w]
        if bad:
            raise ParseError(f"expected key=value, got {bad[0]!r}", number)
        hvars = dict(w.split("=", 1) for w in pairs)
        if kind == "vars":
            group_vars.setdefault(section, {}).update(hvars)
            continue
        for alias in _expand(words[0]):
            _merge(hosts, alias, hvars, [section])
            lines.setdefault(alias, number)
    # children: a member group's hosts belong to the parent too (parents' vars apply below the child's)
    def ancestors(group: str, seen: tuple[str, ...] = ()) -> list[str]:
        parents = [p for p, kids in children.items() if group in kids and p not in seen]
        return [a for p in parents for a in (p, *ancestors(p, seen + (group,)))]

    out = []
    for alias, (hvars, groups) in hosts.items():
        full = list(dict.fromkeys(g for grp in groups for g in (grp, *ancestors(grp))))
        merged: dict = dict(group_vars.get("all", {}))
        for group in reversed(full):
            merged.update(group_vars.get(group, {}))
        merged.update(hvars)
        out.append(_host(alias, merged, full, lines.get(alias)))
    return out


def _yaml_group(name: str, node: object, inherited: dict, hosts: dict) -> None:
    if node is None:
        return
    if not isinstance(node, dict):
        raise ParseError(f"group {name!r} must be a mapping with hosts / vars / children")
    own, kids = node.get("vars") or {}, node.get("children") or {}
    if not isinstance(own, dict) or not isinstance(kids, dict):
        raise ParseError(f"group {name!r}: vars and children must be mappings")
    gvars = {**inherited, **own}
    members = node.get("hosts") or {}
    if isinstance(members, list):
        members = {str(m): None for m in members}
    if not isinstance(members, dict):
        raise ParseError(f"hosts of group {name!r} must be a mapping or a list")
    for alias, hvars in members.items():
        if hvars is not None and not isinstance(hvars, dict):
            raise ParseError(f"host {alias!r}: its variables must be a mapping")
        for one in _expand(str(alias)):
            _merge(hosts, one, {**gvars, **(hvars or {})}, [name])
    for child, sub in kids.items():
        _yaml_group(child, sub, gvars, hosts)
        for alias in hosts:  # the child's hosts are the parent's too
            if child in hosts[alias][1] and name not in hosts[alias][1]:
                hosts[alias][1].append(name)


def parse_yaml(text: str) -> list[InventoryHost]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ParseError(f"not YAML: {getattr(exc, 'problem', exc)}", mark.line + 1 if mark else None) from None
    if isinstance(data, dict) and "hosts" in data and isinstance(data["hosts"], list):
        data = data["hosts"]
    if isinstance(data, list):
        out = []
        for item in data:
            if isinstance(item, str):
                from edgekit.targets.ssh_connect import parse_host_spec

                try:
                    user, host, port = parse_host_spec(item)
                except UsageError as exc:
                    raise ParseError(exc.message, hint=exc.hint) from None
                out.append(InventoryHost(item, host, user, port, ("ungrouped",)))
            elif isinstance(item, dict) and (item.get("name") or item.get("host") or item.get("ansible_host")):
                alias = str(item.get("name") or item.get("host") or item.get("ansible_host"))
                groups = item.get("groups") or ["ungrouped"]
                groups = [groups] if isinstance(groups, str) else [str(g) for g in groups]
                out.append(_host(alias, {k: v for k, v in item.items() if k != "name"}, groups))
            else:
                raise ParseError(f"cannot read the hosts entry {item!r}",
                                 hint="write user@host[:port] or {host: ..., user: ...}")
        return out
    if not isinstance(data, dict):
        raise ParseError("an inventory is a list of hosts or Ansible's YAML layout (all: hosts: ...)")
    hosts: dict[str, tuple[dict, list[str]]] = {}
    for name, node in data.items():
        _yaml_group(str(name), node, {}, hosts)
    return [_host(alias, hvars, groups) for alias, (hvars, groups) in hosts.items()]


def parse_inventory(text: str, fmt: str | None = None) -> list[InventoryHost]:
    """Inventory text -> hosts; `fmt` "ini" or "yaml" (guessed from the text when None)."""
    if fmt is None:  # INI unless the text is a YAML list or mapping (a bare `pi.local` line is INI)
        first = next((ln.strip() for ln in text.splitlines() if ln.strip() and ln.strip()[0] not in "#;"), "")
        fmt = "ini" if first.startswith("[") or not re.match(r"^(-\s|-$|[^=\s]+:(\s|$)|\{)", first) else "yaml"
    hosts = parse_ini(text) if fmt == "ini" else parse_yaml(text)
    aliases = [h.alias for h in hosts]
    dupes = sorted({a for a in aliases if aliases.count(a) > 1})
    if dupes:
        raise ParseError(f"hosts listed twice: {', '.join(dupes)}")
    return hosts


def read_inventory(path: Path) -> list[InventoryHost]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"inventory not found: {path}", hint="an Ansible INI or YAML hosts file")
    fmt = {".ini": "ini", ".cfg": "ini", ".yaml": "yaml", ".yml": "yaml"}.get(path.suffix.lower())
    try:
        hosts = parse_inventory(path.read_text(), fmt)
    except ParseError as exc:
        raise InputError(f"{path}: {exc.message}", hint=exc.hint or "see `edgekit deploy --help` for the formats") from None
    if not hosts:
        raise InputError(f"{path} lists no hosts", hint="add host lines, e.g. `pi-a ansible_host=10.0.0.2 ansible_user=pi`")
    return hosts
