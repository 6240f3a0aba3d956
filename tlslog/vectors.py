"""Vectorised helpers over pandas columns: integer codes instead of strings, functions applied once per
distinct value, stable orders by integer keys, and backward as-of lookups by key.

numpy, pandas and Arrow arrays only; the linked tables (`tlslog.linking`) and the figures built on them use
these so that the work per row stays in numpy and Python runs once per distinct value.

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
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "as_text",
    "asof",
    "categorical",
    "codes",
    "factorize_text",
    "is_one_of",
    "joint",
    "last_wins",
    "map_unique",
    "per_value",
    "series_at",
    "stable_order",
    "take_or",
    "take_rows",
    "text_at",
    "text_of",
    "values_at",
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


def factorize_text(col: pd.Series) -> tuple[np.ndarray, pd.api.extensions.ExtensionArray]:
    """``pd.factorize(col)`` of a text column: int32 codes (-1 where missing) and the distinct values (a
    ``str`` array), in order of appearance. An Arrow column is encoded chunk by chunk (none joined)."""
    values = col.array
    if isinstance(values, pd.arrays.ArrowStringArray):
        chunks = pc.dictionary_encode(values.__arrow_array__()).chunks
        if chunks and all(c.dictionary.equals(chunks[0].dictionary) for c in chunks):  # one shared dictionary
            found = np.concatenate([c.indices.fill_null(-1).to_numpy() for c in chunks])
            return found.astype(np.int32, copy=False), text_of(pd.Series(chunks[0].dictionary))
    found, uniques = pd.factorize(col, use_na_sentinel=True)
    return found.astype(np.int32), text_of(pd.Series(uniques))


def _dense(key: np.ndarray, space: int) -> np.ndarray:
    """Non-negative ``key`` values renumbered 0..k-1 (any order)."""
    if space <= max(_TABLE_LIMIT, 4 * len(key)):
        present = np.zeros(space, dtype=bool)
        present[key] = True
        number = np.cumsum(present, dtype=np.int32 if space < 1 << 31 else np.int64)
        number -= 1
        return number[key].astype(np.int64)
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
        key *= size + 1  # (in place: key is always an array of our own)
        key += c
        key += 1
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


def _chunk_take(values: pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
    """``values`` at ``rows`` (null at -1), taken chunk by chunk: Arrow joins the chunks of a chunked array
    to take from it, so a few rows of a text column would cost a copy of the whole column."""
    starts = np.cumsum([0, *(len(c) for c in values.chunks)])
    order = None
    if len(rows) > 1 and not bool(np.all(rows[1:] >= rows[:-1])):
        order = stable_order(np.where(rows >= 0, np.searchsorted(starts, rows, side="right") - 1, -1))
        rows = rows[order]  # missing rows first, then by chunk (row order kept within one)
    bounds = np.searchsorted(rows, starts)  # rows are in chunk order: each chunk's run begins at its start
    parts = [pa.nulls(int(bounds[0]), values.type)]
    for k, c in enumerate(values.chunks):
        if bounds[k + 1] > bounds[k]:
            parts.append(c.take(pa.array(rows[bounds[k] : bounds[k + 1]] - starts[k])))
    taken = pa.concat_arrays(parts)
    if order is None:
        return taken
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return taken.take(pa.array(inverse))


def values_at(col: pd.Series, rows: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """A (range-indexed) column's values at ``rows`` (missing at -1), of the column's dtype.

    ``col.array.take(rows, allow_fill=True)``, without copying all of a chunked Arrow column to do it.
    """
    values = col.array
    if isinstance(values, pd.arrays.ArrowExtensionArray):
        chunked = values.__arrow_array__()
        if chunked.num_chunks > 1:
            return col.dtype.__from_arrow__(_chunk_take(chunked, np.asarray(rows, dtype=np.int64)))
    return values.take(rows, allow_fill=True)


def series_at(col: pd.Series, rows: np.ndarray) -> pd.Series:
    """``col.iloc[rows]`` of a range-indexed column (`values_at`: a chunked Arrow column is not copied)."""
    return pd.Series(values_at(col, rows), index=col.index[rows], name=col.name, copy=False)


def text_at(col: pd.Series, rows: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """The text of a (range-indexed) column at ``rows`` (missing at -1), as a ``str`` array; a categorical
    is converted at those rows only."""
    rows = np.asarray(rows, dtype=np.int64)
    if _is_categorical(col):
        cats = pd.array(col.cat.categories.astype("str"), dtype="str")
        cc = np.asarray(col.cat.codes, dtype=np.int64)
        return cats.take(np.where(rows >= 0, cc[np.maximum(rows, 0)] if len(cc) else -1, -1), allow_fill=True)
    return text_of(pd.Series(values_at(col, rows)))


def categorical(results: np.ndarray, key: np.ndarray, dtype: pd.CategoricalDtype) -> pd.Categorical:
    """A categorical of ``dtype`` from per-value results (`per_value`) spread by ``key``; results that are
    not categories (``None``) are missing."""
    lut = dtype.categories.get_indexer(pd.Index(list(results), dtype=object)) if len(results) else []
    return pd.Categorical.from_codes(np.asarray(lut, dtype=np.int64)[key], dtype=dtype)


def take_or(values: np.ndarray, idx: np.ndarray, fill: object) -> np.ndarray:
    """``values[idx]`` with ``fill`` where ``idx`` is -1 (also when ``values`` is empty)."""
    out = np.full(len(idx), fill, dtype=values.dtype)
    ok = idx >= 0
    out[ok] = values[idx[ok]]
    return out


def last_wins(pos: np.ndarray) -> np.ndarray:
    """Which entries of an assignment index to keep so that of repeated positions the last one is set."""
    if len(pos) == 0:
        return np.zeros(0, dtype=np.int64)
    _, last = np.unique(pos[::-1], return_index=True)
    return np.sort(len(pos) - 1 - last)


def take_rows(frame: pd.DataFrame, rows: np.ndarray, columns: Sequence[str]) -> pd.DataFrame:
    """Some rows and columns of a frame (one copy of just those, `values_at`; absent columns left out)."""
    return pd.DataFrame(
        {c: values_at(frame[c], rows) for c in columns if c in frame.columns},
        index=frame.index[rows],
        copy=False,
    )


def stable_order(key: np.ndarray) -> np.ndarray:
    """``np.argsort(key, kind="stable")`` for integers, by 16-bit radix passes (linear time)."""
    key = np.asarray(key, dtype=np.int64)
    if len(key):
        key = key - key.min()  # the same order, in as few 16-bit digits as the range needs
    top = int(key.max()) if len(key) else 0
    order = np.arange(len(key))
    shift = 0
    while True:
        digit = key[order] if shift else key
        if shift:
            digit >>= shift
        order = order[np.argsort(digit.astype(np.uint16), kind="stable")]  # numpy sorts 16-bit ints by radix
        del digit
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
