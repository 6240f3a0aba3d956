"""The grammar of sendmail's TLS log language (the only module that imports pyparsing).

A maillog line is an *envelope* (whatever syslog put in front), an optional queue-id prefix and a
*message*. Each message kind tlslog keeps is one ``pp.Regex`` with named groups, guarded by a cheap
substring prefilter; a plain-Python converter (`tlslog.converters`, built on the value helpers of
`tlslog.values`, which are re-exported here) turns the named groups into `Event` fields. A fast path
may reuse ``rule.expr.re`` and ``rule.convert`` directly and get identical events.

BNF (regular-expression details are in docs/grammar.md)::

    line        ::= envelope prefix message
    envelope    ::= rfc5424 | syslog | fortimail | ""
    rfc5424     ::= "<" PRI ">1 " (ISO_TS | "-") " " HOST " " TAG " " (PID | "-") " " MSGID " " SD " "
    syslog      ::= ["<" PRI ">"] ((BSD_TS | ISO_TS) " " [HOST " "] TAG ["[" PID "]"] | TAG "[" PID "]")
                    ":" " "* [solaris_id]
    solaris_id  ::= "[ID " DIGITS " " FACILITY "." LEVEL "] "
    fortimail   ::= ["date=" DATE " "] "time=" TIME " " ... 'msg="' prefix message '"'
    prefix      ::= [QID ["[" PART "]"] ": " | "NOQUEUE: " | "[" PART "]: "] ["SYSERR(" USER "): "]
    message     ::= starttls | tls_cert | tls_error | tls_reject | receipt | delivery | session_end
    starttls    ::= "STARTTLS=" WHO ", relay=" RELAY ", version=" V ", verify=" V ", cipher=" C
                    ", bits=" INT "/" INT [suffix]
    suffix      ::= [", "] ("pubkey_fp=" | "status=" | "note=") TEXT
    tls_cert    ::= "STARTTLS=" WHO ", cert-subject=" XTEXT ", cert-issuer=" XTEXT [", verifymsg=" TEXT]
                  | "STARTTLS: " ["TLS " | "X509 "] "cert verify: depth=" INT " " DN ", state=" INT
                    ", reason=" TEXT
    tls_error   ::= handshake | io_error | openssl | file_error | cert_name | dane | tlsa | other_error
    handshake   ::= "STARTTLS=" WHO ", error: " ("accept" | "connect") " failed=" INT [", reason=" TEXT]
                    [", SSL_error=" INT] [", timedout=" INT] [", errno=" INT] [", retry=" INT]
                    [", relay=" RELAY]
    io_error    ::= "STARTTLS: " ("read" | "write") " error=" TEXT [" (" INT ")"] [", errno=" INT]
                    [", get_error=" TEXT] [", retry=" INT] [", ssl_err=" INT]
    openssl     ::= "STARTTLS=" WHO ": " [THREAD ":"] "error:" HEX ":" LIB ":" FUNC ":" REASON
                    [":" FILE ":" INT ":" DATA]
    other_error ::= "STARTTLS=" WHO ", inittls: " TEXT
                  | "STARTTLS: can't switch to encrypted layer" [": " TEXT]
                  | "smtps: TLS not available, exiting" [": " TEXT]
                  | "SMTP STARTTLS command (" TEXT ") from " RELAY " tempfailed (due to previous checks)"
                  | "STARTTLS=" WHO ", error: " TEXT | ...   (file, CN, DANE, TLSA, PRNG: docs/grammar.md)
    tls_reject  ::= "ruleset=" ("tls_server" | "tls_client" | "tls_rcpt" | "try_tls") ", arg1=" TEXT
                    [", arg2=" TEXT] ", relay=" RELAY ", " ("reject" | "status" | "quarantine") "=" REPLY
    receipt     ::= "from=" ADDR ", " fields            (QID required)
    delivery    ::= "to=" ADDR {"," ADDR} ", " fields   (QID required; ctladdr=, delay=, ..., stat=)
    session_end ::= RELAY " did not issue " CMDS " during connection to " DAEMON
                  | "lost input channel from " RELAY " to " DAEMON " after " CMD
                  | "timeout waiting for input from " RELAY " during " PHASE
    fields      ::= KEY "=" VALUE {", " KEY "=" VALUE}  (the terminal key, relay= or stat=, takes the rest)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import pyparsing as pp

from .converters import (
    FROM_TERMINAL,
    TO_TERMINAL,
    Fields,
    Groups,
    convert_cert,
    convert_cert_name,
    convert_cert_verify,
    convert_dane,
    convert_delivery,
    convert_did_not_issue,
    convert_digest,
    convert_error_text,
    convert_handshake,
    convert_io,
    convert_lost_input,
    convert_missing,
    convert_openssl,
    convert_receipt,
    convert_reject,
    convert_server_error,
    convert_starttls,
    convert_starttls_tempfailed,
    convert_timeout,
    convert_tlsa,
    convert_unsafe,
)
from .values import parse_reply, split_fields, split_recipients, split_relay, split_stat, xtext_decode

__all__ = [
    "BODY_RULES",
    "ENVELOPE_RULES",
    "NOISE",
    "PREFILTER",
    "BodyRule",
    "EnvelopeRule",
    "message",
    "parse_envelope",
    "parse_message",
    "parse_reply",
    "split_fields",
    "split_recipients",
    "split_relay",
    "split_stat",
    "xtext_decode",
]


def _rx(pattern: str) -> pp.Regex:
    # Matches exactly like ``expr.re.match(text)`` (no whitespace skipping, no tab expansion) and
    # returns the match object as its token: copying every named group into ParseResults costs more
    # than the match itself.
    return pp.Regex(pattern, as_match=True).leave_whitespace().parse_with_tabs()


# --------------------------------------------------------------------------------------------------
# Envelopes
# --------------------------------------------------------------------------------------------------

QID_RE = r"[0-9A-Za-x][0-9AB][1-9A-V][0-9A-N][0-9A-Za-y]{2}[0-9A-Za-x]{2}\d{6,12}"
BSD_TS_RE = r"[A-Z][a-z]{2} {1,2}\d{1,2} \d\d:\d\d:\d\d(?:\.\d{1,9})?"
ISO_TS_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?"
TAG_RE = r"[\w.@/-]{1,48}"

# `QID: `, `NOQUEUE: `, `QID[n]: ` or `[n]: `, then the message (everything else).
PREFIX_RE = (
    rf"[ \ufeff]*(?:(?P<qid>{QID_RE}|NOQUEUE)(?:\[(?P<part>\d{{1,3}})\])?: +|\[(?P<npart>\d{{1,3}})\]: +)?"
    r"(?P<msg>(?s:.*))"
)

syslog_envelope = _rx(
    r"(?:<(?P<pri>\d{1,3})>)?"
    rf"(?:(?P<ts>{BSD_TS_RE}|{ISO_TS_RE}) {{1,3}}(?:(?P<host>[^\s\[\]]{{1,255}}) {{1,3}})?"
    rf"|(?!{QID_RE}\[)(?={TAG_RE}\[))"  # no timestamp: a bare `tag[pid]:` (but not `QID[part]:`)
    rf"(?P<program>{TAG_RE})(?:\[(?P<pid>\d{{1,10}})\])?: *"
    r"(?:\[ID \d{1,10} [\w.]{1,40}\] *)?" + PREFIX_RE
).set_name("syslog_envelope")

rfc5424_envelope = _rx(
    rf"<(?P<pri>\d{{1,3}})>1 (?:(?P<ts>{ISO_TS_RE})|-) (?:-|(?P<host>\S{{1,255}})) "
    r"(?:-|(?P<program>\S{1,48})) "
    r"(?:-|(?P<pid>\d{1,10})|\S{1,128}) \S{1,32} (?:-|(?:\[(?:[^\]\\]|\\.){0,2000}\])+)(?: |$)" + PREFIX_RE
).set_name("rfc5424_envelope")

fortimail_envelope = _rx(
    r"(?:date=(?P<date>\d{4}-\d\d-\d\d) +)?time=(?P<time>\d\d:\d\d:\d\d(?:\.\d{1,9})?) (?s:.*?)"
    r"\bmsg=\"(?P<fmsg>(?:[^\"\\]|\\.)*)\""
).set_name("fortimail_envelope")

bare_envelope = _rx(PREFIX_RE).set_name("bare_envelope")
#: the QID prefix applied to a FortiMail ``msg="..."`` text (compiled once, shared with the fast path)
MSG_PREFIX = re.compile(PREFIX_RE)


@dataclass(frozen=True, slots=True)
class EnvelopeRule:
    """One envelope shape: try ``expr`` when ``line`` starts with one of ``starts`` (empty: always)."""

    name: str
    starts: tuple[str, ...]
    expr: pp.Regex


ENVELOPE_RULES: tuple[EnvelopeRule, ...] = (
    EnvelopeRule("rfc5424", ("<",), rfc5424_envelope),
    EnvelopeRule("syslog", (), syslog_envelope),
    EnvelopeRule("fortimail", ("date=", "time="), fortimail_envelope),
    EnvelopeRule("bare", (), bare_envelope),
)


def envelope_fields(name: str, g: Groups) -> Fields:
    """Named groups of an envelope match -> ``ts`` (str), ``host``, ``program``, ``pid``, ``qid``,
    ``part`` and ``msg``."""
    if name == "fortimail":
        ts = f"{g['date']}T{g['time']}" if g.get("date") else None
        text = g["fmsg"].replace('\\"', '"').replace("\\\\", "\\")
        inner = MSG_PREFIX.match(text)
        assert inner is not None  # the prefix pattern matches any text
        g = {**inner.groupdict(), "ts": ts}
    pid = g.get("pid")
    part = g.get("part") or g.get("npart")
    qid = g.get("qid")
    return {
        "ts": g.get("ts"),
        "host": g.get("host"),
        "program": g.get("program"),
        "pid": int(pid) if pid else None,
        "qid": None if qid == "NOQUEUE" else qid,
        "part": int(part) if part else None,
        "msg": g["msg"],
    }


def parse_envelope(line: str) -> Fields:
    """Split a line into envelope fields and the message (pyparsing path; every line has one).

    >>> parse_envelope("Dec  6 11:56:09 mx sm-mta[10180]: qA7LqlqC029841: from=<a@b>, size=1")["qid"]
    'qA7LqlqC029841'
    """
    for rule in ENVELOPE_RULES:
        if rule.starts and not line.startswith(rule.starts):
            continue
        try:
            res = rule.expr.parse_string(line)
        except pp.ParseBaseException:
            continue
        return envelope_fields(rule.name, res[0].groupdict())
    raise AssertionError("bare_envelope matches any text")  # pragma: no cover


# --------------------------------------------------------------------------------------------------
# Message expressions, their prefilters, and the rule table
# --------------------------------------------------------------------------------------------------

_INT = r"-?\d{1,11}"
_WHO = r"(?P<who>server|client)"
_RELAY_TO = r"(?P<relay>.{0,300}?)"

starttls_summary = _rx(
    rf"STARTTLS={_WHO}, relay={_RELAY_TO}, version=(?P<version>[^,]{{0,32}}), "
    r"verify=(?P<verify>[^,]{0,32}), "
    r"cipher=(?P<cipher>[^,]{0,128}), bits=(?P<alg_bits>\d{1,6})/(?P<cipher_bits>\d{1,6})(?P<suffix>(?s:.*))"
).set_name("starttls_summary")
STARTTLS_PREFILTER = ("STARTTLS=", ", bits=")

cert_line = _rx(
    rf"STARTTLS={_WHO}, cert-subject=(?P<subject>.*?), cert-issuer=(?P<issuer>.*?)"
    r"(?:, verifymsg=(?P<verifymsg>.*))?$"
).set_name("cert_line")
CERT_PREFILTER = ("STARTTLS=", "cert-subject=")

cert_verify_line = _rx(
    r"STARTTLS: (?:(?P<layer>TLS|X509) )?cert verify: depth=(?P<depth>\d{1,4}) (?P<dn>.*?), "
    rf"state=(?P<state>{_INT}), reason=(?P<reason>.*)"
).set_name("cert_verify_line")
CERT_VERIFY_PREFILTER = ("STARTTLS: ", "cert verify: ")

handshake_error = _rx(
    rf"STARTTLS={_WHO}, error: (?P<op>accept|connect) failed=(?P<ret>{_INT})(?:, reason=(?P<reason>.*?))?"
    rf"(?:, SSL_error=(?P<ssl_error>{_INT}))?(?:, timedout=(?P<timedout>{_INT}))?"
    rf"(?:, errno=(?P<errno>{_INT}))?"
    rf"(?:, retry=(?P<retry>{_INT}))?(?:, relay=(?P<relay>.*))?$"
).set_name("handshake_error")
HANDSHAKE_PREFILTER = ("STARTTLS=", " failed=")

io_error = _rx(
    rf"STARTTLS: (?P<op>read|write) error=(?P<err>[^,(]{{0,100}}?)(?: \((?P<ret>{_INT})\))?"
    rf"(?:, errno=(?P<errno>{_INT}))?"
    rf"(?:, get_error=(?P<get_error>[^,]*))?(?:, retry=(?P<retry>{_INT}))?(?:, ssl_err=(?P<ssl_err>{_INT}))?$"
).set_name("io_error")
IO_PREFILTER = ("STARTTLS: ", " error=")

openssl_error = _rx(
    r"STARTTLS=(?P<who>[\w-]{1,16}): (?:(?P<thread>\d{1,20}):)?"
    r"(?P<errtext>error:[0-9A-Fa-f]{1,16}:[^:]*:[^:]*:(?P<reason>[^:]*)(?::[^:]*:\d{1,9}:.*)?)$"
).set_name("openssl_error")
OPENSSL_PREFILTER = ("STARTTLS=", "error:")

file_unsafe = _rx(r"STARTTLS=(?P<who>[\w-]{1,16}): file (?P<file>.*?) unsafe: (?P<why>.*)").set_name(
    "file_unsafe"
)
FILE_UNSAFE_PREFILTER = ("STARTTLS=", " unsafe: ")

file_missing = _rx(
    r"STARTTLS: (?P<what>(?:Server|Client)?"
    r"(?:CertFile|KeyFile|CACertPath|CACertFile|CRLFile|CRLPath|DHParam\w*))"
    r" missing"
).set_name("file_missing")
FILE_MISSING_PREFILTER = ("STARTTLS: ", " missing")

cert_name_error = _rx(
    rf"STARTTLS={_WHO}, relay={_RELAY_TO}, field=(?P<field>[^,]*), status=(?P<status>.*)"
).set_name("cert_name_error")
CERT_NAME_PREFILTER = ("STARTTLS=", ", field=")

digest_warning = _rx(
    rf"STARTTLS={_WHO}, relay={_RELAY_TO}, X509_digest=(?P<digest>{_INT}), "
    r"CertFingerprintAlgorithm=(?P<alg>.*)"
).set_name("digest_warning")
DIGEST_PREFILTER = ("STARTTLS=", "X509_digest=")

dane_warning = _rx(rf"STARTTLS=client, relay={_RELAY_TO}, warning=(?P<warning>DANE .*)").set_name(
    "dane_warning"
)
DANE_PREFILTER = ("STARTTLS=client", ", warning=DANE")

tlsa_line = _rx(r"TLSA=(?P<tlsa>[^,\s]{1,300}), (?P<tail>(?:records|len|type)=.*)").set_name("tlsa_line")
TLSA_PREFILTER = ("TLSA=",)

error_text = _rx(r"STARTTLS=(?P<who>[\w-]{1,16}), error: (?P<text>.+)").set_name("error_text")
ERROR_TEXT_PREFILTER = ("STARTTLS=", ", error: ")

failed_kv = _rx(
    r"STARTTLS=(?P<who>[\w-]{1,16}), (?P<text>(?:engine=[^,]{0,200}, )?[\w()]{1,64}=fail(?:ed)?\b.*)"
).set_name("failed_kv")
FAILED_KV_PREFILTER = ("STARTTLS=", "=fail")

init_error = _rx(r"STARTTLS=(?P<who>[\w-]{1,16}), (?P<text>inittls: .+)").set_name("init_error")
INIT_ERROR_PREFILTER = ("STARTTLS=", ", inittls: ")

# srvrsmtp.c (reference 4.5): the server's own TLS refusals that name no ruleset (syserr() adds
# ": <strerror>" when errno is set)
server_error = _rx(
    r"(?P<text>(?:STARTTLS: can't switch to encrypted layer|smtps: TLS not available, exiting)"
    r"(?:: .{1,200})?)$"
).set_name("server_error")
SERVER_ERROR_PREFILTER = ("TLS",)

starttls_tempfailed = _rx(
    r"SMTP STARTTLS command \((?P<arg>.{0,100}?)\) from (?P<relay>.{0,300}?) "
    r"(?P<text>tempfailed \(due to previous checks\))$"
).set_name("starttls_tempfailed")
STARTTLS_TEMPFAILED_PREFILTER = ("SMTP STARTTLS command ", " tempfailed")

prng_error = _rx(
    r"STARTTLS: (?P<text>(?:RAND_\w+\(|can't fstat|RandFile |size\(|Warning: |Error: ).*)"
).set_name("prng_error")
PRNG_PREFILTER = ("STARTTLS: ",)

tls_reject_line = _rx(
    r"ruleset=(?P<ruleset>tls_server|tls_client|tls_rcpt|try_tls), arg1=(?P<arg1>.{0,1000}?)"
    r"(?:, arg2=(?P<arg2>.{0,1000}?))?, relay=(?P<relay>.{0,300}?)"
    r"(?:, (?P<key>reject|status|quarantine)=(?P<reject>.*)|, discard)$"
).set_name("tls_reject_line")
REJECT_PREFILTER = ("ruleset=t",)

# check_mail / check_rcpt only when the reply is one of the TLS_connection texts (proto.m4)
TLS_REJECT_TEXTS = (
    r"authentication required|authentication failed|not authenticated|no authentication requested"
    r"|other side does not support STARTTLS|STARTTLS disabled locally|authentication failure "
    r"|encryption too weak|CN .* does not match|Cert (?:Subject|Issuer) |TLS handshake|STARTTLS failed"
    r"|STARTTLS temporarily not possible|DANE"
)
tls_check_reject = _rx(
    r"ruleset=(?P<ruleset>check_mail|check_rcpt), arg1=(?P<arg1>.{0,1000}?)(?:, arg2=(?P<arg2>.{0,1000}?))?, "
    rf"relay=(?P<relay>.{{0,300}}?), (?P<key>reject)=(?P<reject>[45]\d\d [45]\.\d{{1,3}}\.\d{{1,3}} "
    rf"(?:{TLS_REJECT_TEXTS}).*)$"
).set_name("tls_check_reject")
CHECK_REJECT_PREFILTER = ("ruleset=check_",)


def _fields_action(terminal: tuple[str, ...], toks: pp.ParseResults) -> None:
    toks["fields"] = split_fields(toks[0]["tail"], terminal)


receipt_line = (
    _rx(r"from=(?P<sender>.{0,1000}?), (?P<tail>size=.*)")
    .add_parse_action(partial(_fields_action, FROM_TERMINAL))
    .set_name("receipt_line")
)
RECEIPT_PREFILTER = ("from=", ", size=")

delivery_line = (
    _rx(r"to=(?P<to>.*?), (?P<tail>(?:ctladdr|delay)=.*)")
    .add_parse_action(partial(_fields_action, TO_TERMINAL))
    .set_name("delivery_line")
)
DELIVERY_PREFILTER = ("to=", "delay=")

did_not_issue = _rx(
    r"(?P<relay>.{0,300}?) did not issue (?P<cmds>[A-Z/]{1,40}) during connection to (?P<daemon>.*)"
).set_name("did_not_issue")
DID_NOT_ISSUE_PREFILTER = (" did not issue ",)

lost_input = _rx(
    r"lost input channel from (?P<relay>.{0,300}?) to (?P<daemon>\S{0,64}) after (?P<cmd>.*)"
).set_name("lost_input")
LOST_INPUT_PREFILTER = ("lost input channel from ",)

input_timeout = _rx(r"timeout waiting for input from (?P<relay>.{0,300}?) during (?P<phase>.*)").set_name(
    "input_timeout"
)
TIMEOUT_PREFILTER = ("timeout waiting for input from ",)


@dataclass(frozen=True, slots=True)
class BodyRule:
    """One message shape: try ``expr`` when every ``prefilter`` substring is in the message.

    ``needs_qid``: the line must carry a real queue id (``from=`` / ``to=``; keeps other MTAs out).
    ``convert`` maps the named groups (``expr.re`` groupdict) to `Event` fields, or None to drop.
    """

    name: str
    kind: str
    prefilter: tuple[str, ...]
    expr: pp.Regex
    convert: Callable[[Groups], Fields | None]
    needs_qid: bool = False


#: Rules in the order they are tried; the first that matches wins.
BODY_RULES: tuple[BodyRule, ...] = (
    BodyRule("starttls", "starttls", STARTTLS_PREFILTER, starttls_summary, convert_starttls),
    BodyRule("delivery", "delivery", DELIVERY_PREFILTER, delivery_line, convert_delivery, needs_qid=True),
    BodyRule("receipt", "receipt", RECEIPT_PREFILTER, receipt_line, convert_receipt, needs_qid=True),
    BodyRule("tls_reject", "tls_reject", REJECT_PREFILTER, tls_reject_line, convert_reject),
    BodyRule("handshake", "tls_error", HANDSHAKE_PREFILTER, handshake_error, convert_handshake),
    BodyRule("cert", "tls_cert", CERT_PREFILTER, cert_line, convert_cert),
    BodyRule("io", "tls_error", IO_PREFILTER, io_error, convert_io),
    BodyRule("openssl", "tls_error", OPENSSL_PREFILTER, openssl_error, convert_openssl),
    BodyRule("did_not_issue", "session_end", DID_NOT_ISSUE_PREFILTER, did_not_issue, convert_did_not_issue),
    BodyRule("lost_input", "session_end", LOST_INPUT_PREFILTER, lost_input, convert_lost_input),
    BodyRule("timeout", "session_end", TIMEOUT_PREFILTER, input_timeout, convert_timeout),
    BodyRule("cert_verify", "tls_cert", CERT_VERIFY_PREFILTER, cert_verify_line, convert_cert_verify),
    BodyRule("dane", "tls_error", DANE_PREFILTER, dane_warning, convert_dane),
    BodyRule("cert_name", "tls_error", CERT_NAME_PREFILTER, cert_name_error, convert_cert_name),
    BodyRule("digest", "tls_error", DIGEST_PREFILTER, digest_warning, convert_digest),
    BodyRule("file_unsafe", "tls_error", FILE_UNSAFE_PREFILTER, file_unsafe, convert_unsafe),
    BodyRule("file_missing", "tls_error", FILE_MISSING_PREFILTER, file_missing, convert_missing),
    BodyRule("error_text", "tls_error", ERROR_TEXT_PREFILTER, error_text, convert_error_text),
    BodyRule("failed_kv", "tls_error", FAILED_KV_PREFILTER, failed_kv, convert_error_text),
    BodyRule("init", "tls_error", INIT_ERROR_PREFILTER, init_error, convert_error_text),
    BodyRule("server_error", "tls_error", SERVER_ERROR_PREFILTER, server_error, convert_server_error),
    BodyRule(
        "starttls_tempfailed",
        "tls_error",
        STARTTLS_TEMPFAILED_PREFILTER,
        starttls_tempfailed,
        convert_starttls_tempfailed,
    ),
    BodyRule("prng", "tls_error", PRNG_PREFILTER, prng_error, convert_error_text),
    BodyRule("tlsa", "tls_error", TLSA_PREFILTER, tlsa_line, convert_tlsa),
    BodyRule("check_reject", "tls_reject", CHECK_REJECT_PREFILTER, tls_check_reject, convert_reject),
)

#: A line can only be relevant when it contains one of these (checked before anything else).
PREFILTER: tuple[str, ...] = (
    "STARTTLS",
    "smtps: TLS",
    "TLSA=",
    "ruleset=",
    "from=",
    "to=",
    " did not issue ",
    "lost input channel",
    "timeout waiting",
)

#: TLS-looking messages that carry nothing for the analyzer (debug and housekeeping lines).
NOISE = _rx(
    r"STARTTLS=[\w-]{1,16}, (?:init=|start=ok|Diffie-Hellman|get_verify|SSL_shutdown|info:|tmp_rsa_key"
    r"|FIPSMode=|SSL_get_ex_new_index|host=|SSL_dane_enable|relay=.{0,300}?, (?:AltName=|tlsstate=)"
    r"|\w{1,40}=-?\d{1,11}, type=)"
    r"|STARTTLS: (?:info_callback|SSL3 alert|[^\s:]{1,64}:)"
    r"|STARTTLS=[\w-]{1,16}: (?!(?:\d{1,20}:)?error:|file )"
).set_name("noise")

#: every message expression as one MatchFirst (tests, diagrams; the hot path dispatches per rule)
message = pp.MatchFirst([r.expr for r in BODY_RULES]).set_name("message")


#: What ``syserr()`` writes before its message (reference 4.4, 4.5): ``SYSERR(root): ``.
syserr_prefix = _rx(r"SYSERR\([^)]{0,64}\): ").set_name("syserr_prefix")


def without_syserr(msg: str) -> str:
    """A message without its ``SYSERR(user): `` prefix.

    >>> without_syserr("SYSERR(root): STARTTLS: can't switch to encrypted layer")
    "STARTTLS: can't switch to encrypted layer"
    """
    found = syserr_prefix.re.match(msg) if msg.startswith("SYSERR(") else None
    return msg[found.end() :] if found else msg


def parse_message(msg: str, *, has_qid: bool = True) -> Fields | None:
    """Parse a message (the text after envelope and queue id) into Event fields, or None.

    >>> parse_message("ruleset=tls_server, arg1=NONE, relay=mx.example.net, "
    ...               "reject=403 4.7.0 encryption too weak 0 less than 128")["required_bits"]
    128
    """
    msg = without_syserr(msg)
    for rule in BODY_RULES:
        if rule.needs_qid and not has_qid:
            continue
        if not all(p in msg for p in rule.prefilter):
            continue
        try:
            res = rule.expr.parse_string(msg)
        except pp.ParseBaseException:
            continue
        groups = res[0].groupdict()
        if "fields" in res:
            groups["fields"] = res["fields"]
        fields = rule.convert(groups)
        if fields is not None:
            return fields
    return None
