"""Coverage and breakdowns, and the agreement of every linked table with the generator's truth record."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from test_linking import LAB_SESSION, OUTBOUND, POLICY, PRE_815, frame

from tlslog import (
    by_cipher,
    by_peer,
    by_verify,
    by_version,
    coverage,
    deliveries,
    failures,
    read_log,
    receipts,
    views,
)
from tlslog import sessions as tls_sessions

ROOT = Path(__file__).resolve().parent.parent
SAMPLE, TRUTH = ROOT / "sample_logs", ROOT / "tests" / "data" / "sample_truth.json"
_spec = importlib.util.spec_from_file_location("generate", ROOT / "benchmarks" / "generate.py")
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)


@pytest.fixture(scope="module")
def mixed() -> pd.DataFrame:
    return frame(PRE_815 + OUTBOUND + POLICY + LAB_SESSION)


def test_coverage_weekly_shares(mixed):
    cov = coverage(mixed)
    assert list(cov.columns) == [
        "period",
        "direction",
        "total",
        "encrypted",
        "verified",
        "tls12",
        "weak",
        "encrypted_share",
        "verified_share",
        "tls12_share",
        "weak_share",
    ]
    row = cov.set_index(["period", "direction"]).loc[(pd.Timestamp("2026-03-02"), "inbound")]  # a Monday
    # PRE_815: 8 messages from outside, 4 over TLS (a, b, f, g), f verified, f TLS 1.2, a, b, g weak
    assert (row["total"], row["encrypted"], row["verified"], row["tls12"], row["weak"]) == (8, 4, 1, 1, 3)
    assert row["encrypted_share"] == 0.5 and row["verified_share"] == 0.25 and row["weak_share"] == 0.75
    out = cov.set_index(["period", "direction"]).loc[(pd.Timestamp("2026-03-02"), "outbound")]
    # OUTBOUND: 10 attempts (to= lines; a,b share one), 4 never reached a server; POLICY and LAB are internal
    assert (out["total"], out["encrypted"]) == (6, 3)
    assert set(cov["direction"].astype(str)) == {"inbound", "outbound"}


def test_coverage_options(mixed):
    daily = coverage(mixed, by="day", direction="outbound", include_internal=True)
    assert set(daily["direction"].astype(str)) == {"outbound"}
    assert daily["period"].dt.hour.eq(0).all() and len(daily) == 2
    nov = daily.set_index("period").loc[pd.Timestamp("2026-11-22")]
    assert nov["total"] == 7 and nov["encrypted"] == 5  # POLICY (6 attempts) + the LAB delivery
    monthly = coverage(mixed, by="month", direction="inbound", include_internal=True)
    assert monthly["period"].tolist() == [pd.Timestamp("2026-03-01"), pd.Timestamp("2026-11-01")]
    with pytest.raises(ValueError):
        coverage(mixed, by="fortnight")
    with pytest.raises(ValueError):
        coverage(mixed, direction="sideways")


def test_by_peer(mixed):
    peers = by_peer(mixed).set_index(["peer", "direction"])
    com = peers.loc[("example.com", "inbound")]
    assert com["total"] == 5 and com["encrypted"] == 2 and com["failures"] == 1  # accept failed from z.
    assert com["versions"] == "TLSv1.2, TLSv1"
    net = peers.loc[("example.net", "outbound")]
    assert net["total"] == 3 and net["encrypted"] == 2 and net["versions"] == "TLSv1.3"  # attempts
    hosts = by_peer(mixed, by="host", direction="outbound")
    assert "mx.example.net" in set(hosts["peer"])


def test_breakdowns(mixed):
    v = by_version(mixed, direction="inbound").set_index("version")
    assert v.loc["TLSv1/SSLv3", "count"] == 2 and bool(v.loc["TLSv1/SSLv3", "weak"])
    assert not v.loc["TLSv1.2", "weak"] and v["share"].sum() == pytest.approx(1.0)
    c = by_cipher(mixed, direction="outbound")
    assert list(c.columns) == ["direction", "version", "cipher", "cipher_bits", "count", "share", "weak"]
    assert not c["weak"].any()
    vf = by_verify(mixed, include_internal=True)
    assert vf.groupby("direction", observed=True)["share"].sum().tolist() == pytest.approx([1.0, 1.0])
    assert vf.set_index(["direction", "verify"]).loc[("outbound", "FAIL"), "count"] == 3  # 2 attempts + 16417


@pytest.mark.skipif(
    not TRUTH.exists() or not SAMPLE.exists(), reason="sample_logs/ and the truth record not built"
)
def test_sample_logs_agree_with_truth():
    truth = json.loads(TRUTH.read_text())
    events = read_log(SAMPLE, year=2026)

    def keyed(frame, keys, cols):
        f = frame.assign(_n=frame.groupby(keys).cumcount())
        return {
            tuple(str(v) for v in row[: -len(cols)]): tuple(
                None if pd.isna(v) else v for v in row[-len(cols) :]
            )
            for row in f[[*keys, "_n", *cols]].astype(object).itertuples(index=False)
        }

    r = receipts(events)
    tr = pd.DataFrame(truth["receipts"])
    assert keyed(r, ["host", "qid"], ["encrypted", "internal"]) == keyed(
        tr, ["host", "qid"], ["encrypted", "internal"]
    )
    d = deliveries(events).assign(
        status=lambda f: f["status"].astype(str), tls_failure=lambda f: f["tls_failure"].astype(object)
    )
    td = pd.DataFrame(truth["deliveries"])
    keys, cols = ["host", "qid", "recipient", "pid"], ["encrypted", "status", "tls_failure", "internal"]
    assert keyed(d, keys, cols) == keyed(td, keys, cols)
    s = tls_sessions(events).assign(
        outcome=lambda f: f["outcome"].astype(str), cause=lambda f: f["cause"].astype(object)
    )
    ts = pd.DataFrame(truth["sessions"])
    keys, cols = ["host", "pid", "direction"], ["outcome", "cause", "messages", "internal"]
    assert keyed(s, keys, cols) == keyed(ts, keys, cols)
    # every delivery with a TLS failure shows up in failures() with the same cause
    f = failures(events)
    fcauses = Counter(c for c, rc in zip(f["cause"], f["recipients"], strict=True) for _ in rc)
    assert set(fcauses) >= {k for k in truth["totals"]["deliveries_by_tls_failure"]}
    cov = coverage(events, include_internal=True)
    # outbound counts attempts that reached a server: the truth has a row per recipient of each to= line
    attempts = td[td["encrypted"].notna()].drop_duplicates(["host", "pid", "qid", "timestamp"])
    assert cov.loc[cov["direction"] == "outbound", "total"].sum() == len(attempts)
    assert cov.loc[cov["direction"] == "outbound", "encrypted"].sum() == attempts["encrypted"].eq(True).sum()
    assert cov.loc[cov["direction"] == "inbound", "total"].sum() == truth["totals"]["receipts"]


# Digests of every table and figure on a generated week, recorded with the implementation before the linking
# and figures were vectorised (codes instead of strings, memoised failures): a restructuring must keep them.
# When a change of results is intended, record them again: run this module's `_digests` on the same log.
DIGESTS = ROOT / "tests" / "data" / "generated_digests.json"


def _digest(frame: pd.DataFrame) -> str:
    text = str(list(frame.dtypes.astype(str).items())) + frame.to_csv(index=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _digests(events: pd.DataFrame) -> dict[str, str]:
    out = {}
    for scope in ((), ("mx2.example.org",)):
        k = ",".join(scope) or "-"
        out[f"sessions {k}"] = _digest(tls_sessions(events, internal=scope))
        out[f"receipts {k}"] = _digest(receipts(events, internal=scope))
        out[f"deliveries {k}"] = _digest(deliveries(events, internal=scope))
        out[f"failures {k}"] = _digest(failures(events, internal=scope))
        for fn in (coverage, by_peer, by_version, by_cipher, by_verify):
            out[f"{fn.__name__} {k}"] = _digest(fn(events, include_internal=bool(scope), internal=scope))
        s = views.summary(events, internal=scope)
        for part in ("sessions", "coverage", "versions", "ciphers", "failing_peers", "weak"):
            out[f"summary.{part} {k}"] = _digest(s[part])
    return out


def test_generated_week_gives_the_recorded_results(tmp_path):
    log = tmp_path / "week.log"
    assert generate.main(["--lines", "20000", "--seed", "3", "--out", str(log)]) == 0
    assert _digests(read_log(log, year=2026)) == json.loads(DIGESTS.read_text())
