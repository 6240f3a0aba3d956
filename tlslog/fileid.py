"""What makes a log file the same file: its identity; where caches live, and their leftovers. Standard
library only.

>>> ident = identity(Path("sample_logs/maillog"))                 # doctest: +SKIP
>>> ident.key, ident.size                                          # doctest: +SKIP
('803-1a2b3c', 184467)
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HEAD", "STALE_TMP", "Identity", "default_dir", "identity", "remove_stale_tmp"]

HEAD = 4096  #: bytes hashed to recognise a file
STALE_TMP = 3600  #: seconds after which a cache's temporary file is taken for a crashed writer's


def default_dir() -> Path:
    """``$XDG_CACHE_HOME/tlslog``, else ``~/.cache/tlslog``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tlslog"


def unusable(folder: Path) -> str | None:
    """Why ``folder`` cannot hold a cache (it cannot be made, or written in), once made; None when it can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"cannot make {folder}: {e.strerror or e}"
    return None if os.access(folder, os.W_OK | os.X_OK) else f"cannot write in {folder}"


@dataclass(frozen=True)
class Identity:
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int  #: changes with any write, chmod or utime: a rewrite that restored size and mtime shows
    head: str  #: sha1 of the first `HEAD` bytes (or of the whole file when it is shorter)

    @property
    def key(self) -> str:
        return f"{self.dev:x}-{self.ino:x}"


def identity(path: Path, head_len: int = HEAD) -> Identity | None:
    """The file's device, inode, size, mtime, ctime and a hash of its first ``head_len`` bytes (None: the
    file cannot be read)."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            head = f.read(head_len)
    except OSError:
        return None
    return Identity(
        st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, hashlib.sha1(head).hexdigest()
    )


def remove_stale_tmp(folder: Path, age: float = STALE_TMP, pattern: str = ".tmp-*") -> None:
    """Delete the files matching ``pattern`` in ``folder`` older than ``age`` seconds: left by a writer that
    was killed (younger ones may be another process's write in progress)."""
    stale = time.time() - age
    for tmp in folder.glob(pattern):
        try:
            if tmp.stat().st_mtime < stale:
                tmp.unlink()
        except OSError:  # gone meanwhile, or not ours to delete
            pass
