"""Files that hold raw conversation text or secrets are readable by their owner only.

The warehouse, its write-ahead log, spooled uploads and the webhook secret are created
0600 in 0700 folders whatever the process umask, so another account on the host cannot
read them. `restrict_umask` makes the files DuckDB and libraries create later follow.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["make_private", "make_private_tree", "private_dir", "private_file", "restrict_umask"]

FILE_MODE = 0o600
DIR_MODE = 0o700


def restrict_umask() -> int:
    """New files owner-only from now on in this process (the CLI and `convolens serve`
    call it first thing); returns the previous umask."""
    return os.umask(0o077)


def private_dir(path: Path) -> Path:
    """`path` created (with its missing parents) as an owner-only folder."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    for created in missing:  # mkdir's mode is cut by the umask; chmod is not
        created.chmod(DIR_MODE)
    return path


@contextmanager
def private_file(path: Path) -> Iterator[BinaryIO]:
    """A new file opened for writing, owner-only from its first byte (never 0644 for a
    moment, as a write-then-chmod would be). It must not exist yet."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        yield handle


def make_private(path: Path) -> None:
    """Owner-only for a file or folder made elsewhere (DuckDB makes the warehouse file)."""
    if path.exists():
        path.chmod(DIR_MODE if path.is_dir() else FILE_MODE)


def make_private_tree(root: Path) -> None:
    """`root` and everything under it owner-only (links are left alone)."""
    make_private(root)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            if not path.is_symlink():
                make_private(path)
