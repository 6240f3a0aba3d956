# ruff: noqa: E501  (sendmail log lines are long)
"""Linking TLS lines to receipts and deliveries (design.md "Linking lines", reference 7.3).

Every test builds its events from real-format sendmail lines: reference examples ([lab], [public]) and
lines constructed from the same format strings.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tlslog import deliveries, failures, parse_line, read_log, receipts, sessions
from tlslog.frames import events_frame
from tlslog.linking import DELIVERY_COLUMNS, RECEIPT_COLUMNS, SESSION_COLUMNS, link, spelled
from tlslog.relays import relay_keys
from tlslog.vectors import map_unique


def frame(text: str) -> pd.DataFrame:
    """The events frame of some log lines (lines tlslog does not keep are dropped, as read_log does)."""
    events = (parse_line(line.strip(), year=2026) for line in text.strip().splitlines())
    return events_frame([e for e in events if e is not None])


def one(df: pd.DataFrame, **where) -> pd.Series:
    mask = pd.Series(True, index=df.index)
    for col, value in where.items():
        mask &= df[col].astype("str") == str(value)
    rows = df[mask]
    assert len(rows) == 1, rows
    return rows.iloc[0]


# The full inbound + outbound loopback session at LogLevel 9 (reference 7.3, [lab]).
LAB_SESSION = """
Nov 22 03:04:12 vm sendmail[16050]: 6AM34CUQ016050: from=sender@client.lab.test, size=64, class=0, nrcpts=1, msgid=<lab14321@client.lab.test>, relay=root@localhost
Nov 22 03:04:12 vm sm-mta[16051]: STARTTLS=server, relay=localhost [127.0.0.1], version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Nov 22 03:04:12 vm sendmail[16050]: STARTTLS=client, relay=[127.0.0.1], version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Nov 22 03:04:12 vm sm-mta[16051]: 6AM34CLa016051: from=<sender@client.lab.test>, size=269, class=0, nrcpts=1, msgid=<lab14321@client.lab.test>, proto=ESMTPS, daemon=MTA, relay=localhost [127.0.0.1]
Nov 22 03:04:12 vm sendmail[16050]: 6AM34CUQ016050: to=root@lab.test, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30064, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent (6AM34CLa016051 Message accepted for delivery)
Nov 22 03:04:12 vm sm-mta[16052]: 6AM34CLa016051: to=<root@lab.test>, delay=00:00:00, xdelay=00:00:00, mailer=local, pri=30521, dsn=2.0.0, stat=Sent
"""


def test_lab_session_inbound_outbound_and_local():
    df = frame(LAB_SESSION)
    r = receipts(df)
    assert list(r.columns) == RECEIPT_COLUMNS
    smtp = one(r, qid="6AM34CLa016051")
    assert smtp["encrypted"] and smtp["verified"] and smtp["version"] == "TLSv1.3"
    assert not pd.isna(smtp["session_id"]) and smtp["internal"]  # loopback
    cli = one(r, qid="6AM34CUQ016050")  # command-line submission: no proto, relay=root@localhost
    assert cli["encrypted"] is False or cli["encrypted"] == False  # noqa: E712
    assert cli["internal"] and pd.isna(cli["session_id"])
    d = deliveries(df)
    assert list(d.columns) == DELIVERY_COLUMNS
    # the local delivery of 6AM34CLa016051 in the forked child sm-mta[16052] is not an outbound attempt
    assert d["qid"].tolist() == ["6AM34CUQ016050"]
    out = d.iloc[0]
    assert out["encrypted"] and out["status"] == "sent" and out["cipher"] == "TLS_AES_256_GCM_SHA384"
    assert out["recipient"] == "root@lab.test" and out["recipient_domain"] == "lab.test"
    s = sessions(df)
    assert list(s.columns) == SESSION_COLUMNS
    assert sorted(s["direction"].astype(str)) == ["client", "server"]
    assert (s["messages"] == 1).all() and (s["outcome"] == "ok").all()
    assert one(s, direction="client")["session_id"] == out["session_id"]
    assert one(s, direction="server")["session_id"] == smtp["session_id"]


def test_read_log_on_a_file_gives_the_same_links(tmp_path):
    path = tmp_path / "maillog"
    path.write_text(LAB_SESSION.strip() + "\n")
    r = receipts(read_log(path, year=2026))
    assert r.set_index("qid")["encrypted"].to_dict() == {"6AM34CUQ016050": False, "6AM34CLa016051": True}


def test_lost_input_channel_keeps_the_from_line_of_its_qid():
    # reference 7.3 [lab]: the aborted transaction's from= is logged after the session-end line
    df = frame("""
Nov 22 03:08:01 vm sm-mta[18213]: STARTTLS=server, relay=localhost [127.0.0.1], version=TLSv1.3, verify=NO, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Nov 22 03:08:01 vm sm-mta[18213]: STARTTLS: read error=syscall error (-1), errno=104, get_error=error:00000000:lib(0)::reason(0), retry=1, ssl_err=5
Nov 22 03:08:01 vm sm-mta[18213]: 6AM3801s018213: lost input channel from localhost [127.0.0.1] to MTA after rcpt
Nov 22 03:08:01 vm sm-mta[18213]: 6AM3801s018213: from=<x@raw.lab.test>, size=0, class=0, nrcpts=1, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]
""")
    row = one(receipts(df), qid="6AM3801s018213")
    assert row["encrypted"] and row["verify"] == "NO" and not row["verified"]


# Pre-8.15.1 lines: proto=ESMTP even over TLS, so only the linked STARTTLS line tells.
PRE_815 = """
Mar  2 10:00:00 mx1 sm-mta[4100]: STARTTLS=server, relay=mail.example.org [192.0.2.7], version=TLSv1/SSLv3, verify=NO, cipher=DHE-RSA-AES256-SHA, bits=256/256
Mar  2 10:00:01 mx1 sm-mta[4100]: s22A00a1004100: from=<a@example.org>, size=100, class=0, nrcpts=1, msgid=<1@example.org>, proto=ESMTP, daemon=MTA, relay=mail.example.org [192.0.2.7]
Mar  2 10:00:02 mx1 sm-mta[4100]: s22A00a2004100: from=<b@example.org>, size=100, class=0, nrcpts=1, msgid=<2@example.org>, proto=ESMTP, daemon=MTA, relay=mail.example.org [192.0.2.7]
Mar  2 10:01:00 mx1 sm-mta[4200]: STARTTLS=server, relay=mail.example.net [198.51.100.9], version=TLSv1, verify=NOT, cipher=AES128-SHA, bits=128/128
Mar  2 10:01:05 mx1 sm-mta[4200]: s22A1000004200: mail.example.net [198.51.100.9] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA
Mar  2 10:02:00 mx1 sm-mta[4200]: s22A2000004200: from=<c@example.net>, size=100, class=0, nrcpts=1, msgid=<3@example.net>, proto=ESMTP, daemon=MTA, relay=mail.example.net [198.51.100.9]
Mar  2 10:03:00 mx1 sm-mta[4300]: STARTTLS=server, relay=mail.example.com [203.0.113.5], version=TLSv1, verify=NO, cipher=AES256-SHA, bits=256/256
Mar  2 10:30:00 mx1 sm-mta[4300]: s22AU000004300: from=<d@example.com>, size=100, class=0, nrcpts=1, msgid=<4@example.com>, proto=ESMTP, daemon=MTA, relay=mail.example.com [203.0.113.5]
Mar  2 10:40:00 mx1 sm-mta[4400]: s22Ae000004400: from=<e@example.com>, size=100, class=0, nrcpts=1, msgid=<5@example.com>, proto=ESMTP, daemon=MTA, relay=mail.example.com [203.0.113.5]
Mar  2 10:41:00 mx1 sm-mta[4500]: STARTTLS=server, relay=x.example.com [203.0.113.6], version=TLSv1.2, verify=OK, cipher=AES256-GCM-SHA384, bits=256/256
Mar  2 10:41:01 mx1 sm-mta[4500]: s22Af100004500: from=<f@example.com>, size=100, class=0, nrcpts=1, proto=ESMTP, daemon=MTA, relay=x.example.com [203.0.113.6]
Mar  2 10:41:02 mx1 sm-mta[4500]: STARTTLS=server, relay=y.example.com [203.0.113.7], version=TLSv1, verify=FAIL, cipher=AES128-SHA, bits=128/128
Mar  2 10:41:03 mx1 sm-mta[4500]: s22Af300004500: from=<g@example.com>, size=100, class=0, nrcpts=1, proto=ESMTP, daemon=MTA, relay=y.example.com [203.0.113.7]
Mar  2 10:42:00 mx1 sm-mta[4600]: STARTTLS=server, error: accept failed=-1, reason=no shared cipher, SSL_error=1, errno=0, retry=-1, relay=z.example.com [203.0.113.8]
Mar  2 10:42:01 mx1 sm-mta[4600]: s22Ag100004600: from=<h@example.com>, size=100, class=0, nrcpts=1, proto=ESMTP, daemon=MTA, relay=z.example.com [203.0.113.8]
"""


def test_inbound_link_rules_without_proto_esmtps():
    r = receipts(frame(PRE_815)).set_index("sender")
    enc = r["encrypted"].to_dict()
    # several transactions on one TLS connection
    assert enc["a@example.org"] and enc["b@example.org"]
    assert r.loc["a@example.org", "session_id"] == r.loc["b@example.org", "session_id"]
    assert r.loc["a@example.org", "weak"]  # TLSv1/SSLv3 with a CBC suite
    # the connection ended (did not issue MAIL); the pid's next from= is another connection
    assert not enc["c@example.net"]
    # a from= 27 minutes after the STARTTLS line of that pid is outside the window
    assert not enc["d@example.com"]
    # a from= whose process never did STARTTLS was in clear
    assert not enc["e@example.com"]
    # a new STARTTLS from the pid starts a new session
    assert r.loc["f@example.com", "verify"] == "OK" and r.loc["g@example.com", "verify"] == "FAIL"
    # after a failed accept the mail came in clear
    assert not enc["h@example.com"] and pd.isna(r.loc["h@example.com", "session_id"])
    assert not r["internal"].any()
    assert r.loc["a@example.org", "peer_domain"] == "example.org"


def test_gap_is_a_parameter():
    r = receipts(frame(PRE_815), gap="1h").set_index("sender")
    assert r.loc["d@example.com", "encrypted"]


def test_proto_esmtps_without_a_starttls_line_is_encrypted():
    r = receipts(
        frame("""
2026-03-02T10:00:01.000000+00:00 mx1 sm-mta[7000]: 62UA01aa007000: from=<a@example.org>, size=10, class=0, nrcpts=1, proto=ESMTPSA, daemon=MSA, relay=laptop.example.org [192.0.2.50]
2026-03-02T10:00:02.000000+00:00 mx1 sm-mta[7001]: 62UA02aa007001: from=<b@example.org>, size=10, class=0, nrcpts=1, proto=UTF8SMTPS, daemon=MTA, relay=mx.example.org [192.0.2.51]
2026-03-02T10:00:03.000000+00:00 mx1 sm-mta[7002]: 62UA03aa007002: from=<c@example.org>, size=10, class=0, nrcpts=1, proto=ESMTPA, daemon=MSA, relay=mx.example.org [192.0.2.52]
""")
    )
    assert r.set_index("sender")["encrypted"].to_dict() == {
        "a@example.org": True,
        "b@example.org": True,
        "c@example.org": False,
    }
    assert r["session_id"].isna().all()
    assert str(r["timestamp"].dt.tz) == "UTC"


def test_internal_hosts_parameter():
    r = receipts(frame(PRE_815), internal=["192.0.2.0/24", "*.example.net"]).set_index("sender")
    assert r.loc["a@example.org", "internal"] and r.loc["c@example.net", "internal"]
    assert not r.loc["d@example.com", "internal"]


OUTBOUND = """
Mar  3 09:00:00 mx1 sm-mta[5000]: STARTTLS=client, relay=mx.example.net., version=TLSv1.3, verify=FAIL, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Mar  3 09:00:01 mx1 sm-mta[5000]: 63390001005000: to=<a@example.net>,<b@example.net>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120000, relay=mx.example.net. [198.51.100.25], dsn=2.0.0, stat=Sent (OK queued)
Mar  3 09:00:02 mx1 sm-mta[5000]: STARTTLS=client, relay=mx.example.com., version=TLSv1.2, verify=OK, cipher=ECDHE-RSA-AES128-GCM-SHA256, bits=128/128
Mar  3 09:00:03 mx1 sm-mta[5000]: 63390002005000: to=<c@example.com>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120000, relay=mx.example.com. [203.0.113.25], dsn=2.0.0, stat=Sent (OK)
Mar  3 09:00:04 mx1 sm-mta[5000]: 63390003005000: to=<d@example.net>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120000, relay=mx.example.net. [198.51.100.25], dsn=2.0.0, stat=Sent (OK queued)
Mar  3 09:00:05 mx1 sm-mta[5000]: 63390004005000: to=<e@example.org>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120000, relay=mail.example.org. [192.0.2.25], dsn=2.0.0, stat=Sent (ok)
Mar  3 09:00:06 mx1 sm-mta[5000]: 63390005005000: to=<f@example.org>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120000, relay=down.example.org., dsn=4.0.0, stat=Deferred: Connection refused by down.example.org.
Mar  3 09:00:07 mx1 sm-mta[5000]: 63390006005000: to=<g@example.org>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120000, relay=slow.example.org., dsn=4.0.0, stat=Deferred: Connection timed out with slow.example.org.
Mar  3 09:00:08 mx1 sm-mta[5000]: 63390007005000: to=<h@example.org>, delay=00:00:01, mailer=esmtp, pri=120000, dsn=4.0.0, stat=Deferred: Name server timeout
Mar  3 09:00:09 mx1 sm-mta[5001]: 63390008005001: to=<i@example.org>, delay=00:00:00, mailer=esmtp, pri=30000, stat=queued
Mar  3 09:00:10 mx1 sm-mta[5000]: 63390009005000: to=<nobody@example.org>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120000, relay=mail.example.org. [192.0.2.25], dsn=5.1.1, reply=550 5.1.1 <nobody@example.org>: Recipient address rejected, stat=User unknown
Mar  3 09:00:11 mx1 sm-mta[5000]: 63390004005000: to=<x@localhost>, delay=00:00:01, mailer=local, pri=120000, dsn=2.0.0, stat=Sent
Mar  3 09:00:12 mx1 sm-mta[5000]: 63390004005000: to=|/usr/bin/procmail, delay=00:00:01, mailer=prog, pri=120000, dsn=2.0.0, stat=Sent
Mar  3 09:30:00 mx1 sm-mta[5000]: 6339U000005000: to=<j@example.net>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120000, relay=mx.example.net. [198.51.100.25], dsn=2.0.0, stat=Sent (OK queued)
"""


def test_outbound_relay_matching_caching_and_clear_text():
    d = deliveries(frame(OUTBOUND)).set_index("recipient")
    enc = d["encrypted"].to_dict()
    # one to= line with two recipients gives two rows over the same session
    assert enc["a@example.net"] and enc["b@example.net"]
    assert d.loc["a@example.net", "session_id"] == d.loc["b@example.net", "session_id"]
    assert enc["c@example.com"] and d.loc["c@example.com", "verified"]
    # connection cache: another queue id to the first relay after a session with a second relay
    assert (
        enc["d@example.net"] and d.loc["d@example.net", "session_id"] == d.loc["a@example.net", "session_id"]
    )
    assert not d.loc["a@example.net", "verified"]  # verify=FAIL
    # a relay without a STARTTLS line in that process: clear when a server answered
    assert enc["e@example.org"] is False or enc["e@example.org"] == False  # noqa: E712
    assert not enc["nobody@example.org"] and d.loc["nobody@example.org", "status"] == "bounced"
    # no server reached: NA
    for rcpt in ("f@example.org", "g@example.org", "h@example.org", "i@example.org"):
        assert pd.isna(enc[rcpt]), rcpt
    assert d.loc["i@example.org", "status"] == "queued" and d.loc["f@example.org", "status"] == "deferred"
    # local and prog mailers are not outbound attempts
    assert "x@localhost" not in d.index and len(d) == 11
    # half an hour later the same pid is another connection (time gap): sent in clear
    assert not enc["j@example.net"]
    assert d["tls_failure"].isna().all()
    assert d.loc["a@example.net", "peer"] == "mx.example.net"
    assert d.loc["a@example.net", "peer_domain"] == "example.net"


def test_literal_relay_matches_literal():
    # reference [public: pinardi]: a smart host given as [127.0.0.1]
    d = deliveries(
        frame("""
Mar 3 13:16:18 mail sendmail[17209]: STARTTLS=client, relay=[127.0.0.1], version=TLSv1/SSLv3, verify=FAIL, cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256/256
Mar 3 13:16:18 mail sendmail[17209]: v236GIaY017209: to=karonise@gmail.com, ctladdr=root (0/0), delay=00:00:00, xdelay=00:00:00, mailer=relay, pri=30270, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent (Ok: queued as C62506DA)
""")
    )
    row = d.iloc[0]
    assert row["encrypted"] and row["internal"] and row["mailer"] == "relay"
    assert not row["weak"]  # a GCM suite is TLS 1.2 even when logged as TLSv1/SSLv3


HANDSHAKE = """
Nov 22 03:05:30 vm sendmail[16756]: STARTTLS=client, error: connect failed=-1, reason=sslv3 alert handshake failure, SSL_error=1, errno=0, retry=-1
Nov 22 03:05:30 vm sendmail[16756]: ruleset=tls_server, arg1=SOFTWARE, relay=[127.0.0.1], reject=454 4.7.0 TLS handshake failed.
Nov 22 03:05:30 vm sendmail[16756]: 6AM35UXB016756: to=root@lab.test, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30064, relay=[127.0.0.1] [127.0.0.1], dsn=4.7.0, stat=Deferred: 454 4.7.0 TLS handshake failed.
Nov 22 03:05:31 vm sendmail[16756]: 6AM35UXC016756: to=other@lab.test, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30064, relay=[127.0.0.1] [127.0.0.1], dsn=4.7.0, stat=Deferred: 454 4.7.0 TLS handshake failed.
Nov 22 03:35:30 vm sendmail[17000]: STARTTLS=client, relay=[127.0.0.1], version=TLSv1.2, verify=OK, cipher=ECDHE-RSA-AES128-GCM-SHA256, bits=128/128
Nov 22 03:35:30 vm sendmail[17000]: 6AM35UXB016756: to=root@lab.test, delay=00:30:00, xdelay=00:00:00, mailer=esmtp, pri=120064, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent (6AM3ZUaa017001 Message accepted for delivery)
Nov 22 04:05:30 vm sendmail[17100]: STARTTLS=client, error: connect failed=0, reason=unknown, SSL_error=5, errno=0, retry=-1
Nov 22 04:05:30 vm sendmail[17100]: ruleset=tls_server, arg1=SOFTWARE, relay=[127.0.0.1], reject=454 4.7.0 TLS handshake failed.
Nov 22 04:05:30 vm sendmail[17100]: 6AM35UXC016756: to=other@lab.test, delay=01:00:00, xdelay=00:00:00, mailer=esmtp, pri=120064, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent (6AM45Uaa017101 Message accepted for delivery)
"""


def test_failed_handshake_cached_status_retry_and_fallback():
    d = deliveries(frame(HANDSHAKE))
    first = d.iloc[0]
    assert first["encrypted"] == False and first["tls_failure"] == "handshake_failed"  # noqa: E712
    assert first["status"] == "deferred"
    # the same process reuses the cached failure for the next queue id: no new ruleset line
    cached = d.iloc[1]
    assert cached["encrypted"] == False and cached["tls_failure"] == "handshake_failed"  # noqa: E712
    # the retry half an hour later succeeds over TLS
    retry = d.iloc[2]
    assert retry["encrypted"] and pd.isna(retry["tls_failure"]) and retry["status"] == "sent"
    # TLSFallbacktoClear: the handshake failed, the message went in clear
    fallback = d.iloc[3]
    assert fallback["encrypted"] == False and fallback["status"] == "sent"  # noqa: E712
    assert fallback["tls_failure"] == "handshake_failed"
    s = sessions(frame(HANDSHAKE))
    failed = s[s["outcome"] == "failed"]
    assert len(failed) == 2 and (failed["cause"] == "handshake_failed").all()
    assert failed.iloc[0]["error"] == "sslv3 alert handshake failure"
    assert failed.iloc[0]["relay_ip"] == "127.0.0.1"  # from the tls_server line that follows
    assert failed.iloc[0]["messages"] == 2


POLICY = """
Nov 22 03:05:14 vm sendmail[16385]: STARTTLS=client, relay=[127.0.0.1], version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Nov 22 03:05:14 vm sendmail[16385]: ruleset=tls_server, arg1=OK, relay=[127.0.0.1], reject=454 4.7.0 encryption too weak 256 less than 512
Nov 22 03:05:14 vm sendmail[16385]: 6AM35EXB016385: to=root@lab.test, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30064, relay=[127.0.0.1] [127.0.0.1], dsn=4.7.0, stat=Deferred: 454 4.7.0 encryption too weak 256 less than 512
Nov 22 03:05:18 vm sendmail[16417]: STARTTLS=client, relay=[127.0.0.1], version=TLSv1.3, verify=FAIL, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Nov 22 03:05:18 vm sendmail[16417]: ruleset=tls_server, arg1=FAIL, relay=[127.0.0.1], reject=403 4.7.0 authentication failed
Nov 22 03:05:18 vm sendmail[16417]: 6AM35IXB016417: to=root@lab.test, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30064, relay=[127.0.0.1] [127.0.0.1], dsn=4.7.0, stat=Deferred: 403 4.7.0 authentication failed
Nov 22 03:05:50 vm sendmail[16916]: ruleset=tls_server, arg1=NONE, relay=[127.0.0.1], reject=454 4.7.0 encryption too weak 0 less than 128
Nov 22 03:05:50 vm sendmail[16916]: 6AM35oXB016916: to=root@lab.test, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30064, relay=[127.0.0.1] [127.0.0.1], dsn=4.7.0, stat=Deferred: 454 4.7.0 encryption too weak 0 less than 128
Nov 22 03:05:48 vm sendmail[16887]: ruleset=tls_server, arg1=CLEAR, relay=[127.0.0.1], reject=454 4.7.0 STARTTLS disabled locally
Nov 22 03:05:48 vm sendmail[16887]: 6AM35mXB016887: to=root@lab.test, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30064, relay=[127.0.0.1] [127.0.0.1], dsn=4.7.0, stat=Deferred: 454 4.7.0 STARTTLS disabled locally
Nov 22 03:05:02 vm sendmail[16329]: STARTTLS=client, relay=[127.0.0.1], version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Nov 22 03:05:02 vm sendmail[16329]: 6AM352r7016329: to=root@lab.test, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30064, relay=[127.0.0.1] [127.0.0.1], dsn=4.7.0, reply=454 4.7.0 no authentication requested, stat=Deferred: 454 4.7.0 no authentication requested
Nov 22 03:05:04 vm sendmail[16340]: STARTTLS=client, relay=[127.0.0.1], version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Nov 22 03:05:04 vm sendmail[16340]: 6AM354rG016340: to=root@lab.test, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30064, relay=[127.0.0.1] [127.0.0.1], dsn=5.7.0, reply=503 5.7.0 not authenticated, stat=Service unavailable
"""


@pytest.mark.parametrize(
    ("qid", "encrypted", "cause", "status"),
    [
        ("6AM35EXB016385", True, "too_weak", "deferred"),
        ("6AM35IXB016417", True, "verify_failed", "deferred"),
        ("6AM35oXB016916", False, "not_offered", "deferred"),
        ("6AM35mXB016887", False, "disabled_locally", "deferred"),
        # the remote sendmail's tls_client refused us: seen only in reply=/stat=
        ("6AM352r7016329", True, "verify_failed", "deferred"),
        ("6AM354rG016340", True, "verify_failed", "bounced"),
    ],
)
def test_policy_rejects(qid, encrypted, cause, status):
    row = one(deliveries(frame(POLICY)), qid=qid)
    assert bool(row["encrypted"]) is encrypted
    assert row["tls_failure"] == cause and row["status"] == status
    assert pd.isna(row["session_id"]) is (not encrypted)


def test_policy_reject_marks_the_session_failed():
    s = sessions(frame(POLICY)).set_index("pid")
    assert s.loc[16385, "outcome"] == "failed" and s.loc[16385, "cause"] == "too_weak"
    assert s.loc[16385, "error"] == "454 4.7.0 encryption too weak 256 less than 512"
    assert s.loc[16329, "outcome"] == "ok"  # refused by the remote side, not by our policy


def test_tls_rcpt_affects_one_recipient():
    d = deliveries(
        frame("""
Nov 22 03:05:16 vm sendmail[16396]: STARTTLS=client, relay=[127.0.0.1], version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Nov 22 03:05:16 vm sendmail[16396]: 6AM35GYX016396: ruleset=tls_rcpt, arg1=root@lab.test, relay=[127.0.0.1], reject=454 4.7.0 CN mx.lab.test does not match wrong.lab.test
Nov 22 03:05:16 vm sendmail[16396]: 6AM35GYX016396: to=root@lab.test, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30064, relay=[127.0.0.1] [127.0.0.1], dsn=4.2.0, stat=Deferred
Nov 22 03:05:16 vm sendmail[16396]: 6AM35GYX016396: to=<other@lab.test>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30064, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent (6AM35Gaa016397 Message accepted for delivery)
""")
    ).set_index("recipient")
    assert d.loc["root@lab.test", "tls_failure"] == "cn_mismatch" and d.loc["root@lab.test", "encrypted"]
    assert pd.isna(d.loc["other@lab.test", "tls_failure"]) and d.loc["other@lab.test", "encrypted"]


def test_a_refusal_only_a_session_gives_is_encrypted_without_its_starttls_line():
    # reference 6.3's excerpt as printed, without the STARTTLS=client line; a peer's sendmail refusing us
    # after STARTTLS; and the same process's clear refusal (0 bits: STARTTLS was not done), for contrast
    d = deliveries(
        frame("""
Nov 22 03:05:16 vm sendmail[16396]: 6AM35GYX016396: ruleset=tls_rcpt, arg1=root@lab.test, relay=[127.0.0.1], reject=454 4.7.0 CN mx.lab.test does not match wrong.lab.test
Nov 22 03:05:16 vm sendmail[16396]: 6AM35GYX016396: to=root@lab.test, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30064, relay=[127.0.0.1] [127.0.0.1], dsn=4.2.0, stat=Deferred
Nov 22 03:06:16 vm sendmail[16420]: 6AM36GYX016420: to=<a@peer.example>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=30064, relay=mx.peer.example. [192.0.2.9], dsn=4.0.0, reply=454 4.7.0 no authentication requested, stat=Deferred: 454 4.7.0 no authentication requested
Nov 22 03:07:16 vm sendmail[16430]: 6AM37GYX016430: ruleset=tls_rcpt, arg1=b@weak.example, relay=mx.weak.example, reject=403 4.7.0 encryption too weak 0 less than 128
Nov 22 03:07:16 vm sendmail[16430]: 6AM37GYX016430: to=<b@weak.example>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30064, relay=mx.weak.example. [192.0.2.10], dsn=4.7.0, stat=Deferred: 403 4.7.0 encryption too weak 0 less than 128
""")
    ).set_index("recipient")
    assert d.loc["root@lab.test", "tls_failure"] == "cn_mismatch" and d.loc["root@lab.test", "encrypted"]
    assert d.loc["a@peer.example", "tls_failure"] == "verify_failed" and d.loc["a@peer.example", "encrypted"]
    weak = d.loc["b@weak.example"]
    assert weak["tls_failure"] == "not_offered" and weak["encrypted"] == False  # noqa: E712 (not NA)


@pytest.mark.parametrize(
    "said",
    [
        "reply=454 4.7.0 authentication required, stat=Deferred: 454 4.7.0 authentication required",
        "stat=Deferred: 403 4.7.0 authentication failure TEMP",
    ],
)
def test_a_verification_refusal_without_a_session_stays_unencrypted(said):
    # reference 6.2: "authentication required" is the text of an empty {verify} (no STARTTLS was done),
    # "authentication failure TEMP" of a value set without a handshake
    (row,) = deliveries(
        frame(
            "Nov 22 03:05:02 vm sendmail[16329]: 6AM352r7016329: to=<root@example.net>, delay=00:00:00, "
            "xdelay=00:00:00, mailer=esmtp, pri=30064, relay=mx.example.net. [192.0.2.1], dsn=4.7.0, " + said
        )
    ).itertuples()
    assert row.tls_failure == "verify_failed" and row.encrypted == False  # noqa: E712 (not NA)


def test_sessions_attach_certificate_lines_and_tls_client_rejects():
    s = sessions(
        frame("""
Nov 22 03:04:33 vm sm-mta[16104]: STARTTLS=server, relay=localhost [127.0.0.1], version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Nov 22 03:04:33 vm sm-mta[16104]: STARTTLS=server, cert-subject=/C=US/O=Lab/CN=client.lab.test, cert-issuer=/C=US/O=Lab+20CA/CN=Lab+20Test+20CA, verifymsg=ok
Nov 22 03:05:02 vm sm-mta[16330]: STARTTLS=server, relay=localhost [127.0.0.1], version=TLSv1.3, verify=NOT, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Nov 22 03:05:02 vm sm-mta[16330]: ruleset=tls_client, arg1=NOT, arg2=STARTTLS, relay=localhost [127.0.0.1], reject=454 4.7.0 no authentication requested
Nov 22 03:05:30 vm sm-mta[16757]: STARTTLS=server, error: accept failed=-1, reason=no shared cipher, SSL_error=1, errno=0, retry=-1, relay=localhost [127.0.0.1]
""")
    ).set_index("pid")
    assert (
        s.loc[16104, "cert_issuer"] == "/C=US/O=Lab CA/CN=Lab Test CA" and s.loc[16104, "verifymsg"] == "ok"
    )
    assert s.loc[16330, "outcome"] == "failed" and s.loc[16330, "cause"] == "verify_failed"
    assert s.loc[16757, "cause"] == "handshake_failed" and s.loc[16757, "error"] == "no shared cipher"
    assert s["session_id"].is_unique and str(s["session_id"].dtype) == "int64"
    assert s["internal"].all() and (s["messages"] == 0).all()


def test_empty_events_give_empty_frames_with_columns():
    df = frame(LAB_SESSION).iloc[0:0]
    assert list(receipts(df).columns) == RECEIPT_COLUMNS and receipts(df).empty
    assert list(deliveries(df).columns) == DELIVERY_COLUMNS and deliveries(df).empty
    assert list(sessions(df).columns) == SESSION_COLUMNS and sessions(df).empty


def test_dtypes_follow_docs_tables():
    d = deliveries(frame(OUTBOUND))
    assert str(d["status"].dtype) == "category" and str(d["tls_failure"].dtype) == "category"
    assert str(d["encrypted"].dtype) == "boolean" and str(d["session_id"].dtype) == "Int64"
    assert pd.api.types.is_string_dtype(d["recipient"]) and pd.api.types.is_string_dtype(d["peer_domain"])
    r = receipts(frame(PRE_815))
    assert str(r["internal"].dtype) == "boolean" and str(r["version"].dtype) == "category"


def test_map_unique_calls_once_per_distinct_combination():
    calls = []

    def fn(a, b):
        calls.append((a, b))
        return f"{a}-{b}"

    a = pd.Series(["x", "y", "x", None, "x"], dtype="category")
    b = pd.Series([1, 2, 1, 1, None], dtype="Int64")
    assert list(map_unique(fn, a, b)) == ["x-1", "y-2", "x-1", "None-1", "x-None"]
    assert sorted(calls, key=str) == sorted([("x", 1), ("y", 2), (None, 1), ("x", None)], key=str)
    assert list(map_unique(fn, a, b, dtype="str")) == ["x-1", "y-2", "x-1", "None-1", "x-None"]
    assert len(map_unique(fn, a.iloc[:0], b.iloc[:0])) == 0


def test_relay_keys_normalise_names_and_literals():
    ev = pd.DataFrame(
        {
            "relay_host": pd.Series(["MX.Example.NET.", "mx.example.net", None, "", None], dtype="str"),
            "relay_ip": pd.Series(["192.0.2.1", None, "[IPv6:2001:db8::1]", "192.0.2.9", None], dtype="str"),
        }
    )
    keys = relay_keys(ev)
    assert keys[0] == keys[1] and len({*keys[:4]}) == 3 and keys[4] == -1


def test_a_peers_smtp_auth_reply_is_not_a_tls_failure():
    # Other MTAs answer "Authentication required" for SMTP AUTH; only sendmail's own TLS phrases count.
    d = deliveries(
        frame(
            """
Nov 22 03:10:00 vm sm-mta[21001]: STARTTLS=client, relay=mx.example.net., version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Nov 22 03:10:01 vm sm-mta[21001]: 6AM3A0aa021001: to=<a@example.net>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=30064, relay=mx.example.net. [198.51.100.7], dsn=5.7.0, reply=530 5.7.0 Authentication required, stat=Service unavailable
Nov 22 03:10:02 vm sm-mta[21001]: 6AM3A0ab021001: to=<b@example.net>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=30064, relay=mx.example.net. [198.51.100.7], dsn=5.7.0, reply=503 5.7.0 not authenticated, stat=Service unavailable
"""
        )
    )
    auth = one(d, recipient="a@example.net")
    assert bool(auth["encrypted"]) and pd.isna(auth["tls_failure"]) and auth["status"] == "bounced"
    tls = one(d, recipient="b@example.net")  # a sendmail peer's TLS_Clt verification reject
    assert tls["tls_failure"] == "verify_failed"


AUTH_REPLIES = """
Nov 22 03:10:00 vm sm-mta[21001]: STARTTLS=client, relay=mx.example.net., version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Nov 22 03:10:02 vm sm-mta[21001]: 6AM3A0ab021001: to=<b@example.net>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=30064, relay=mx.example.net. [198.51.100.7], dsn=5.7.0, reply=503 5.7.0 not authenticated, stat=Service unavailable
"""
EVERYTHING = LAB_SESSION + PRE_815 + OUTBOUND + HANDSHAKE + POLICY + AUTH_REPLIES


def rechunked(df: pd.DataFrame, size: int) -> pd.DataFrame:
    """The same frame with every Arrow column split into chunks of ``size`` rows (as read_log's pieces are)."""
    columns = {}
    for name in df.columns:
        values = df[name].array
        if isinstance(values, pd.arrays.ArrowExtensionArray):
            whole = values.__arrow_array__().combine_chunks()
            chunks = pa.chunked_array([whole[i : i + size] for i in range(0, len(whole), size)], whole.type)
            values = df[name].dtype.__from_arrow__(chunks)
        columns[name] = values
    return pd.DataFrame(columns, index=df.index)


def test_tables_do_not_depend_on_how_the_text_columns_are_chunked():
    df = frame(EVERYTHING)
    split = rechunked(df, 3)
    assert split["qid"].array.__arrow_array__().num_chunks > 1
    for table in (sessions, receipts, deliveries, failures):
        pd.testing.assert_frame_equal(table(split), table(df))


def test_linking_leaves_the_events_frame_as_it_was():
    df = frame(EVERYTHING)
    before = df.copy(deep=True)
    for table in (sessions, receipts, deliveries, failures):
        table(df)
    pd.testing.assert_frame_equal(df, before)


def test_spelled_columns_are_those_of_the_public_tables():
    df = frame(EVERYTHING)
    linked = link(df)
    for kind, table, columns, time in (
        ("sessions", sessions, SESSION_COLUMNS, "start"),
        ("receipts", receipts, RECEIPT_COLUMNS, "timestamp"),
        ("deliveries", deliveries, DELIVERY_COLUMNS, "timestamp"),
    ):
        whole = spelled(linked, kind, df, columns)
        in_time_order = whole.sort_values(time, kind="stable", na_position="first").reset_index(drop=True)
        pd.testing.assert_frame_equal(in_time_order, table(df))
        at = np.array([2, 0, 2])
        pd.testing.assert_frame_equal(
            spelled(linked, kind, df, columns, at), whole.iloc[at].reset_index(drop=True)
        )
    texts = spelled(linked, "sessions", df, ["error", "relay_host", "peer"], np.array([-1, 0]))
    assert texts.iloc[0].isna().all() and str(texts["peer"].dtype) == "str"


def test_linked_tables_go_with_their_frame():
    df = frame(LAB_SESSION)
    gone = weakref.ref(link(df).sessions)
    assert not sessions(df).empty
    del df
    gc.collect()
    assert gone() is None


def test_changing_a_table_in_place_leaves_the_next_one_alone():
    df = frame(LAB_SESSION)
    r = receipts(df)
    expected = r.copy(deep=True)
    r.loc[0, "encrypted"] = not r.loc[0, "encrypted"]
    r.loc[0, "timestamp"] = pd.Timestamp("2000-01-01")
    pd.testing.assert_frame_equal(receipts(df), expected)
