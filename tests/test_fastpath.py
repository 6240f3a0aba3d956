"""The columnar fast path gives exactly the pyparsing path's events and issues."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tlslog import grammar, iter_events, sources
from tlslog.fastpath import parse_block, re2
from tlslog.records import StrictParseError

ROOT = Path(__file__).resolve().parent.parent
REF = datetime(2026, 11, 23, 12, 0)


def sample_lines() -> list[str]:
    lines = []
    for src in sources.expand(str(ROOT / "sample_logs")):
        lines += list(sources.read_lines(src))
    return lines


CORPUS = (ROOT / "tests" / "data" / "corpus.txt").read_text(encoding="utf-8").splitlines()
SAMPLES = sample_lines()
REAL = [line for line in SAMPLES + CORPUS if line]


def both(lines: list[str], reference: datetime = REF):
    fast = parse_block(lines, source="t", reference=reference)
    slow = parse_block(lines, source="t", reference=reference, fast=False)
    return fast, slow


def assert_same(lines: list[str], reference: datetime = REF) -> None:
    (ft, fi), (st_, si) = both(lines, reference)
    assert ft.schema == st_.schema
    for name in ft.column_names:
        assert ft.column(name).to_pylist() == st_.column(name).to_pylist(), name
    assert fi == si


def test_samples_and_corpus_are_identical():
    assert_same(SAMPLES)
    assert_same(CORPUS)


@pytest.mark.parametrize("stamp", ["bsd", "iso"])
def test_fast_path_reads_most_sample_lines_itself(monkeypatch, stamp):
    """The common kinds, with BSD or ISO timestamps, must not quietly fall back to the line-by-line path."""
    from tlslog import fastpath

    calls = []
    real = fastpath.parse_event
    monkeypatch.setattr(fastpath, "parse_event", lambda *a: calls.append(a) or real(*a))
    lines = [line for line in SAMPLES if line[:1].isalpha() == (stamp == "bsd")]
    table, _ = parse_block(lines, source="t", reference=REF)
    assert table.num_rows > 900
    assert len(calls) < table.num_rows / 10


def test_iso_timestamps_match():
    body = "sm-mta[1]: STARTTLS=server, relay=a [192.0.2.1], version=TLSv1.2, verify=NO, cipher=X, bits=1/1"
    stamps = [
        "2026-11-09T00:00:09.5+01:00", "2026-11-09T00:00:09+0100", "2026-11-09T00:00:09Z",
        "2026-11-09T00:00:09,123-05:00", "2026-11-09T00:00:09.1234567", "2026-11-09T24:00:00",
        "2026-11-09T23:59:60", "2026-11-09T00:00:09+24:00", "2026-11-09T00:00:09+23:59",
        "2026-11-09T00:00:09-00:00", "0000-11-09T00:00:09", "2026-11-09T00:00:09+01:60",
        "2026-11-09T00:00:09.", "2026-02-29T00:00:09", "2028-02-29T00:00:09", "2026-04-31T10:00:00",
        "2026-13-01T10:00:00", "2026-00-01T10:00:00", "2026-01-00T10:00:00", "9999-12-31T23:59:59.999999",
        "2026-12-31T23:30:00-01:00", "1970-01-01T00:00:00+00:30", "2026-11-09T00:00:09.123456789Z",
    ]  # fmt: skip
    assert_same([f"{ts} mx {body}" for ts in stamps])
    assert_same([f"<22>1 {ts} mx sm-mta 1 - - STARTTLS=server, relay=a, version=TLSv1.3, verify=OK, "
                 "cipher=X, bits=1/1" for ts in stamps])  # fmt: skip


def test_year_rollover_and_bad_dates_match():
    lines = [
        "Dec 31 23:59:59 mx sm-mta[1]: STARTTLS=server, relay=a [192.0.2.1], version=TLSv1.2, verify=NO, "
        "cipher=AES128-SHA, bits=128/128",
        "Jan  1 00:00:01.123456789 mx sm-mta[1]: STARTTLS=server, relay=a [192.0.2.1], version=TLSv1.2, "
        "verify=NO, cipher=AES128-SHA, bits=128/128",
        "Feb 29 10:00:00 mx sm-mta[1]: STARTTLS=server, relay=a, version=TLSv1.3, "
        "verify=OK, cipher=X, bits=1/1",
        "Feb 30 10:00:00 mx sm-mta[1]: STARTTLS=server, relay=a, version=TLSv1.3, "
        "verify=OK, cipher=X, bits=1/1",
        "Jan  2 25:00:00 mx sm-mta[1]: STARTTLS=server, relay=a, version=TLSv1.3, "
        "verify=OK, cipher=X, bits=1/1",
        "Jan  2 11:59:59 mx sm-mta[1]: STARTTLS=server, relay=a, version=TLSv1.3, "
        "verify=OK, cipher=X, bits=1/1",
        "Jan  2 12:00:01 mx sm-mta[1]: STARTTLS=server, relay=a, version=TLSv1.3, "
        "verify=OK, cipher=X, bits=1/1",
    ]
    lines += [
        f"{ts} mx sm-mta[1]: STARTTLS=server, relay=a, version=TLSv1.3, verify=OK, cipher=X, bits=1/1"
        for ts in ("Jan 45 10:00:00", "Nov  0 10:00:00", "Nov 31 10:00:00", "Apr 30 23:59:60",
                   "Feb 29 10:00:00.5", "Mar 01 10:00:00", "Mar  1 10:00:00", "Xyz  1 10:00:00",
                   "Nov 9 10:00:00", "Nov 22 10:60:00")
    ]  # fmt: skip
    for ref in (datetime(2027, 1, 1, 12), datetime(2028, 3, 1), datetime(2027, 1, 1, 12, 0, 0, 500)):
        assert_same(lines, ref)


def test_re2_translation():
    assert re2(r"\d\w\s") == r"[0-9][0-9A-Za-z_][\t-\r\x1c-\x1f ]"
    assert re2(r"[^\s\[\]]") == r"[^\t-\r\x1c-\x1f \[\]]"
    for bad in (r"(?!x)", r"(?=x)", r"(a)\1", r"[\S]"):
        with pytest.raises(ValueError):
            re2(bad)


# -- generated lines: mutations of real ones ----------------------------------------------------------

FRAGMENTS = [
    ", ",
    "=",
    ": ",
    " (",
    ")",
    "<",
    ">",
    "[",
    "]",
    "stat=",
    "relay=",
    "reply=",
    "ctladdr=",
    "size=",
    "from=",
    "to=",
    "NOQUEUE: ",
    "encryption too weak 0 less than 128",
    "550 5.7.1 ",
    "\t",
    "\x0b",
    "\x1c",
    "é",
    "+20",
    " did not issue ",
    "STARTTLS=client, ",
    "IPv6:2001:db8::1",
    "(may be forged)",
    "9",
    "x" * 30,
    " ",
]


@st.composite
def mutated(draw):
    line = draw(st.sampled_from(REAL))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(line)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        frag = draw(st.sampled_from(FRAGMENTS))
        if op == "insert":
            line = line[:at] + frag + line[at:]
        elif op == "delete":
            line = line[:at] + line[at + draw(st.integers(1, 12)) :]
        else:
            line = line[:at] + frag + line[at + len(frag) :]
    return line


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated(), min_size=1, max_size=40))
def test_mutated_lines_are_identical(lines):
    assert_same(lines)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=" :()abcS\t\x0b\x1c).,é", max_size=30))
def test_split_stat_column_matches_grammar(text):
    import pyarrow as pa

    from tlslog.fastpath import _split_stat

    stat, rest = _split_stat(pa.array([text, None]))
    assert (stat[0].as_py(), rest[0].as_py()) == grammar.split_stat(text)
    assert (stat[1].as_py(), rest[1].as_py()) == (None, None)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789 -.(x", max_size=20))
def test_reply_column_matches_grammar(text):
    import pyarrow as pa

    from tlslog import fastpath, values

    assert values._REPLY.pattern.startswith("([2-5]") and fastpath._REPLY_START == "^[2-5]"
    texts = [text, f"Sent ({text})", f"403 4.7.0 encryption too weak {text} less than 128", None]
    code, required, actual = fastpath._reply(pa.array(texts, pa.string()))
    assert list(zip(code.to_pylist(), required.to_pylist(), actual.to_pylist(), strict=True)) == [
        grammar.parse_reply(t) for t in texts
    ]


def test_field_names_are_key_like():
    """`_split_fields` takes a piece whose name before "=" is one of these as key-like without a test."""
    from tlslog import fastpath

    for spec in (fastpath._TO_FIELDS, fastpath._FROM_FIELDS):
        for name in (spec.lead, spec.terminal, *spec.keys, *spec.firsts):
            assert re.match(fastpath._KEY, name + "=")


def test_prefilter_is_the_grammars():
    from tlslog import fastpath

    assert set(fastpath._PREFILTER.split("|")) == {re.escape(p) for p in grammar.PREFILTER}


# -- from= / to= fields cut at every ", " ----------------------------------------------------------

ENV = "Nov 22 03:04:12 mx sm-mta[7]: 5AM34C9x004411: "
TRICKY = [
    "to=<a@x.example>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.x.example. "
    "[192.0.2.1], dsn=4.0.0, stat=Deferred: Connection reset by mx.x.example., relay=y, dsn=5.0.0",
    "to=<a@x>, delay=1, relay=first, relay=second, stat=Sent (ok)",
    'to="Doe, John" <j@x>, delay=00:00:00, mailer=esmtp, pri=1, stat=Sent',
    "to=<a@x>, ctladdr=<b@y> (1/1), delay=0, pri=1, stat=Sent",
    "to=<a@x>, ctladdr=, delay=0, pri=1, stat=Sent",
    "to=<a@x>, , delay=0, pri=1, stat=Sent",
    "to=<a@x>, delay=0, reply=421 4.7.0 try later, closing, stat=Deferred: 421 4.7.0 try later",
    "to=<a@x>, delay=0, mailer=esmtp, pri=1, dsn=2.0.0",
    "to=<a@x>, mailer=esmtp, delay=0, stat=Sent",
    "to=<a@x>,<b@y>, delay=0, stat=",
    "to=<a@x.example>,<b@x.example>, [more], delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, "
    "relay=mx.x.example. [192.0.2.1], dsn=2.0.0, stat=Sent (ok)",
    "to=<a@x>, delay=, stat=Sent, relay=z",
    "to=, delay=0, stat=x",
    "from=<a@x>, size=1, class=0, nrcpts=1, msgid=<m@x>, bodytype=8BITMIME, proto=ESMTPS, daemon=MTA, "
    "tls_verify=OK, tls_version=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, auth=NONE, relay=a, b [192.0.2.1]",
    "from=<a@x>, size=1, size=2, class=0, nrcpts=x, relay=",
    "from=<a, b@x>, size=1, class=0, nrcpts=1, relay=[192.0.2.9]",
    "from=<a@x>, class=0, size=1, nrcpts=1, relay=r",
    "from=<a@x>, size=1, class=0, nrcpts=1",
    "from=<a@x>, size=1, msgid=<x, y>, relay=r",
    "from=<" + "s" * 999 + ">, size=1, relay=r",
    "from=<" + "s" * 1000 + ">, size=1, relay=r",
    "from=, size=, relay=",
    "SYSERR(root): to=<a@x>, delay=0, mailer=esmtp, pri=1, stat=Deferred",
    "SYSERR(root): STARTTLS: can't switch to encrypted layer: Connection reset by peer",
]


def test_tricky_fields_are_identical():
    assert_same([ENV + body for body in TRICKY])
    assert_same([ENV.replace("5AM34C9x004411: ", "") + body for body in TRICKY])


def test_most_from_and_to_lines_are_cut_without_per_key_extraction(monkeypatch):
    from tlslog import fastpath

    calls = []
    real = fastpath._rule_fields
    monkeypatch.setattr(fastpath, "_rule_fields", lambda g, spec: calls.append(len(g)) or real(g, spec))
    lines = [line for line in SAMPLES if ": from=" in line or ": to=" in line]
    table, _ = parse_block(lines, source="t", reference=REF)
    assert table.num_rows > 1000
    assert sum(calls) < table.num_rows / 20


def test_unread_messages_are_classified_per_line_kind():
    """One line stands for all with the same message: continuation parts must not share its issue."""
    msg = "STARTTLS=server, relay=x, version=TLSv1.3"
    lines = [
        f"Nov 22 03:04:12 mx sm-mta[1]: {msg}",
        f"Nov 22 03:04:12 mx sm-mta[1]: [2]: {msg}",
        f"Nov 22 03:04:12 mx sm-mta[1]: 5AM34C9x004411[2]: {msg}",
        f"Nov 22 03:04:12 mx sm-mta[1]: 5AM34C9x004411: {msg}",
        f"Nov 22 03:04:12 mx sm-mta[1]: [1]: {msg}",
        f"Nov 22 03:04:12 mx postfix/smtp[1]: {msg}",
        "Nov 22 03:04:12 mx sm-mta[1]: 5AM34C9x004411: to=<a@x>",
        "Nov 22 03:04:12 mx sm-mta[1]: 5AM34C9x004411[3]: to=<a@x>",
        "Nov 22 03:04:12 mx sm-mta[1]: ruleset=check_relay, arg1=x, relay=y, reject=550 5.7.1 no",
    ] * 2
    assert_same(lines)
    _, issues = parse_block(lines, source="t", reference=REF)
    assert [i.lineno for i in issues] == [1, 4, 5, 7, 10, 13, 14, 16]


BODY = (
    "STARTTLS=client, relay=mx.example.net., version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, "
    "bits=256/256"
)
TO = (
    "to=<a@example.net>, delay=00:00:01, mailer=esmtp, relay=mx.example.net. [192.0.2.7], dsn=2.0.0, "
    "stat=Sent (ok)"
)
ENVELOPES = [
    f"Nov  9 00:00:13 mx1 sm-mta[4002]: {BODY}",
    f"Nov 19 00:00:13 mx1 sm-mta[4002]: 6A9009Qi004001: {TO}",
    f"Nov 19 00:00:13 mx1 sm-mta[4002]: 6A9009Qi004001:   {TO}",
    f"Nov 19 00:00:13 mx1 sm-mta[4002]:    6A9009Qi004001: {TO}",
    f"Nov 19 00:00:13 mx1 sm-mta[4002]: 6A9009Qi004001:{TO}",
    f"Nov 19 00:00:13 mx1 sm-mta[4002]: 6A9009Qi004001x: {TO}",
    f"Nov 19 00:00:13 mx1 sm-mta[4002]: 6A9009Qi004001[2]: {TO}",
    f"Nov 19 00:00:13 mx1 sm-mta[4002]: [2]: {TO}",
    f"Nov 19 00:00:13 mx1 sm-mta[4002]: 6A9009Qi0040011234567: {TO}",
    f"Nov 19 00:00:13 mx1 sm-mta[4002]: NOQUEUE: {TO}",
    f"Nov 19 00:00:13 mx1 sendmail: 6A9009Qi004001: {TO}",
    f"Nov 19 00:00:13 mx1 sm-mta[]: 6A9009Qi004001: {TO}",
    f"Nov 19 00:00:13 mx1 sm-mta[40x2]: 6A9009Qi004001: {TO}",
    f"Nov 19 00:00:13 mx1 sm-mta[12345678901]: 6A9009Qi004001: {TO}",
    f"Nov 19 00:00:13 mx1 sm-mta[4002]x: 6A9009Qi004001: {TO}",
    f"Nov 19 00:00:13  mx1 sm-mta[4002]: {BODY}",
    f"Nov 19 00:00:13 mx1  sm-mta[4002]: {BODY}",
    f"Nov 19 00:00:13 sm-mta[4002]: {BODY}",
    f"Nov 19 00:00:13 m[x]1 sm-mta[4002]: {BODY}",
    f"Nov 19 00:00:13 {'h' * 256} sm-mta[4002]: {BODY}",
    f"Nov 19 00:00:13 {'h' * 255} {'t' * 48}[4002]: {BODY}",
    f"Nov 19 00:00:13 mx1 {'t' * 49}[4002]: {BODY}",
    f"Nov 19 00:00:13 mx1 sm+mta[4002]: {BODY}",
    f"Nov 19 00:00:13 mx1 sm-mta/x.y@z[4002]: {BODY}",
    f"Nov 19 00:00:13 mx1 sm-mta[4002]: [ID 801593 mail.info] 6A9009Qi004001: {TO}",
    f"Nov 19 00:00:13 mx1 sm-mta[4002]:{BODY}",
    f"Nov 19 00:00:13 mx1 sm-mta[4002]: : {BODY}",
    f"Nov 19 00:00:13 mx1 sm-mta[4002]:          {BODY}",
    f"Nov 19 00:00:13 mx1 sm-mta[4002]: 6A9009Qi004001:          {TO}",
    f"Nov 9 00:00:13 mx1 sm-mta[4002]: {BODY}",
    f"Nov 19 00:00:13.123456 mx1 sm-mta[4002]: {BODY}",
    f"nov 19 00:00:13 mx1 sm-mta[4002]: {BODY}",
    f"Nov 19 0:00:13 mx1 sm-mta[4002]: {BODY}",
    f"Nov 19 00:00:13\tmx1 sm-mta[4002]: {BODY}",
    f"Nov 19 00:00:13 mx1\tx sm-mta[4002]: {BODY}",
    "Nov 19 00:00:13 mx1 sm-mta[4002]: STARTTLS",
    "Nov 19 00:00:13 mx1 sm-mta[4002]:",
    "Nov 19 00:00:13 mx1 sm-mta[4002]",
    "Nov 19 00:00:13 mx1 sm-mta",
]


def test_envelope_near_misses_match():
    """Every near-miss of the common BSD envelope reads exactly as the grammar reads it, alone and mixed."""
    for line in ENVELOPES:
        assert_same([line])
    assert_same(ENVELOPES)
    assert_same(ENVELOPES[::-1] + SAMPLES[:50])


def test_common_envelopes_are_read_in_one_pass(monkeypatch):
    """BSD lines of the usual shape, with a queue id or without, are read by the one-pass envelope; those
    whose message goes on like the envelope's prefix are left to the full one."""
    from tlslog import fastpath

    seen = []
    real = fastpath._full_envelopes
    monkeypatch.setattr(
        fastpath, "_full_envelopes", lambda arr, rows: seen.append(rows.sum()) or real(arr, rows)
    )
    common = [
        line for line in SAMPLES if re.match(r"[A-Z][a-z]{2} [ \d]\d [\d:]{8} \S+ [\w-]+\[\d+\]: \S", line)
    ]
    assert len(common) > 900
    assert_same(common)
    assert seen == []
    spaced = ENVELOPES[2]  # spaces after the queue id: `: +` takes them
    reads_on = [ENVELOPES[3], ENVELOPES[6], ENVELOPES[7], ENVELOPES[9], ENVELOPES[24]]
    assert_same([ENVELOPES[1], spaced, *reads_on, ENVELOPES[0]])
    assert seen[-1] == len(reads_on)


@st.composite
def envelope_mutated(draw):
    line = draw(st.sampled_from(ENVELOPES[:2] + [s for s in SAMPLES[:200] if s[:1].isalpha()]))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, 60))
        frag = draw(st.text(alphabet=" []:0123456789aNQXx\t.-", min_size=1, max_size=3))
        cut = draw(st.integers(0, 2))
        line = line[:at] + frag + line[at + cut :]
    return line


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(envelope_mutated(), min_size=1, max_size=30))
def test_mutated_envelopes_are_identical(lines):
    assert_same(lines)


@pytest.mark.parametrize(
    "lines",
    [
        REAL,
        ["", "Nov 22 x", "", "", "été", "Nov 22 été", "2026-11-22T00:00:00Z h", "<13>Nov", "x", "9", ""],
        ["é", "", "Z"],
        [""],
    ],
)
def test_syslog_ascii_lines_are_found_from_the_bytes(lines):
    """The envelope's line filter reads the buffer as string_is_ascii and ^[A-Z0-9] read the lines."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from tlslog import fastpath

    arr = pa.array(lines, type=pa.string())
    for part in (arr, arr[1:], arr[len(arr) // 2 :]):  # (slices start inside the buffer)
        expected = pc.and_(pc.string_is_ascii(part), pc.match_substring_regex(part, "^[A-Z0-9]"))
        assert fastpath._syslog_ascii(part).tolist() == expected.to_pylist()


def test_a_timestamp_that_names_no_time_is_an_issue_and_its_event_is_kept():
    log = ROOT / "tests" / "data" / "odd_timestamps.log"
    lines = log.read_text().splitlines()
    assert_same(lines)
    table, issues = parse_block(lines, source="odd", reference=REF, first_lineno=1)
    assert table.num_rows == 8 and table.column("timestamp").null_count == 7
    assert [(i.lineno, i.reason) for i in issues] == [(n, "invalid timestamp") for n in range(2, 8)]
    with pytest.raises(StrictParseError, match=r"odd_timestamps\.log:2: invalid timestamp"):
        list(iter_events(log, strict=True))
