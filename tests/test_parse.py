"""parse_line / iter_events: every example line of the format reference and of the public corpus."""

from __future__ import annotations

import ast
import gzip
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlslog import parse, read_log
from tlslog.parse import classify, iter_events, parse_line
from tlslog.records import KINDS, Event, InputError, ParseIssue, ReadStats, StrictParseError

DATA = Path(__file__).parent / "data"


def _load_reference() -> list[tuple[str, dict | None]]:
    """tests/data/reference_lines.txt: a log line, then ``-> {fields}`` or ``-> None``."""
    cases, line = [], None
    for raw in (DATA / "reference_lines.txt").read_text().splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        if raw.startswith("-> "):
            cases.append((line, ast.literal_eval(raw[3:])))
        else:
            line = raw
    return cases


CASES = _load_reference()


KEEP = [(line, exp) for line, exp in CASES if exp is not None]


def _check(event: Event | None, expected: dict | None) -> None:
    if expected is None:
        assert event is None
        return
    assert event is not None
    got = {k: getattr(event, k) for k in expected}
    assert got == expected


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_reference_lines(line, expected):
    _check(parse_line(line, year=2026), expected)


@pytest.mark.parametrize(("line", "expected"), KEEP)
def test_event_invariants(line, expected):
    event = parse_line(line, year=2026)
    assert event.kind in KINDS
    assert event.direction in (None, "server", "client")
    if event.relay_host is not None:
        assert event.relay_host == event.relay_host.lower() and not event.relay_host.endswith(".")
    if event.relay_ip is not None:
        assert "[" not in event.relay_ip and not event.relay_ip.lower().startswith("ipv6:")


# One expectation per non-comment line of tests/data/corpus.txt, in order.
CORPUS_EXPECTED = [
    dict(
        kind="delivery",
        qid="qA7LqlqC029841",
        pid=29846,
        relay_host="lds.sonic.net",
        relay_ip="69.12.221.231",
        stat="Sent",
        stat_text="qA7Lqlbm023338 Message accepted for delivery",
    ),
    dict(
        kind="delivery",
        relay_host="aspmx.l.google.com",
        stat="Sent",
        stat_text="OK 1352754085 j9si11007854paw.67",
        delay="00:00:08",
        xdelay="00:00:01",
    ),
    dict(kind="delivery", relay_host="mta6.am0.yahoodns.net", relay_ip=None, stat="Deferred", dsn="4.0.0"),
    dict(
        kind="delivery",
        mailer=None,
        relay_host=None,
        stat="Mail Rejected",
        stat_text="high volume mailings not allowed. Contact support@sonic.net for more information.",
    ),
    dict(
        kind="delivery",
        recipients=("augie@corp.sonic.net", "augie@sonic.net", "augie@schwer.us"),
        relay_host="ign-com.mail.eo.outlook.com",
        stat="Sent",
    ),
    dict(
        kind="receipt",
        sender="augie@corp.sonic.net",
        size=1391,
        nrcpts=1,
        proto="ESMTP",
        daemon="MTA",
        msgid="<509AD829.8000902@corp.sonic.net>",
        relay_host="a.mail.sonic.net",
        relay_ip="64.142.16.245",
    ),
    dict(kind="receipt", size=7712, relay_host="mail.wlbutler.com", relay_ip="208.106.122.5"),
    None,  # Milter add: header
    dict(kind="starttls", direction="client", relay_host="gmail-smtp-in.l.google.com", cipher="RC4-SHA"),
    dict(kind="tls_error", subkind="write", errno=104, ssl_error=5, error="syscall error"),
    dict(
        kind="tls_reject",
        ruleset="tls_server",
        arg1="SOFTWARE",
        relay_host="goransoncpa-com.mail.eo.outlook.com",
        reply_code=403,
    ),
    dict(kind="tls_error", subkind="handshake", direction="client", ssl_error=5, error=None),
    dict(kind="starttls", direction="server", relay_ip="173.8.135.25", verify="NO"),
    dict(kind="starttls", relay_host=None, relay_ip="184.21.104.253", cipher="RC4-MD5"),
    None,  # check_relay
    None,  # check_relay
    None,  # AUTH x5
    None,
    None,
    None,
    None,
    dict(kind="receipt", qid="x89Bx1iP007421", daemon="MTA-v4", detail="bodytype=7BIT", relay_ip="127.0.0.1"),
    dict(
        kind="delivery",
        recipients=("ionagamed@gmail.com",),
        mailer="relay",
        detail="ctladdr=root (0/0)",
        relay_ip="127.0.0.1",
        stat="Sent",
    ),
    dict(kind="starttls", direction="client", version="TLSv1.3", verify="FAIL", pid=7423),
    dict(
        kind="delivery",
        qid="x89Bx1iP007421",
        pid=7423,
        relay_host="gmail-smtp-in.l.google.com",
        relay_ip="173.194.76.26",
        stat_text="OK  1568030341 g8si13213396wrh.408 - gsmtp",
    ),
    dict(kind="starttls", host="mail", pid=17209, relay_ip="127.0.0.1", cipher="ECDHE-RSA-AES256-GCM-SHA384"),
    dict(kind="delivery", qid="v236GIaY017209", stat="Sent", stat_text="Ok: queued as C62506DA"),
    dict(kind="tls_reject", timestamp=None, host=None, relay_host="smtp.ait.dtu.dk", reply_code=403),
    dict(kind="starttls", timestamp=None, relay_host="something.com", relay_ip="1.1.1.1", version="TLSv1.2"),
    dict(kind="tls_cert", direction="client", cert_subject="/CN=EX-01", cert_issuer="/CN=EX-01"),
    dict(
        kind="tls_cert",
        cert_subject="/C=US/ST=California/L=Mountain View/O=Google LLC/CN=something.com",
        cert_issuer="issuer",
    ),
    dict(
        kind="tls_cert",
        cert_subject="/something.fr",
        verifymsg="self signed certificate in certificate chain",
    ),
]


def _corpus_lines() -> list[str]:
    text = (DATA / "corpus.txt").read_text()
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def test_corpus_expectations_cover_every_line():
    assert len(_corpus_lines()) == len(CORPUS_EXPECTED)


@pytest.mark.parametrize(("index", "expected"), list(enumerate(CORPUS_EXPECTED)))
def test_corpus_line(index, expected):
    line = _corpus_lines()[index]
    _check(parse_line(line, year=2012), expected)
    if expected is None:
        assert classify(line) is None


# -- the same message in every envelope ------------------------------------------------------------

MESSAGES = [
    "STARTTLS=server, relay=localhost [127.0.0.1], version=TLSv1.3, verify=OK, "
    "cipher=TLS_AES_256_GCM_SHA384, bits=256/256",
    "6AM34CLa016051: from=<sender@client.lab.test>, size=269, class=0, nrcpts=1, msgid=<l@c>, proto=ESMTPS, "
    "daemon=MTA, relay=localhost [127.0.0.1]",
    "ruleset=tls_server, arg1=SOFTWARE, relay=[127.0.0.1], reject=454 4.7.0 TLS handshake failed.",
]
ENVELOPES = [
    ("Nov 22 03:03:48 vm sm-mta[15792]: ", datetime(2026, 11, 22, 3, 3, 48)),
    ("<22>Nov 22 03:03:48 sm-mta[15792]: ", datetime(2026, 11, 22, 3, 3, 48)),
    ("2026-11-22T03:03:48.801352+00:00 vm sm-mta[15792]: ", datetime(2026, 11, 22, 3, 3, 48, 801352, UTC)),
    (
        "<22>1 2026-11-22T03:03:48.801352+00:00 vm sm-mta 15792 - -  ",
        datetime(2026, 11, 22, 3, 3, 48, 801352, UTC),
    ),
    ("2026-11-22T03:03:48.801352+00:00 vm sm-mta[15792]:  ", datetime(2026, 11, 22, 3, 3, 48, 801352, UTC)),
    ("Nov 22 03:03:48 vm sm-mta[15792]: ", datetime(2026, 11, 22, 3, 3, 48)),
    ("2026-11-22T03:03:48+0000 vm sm-mta[15792]: ", datetime(2026, 11, 22, 3, 3, 48, tzinfo=UTC)),
    ("2026-11-22T03:03:48.000000+0000 vm sm-mta[15792]: ", datetime(2026, 11, 22, 3, 3, 48, tzinfo=UTC)),
    ("Nov 22 03:03:48.000000 vm sm-mta[15792]: ", datetime(2026, 11, 22, 3, 3, 48)),
    ("Nov 22 03:03:48 vm sm-mta[15792]: [ID 702911 mail.notice] ", datetime(2026, 11, 22, 3, 3, 48)),
    ("2026-11-22T03:03:48Z vm sm-mta[15792]: ", datetime(2026, 11, 22, 3, 3, 48, tzinfo=UTC)),
    (
        "2026-11-22T04:03:48+01:00 vm sm-mta[15792]: ",
        datetime(2026, 11, 22, 4, 3, 48, tzinfo=timezone(timedelta(hours=1))),
    ),
]
_ENV_FIELDS = ("timestamp", "host", "program", "pid")


@pytest.mark.parametrize("message", MESSAGES)
@pytest.mark.parametrize(("envelope", "stamp"), ENVELOPES)
def test_same_event_in_every_envelope(message, envelope, stamp):
    plain = parse_line(message)
    event = parse_line(envelope + message, year=2026)
    assert event is not None
    assert event._replace(**dict.fromkeys(_ENV_FIELDS)) == plain
    assert event.timestamp == stamp
    assert event.program == "sm-mta" and event.pid == 15792
    assert event.host == (None if envelope.startswith("<22>N") else "vm")


@pytest.mark.parametrize("tag", ["sendmail", "sm-mta", "sm-msp-queue", "sm-mta-runq", "a" * 32])
def test_any_tag_with_and_without_pid(tag):
    for sep in ("[4242]: ", ": "):
        event = parse_line(f"Mar 3 13:16:18 mail {tag}{sep}{MESSAGES[2]}", year=2026)
        assert (event.program, event.pid) == (tag, 4242 if "[" in sep else None)
        assert event.timestamp == datetime(2026, 3, 3, 13, 16, 18)


def test_split_parts():
    first = parse_line(
        "Nov 22 03:04:12 vm sm-mta[1]: 6AM34CLa016051[1]: to=<a@x>,<b@y>, delay=00:00:00, "
        "mailer=esmtp, pri=1, relay=mx. [192.0.2.1], dsn=2.0.0, stat=Sent (ok)",
        year=2026,
    )
    assert first.kind == "delivery" and first.qid == "6AM34CLa016051" and first.recipients == ("a@x", "b@y")
    cont = "Nov 22 03:04:12 vm sm-mta[1]: 6AM34CLa016051[2]: <c@z>,<d@z>"
    assert parse_line(cont) is None and classify(cont) is None
    bare = "Nov 22 03:04:12 vm sm-mta[1]: [2]: STARTTLS=client, relay=mx., version=TLSv1.2"
    assert parse_line(bare) is None and classify(bare) is None


def test_qid_before_starttls_and_long_qids():
    e = parse_line(
        "sm-mta[3529565]: xA32R2PQ3529565: STARTTLS=server, relay=[192.0.2.1], version=TLSv1.2, "
        "verify=NO, cipher=AES128-SHA, bits=128/128"
    )
    assert (e.kind, e.qid, e.pid) == ("starttls", "xA32R2PQ3529565", 3529565)
    e = parse_line(
        "Jun  1 00:00:00 h sm-mta[1240916]: 55O5iwek1240916: to=<a@b>, delay=00:00:00, stat=queued"
    )
    assert (e.qid, e.stat) == ("55O5iwek1240916", "queued")


# -- robustness ------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_parse_line_never_raises_on_text(text):
    parse_line(text)
    classify(text)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([line for line, _ in CASES]), st.data())
def test_parse_line_never_raises_on_mutated_lines(line, data):
    cut = data.draw(st.integers(0, len(line)))
    insert = data.draw(st.text(max_size=20))
    drop = data.draw(st.integers(0, 10))
    mutated = line[:cut] + insert + line[cut + drop :]
    event = parse_line(mutated, year=data.draw(st.none() | st.integers(1, 9999)))
    assert event is None or isinstance(event, Event)
    classify(mutated)


def test_huge_lines_do_not_backtrack():
    for body in (
        "STARTTLS=server, relay=" + "a" * 200_000,
        "to=" + "<a>," * 50_000,
        "STARTTLS: read error=" + "a (1), errno=1" * 10_000,
        "lost input channel from " + " to " * 50_000,
        "ruleset=tls_server, arg1=" + "x, arg2=" * 20_000,
    ):
        assert parse_line("Nov 22 03:04:12 vm sm-mta[1]: 6AM34CLa016051: " + body) is None


# -- timestamps and years --------------------------------------------------------------------------


def test_bsd_year_given():
    assert parse_line(CASES[0][0], year=2024).timestamp == datetime(2024, 11, 22, 3, 4, 12)


def test_bsd_year_inferred_against_now():
    now = datetime.now()
    ahead = now + timedelta(days=3)
    line = ahead.strftime("%b %d %H:%M:%S") + " vm sm-mta[1]: " + MESSAGES[0]
    assert parse_line(line).timestamp.year == now.year - 1
    today = now.strftime("%b %d %H:%M:%S") + " vm sm-mta[1]: " + MESSAGES[0]
    assert parse_line(today).timestamp.year == now.year


@pytest.mark.parametrize(
    ("stamp", "reference", "year"),
    [
        ("Dec 31 23:59:59", datetime(2026, 1, 2, 8, 0), 2025),  # Dec line in a file that ends in January
        ("Jan  1 00:00:01", datetime(2026, 1, 2, 8, 0), 2026),
        ("Jan  3 07:00:00", datetime(2026, 1, 2, 8, 0), 2026),  # within a day of the reference (clock skew)
        ("Jan  4 09:00:00", datetime(2026, 1, 2, 8, 0), 2025),
        ("Feb 29 12:00:00", datetime(2025, 3, 1, 0, 0), 2024),  # no Feb 29 in 2025
    ],
)
def test_bsd_year_rollover(stamp, reference, year):
    event = parse.parse_event(f"{stamp} vm sm-mta[1]: {MESSAGES[0]}", None, reference)
    assert event.timestamp.year == year


def test_impossible_date_keeps_event():
    event = parse_line(f"Feb 30 10:00:00 vm sm-mta[1]: {MESSAGES[0]}", year=2026)
    assert event.kind == "starttls" and event.timestamp is None


# -- classify --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            "Nov 22 03:04:12 vm sm-mta[1]: STARTTLS=server, relay=x, version=TLSv1.3",
            "unrecognised STARTTLS line",
        ),
        ("Nov 22 03:04:12 vm sm-mta[1]: ruleset=tls_server, arg1=OK", "unrecognised TLS ruleset line"),
        ("Nov 22 03:04:12 vm sm-mta[1]: 6AM34CLa016051: from=<a@b>", "unrecognised from= line"),
        ("Nov 22 03:04:12 vm sm-mta[1]: 6AM34CLa016051: to=<a@b>", "unrecognised to= line"),
        ("Nov 22 03:04:12 vm sm-mta[1]: TLSA=_25.mx, weird", "unrecognised TLSA line"),
        ("Nov 22 03:04:12 vm postfix/smtp[1]: 6AM34CLa016051: to=<a@b>", None),
        ("Nov 22 03:04:12 vm dovecot[1]: STARTTLS=server, relay=x", None),
        (
            "Nov 22 03:04:12 vm sm-mta[1]: ruleset=check_rcpt, arg1=<a@b>, relay=x, "
            "reject=550 5.7.1 Relaying denied",
            None,
        ),
        ("Nov 22 03:04:12 vm sm-mta[1]: STARTTLS=client, SSL_shutdown failed: -1", None),
        ("Nov 22 03:04:12 vm sm-mta[1]: STARTTLS: SSL_accept:before SSL initialization", None),
        ("Nov 22 03:04:12 vm sm-mta[1]: tls_clt_features=empty, stat=0, relay=x [192.0.2.1]", None),
        ("Nov 22 03:04:12 vm sm-mta[1]: random text", None),
    ],
)
def test_classify(line, reason):
    assert parse_line(line) is None
    assert classify(line) == reason


# -- iter_events -----------------------------------------------------------------------------------

LOG = [
    "Dec 31 23:59:58 vm sm-mta[16051]: " + MESSAGES[0],
    "Dec 31 23:59:59 vm sm-mta[16051]: something else",
    "Jan  1 00:00:01 vm sm-mta[16051]: STARTTLS=server, relay=x, version=TLSv1.3",
    "Jan  1 00:00:02 vm sm-mta[16051]: " + MESSAGES[1],
]


def _write_log(tmp_path: Path, lines: list[str], mtime: datetime, name: str = "maillog") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path


def test_iter_events_counts_issues_and_rolls_year(tmp_path):
    path = _write_log(tmp_path, LOG, datetime(2027, 1, 1, 1, 0))
    issues: list[ParseIssue] = []
    stats = ReadStats()
    events = list(iter_events(path, on_issue=issues.append, stats=stats))
    assert [e.kind for e in events] == ["starttls", "receipt"]
    assert [e.timestamp.year for e in events] == [2026, 2027]
    assert issues == [ParseIssue(str(path), 3, "unrecognised STARTTLS line", LOG[2])]
    assert (stats.lines, stats.events, stats.issues) == (4, 2, 1)
    assert stats.sources == [str(path)]


def test_iter_events_year_is_the_year_of_every_bsd_timestamp(tmp_path):
    # the file's date says nothing then: a copy made in June, or a log piped in early December
    line = "Nov 22 10:00:00 mx1 sm-mta[2001]: " + MESSAGES[0]
    copied = _write_log(tmp_path, [line], datetime(2026, 6, 1, 12, 0), name="copied")
    assert [e.timestamp for e in iter_events(copied, year=2026)] == [datetime(2026, 11, 22, 10, 0)]
    assert [e.timestamp for e in iter_events(copied)] == [datetime(2025, 11, 22, 10, 0)]
    late = _write_log(tmp_path, [line.replace("Nov 22", "Dec 20")], datetime(2026, 12, 6), name="late")
    assert [e.timestamp.year for e in iter_events(late, year=2026)] == [2026]
    assert iter_events(late, year=2026).__next__() == parse_line(line.replace("Nov 22", "Dec 20"), year=2026)
    # a log across New Year is dated by its end without --year (above); with it, every line is in that year
    path = _write_log(tmp_path, LOG, datetime(2027, 1, 1, 1, 0))
    assert [e.timestamp.year for e in iter_events(path, year=2020)] == [2020, 2020]
    # so a Feb 29 that year has not is no time, not one of a leap year before (and with --strict, an error)
    leap = _write_log(tmp_path, [line.replace("Nov 22", "Feb 29")], datetime(2026, 6, 1), name="leap")
    issues: list[ParseIssue] = []
    assert [e.timestamp for e in iter_events(leap, year=2025, on_issue=issues.append)] == [None]
    assert [i.reason for i in issues] == ["invalid timestamp"]
    assert read_log(leap, year=2025, use_cache=False).attrs["issues"][0].reason == "invalid timestamp"
    assert [e.timestamp for e in iter_events(leap, year=2024)] == [datetime(2024, 2, 29, 10, 0)]


def test_iter_events_strict(tmp_path):
    path = _write_log(tmp_path, LOG, datetime(2027, 1, 1, 1, 0))
    events = iter_events(path, strict=True)
    assert next(events).kind == "starttls"
    with pytest.raises(StrictParseError) as err:
        list(events)
    assert err.value.issue.lineno == 3


def test_iter_events_reads_rotated_gzip_oldest_first(tmp_path):
    old = tmp_path / "maillog.1.gz"
    with gzip.open(old, "wt") as f:
        f.write(LOG[0] + "\n")
    os.utime(old, (datetime(2026, 12, 31, 23, 59, 59).timestamp(),) * 2)
    _write_log(tmp_path, LOG[3:], datetime(2027, 1, 1, 1, 0))
    stats = ReadStats()
    events = list(iter_events(tmp_path, stats=stats))
    assert [(e.kind, e.timestamp.year) for e in events] == [("starttls", 2026), ("receipt", 2027)]
    assert [Path(s).name for s in stats.sources] == ["maillog.1.gz", "maillog"]


def test_iter_events_missing_path(tmp_path):
    with pytest.raises(InputError):
        list(iter_events(tmp_path / "nope"))


def test_iter_events_with_fake_sources(monkeypatch):
    class FakeSource:
        name = "fake"
        reference = datetime(2026, 1, 1, 12, 0)

    def read_lines(source, *, on_progress=None, on_issue=None):
        on_issue(ParseIssue(source.name, 0, "repaired invalid UTF-8"))
        yield from LOG

    monkeypatch.setattr(parse.sources, "expand", lambda paths: [FakeSource()])
    monkeypatch.setattr(parse.sources, "read_lines", read_lines)
    issues: list[ParseIssue] = []
    stats = ReadStats()
    events = list(iter_events("x", on_issue=issues.append, stats=stats))
    assert [e.timestamp for e in events] == [
        datetime(2025, 12, 31, 23, 59, 58),
        datetime(2026, 1, 1, 0, 0, 2),
    ]
    assert [i.reason for i in issues] == ["repaired invalid UTF-8", "unrecognised STARTTLS line"]
    assert stats.issues == 2
