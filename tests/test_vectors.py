"""The vectorised helpers: codes, per-value maps, radix order and the backward as-of lookup."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tlslog.vectors import as_text, asof, is_one_of, joint, map_unique, stable_order, text_of

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
