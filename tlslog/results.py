"""The result cache: the tables a report command computed from the events, kept for the next run.

A result (a frame, or a dict of frames and scalars) is stored with the parse issues and read stats of its
input, under a key of everything it depends on: each source's name and identity (`tlslog.fileid.identity`:
device, inode, size, mtime, ctime, first block), the read options, the machine's time zone (its rules
too), the command and its options, and the code (every module and template of the package; the pandas,
pyarrow, pyparsing and publicsuffixlist versions). A run with the same key loads the result instead of
reading, linking and aggregating again.

An entry is one Parquet file in ``<cache dir>/results/``: the frames side by side (column ``"{frame}.{n}"``,
shorter frames padded with nulls), and in the file's metadata each frame's row count and pandas metadata,
the scalars, the issues and the stats. An entry is stored only when it reads back equal to what was
computed (dtypes included) and the sources did not change during the read. Writes are atomic (temporary
file, then `os.replace`); a damaged entry is a miss, an unwritable directory means no caching, never an
error; the `MAX_ENTRIES` most recently used entries are kept.

>>> store = ResultCache.open("~/.cache/tlslog")                                     # doctest: +SKIP
>>> key = store.key(expand("/var/log/maillog"), {"year": 2026}, "peers", {"top": 20})  # doctest: +SKIP
>>> entry = store.load(key)                                                           # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .fileid import default_dir, identity, remove_stale_tmp
from .records import ParseIssue
from .sources import Source

__all__ = ["MAX_ENTRIES", "Entry", "ResultCache", "code_version"]

MAX_ENTRIES = 64
FOLDER = "results"  #: below the cache directory, apart from the events cache and its own pruning
_LAYOUT = 1  #: version of the entry layout below
_PACKAGES = ("pandas", "pyarrow", "pyparsing", "publicsuffixlist")  # the last: peer domains
_LOCALTIME = "/etc/localtime"
# what a damaged entry may raise while it is read or decoded: any of these is a miss
_DAMAGE = (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, pa.ArrowException)


@dataclass
class Entry:
    """A command's result and what the read that fed it reported.

    ``value`` is a DataFrame, or a dict whose values are frames, None, bools, numbers, strings,
    `pandas.Timestamp`s, and lists or dicts of these.
    """

    value: Any
    issues: Sequence[ParseIssue] = ()
    stats: dict = field(default_factory=dict)


@functools.cache
def code_version() -> str:
    """A digest of every module and template of the package and of the versions of pandas, pyarrow,
    pyparsing and publicsuffixlist: a change to any of them makes every stored result a miss."""
    h = hashlib.sha1()
    for package in _PACKAGES:
        try:
            h.update(f"{package}={metadata.version(package)};".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{package}=?;".encode())
    here = Path(__file__).parent
    for path in sorted([*here.glob("*.py"), *here.glob("templates/*")]):
        h.update(f"{path.relative_to(here)}\0".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _local_zone() -> list:
    """What naive local times depend on (file mtimes as dates, naive --since, the zone of naive lines)."""
    try:  # the rules, not the path: the file may be a copy, replaced by another zone's
        with open(_LOCALTIME, "rb") as f:
            zone_file = hashlib.sha1(f.read()).hexdigest()
    except OSError:
        zone_file = None
    return [os.environ.get("TZ"), list(time.tzname), time.timezone, time.altzone, zone_file]


def _files(sources: Sequence[Source]) -> list | None:
    """Each source's name and identity, in order; None when one is not a regular file (stdin, a pipe)."""
    out = []
    for src in sources:
        if src.path is None:
            return None
        try:
            if not stat.S_ISREG(os.stat(src.path).st_mode):  # before `identity`: opening a FIFO blocks
                return None
        except OSError:
            return None
        ident = identity(src.path)
        if ident is None:
            return None
        out.append([src.name, *dataclasses.astuple(ident)])
    return out


class ResultCache:
    """The ``results`` folder of a cache directory; `open` gives None when it cannot be used."""

    def __init__(self, folder: Path):
        self.folder = folder

    @classmethod
    def open(cls, cache_dir: str | os.PathLike | None = None) -> ResultCache | None:
        """The result cache under ``cache_dir`` (default: `tlslog.fileid.default_dir`), created if needed."""
        base = Path(os.path.expanduser(cache_dir)) if cache_dir is not None else default_dir()
        folder = base / FOLDER
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return None
        return cls(folder)

    @staticmethod
    def key(sources: Sequence[Source], read: Mapping, command: str, options: Mapping) -> str | None:
        """The key of ``command`` run with ``options`` on ``sources`` read with ``read`` (year, since...);
        None when a source is not a regular file, which is never cached.

        Options are compared as JSON (tuples as lists, enums by value).
        """
        files = _files(sources)
        if files is None:
            return None
        doc = {
            "layout": _LAYOUT,
            "code": code_version(),
            "zone": _local_zone(),
            "files": files,
            "read": read,
            "command": command,
            "options": options,
        }
        return hashlib.sha1(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()

    def _file(self, key: str) -> Path:
        return self.folder / f"{key}.parquet"

    def load(self, key: str) -> Entry | None:
        """The entry stored under ``key``, or None (missing or damaged)."""
        path = self._file(key)
        entry = _read(path, key)
        if entry is not None:
            with contextlib.suppress(OSError):
                os.utime(path)  # recently used: pruned last
        return entry

    def store(self, key: str, entry: Entry) -> bool:
        """Store ``entry`` under ``key``; False (and nothing stored) when it cannot be written or would not
        read back equal."""
        try:
            table = _encode(key, entry)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".parquet")
            os.close(fd)
        except (OSError, TypeError, ValueError, pa.ArrowException):
            return False
        try:
            pq.write_table(table, tmp, compression="none")
            back = _read(Path(tmp), key)
            if back is None or not _same(entry.value, back.value):
                return False
            os.replace(tmp, self._file(key))
        except (OSError, pa.ArrowException):
            return False
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._prune()
        return True

    def _prune(self) -> None:
        try:
            entries = [(p.stat().st_mtime, p) for p in self.folder.glob("[!.]*.parquet")]
            for _, old in sorted(entries)[:-MAX_ENTRIES]:
                old.unlink(missing_ok=True)
        except OSError:
            pass
        remove_stale_tmp(self.folder)


# -- encoding ----------------------------------------------------------------------------------------


def _encode(key: str, entry: Entry) -> pa.Table:
    """One table: every frame's columns side by side; the layout, scalars, issues and stats as metadata."""
    frames: list[pd.DataFrame] = []
    tree = _pack(entry.value, frames)
    tables = [pa.Table.from_pandas(_without_attrs(df)) for df in frames]
    rows = max((t.num_rows for t in tables), default=0)
    columns, names, layout = [], [], []
    for n, (df, t) in enumerate(zip(frames, tables, strict=True)):
        pandas_meta = json.loads(t.schema.metadata[b"pandas"])
        arrow = [c for c in df.columns if isinstance(df[c].dtype, pd.ArrowDtype)]
        for col in pandas_meta["columns"]:
            if col["name"] in arrow:  # pandas cannot read names such as list<item: string>[pyarrow] back
                col["numpy_type"] = "object"
        categories = {  # empty columns and empty categories do not come back as they were
            c: [str(df[c].cat.categories.dtype), df[c].cat.categories.tolist(), bool(df[c].cat.ordered)]
            for c in df.columns
            if isinstance(df[c].dtype, pd.CategoricalDtype)
        }
        layout.append(
            {
                "rows": t.num_rows,
                "names": t.column_names,
                "pandas": pandas_meta,
                "arrow": arrow,
                "categories": categories,
            }
        )
        for i, col in enumerate(t.columns):
            pad = rows - t.num_rows
            columns.append(pa.chunked_array([*col.chunks, pa.nulls(pad, col.type)], col.type) if pad else col)
            names.append(f"{n}.{i}")
    meta = {
        "key": key,
        "value": tree,
        "frames": layout,
        "issues": [[i.source, i.lineno, i.reason, i.text] for i in entry.issues],
        "stats": entry.stats,
    }
    text = json.dumps(meta, ensure_ascii=False, default=_plain)
    return pa.table(columns, names=names).replace_schema_metadata({"tlslog": text})


def _without_attrs(df: pd.DataFrame) -> pd.DataFrame:
    """``attrs`` (the events' issues, carried along by pandas) are not part of a result."""
    if not df.attrs:
        return df
    out = df.copy(deep=False)
    out.attrs = {}
    return out


def _plain(value: object) -> object:
    """JSON for the numpy scalars and tuples that stats may hold."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__}")


def _pack(value: object, frames: list[pd.DataFrame]) -> object:
    """``value`` as JSON, frames replaced by ``{"$frame": n}`` (appended to ``frames``)."""
    if isinstance(value, pd.DataFrame):
        frames.append(value)
        return {"$frame": len(frames) - 1}
    if value is pd.NaT:
        return {"$time": None}
    if isinstance(value, pd.Timestamp):
        return {
            "$time": value.isoformat(),
            "tz": None if value.tz is None else str(value.tz),
            "unit": value.unit,
        }
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_pack(v, frames) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"$dict": {k: _pack(v, frames) for k, v in value.items()}}
    raise TypeError(f"cannot store {type(value).__name__}")


def _unpack(tree: object, frames: list[pd.DataFrame]) -> object:
    if isinstance(tree, list):
        return [_unpack(v, frames) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "$frame" in tree:
        return frames[tree["$frame"]]
    if "$time" in tree:
        if tree["$time"] is None:
            return pd.NaT
        ts = pd.Timestamp(tree["$time"]).as_unit(tree["unit"])
        return ts if tree["tz"] is None else ts.tz_convert(tree["tz"])
    return {k: _unpack(v, frames) for k, v in tree["$dict"].items()}


def _read(path: Path, key: str) -> Entry | None:
    try:
        with pq.ParquetFile(path) as f:  # not pq.read_table: it imports pyarrow.dataset (30 ms)
            table = f.read()
        meta = json.loads(table.schema.metadata[b"tlslog"])
        if meta["key"] != key:
            return None
        frames = [_frame(table, n, spec) for n, spec in enumerate(meta["frames"])]
        value = _unpack(meta["value"], frames)
        issues = [ParseIssue(*i) for i in meta["issues"]]
        return Entry(value, issues, meta["stats"])
    except _DAMAGE:
        return None


def _frame(table: pa.Table, n: int, spec: dict) -> pd.DataFrame:
    rows = spec["rows"]
    columns = [table.column(f"{n}.{i}").slice(0, rows) for i in range(len(spec["names"]))]
    t = pa.table(columns, names=spec["names"]).replace_schema_metadata({"pandas": json.dumps(spec["pandas"])})
    df = t.to_pandas()
    restored: dict[str, Any] = {c: pd.arrays.ArrowExtensionArray(t.column(c)) for c in spec["arrow"]}
    for c, (dtype, labels, ordered) in spec["categories"].items():
        was = pd.CategoricalDtype(pd.Index(labels, dtype=dtype), ordered=ordered)
        now = df[c].dtype
        if (
            not isinstance(now, pd.CategoricalDtype)
            or now != was
            or now.categories.dtype != was.categories.dtype
        ):
            restored[c] = df[c].astype(was)
    for c, values in restored.items():
        df[c] = values
    return df


def _same(a: object, b: object) -> bool:
    """``a`` and ``b`` are equal, frames with the same dtypes, timestamps in the same zone and unit."""
    if isinstance(a, pd.DataFrame):
        if not isinstance(b, pd.DataFrame):
            return False
        from pandas.testing import assert_frame_equal  # only when storing

        try:
            assert_frame_equal(a, b, check_exact=True, check_categorical=True)
        except AssertionError:
            return False
        return True
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, pd.Timestamp):
        return isinstance(b, pd.Timestamp) and a == b and str(a.tz) == str(b.tz) and a.unit == b.unit
    if a is pd.NaT or (isinstance(a, float) and a != a):
        return b is a or (isinstance(b, float) and b != b)
    a = a.item() if isinstance(a, np.generic) else a
    return type(a) is type(b) and a == b  # a str enum comes back as a str: not the same
