"""The install layout: every package folder is listed in setup.cfg, and nothing installs top-level
`targets` or `quant` modules (they ship as edgekit.targets / edgekit.quant)."""
from __future__ import annotations

import configparser
from pathlib import Path

from tests.support import REPO


def _declared() -> tuple[set[str], dict[str, str]]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    packages = {p.strip() for p in cfg["options"]["packages"].split() if p.strip()}
    dirs = {}
    for line in cfg["options"]["package_dir"].strip().splitlines():
        name, _, folder = line.partition("=")
        dirs[name.strip()] = folder.strip()
    return packages, dirs


def test_every_package_folder_is_declared() -> None:
    packages, dirs = _declared()
    assert set(dirs) == {"edgekit", "edgekit.targets", "edgekit.quant", "edgekit.profiles"}
    found = set()
    for root_name, folder in dirs.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([root_name, *rel.parts]) if rel.parts else root_name)
    assert found == packages, f"declare in setup.cfg: {sorted(found - packages)}; stale: {sorted(packages - found)}"


def test_namespaces_import_from_the_project_folders() -> None:
    import edgekit.quant
    import edgekit.targets

    assert Path(edgekit.targets.__file__).parent == REPO / "targets"
    assert Path(edgekit.quant.__file__).parent == REPO / "quant"
