"""File input and output shared by the commands: images in, atomic writes out (nothing half-written)."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

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


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; it replaces `target` only if the block finishes."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


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
