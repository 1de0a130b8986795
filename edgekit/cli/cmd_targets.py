"""`edgekit targets`: the device profiles edgekit knows, built-in and the user's own."""
from __future__ import annotations

import json

import click


@click.command("targets")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON (every field of every profile).")
def targets(as_json: bool) -> None:
    """List the target profiles: how each device is reached, its runtimes, and the defaults a deploy uses there
    (format, precision, threads, INT8 preset). Built-ins ship with edgekit; add your own (or override one by
    name) as YAML in ~/.config/edgekit/targets/ ($EDGEKIT_TARGETS_DIR), copying a built-in as a start.

    \b
    Examples:
      edgekit targets
      edgekit targets --json
      edgekit deploy --model mobilesam --target raspberry-pi-4 --host pi@raspberrypi.local
    """
    from edgekit.targets.profiles import builtin_dir, load_profiles, user_dir

    profiles = load_profiles()
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in profiles.values()], indent=2))
        return
    header = (f"{'name':<18} {'via':<10} {'arch':<8} {'runtimes':<22} {'format':<6} {'prec':<5} {'threads':>7} "
              f"{'int8':<8} source")
    click.echo(header)
    click.echo("-" * len(header))
    for p in sorted(profiles.values(), key=lambda p: (not p.builtin, p.name)):
        d = p.defaults
        click.echo(f"{p.name:<18} {','.join(p.transports):<10} {p.arch:<8} {','.join(r.name for r in p.runtimes):<22} "
                   f"{d.format:<6} {d.precision:<5} {d.threads if d.threads else 'all':>7} {d.int8_preset:<8} "
                   f"{'built-in' if p.builtin else p.source}")
    click.echo(f"built-in profiles: {builtin_dir()}; yours: {user_dir()}/*.yaml (same name overrides)")
