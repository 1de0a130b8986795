"""`edgekit deploy` on a fleet: several --host, or --inventory FILE (Ansible INI / YAML). The devices run in
parallel (edgekit.targets.fleet); this module only turns the command line into hosts and prints the outcome.

    edgekit deploy -m mobilesam -t raspberry-pi-4 --host pi@10.0.0.2 --host pi@10.0.0.3 --out runs/lab
    edgekit deploy -m mobilesam -t raspberry-pi-4 --inventory lab.ini --out runs/lab
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import click

from edgekit.errors import UsageError
from edgekit.targets.inventory import InventoryHost


def fleet_hosts(target: str, hosts: Sequence[str], inventory: Path | None, models: Sequence[str]) -> list[InventoryHost]:
    """The fleet's devices, or [] when this is an ordinary one-device deploy."""
    if len(hosts) <= 1 and inventory is None:
        return []
    if target == "local":
        raise UsageError("a fleet (several --host, or --inventory) needs a device target, not local",
                         hint="e.g. --target raspberry-pi-4 --host pi@10.0.0.2 --host pi@10.0.0.3")
    if len(models) > 1:
        raise UsageError("a fleet deploys one model at a time", hint="run the fleet once per --model")
    from edgekit.targets.inventory import read_inventory
    from edgekit.targets.ssh_connect import parse_host_spec

    out = list(read_inventory(inventory)) if inventory is not None else []
    for spec in hosts:
        user, host, port = parse_host_spec(spec)
        out.append(InventoryHost(spec, host, user, port, ("command-line",)))
    return out


def deploy_fleet_cli(cfg: "DeployConfig", hosts: Sequence[InventoryHost], as_json: bool) -> None:
    """Run the fleet, print one line per device (or JSON), and let FleetError (exit 8) say who failed."""
    from edgekit.targets.fleet import FleetError, deploy_fleet

    try:
        results = deploy_fleet(cfg, hosts)
    except FleetError as exc:
        _show(exc.results, cfg.out, as_json)
        raise
    _show(results, cfg.out, as_json)


def _show(results: list, root: Path, as_json: bool) -> None:
    from edgekit.targets.fleet import FLEET_JSON, results_json

    if as_json:
        click.echo(results_json(results))
        return
    for r in results:
        if r.ok:
            lat = r.report["latency_ms"]
            click.echo(f"{r.alias:<24} ok      {r.report['part']} mean {lat['mean']:10.2f} ms  "
                       f"({r.seconds:.0f} s)  {r.run_dir / 'report.html'}")
        else:
            click.echo(f"{r.alias:<24} FAILED  {r.status.name.lower()}: {r.brief}")
    done = sum(r.ok for r in results)
    click.echo(f"{done} of {len(results)} devices finished: {root / FLEET_JSON}"
               + (f", comparison {root / 'compare.html'}" if done > 1 else ""))
