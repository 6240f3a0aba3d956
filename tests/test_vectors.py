"""The vectorised helpers: codes, per-value maps, radix order, the backward as-of lookup and row takes."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from tlslog.vectors import (
    as_text,
    asof,
    factorize_text,
    is_one_of,
    joint,
    map_unique,
    stable_order,
    take_rows,
    text_at,
    text_of,
    values_at,
)

PEERS = ["mx.example.net", "mail.example.org", None, "mx.example.net", "smtp.example.com"]


def test_joint_codes_equal_exactly_where_all_values_are():
    host = pd.Series(PEERS, dtype="str")
    pid = pd.Series([101, 101, 101, 101, None], dtype="Int64")
    cat = pd.Series(["server", "client", "server", "server", None], dtype="category")
    key = joint(host, pid, cat)
    assert key.tolist() == joint(host.astype(object), pid.astype(object), cat.astype(object)).tolist()
    assert key[0] == key[3] and len(set(key.tolist())) == 4
    assert sorted(set(key.tolist())) == list(range(4))  # dense
    assert len(joint(host.iloc[:0])) == 0


def test_is_one_of_on_categoricals_and_text():
    kind = pd.Series(["starttls", "receipt", None, "delivery"], dtype="category")
    assert is_one_of(kind, "starttls").tolist() == [True, False, False, False]
    assert is_one_of(kind, "receipt", "delivery").tolist() == [False, True, False, True]
    assert is_one_of(kind, "tls_cert").tolist() == [False] * 4
    assert is_one_of(pd.Series(PEERS, dtype="str"), "mx.example.net").tolist() == [
        True,
        False,
        False,
        True,
        False,
    ]


def test_text_of_a_categorical_is_its_str_column():
    version = pd.Series(["TLSv1.3", None, "TLSv1.2", "TLSv1.3"], dtype="category")
    assert text_of(version).dtype == "str"
    pd.testing.assert_series_equal(as_text(version), version.astype("str"))
    bits = pd.Series([256, None, 128], dtype="Int64").astype("category")
    pd.testing.assert_series_equal(as_text(bits), bits.astype("str"))


def test_map_unique_spreads_results_and_keeps_the_dtype():
    host = pd.Series(PEERS, dtype="str")
    out = map_unique(lambda h: None if h is None else h.split(".", 1)[1], host, dtype="str")
    assert out.dtype == "str"
    assert pd.isna(out[2]) and list(out[[0, 1, 3, 4]]) == [
        "example.net",
        "example.org",
        "example.net",
        "example.com",
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=-5, max_value=200_000), max_size=300))
def test_stable_order_is_a_stable_argsort(values):
    key = np.array(values, dtype=np.int64)
    assert stable_order(key).tolist() == np.argsort(key, kind="stable").tolist()


def _asof_by_hand(left_on, left_by, right_on, right_by):
    out = []
    for lo, lb in zip(left_on, left_by, strict=True):
        best = -1
        for j, (ro, rb) in enumerate(zip(right_on, right_by, strict=True)):
            if rb == lb and ro <= lo and (best < 0 or ro >= right_on[best]):
                best = j
        out.append(best)
    return out


rows = st.lists(st.tuples(st.integers(0, 60), st.integers(-2, 3)), max_size=40)


@settings(max_examples=80, deadline=None)
@given(rows, rows)
def test_asof_finds_the_latest_row_at_or_before_with_equal_keys(left, right):
    right = sorted({on: (on, by) for on, by in right}.values())  # distinct rows, in order
    lo, lb = np.array([r[0] for r in left], dtype=np.int64), np.array([r[1] for r in left], dtype=np.int64)
    ro, rb = np.array([r[0] for r in right], dtype=np.int64), np.array([r[1] for r in right], dtype=np.int64)
    expected = _asof_by_hand(lo.tolist(), lb.tolist(), ro.tolist(), rb.tolist())
    assert asof(lo, [lb], ro, [rb]).tolist() == expected
    shuffled = np.random.default_rng(0).permutation(len(ro))  # right rows out of order: the same answer
    found = asof(lo, [lb], ro[shuffled], [rb[shuffled]])
    assert [shuffled[f] if f >= 0 else -1 for f in found] == expected


def _chunked(values: list, sizes: list[int], dtype: str | pd.ArrowDtype) -> pd.Series:
    """A column of ``values`` whose Arrow array is split into chunks of ``sizes`` (empty ones too)."""
    whole = pa.array(values, type=pa.large_string() if dtype == "str" else dtype.pyarrow_dtype)
    starts = np.cumsum([0, *sizes])
    chunks = pa.chunked_array([whole[a:b] for a, b in pairwise(starts)], whole.type)
    col = pd.Series(pd.Series([], dtype=dtype).dtype.__from_arrow__(chunks))
    assert col.array.__arrow_array__().num_chunks == len(sizes)
    return col


TEXTS = ["a", None, "bb", "a", "ccc", None, "dd", "a", "e", "ff", "g"]
LISTS = [["x@a"], [], None, ["y@b", "x@a"], ["z"], [None], ["w", "v", "u"], [], ["x@a"], None, ["q"]]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(-1, len(TEXTS) - 1), max_size=30),
    st.lists(st.integers(0, 4), min_size=1, max_size=6),
    st.booleans(),
)
def test_values_at_a_chunked_column_equals_its_take(rows, sizes, in_order):
    sizes = [*sizes, max(len(TEXTS) - sum(sizes), 0)]  # at least as long as TEXTS: every row exists
    total = sum(sizes)
    rows = np.array(sorted(rows) if in_order else rows, dtype=np.int64)
    for values, dtype in ((TEXTS, "str"), (LISTS, pd.ArrowDtype(pa.list_(pa.string())))):
        col = _chunked((values * 3)[:total], sizes, dtype)
        expected = col.array.take(rows, allow_fill=True)
        found = values_at(col, rows)
        assert found.dtype == expected.dtype
        assert found.__arrow_array__().num_chunks == 1  # one array, whatever the column's chunks
        pd.testing.assert_extension_array_equal(found, expected)
    text = _chunked((TEXTS * 3)[:total], sizes, "str")
    pd.testing.assert_extension_array_equal(text_at(text, rows), text.array.take(rows, allow_fill=True))


def test_take_rows_equals_iloc_on_chunked_and_numpy_columns():
    frame = pd.DataFrame(
        {
            "text": _chunked(TEXTS, [4, 0, 7], "str"),
            "kind": pd.Series(list("abcabcabcab"), dtype="category"),
            "n": pd.Series(range(11), dtype="Int64"),
            "t": pd.date_range("2026-11-22", periods=11, freq="s"),
        }
    )
    rows = np.array([10, 0, 5, 5, 3])
    found = take_rows(frame, rows, ["t", "text", "absent", "kind"])
    pd.testing.assert_frame_equal(found, frame.iloc[rows, [3, 0, 1]])


def test_factorize_text_equals_pandas_factorize_in_int32():
    for col in (
        _chunked(TEXTS, [3, 0, 5, 3], "str"),
        pd.Series(TEXTS, dtype="str"),
        pd.Series(TEXTS, dtype=object),
        pd.Series([], dtype="str"),
    ):
        found, distinct = factorize_text(col)
        expected, uniques = pd.factorize(col, use_na_sentinel=True)
        assert found.dtype == np.int32 and found.tolist() == expected.tolist()
        assert str(distinct.dtype) == "str" and list(distinct) == list(uniques)
