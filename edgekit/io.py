"""File input and output shared by the commands: images in, atomic writes out (nothing half-written)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from edgekit.errors import InputError


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file -> HxWx3 uint8 RGB, as the official predictors decode it (PIL, convert('RGB'))."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image not found: {path}", hint="pass the path of a JPEG/PNG file")
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"cannot read image {path}: {exc}", hint="pass a readable JPEG/PNG/BMP/WebP image") from None


def ensure_writable_dir(path: str | Path, option: str = "--out") -> None:
    """Check, before any long work starts, that `path` is a folder this process can write into, or one it can
    create; raise InputError naming the path and the fix otherwise. The check creates a probe folder where the
    first write would go and removes it again: it leaves nothing behind, and creates nothing (the folder itself
    is made by whoever writes into it). Permission bits are not trusted (root, read-only mounts, /proc): only a
    real write attempt is."""
    given = Path(path)
    full = Path(os.path.abspath(given))
    fix = f"pass {option} a folder you can write to (it is created if missing)"
    if os.path.lexists(full) and not full.is_dir():
        raise InputError(f"{option} {given} is not a folder (a file is in the way)", hint=fix)
    parent = full
    while not os.path.lexists(parent):  # the nearest existing ancestor: where the first missing folder would be made
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"cannot create {option} {given}: {parent} is a file, not a folder", hint=fix)
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".edgekit-probe-", dir=parent))
    except OSError as exc:
        raise InputError(f"cannot write to {option} {given}: creating a folder in {parent} failed "
                         f"({exc.strerror or exc})", hint=f"{fix}; {parent} is not writable for this user") from None


def commit_all(files: "dict[Path, Callable[[Path], None]]") -> None:
    """Write several outputs so that either all appear or none: each goes to a temporary file first, and the
    renames happen only once every write has succeeded."""
    staged: list[tuple[Path, Path]] = []
    try:
        for target, write in files.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
            os.close(fd)
            staged.append((Path(tmp), target))
            write(Path(tmp))
        for tmp, target in staged:
            os.replace(tmp, target)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
