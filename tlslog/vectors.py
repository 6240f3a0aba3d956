"""Vectorised helpers over pandas columns: integer codes instead of strings, functions applied once per
distinct value, stable orders by integer keys, and backward as-of lookups by key.

numpy and pandas only; the linked tables (`tlslog.linking`) and the figures built on them use these so
that the work per row stays in numpy and Python runs once per distinct value.

>>> col = pd.Series(["b", "a", None, "b"], dtype="category")
>>> is_one_of(col, "b").tolist()
[True, False, False, True]
>>> map_unique(str.upper, pd.Series(["x", "y", "x"], dtype="str")).tolist()
['X', 'Y', 'X']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "as_text",
    "asof",
    "codes",
    "is_one_of",
    "joint",
    "map_unique",
    "per_value",
    "stable_order",
    "take_rows",
    "text_of",
]

# a dense code space up to this size is renumbered with a table instead of a hash
_TABLE_LIMIT = 1 << 22


def _is_categorical(col: object) -> bool:
    return isinstance(getattr(col, "dtype", None), pd.CategoricalDtype)


def codes(col: pd.Series | np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes of a column's values (-1 where missing) and how many distinct codes there can be.

    Categoricals give their own codes (no hashing); other columns are factorised.
    """
    if _is_categorical(col):
        cat = col.cat if isinstance(col, pd.Series) else col
        return np.asarray(cat.codes), len(col.dtype.categories)
    if isinstance(col, np.ndarray) and col.dtype.kind in "iu" and len(col):
        low, high = int(col.min()), int(col.max())
        if high - low < max(_TABLE_LIMIT, 4 * len(col)):  # small integers are their own codes
            return col.astype(np.int64) - low, high - low + 1
    values, uniques = pd.factorize(col, use_na_sentinel=True)
    return values, len(uniques)


def _dense(key: np.ndarray, space: int) -> np.ndarray:
    """Non-negative ``key`` values renumbered 0..k-1 (any order)."""
    if space <= max(_TABLE_LIMIT, 4 * len(key)):
        present = np.zeros(space, dtype=bool)
        present[key] = True
        return (np.cumsum(present) - 1)[key]
    return pd.factorize(key)[0].astype(np.int64)


def _combined(cols: Sequence[pd.Series | np.ndarray], limit: int) -> tuple[np.ndarray, int]:
    """Non-negative codes of the joint values of several columns and their range (below ``limit``)."""
    n = len(cols[0])
    key = np.zeros(n, dtype=np.int64)
    space = 1
    for col in cols:
        c, size = codes(col)
        if space * (size + 1) >= limit:
            key, space = _dense(key, space), n
        key = key * (size + 1) + c.astype(np.int64) + 1
        space *= size + 1
    return key, space


def joint(*cols: pd.Series | np.ndarray) -> np.ndarray:
    """Dense codes (0..k-1) of the joint values of several columns; missing is a value too.

    Equal codes mean equal values in every column; the numbering itself carries no order.
    """
    key, space = _combined(cols, 1 << 62)
    return _dense(key, space) if len(key) else key


def _python(col: pd.Series) -> list:
    """The values of a (short) column as Python objects, ``None`` where missing."""
    values = pd.Series(col).astype(object)
    return values.where(values.notna(), None).tolist()


def per_value(fn: Callable[..., object], *cols: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``fn(*values)`` once per distinct combination of values: ``(results, codes)``, where
    ``results[codes]`` is the answer for each row. ``fn`` gets ``None`` for a missing value."""
    key = joint(*cols)
    k = int(key.max()) + 1 if len(key) else 0
    rep = np.empty(k, dtype=np.int64)
    rep[key] = np.arange(len(key))  # any row of each combination: they all hold the same values
    order = np.argsort(rep, kind="stable")  # call in row order, for a reproducible sequence of calls
    values = [_python(pd.Series(col).iloc[rep[order]]) for col in cols]
    results = np.empty(k, dtype=object)
    for i, args in zip(order, zip(*values, strict=True), strict=True):
        results[i] = fn(*args)
    return results, key


def map_unique(fn: Callable[..., object], *cols: pd.Series, dtype: str | None = None) -> np.ndarray:
    """``fn(*values)`` for each row, calling ``fn`` once per distinct combination of values.

    An object array, or a pandas array of ``dtype`` (built from the few results, then spread by position).
    """
    results, key = per_value(fn, *cols)
    if dtype is None:
        return results[key]
    return pd.array(list(results), dtype=dtype).take(key)


def is_one_of(col: pd.Series, *values: str) -> np.ndarray:
    """Rows whose value is one of ``values`` (never a missing one), as a bool array."""
    if _is_categorical(col):
        hit = np.flatnonzero(col.cat.categories.isin(values)).tolist()
        found = np.zeros(len(col), dtype=bool)
        codes = np.asarray(col.cat.codes)
        for code in hit:  # compared as Python ints, the codes keep their small dtype
            found |= codes == code
        return found
    return col.isin(values).to_numpy(dtype=bool)


def text_of(col: pd.Series) -> pd.api.extensions.ExtensionArray:
    """Any column's values as a pandas ``str`` array (missing stays missing).

    A categorical's few categories are converted once and spread by code, instead of converting each row.
    """
    if _is_categorical(col):
        cats = pd.array(col.cat.categories.astype("str"), dtype="str")
        return cats.take(np.asarray(col.cat.codes, dtype=np.int64), allow_fill=True)
    return col.astype("str").array


def as_text(col: pd.Series) -> pd.Series:
    """Any column as a pandas ``str`` Series (categories and NaN preserved as missing)."""
    return pd.Series(text_of(col), index=col.index, name=col.name, copy=False)


def take_rows(frame: pd.DataFrame, rows: np.ndarray, columns: Sequence[str]) -> pd.DataFrame:
    """Some rows and columns of a frame (one copy of just those; absent columns left out)."""
    return frame.iloc[rows, [frame.columns.get_loc(c) for c in columns if c in frame.columns]]


def stable_order(key: np.ndarray) -> np.ndarray:
    """``np.argsort(key, kind="stable")`` for integers, by 16-bit radix passes (linear time)."""
    key = np.asarray(key, dtype=np.int64)
    if len(key):
        key = key - key.min()  # the same order, in as few 16-bit digits as the range needs
    top = int(key.max()) if len(key) else 0
    order = np.arange(len(key))
    shift = 0
    while True:
        digit = ((key[order] >> shift) & 0xFFFF).astype(np.uint16)
        order = order[np.argsort(digit, kind="stable")]  # numpy sorts 16-bit integers by radix
        shift += 16
        if top >> shift == 0:
            return order


def asof(
    left_on: np.ndarray,
    left_by: Sequence[np.ndarray],
    right_on: np.ndarray,
    right_by: Sequence[np.ndarray],
    *,
    allow_exact: bool = True,
) -> np.ndarray:
    """For each left row, the position in the right arrays of the row with equal ``by`` keys and the
    greatest ``on`` at or before the left one's (before it when not ``allow_exact``), or -1.

    ``on`` values are non-negative integers (row numbers); ``by`` keys are integer arrays.
    """
    nl, nr = len(left_on), len(right_on)
    if nl == 0 or nr == 0:
        return np.full(nl, -1, dtype=np.int64)
    span = int(max(np.max(left_on), np.max(right_on))) + 1
    by = [np.concatenate([lb, rb]) for lb, rb in zip(left_by, right_by, strict=True)]
    group = _combined(by, (1 << 62) // span)[0] if by else np.zeros(nl + nr, dtype=np.int64)
    right_on = np.asarray(right_on, dtype=np.int64)
    right = group[nl:] * span + right_on
    # by group, then on: right rows usually come in order already, and then a radix sort by group does it
    in_order = bool(np.all(right_on[1:] >= right_on[:-1]))
    order = stable_order(group[nl:]) if in_order else np.argsort(right, kind="stable")
    right = right[order]
    left = group[:nl] * span + np.asarray(left_on, dtype=np.int64)
    at = np.searchsorted(right, left, side="right" if allow_exact else "left") - 1
    hit = at >= 0
    hit[hit] = right[at[hit]] // span == group[:nl][hit]
    return np.where(hit, order[np.maximum(at, 0)], -1)
