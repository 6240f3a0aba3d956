"""The grammar: envelopes, message rules, field helpers, and the contract a fast path relies on."""

from __future__ import annotations

import pyparsing as pp
import pytest
from test_parse import CASES, MESSAGES

from tlslog import grammar, parse_line
from tlslog.grammar import (
    BODY_RULES,
    ENVELOPE_RULES,
    PREFILTER,
    parse_envelope,
    parse_message,
    parse_reply,
    split_fields,
    split_recipients,
    split_relay,
    split_stat,
    xtext_decode,
)
from tlslog.records import KINDS

MSG = MESSAGES[0]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "Dec  6 11:56:09 b.mail.sonic.net sm-mta[10180]: " + MSG,
            dict(
                ts="Dec  6 11:56:09", host="b.mail.sonic.net", program="sm-mta", pid=10180, qid=None, msg=MSG
            ),
        ),
        (
            "Mar 3 13:16:18 mail sendmail[17209]: v236GIaY017209: " + MSG,
            dict(ts="Mar 3 13:16:18", host="mail", qid="v236GIaY017209", part=None, msg=MSG),
        ),
        (
            "<22>Nov 22 03:03:48 sm-mta[15792]: " + MSG,
            dict(ts="Nov 22 03:03:48", host=None, program="sm-mta"),
        ),
        (
            "<22>1 2026-11-22T03:03:48.801352+00:00 vm sm-mta 15792 - -  " + MSG,
            dict(ts="2026-11-22T03:03:48.801352+00:00", host="vm", program="sm-mta", pid=15792, msg=MSG),
        ),
        ('<22>1 2026-11-22T03:03:48Z vm sm-mta - - [x@1 a="b"] ' + MSG, dict(host="vm", pid=None, msg=MSG)),
        (
            "2026-09-21T14:13:20+0000 mx1 sm-mta[15792]: " + MSG,
            dict(ts="2026-09-21T14:13:20+0000", host="mx1"),
        ),
        ("Sep 21 14:13:20.000000 mx1 sm-mta[15792]: " + MSG, dict(ts="Sep 21 14:13:20.000000", host="mx1")),
        (
            "Jan 2 19:58:51 MTA sm-mta[29534]: [ID 801593 mail.info] hBT7rwVP015583: to=<r>, delay=0",
            dict(host="MTA", qid="hBT7rwVP015583", msg="to=<r>, delay=0"),
        ),
        ("sendmail[28450]: " + MSG, dict(ts=None, host=None, program="sendmail", pid=28450, msg=MSG)),
        (MSG, dict(ts=None, host=None, program=None, pid=None, qid=None, msg=MSG)),
        ("STARTTLS: read error=timeout", dict(program=None, msg="STARTTLS: read error=timeout")),
        ("NOQUEUE: " + MSG, dict(qid=None, msg=MSG)),
        ("6AM34CLa016051[3]: <a@b>", dict(qid="6AM34CLa016051", part=3, msg="<a@b>")),
        ("[2]: more", dict(qid=None, part=2, msg="more")),
        (
            'date=2026-01-02 time=18:33:36.601 device_id=1 msg="' + MSG + '"',
            dict(ts="2026-01-02T18:33:36.601", host=None, msg=MSG),
        ),
        (
            'time=18:33:36 session_id="x" msg="STARTTLS=server, a=\\"b\\""',
            dict(ts=None, msg='STARTTLS=server, a="b"'),
        ),
    ],
)
def test_envelopes(line, expected):
    env = parse_envelope(line)
    assert {k: env[k] for k in expected} == expected


def test_every_line_has_an_envelope():
    assert parse_envelope("")["msg"] == ""
    assert ENVELOPE_RULES[-1].name == "bare" and not ENVELOPE_RULES[-1].starts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("localhost [127.0.0.1]", ("localhost", "127.0.0.1")),
        ("[192.0.2.1]", (None, "192.0.2.1")),
        ("[127.0.0.1] [127.0.0.1]", (None, "127.0.0.1")),
        ("lds.sonic.net. [69.12.221.231]", ("lds.sonic.net", "69.12.221.231")),
        ("gmail-smtp-in.l.google.com.", ("gmail-smtp-in.l.google.com", None)),
        ("[IPv6:2001:db8::1]", (None, "2001:db8::1")),
        ("[IPv6:2001:db8:0:0:0:0:0:1]", (None, "2001:db8::1")),
        ("host.Example.ORG [IPv6:2001:db8::1] (may be forged)", ("host.example.org", "2001:db8::1")),
        (
            "173-228-127-4.dsl.dynamic.sonic.net [173.228.127.4] (may be forged)",
            ("173-228-127-4.dsl.dynamic.sonic.net", "173.228.127.4"),
        ),
        ("ident@client.example.org [192.0.2.7]", ("client.example.org", "192.0.2.7")),
        ("root@localhost", ("localhost", None)),
        ("[RESPONSE]", (None, None)),
        ("MTA. [IP_address]", ("mta", None)),
        ("", (None, None)),
        (None, (None, None)),
    ],
)
def test_split_relay(text, expected):
    assert split_relay(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/C=US/O=Lab+20CA/CN=Lab+20Test+20CA", "/C=US/O=Lab CA/CN=Lab Test CA"),
        ("/O=a+2Bb+5Cc", "/O=a+b\\c"),
        ("/CN=M+C3+BCller", "/CN=Müller"),
        ("/CN=plain", "/CN=plain"),
        ("", None),
    ],
)
def test_xtext_decode(text, expected):
    assert xtext_decode(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Sent (6AM34CLa016051 Message accepted for delivery)",
            ("Sent", "6AM34CLa016051 Message accepted for delivery"),
        ),
        ("Deferred: 403 4.7.0 TLS handshake failed.", ("Deferred", "403 4.7.0 TLS handshake failed.")),
        ("Deferred", ("Deferred", None)),
        ("Service unavailable", ("Service unavailable", None)),
        ("Sent (Ok: queued as C62506DA)", ("Sent", "Ok: queued as C62506DA")),
        (
            "Deferred: Connection refused by mx.example.net.",
            ("Deferred", "Connection refused by mx.example.net."),
        ),
        ("Sent (truncated text", ("Sent", "truncated text")),
        ("User unknown", ("User unknown", None)),
        (None, (None, None)),
    ],
)
def test_split_stat(text, expected):
    assert split_stat(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("403 4.7.0 encryption too weak 0 less than 128", (403, 128, 0)),
        ("454 4.7.0 encryption too weak 256 less than 512", (454, 512, 256)),
        ("503 5.7.0 not authenticated", (503, None, None)),
        ("Connection refused", (None, None, None)),
        ("4035 no", (None, None, None)),
        (None, (None, None, None)),
    ],
)
def test_parse_reply(text, expected):
    assert parse_reply(text) == expected


def test_split_fields_and_recipients():
    assert split_fields("delay=00:00:00, reply=250 ok, stat=Sent (a, b=c)", ("stat",)) == {
        "delay": "00:00:00",
        "reply": "250 ok",
        "stat": "Sent (a, b=c)",
    }
    assert split_fields("size=1, relay=a, b=c [192.0.2.1]", ("relay",))["relay"] == "a, b=c [192.0.2.1]"
    assert split_recipients("<a@x>,<b@y>") == ("a@x", "b@y")
    assert split_recipients('root,"Smith, J" <j@x>') == ("root", '"Smith, J" <j@x')
    line = (
        "Nov 22 03:03:48 vm sm-mta[4242]: 6AM3801s018213: to=<a@x.example>,<b@x.example>, [more], "
        "delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120, relay=mx.x.example. [192.0.2.1], "
        "dsn=2.0.0, stat=Sent (ok)"
    )  # reference 7.2: a long list goes on in another line with the same suffix
    assert parse_line(line).recipients == ("a@x.example", "b@x.example")


@pytest.mark.parametrize(
    "msg",
    [
        "AUTH=server, relay=[67.59.198.131], authid=augie, mech=PLAIN, bits=0",
        "AUTH=client, relay=mx.example.net, mech=PLAIN, bits=0",
        "tls_srv_features=empty, stat=0, relay=localhost [127.0.0.1]",
        "STARTTLS=client, SSL_shutdown failed: -1",
        "from=<a@b>, size=1, class=0, nrcpts=1, relay=x",
    ],  # from= without a queue id
)
def test_messages_that_are_not_events(msg):
    assert parse_message(msg, has_qid=False) is None


def test_rule_table_shape():
    names = [r.name for r in BODY_RULES]
    assert len(names) == len(set(names))
    for rule in BODY_RULES:
        assert isinstance(rule.expr, pp.Regex) and rule.expr.re is not None
        assert rule.prefilter and all(isinstance(p, str) and p for p in rule.prefilter)
        assert rule.kind in KINDS
    assert isinstance(grammar.message, pp.MatchFirst)


_ALL_LINES = [line for line, _ in CASES]


@pytest.mark.parametrize("line", _ALL_LINES)
def test_fast_path_contract(line):
    """``rule.expr.re`` + ``rule.convert`` (no pyparsing) give what the pyparsing path gives."""
    env = parse_envelope(line)
    msg, has_qid = grammar.without_syserr(env["msg"]), env["qid"] is not None
    fast = None
    for rule in BODY_RULES:
        if (rule.needs_qid and not has_qid) or not all(p in msg for p in rule.prefilter):
            continue
        m = rule.expr.re.match(msg)
        if m and (fast := rule.convert(m.groupdict())) is not None:
            break
    assert fast == parse_message(msg, has_qid=has_qid)


@pytest.mark.parametrize("line", _ALL_LINES)
def test_prefilter_never_drops_an_event(line):
    if parse_message(parse_envelope(line)["msg"]) is not None:
        assert any(p in line for p in PREFILTER)


def test_message_matchfirst_parses_a_summary():
    res = grammar.message.parse_string(MSG)
    assert res[0].group("cipher") == "TLS_AES_256_GCM_SHA384"


@pytest.mark.parametrize(
    "message",
    [
        "STARTTLS=server, relay={relay}, version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, "
        "bits=256/256",
        "STARTTLS=server, error: accept failed=-1, reason=no shared cipher, SSL_error=1, errno=0, retry=-1, "
        "relay={relay}",
    ],
)
def test_a_relay_cut_at_100_characters_loses_its_address_not_its_host(message):
    # "relay=%.100s" (reference 2.1): a long name leaves no room for the whole address
    name = "a" * 40 + "." + "b" * 40 + ".example.com"
    relay = (name + " [198.51.100.10]")[:100]
    event = parse_line("Nov 22 03:03:48 vm sm-mta[4242]: " + message.format(relay=relay))
    assert (event.relay_host, event.relay_ip) == (name, None)
    forged = parse_line(
        "Nov 22 03:03:48 vm sm-mta[4242]: " + message.format(relay="mx.example [192.0.2.1] (may")
    )
    assert (forged.relay_host, forged.relay_ip) == ("mx.example", "192.0.2.1")
