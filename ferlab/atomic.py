"""Files written whole or not at all: a killed run, a full disk or a Ctrl-C leaves the
previous file (or none) in place, never half of one."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to. Leaving the block normally renames
    it onto ``path`` (atomic within one file system); leaving it by an exception removes it.

    The temporary name is this writer's own: the ranks of one torchrun job may cache the same
    CSV at once, and with a shared name one rank's rename took the file from under the other.
    It keeps ``path``'s suffix, from which OpenCV picks the image format and NumPy decides
    whether to append ``.npz``. Like ``open(path, "w")``, the file gets the umask's mode."""
    tmp = temporary_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def temporary_beside(path: str | os.PathLike) -> Path:
    """A name for a temporary file beside ``path``, this writer's own, with ``path``'s suffix
    (see `atomic_write`)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.{secrets.token_hex(6)}.tmp{path.suffix}")


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """``Path(path).write_text(text)``, whole or not at all (see `atomic_write`)."""
    with atomic_write(path) as tmp:
        tmp.write_text(text)
    return Path(path)
