"""The artifact store: content-addressed, with a manifest, so that nothing is built twice.

Every pipeline step's output lives in `<root>/<id>/`, where id = sha256(parent id + step + canonical config):
the same inputs and settings give the same id, so a repeated deploy finds every artifact and reuses it. The
manifest (`<root>/manifest.json`) records each entry's step, parent, config and files with their sha256.
Entries are built in a temporary folder and renamed into place, so a failed step leaves nothing.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

MANIFEST = "manifest.json"


def default_root() -> Path:
    env = os.environ.get("EDGEKIT_STORE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgekit" / "store"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_path(path: Path) -> str:
    """sha256 of a file, or of a folder artifact (a Core ML .mlpackage): the digest of its files' relative paths
    and digests in sorted order, so the same tree always gives the same value."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{f.relative_to(path).as_posix()}\0{sha256_file(f)}\n".encode())
    return digest.hexdigest()


def path_bytes(path: Path) -> int:
    """Size of a file, or the total size of a folder's files."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def step_id(parent: str | None, step: str, config: dict[str, Any]) -> str:
    canonical = json.dumps({"parent": parent, "step": step, "config": config}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


@dataclass
class Entry:
    id: str
    step: str
    parent: str | None
    config: dict[str, Any]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"sha256", "bytes"}
    created: float = 0.0
    reused: bool = False  # set when a lookup found it, never stored

    def path(self, root: Path, name: str) -> Path:
        return root / self.id / name


class Store:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else default_root()
        self.root.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """The manifest, read and written under an exclusive lock (parallel fleet deploys share a store)."""
        with open(self.root / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            path = self.root / MANIFEST
            manifest = json.loads(path.read_text()) if path.exists() else {"schema": "edgekit.store/1", "entries": {}}
            yield manifest
            tmp = path.with_suffix(".json.part")
            tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
            os.replace(tmp, path)

    def lookup(self, entry_id: str, verify: bool = True) -> Entry | None:
        """The entry if it exists with all its files intact (sizes, and hashes when `verify`)."""
        with self._locked() as manifest:
            raw = manifest["entries"].get(entry_id)
        if raw is None:
            return None
        entry = Entry(**{k: v for k, v in raw.items() if k != "reused"})
        for name, facts in entry.files.items():
            path = entry.path(self.root, name)
            if not path.exists() or path_bytes(path) != facts["bytes"]:
                return None
            if verify and sha256_path(path) != facts["sha256"]:
                return None
        entry.reused = True
        return entry

    @contextlib.contextmanager
    def build(self, entry_id: str, step: str, parent: str | None, config: dict[str, Any]) -> Iterator[Path]:
        """Yield an empty folder to write the step's files into; they become the entry when the block ends
        without error, and vanish otherwise."""
        staging = Path(tempfile.mkdtemp(prefix=f".{entry_id}.", dir=self.root))
        try:
            yield staging
            # files, and folders that are one artifact (a Core ML .mlpackage)
            files = {p.name: {"sha256": sha256_path(p), "bytes": path_bytes(p)} for p in sorted(staging.iterdir())}
            final = self.root / entry_id
            if final.exists():
                shutil.rmtree(final)
            os.replace(staging, final)
            entry = Entry(id=entry_id, step=step, parent=parent, config=config, files=files, created=time.time())
            with self._locked() as manifest:
                manifest["entries"][entry_id] = {k: v for k, v in asdict(entry).items() if k != "reused"}
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def get(self, entry_id: str) -> Entry:
        entry = self.lookup(entry_id, verify=False)
        if entry is None:
            raise KeyError(entry_id)
        return entry
