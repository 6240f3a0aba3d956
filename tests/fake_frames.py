"""Small hand-built frames with the columns of docs/tables.md, for report/chart/CLI unit tests.

They carry hostile text on purpose (rich markup, HTML, spreadsheet formulas) so the escaping tests have
something to bite on. The numbers are small and chosen so the expected results can be worked out by hand.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from tlslog.records import EVENT_FIELDS, ParseIssue

LIST = pd.ArrowDtype(pa.list_(pa.string()))
MARKUP = "[red]x[/red]"
SCRIPT = "<script>alert(1)</script>.example"
FORMULA = '=HYPERLINK("http://evil")'

T = pd.Timestamp


def events() -> pd.DataFrame:
    rows = [
        dict(
            kind="starttls",
            timestamp=T("2026-11-09 10:00:00"),
            host="mx1",
            program="sm-mta",
            pid=101,
            direction="server",
            relay_host="mail.good.example",
            relay_ip="192.0.2.10",
            version="TLSv1.3",
            verify="OK",
            cipher="TLS_AES_256_GCM_SHA384",
            alg_bits=256,
            cipher_bits=256,
        ),
        dict(
            kind="receipt",
            timestamp=T("2026-11-09 10:00:01"),
            host="mx1",
            program="sm-mta",
            pid=101,
            qid="6A9A0001000101",
            sender="<a@good.example>",
            size=1200,
            nrcpts=1,
            proto="ESMTPS",
            relay_host="mail.good.example",
            relay_ip="192.0.2.10",
        ),
        dict(
            kind="starttls",
            timestamp=T("2026-11-10 11:00:00"),
            host="mx1",
            program="sm-mta",
            pid=202,
            direction="client",
            relay_host=MARKUP,
            relay_ip="198.51.100.7",
            version="TLSv1",
            verify="FAIL",
            cipher="DES-CBC3-SHA",
            alg_bits=168,
            cipher_bits=112,
        ),
        dict(
            kind="delivery",
            timestamp=T("2026-11-10 11:00:02"),
            host="mx1",
            program="sm-mta",
            pid=202,
            qid="6AAB0002000202",
            recipients=("bob@weak.example", FORMULA),
            mailer="esmtp",
            relay_host=MARKUP,
            relay_ip="198.51.100.7",
            stat="Deferred",
            dsn="4.7.0",
            stat_text="403 4.7.0 encryption too weak 112 less than 128",
        ),
        dict(
            kind="tls_reject",
            timestamp=T("2026-11-12 09:30:00"),
            host="mx2",
            program="sendmail",
            pid=303,
            ruleset="tls_server",
            arg1="NONE",
            relay_host=SCRIPT,
            reject="403 4.7.0 encryption too weak 0 less than 128",
            reply_code=403,
            required_bits=128,
            actual_bits=0,
        ),
    ]
    df = pd.DataFrame([{f: r.get(f) for f in EVENT_FIELDS} for r in rows], columns=list(EVENT_FIELDS))
    cats = [
        "kind",
        "host",
        "program",
        "direction",
        "verify",
        "cipher",
        "mailer",
        "stat",
        "proto",
        "daemon",
        "ruleset",
        "subkind",
        "dsn",
    ]
    ints = [
        "pid",
        "alg_bits",
        "cipher_bits",
        "ssl_error",
        "errno",
        "reply_code",
        "required_bits",
        "actual_bits",
        "size",
        "nrcpts",
    ]
    version = pd.CategoricalDtype(
        ["SSLv3", "TLSv1", "TLSv1/SSLv3", "TLSv1.1", "TLSv1.2", "TLSv1.3", "other"], ordered=True
    )
    out = df.assign(
        timestamp=pd.to_datetime(df["timestamp"]).astype("datetime64[us]"),
        version=df["version"].astype(version),
        recipients=pd.Series([list(r) if r else None for r in df["recipients"]], dtype=LIST),
        **{c: df[c].astype("category") for c in cats},
        **{c: df[c].astype("Int64") for c in ints},
        **{
            c: df[c].astype("str")
            for c in df.columns
            if c not in {*cats, *ints, "timestamp", "version", "recipients"}
        },
    )
    out.attrs["stats"] = {"lines": 40, "events": 5, "issues": 2, "bytes": 4000, "sources": ["fake.log"]}
    out.attrs["issues"] = [
        ParseIssue("fake.log", 7, "unrecognised STARTTLS line", "STARTTLS=server, relay=[red]x[/red]"),
        ParseIssue(
            "fake.log", 0, "truncated or corrupt archive: CRC check failed; 30 lines were read before it"
        ),
    ]
    return out


def sessions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "session_id": [1, 2, 3],
            "direction": pd.Categorical(["server", "client", "client"]),
            "host": ["mx1", "mx1", "mx2"],
            "pid": pd.array([101, 202, 303], dtype="Int64"),
            "start": pd.to_datetime(["2026-11-09 10:00", "2026-11-10 11:00", "2026-11-12 09:30"]),
            "peer": pd.Series(["mail.good.example", MARKUP, SCRIPT], dtype="str"),
            "peer_domain": pd.Series(["good.example", MARKUP, SCRIPT], dtype="str"),
            "version": pd.Categorical(["TLSv1.3", "TLSv1", None]),
            "verify": pd.Categorical(["OK", "FAIL", "NONE"]),
            "verified": pd.array([True, False, False], dtype="boolean"),
            "cipher": pd.Categorical(["TLS_AES_256_GCM_SHA384", "DES-CBC3-SHA", None]),
            "cipher_bits": pd.array([256, 112, None], dtype="Int64"),
            "outcome": pd.Categorical(["ok", "ok", "failed"]),
            "cause": pd.Categorical([None, None, "not_offered"]),
            "weak": pd.array([False, True, pd.NA], dtype="boolean"),
            "weak_reason": pd.Series([None, "TLSv1, 3DES, bits<128", None], dtype="str"),
            "internal": pd.array([False, False, False], dtype="boolean"),
            "messages": pd.array([1, 1, 0], dtype="Int64"),
        }
    )


def failures() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(
                ["2026-11-10 11:00:02", "2026-11-12 09:30:00", "2026-11-13 09:30:00"]
            ),
            "direction": pd.Categorical(["client", "client", "client"]),
            "peer": pd.Series([MARKUP, SCRIPT, SCRIPT], dtype="str"),
            "peer_domain": pd.Series([MARKUP, SCRIPT, SCRIPT], dtype="str"),
            "cause": pd.Categorical(["too_weak", "not_offered", "not_offered"]),
            "reject": pd.Series(
                [
                    "403 4.7.0 encryption too weak 112 less than 128",
                    "403 4.7.0 encryption too weak 0 less than 128",
                    "403 4.7.0 encryption too weak 0 less than 128",
                ],
                dtype="str",
            ),
            "qids": pd.Series([["6AAB0002000202"], ["Q1"], ["Q2"]], dtype=LIST),
            "recipients": pd.Series(
                [["bob@weak.example", FORMULA], ["c@s.example"], ["c@s.example"]], dtype=LIST
            ),
            "outcome": pd.Categorical(["deferred", "deferred", "deferred"]),
            "explanation": pd.Series(
                [
                    "The peer's cipher is weaker than required.",
                    "The peer did not offer STARTTLS.",
                    "The peer did not offer STARTTLS.",
                ],
                dtype="str",
            ),
            "internal": pd.array([False, False, False], dtype="boolean"),
        }
    )


def coverage() -> pd.DataFrame:
    total = [10, 4, 12, 5]
    enc = [9, 2, 12, 4]
    ver = [6, 1, 10, 2]
    return pd.DataFrame(
        {
            "period": pd.to_datetime(["2026-11-09", "2026-11-09", "2026-11-10", "2026-11-10"]),
            "direction": ["inbound", "outbound", "inbound", "outbound"],
            "total": total,
            "encrypted": enc,
            "verified": ver,
            "encrypted_share": [e / t for e, t in zip(enc, total, strict=True)],
            "verified_share": [v / e for v, e in zip(ver, enc, strict=True)],
        }
    )


def by_version() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "direction": ["inbound", "inbound", "outbound"],
            "version": pd.Categorical(["TLSv1.3", "TLSv1.2", "TLSv1"]),
            "count": [15, 6, 2],
            "share": [15 / 21, 6 / 21, 1.0],
        }
    )


def by_cipher() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "direction": ["inbound", "outbound"],
            "version": ["TLSv1.3", "TLSv1"],
            "cipher": ["TLS_AES_256_GCM_SHA384", "DES-CBC3-SHA"],
            "cipher_bits": [256, 112],
            "count": [15, 2],
            "share": [1.0, 1.0],
            "weak": [False, True],
        }
    )


def by_verify() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "direction": ["inbound", "outbound", "outbound"],
            "verify": ["OK", "FAIL", "OK"],
            "count": [15, 2, 1],
            "share": [1.0, 2 / 3, 1 / 3],
        }
    )


def by_peer() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "peer": pd.Series(["good.example", MARKUP, SCRIPT], dtype="str"),
            "direction": ["inbound", "outbound", "outbound"],
            "total": [20, 3, 2],
            "encrypted": [20, 3, 0],
            "verified": [18, 0, 0],
            "failures": [0, 1, 2],
            "encrypted_share": [1.0, 1.0, 0.0],
            "verified_share": [0.9, 0.0, float("nan")],
            "versions": pd.Series(["TLSv1.3, TLSv1.2", "TLSv1", ""], dtype="str"),
            "first_seen": pd.to_datetime(["2026-11-09 10:00", "2026-11-10 11:00", "2026-11-12 09:30"]),
            "last_seen": pd.to_datetime(["2026-11-15 10:00", "2026-11-10 11:00", "2026-11-13 09:30"]),
        }
    )


def receipts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "qid": pd.Series(["6A9A0001000101"], dtype="str"),
            "timestamp": pd.to_datetime(["2026-11-09 10:00:01"]),
            "sender": pd.Series(["<a@good.example>"], dtype="str"),
            "relay_host": pd.Series(["mail.good.example"], dtype="str"),
            "relay_ip": ["192.0.2.10"],
            "peer": pd.Series(["mail.good.example"], dtype="str"),
            "peer_domain": pd.Series(["good.example"], dtype="str"),
            "encrypted": pd.array([True], dtype="boolean"),
            "session_id": pd.array([1], dtype="Int64"),
            "version": ["TLSv1.3"],
            "verify": ["OK"],
            "cipher": ["TLS_AES_256_GCM_SHA384"],
            "cipher_bits": pd.array([256], dtype="Int64"),
            "internal": pd.array([False], dtype="boolean"),
        }
    )


def deliveries() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "qid": pd.Series(["6AAB0002000202"] * 2, dtype="str"),
            "timestamp": pd.to_datetime(["2026-11-10 11:00:02"] * 2),
            "recipient": pd.Series(["bob@weak.example", FORMULA], dtype="str"),
            "relay_host": pd.Series([MARKUP] * 2, dtype="str"),
            "relay_ip": ["198.51.100.7"] * 2,
            "peer": pd.Series([MARKUP] * 2, dtype="str"),
            "peer_domain": pd.Series([MARKUP] * 2, dtype="str"),
            "status": pd.Categorical(["deferred"] * 2),
            "stat_text": pd.Series(["encryption too weak"] * 2, dtype="str"),
            "encrypted": pd.array([True, True], dtype="boolean"),
            "session_id": pd.array([2, 2], dtype="Int64"),
            "version": ["TLSv1"] * 2,
            "verify": ["FAIL"] * 2,
            "cipher": ["DES-CBC3-SHA"] * 2,
            "cipher_bits": pd.array([112, 112], dtype="Int64"),
            "tls_failure": pd.Categorical(["too_weak"] * 2),
            "internal": pd.array([False, False], dtype="boolean"),
        }
    )


def install(monkeypatch, *modules) -> None:
    """Replace the library functions that ``modules`` imported with these fakes (keywords ignored)."""
    fakes = {
        "sessions": sessions,
        "receipts": receipts,
        "deliveries": deliveries,
        "failures": failures,
        "coverage": coverage,
        "by_peer": by_peer,
        "by_version": by_version,
        "by_cipher": by_cipher,
        "by_verify": by_verify,
        "read_log": events,
    }
    for module in modules:
        for name, fake in fakes.items():
            if callable(getattr(module, name, None)):
                monkeypatch.setattr(module, name, lambda *a, _f=fake, **k: _f())
