"""What makes a log file the same file: its identity, and where caches live. Standard library only.

>>> ident = identity(Path("sample_logs/maillog"))                 # doctest: +SKIP
>>> ident.key, ident.size                                          # doctest: +SKIP
('803-1a2b3c', 184467)
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HEAD", "Identity", "default_dir", "identity"]

HEAD = 4096  #: bytes hashed to recognise a file


def default_dir() -> Path:
    """``$XDG_CACHE_HOME/tlslog``, else ``~/.cache/tlslog``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tlslog"


@dataclass(frozen=True)
class Identity:
    dev: int
    ino: int
    size: int
    mtime_ns: int
    head: str  #: sha1 of the first `HEAD` bytes (or of the whole file when it is shorter)

    @property
    def key(self) -> str:
        return f"{self.dev:x}-{self.ino:x}"


def identity(path: Path, head_len: int = HEAD) -> Identity | None:
    """The file's device, inode, size, mtime and hash of its first ``head_len`` bytes (None: unreadable)."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            head = f.read(head_len)
    except OSError:
        return None
    return Identity(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, hashlib.sha1(head).hexdigest())
