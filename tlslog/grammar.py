"""The grammar of sendmail's TLS log language (the only module that imports pyparsing).

A maillog line is an *envelope* (whatever syslog put in front), an optional queue-id prefix and a
*message*. Each message kind tlslog keeps is one ``pp.Regex`` with named groups, guarded by a cheap
substring prefilter; a plain-Python converter turns the named groups into `Event` fields. A fast path
may reuse ``rule.expr.re`` and ``rule.convert`` directly and get identical events.

BNF (regular-expression details are in docs/grammar.md)::

    line        ::= envelope prefix message
    envelope    ::= rfc5424 | syslog | fortimail | ""
    rfc5424     ::= "<" PRI ">1 " (ISO_TS | "-") " " HOST " " TAG " " (PID | "-") " " MSGID " " SD " "
    syslog      ::= ["<" PRI ">"] ((BSD_TS | ISO_TS) " " [HOST " "] TAG ["[" PID "]"] | TAG "[" PID "]")
                    ":" " "* [solaris_id]
    solaris_id  ::= "[ID " DIGITS " " FACILITY "." LEVEL "] "
    fortimail   ::= ["date=" DATE " "] "time=" TIME " " ... 'msg="' prefix message '"'
    prefix      ::= [QID ["[" PART "]"] ": " | "NOQUEUE: " | "[" PART "]: "]
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

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import pyparsing as pp

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

Groups = Mapping[str, Any]


def _rx(pattern: str) -> pp.Regex:
    # Matches exactly like ``expr.re.match(text)`` (no whitespace skipping, no tab expansion) and
    # returns the match object as its token: copying every named group into ParseResults costs more
    # than the match itself.
    return pp.Regex(pattern, as_match=True).leave_whitespace().parse_with_tabs()


Fields = dict[str, Any]

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
# Field helpers (plain Python, shared with the fast path)
# --------------------------------------------------------------------------------------------------

_XTEXT = re.compile(r"(?:\+[0-9A-Fa-f]{2})+")
_FIELD_SPLIT = re.compile(r", (?=[A-Za-z_]{1,24}=)")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_IPISH = re.compile(r"[0-9A-Fa-f:.]{2,64}")
_REPLY = re.compile(r"([2-5]\d\d)(?:[ -]([2-5]\.\d{1,3}\.\d{1,3}))?(?![\w.])")
_TOO_WEAK = re.compile(r"encryption too weak (\d{1,9}) less than (\d{1,9})")
_ADDR = re.compile(r'(?:"[^"]*"|<[^>]*>|[^,])+')


def xtext_decode(text: str | None) -> str | None:
    """Decode sendmail's xtext (``+20`` -> space); empty text gives None.

    >>> xtext_decode("/O=Lab+20+28Server+29/CN=mx")
    '/O=Lab (Server)/CN=mx'
    """
    if not text:
        return None
    if "+" not in text:
        return text
    return _XTEXT.sub(lambda m: bytes.fromhex(m.group().replace("+", "")).decode("utf-8", "replace"), text)


@lru_cache(maxsize=4096)
def _normal_ip(text: str) -> str | None:
    ip = text[5:] if text[:5].lower() == "ipv6:" else text
    if ":" in ip:
        try:
            return ipaddress.IPv6Address(ip).compressed
        except ValueError:
            return ip if _IPISH.fullmatch(ip) else None
    return ip if _IPV4.fullmatch(ip) else None


@lru_cache(maxsize=8192)
def split_relay(text: str | None) -> tuple[str | None, str | None]:
    """``relay=`` value -> (host, ip): ident user and ``(may be forged)`` dropped, host lower-cased
    without trailing dots (None for a bare literal), ip without brackets or ``IPv6:`` (compressed).

    >>> split_relay("root@Mail.Example.COM. [IPv6:2001:db8:0:0:0:0:0:1] (may be forged)")
    ('mail.example.com', '2001:db8::1')
    """
    if not text:
        return None, None
    t = text.strip()
    if t.endswith("(may be forged)"):
        t = t[:-15].rstrip()
    ip = None
    if t.endswith("]") and (i := t.rfind("[")) >= 0:
        ip = _normal_ip(t[i + 1 : -1])
        t = t[:i].rstrip()
    if t.startswith("[") and t.endswith("]"):
        ip = ip or _normal_ip(t[1:-1])
        t = ""
    host = t.rsplit("@", 1)[-1].rstrip(".").lower()
    return host or None, ip


def split_fields(text: str, terminal: tuple[str, ...] = ()) -> dict[str, str]:
    """Split ``k=v, k=v`` with one compiled regex; a ``terminal`` key takes the rest of the text.

    >>> split_fields("size=12, class=0, relay=a, b [1.2.3.4]", ("relay",))
    {'size': '12', 'class': '0', 'relay': 'a, b [1.2.3.4]'}
    """
    out: dict[str, str] = {}
    parts = _FIELD_SPLIT.split(text)
    for i, part in enumerate(parts):
        key, eq, value = part.partition("=")
        if not eq:
            continue
        if key in terminal:
            out.setdefault(key, ", ".join([value, *parts[i + 1 :]]) if i + 1 < len(parts) else value)
            break
        out.setdefault(key, value)
    return out


def split_stat(text: str | None) -> tuple[str | None, str | None]:
    """``stat=`` text -> (status words before ``:`` or `` (``, the rest without the parentheses).

    >>> split_stat("Sent (Ok: queued as C62506DA)")
    ('Sent', 'Ok: queued as C62506DA')
    """
    if not text:
        return None, None
    colon, paren = text.find(":"), text.find(" (")
    if colon < 0 and paren < 0:
        return text.strip(), None
    if paren < 0 or 0 <= colon < paren:
        word, rest = text[:colon], text[colon + 1 :].strip()
    else:
        word, rest = text[:paren], text[paren + 2 :].strip()
        rest = rest.removesuffix(")")
    return word.strip() or None, rest or None


def parse_reply(text: str | None) -> tuple[int | None, int | None, int | None]:
    """SMTP reply text -> (reply code, required bits, actual bits).

    >>> parse_reply("403 4.7.0 encryption too weak 0 less than 128")
    (403, 128, 0)
    """
    if not text:
        return None, None, None
    m = _REPLY.match(text)
    w = _TOO_WEAK.search(text)
    return (
        int(m.group(1)) if m else None,
        int(w.group(2)) if w else None,
        int(w.group(1)) if w else None,
    )


def split_recipients(text: str) -> tuple[str, ...]:
    """``to=`` list -> tuple of addresses without angle brackets.

    >>> split_recipients("<a@x>,<b@y>,root")
    ('a@x', 'b@y', 'root')
    """
    return tuple(a.strip().removeprefix("<").removesuffix(">") for a in _ADDR.findall(text) if a.strip())


_INTEGER = re.compile(r"-?\d{1,18}")


def _int(text: str | None) -> int | None:
    return int(text) if text and _INTEGER.fullmatch(text) else None


def _relay(g: Groups, key: str = "relay") -> Fields:
    host, ip = split_relay(g.get(key))
    return {"relay_host": host, "relay_ip": ip}


def _who(who: str | None) -> str | None:
    return who if who in ("server", "client") else None


# --------------------------------------------------------------------------------------------------
# Converters: named groups -> Event fields (a dict with ``kind``), or None to drop the line
# --------------------------------------------------------------------------------------------------


def _conv_starttls(g: Groups) -> Fields:
    suffix = g["suffix"].removeprefix(",").strip()
    return {
        "kind": "starttls",
        "direction": g["who"],
        **_relay(g),
        "version": g["version"],
        "verify": g["verify"],
        "cipher": g["cipher"],
        "alg_bits": int(g["alg_bits"]),
        "cipher_bits": int(g["cipher_bits"]),
        "detail": suffix or None,
    }


def _conv_cert(g: Groups) -> Fields:
    return {
        "kind": "tls_cert",
        "subkind": "cert",
        "direction": g["who"],
        "cert_subject": xtext_decode(g["subject"]),
        "cert_issuer": xtext_decode(g["issuer"]),
        "verifymsg": g["verifymsg"],
    }


def _conv_cert_verify(g: Groups) -> Fields:
    layer = g["layer"] or ""
    return {
        "kind": "tls_cert",
        "subkind": "cert_verify",
        "cert_subject": g["dn"] or None,
        "verifymsg": g["reason"],
        "detail": f"{layer + ' ' if layer else ''}depth={g['depth']}, state={g['state']}",
    }


def _conv_handshake(g: Groups) -> Fields:
    parts = [f"{g['op']} failed={g['ret']}"]
    parts += [f"{k}={g[k]}" for k in ("timedout", "retry") if g[k] is not None]
    return {
        "kind": "tls_error",
        "subkind": "handshake",
        "direction": "server" if g["op"] == "accept" else "client",
        **_relay(g),
        "error": g["reason"] or None,
        "ssl_error": _int(g["ssl_error"]),
        "errno": _int(g["errno"]),
        "detail": ", ".join(parts),
    }


def _conv_io(g: Groups) -> Fields:
    parts = [f"{k}={g[k]}" for k in ("ret", "get_error", "retry") if g[k] is not None]
    return {
        "kind": "tls_error",
        "subkind": g["op"],
        "error": g["err"].strip() or None,
        "ssl_error": _int(g["ssl_err"]),
        "errno": _int(g["errno"]),
        "detail": ", ".join(parts) or None,
    }


def _conv_openssl(g: Groups) -> Fields:
    return {
        "kind": "tls_error",
        "subkind": "openssl",
        "direction": _who(g["who"]),
        "error": g["reason"] or None,
        "detail": g["errtext"],
    }


_FILE_WORDS = re.compile(
    r"_file\(|load verify locs|check_private_key|DH ?Param|BIO_|CRL|X509_STORE|X509_LOOKUP"
)
_PAREN_FILE = re.compile(r"\((/[^)]*)\)")


def _conv_error_text(g: Groups) -> Fields:
    text = g["text"].strip()
    is_file = _FILE_WORDS.search(text) is not None
    path = _PAREN_FILE.search(text)
    return {
        "kind": "tls_error",
        "subkind": "file" if is_file else "other",
        "direction": _who(g.get("who")),
        "error": text,
        "detail": path.group(1) if path else None,
    }


def _conv_unsafe(g: Groups) -> Fields:
    return {
        "kind": "tls_error",
        "subkind": "file",
        "direction": _who(g["who"]),
        "error": f"unsafe: {g['why']}",
        "detail": g["file"],
    }


def _conv_missing(g: Groups) -> Fields:
    return {"kind": "tls_error", "subkind": "file", "error": f"{g['what']} missing", "detail": g["what"]}


def _conv_cert_name(g: Groups) -> Fields:
    return {
        "kind": "tls_error",
        "subkind": "cert_name",
        "direction": g["who"],
        **_relay(g),
        "error": g["status"],
        "detail": f"field={g['field']}",
    }


def _conv_digest(g: Groups) -> Fields:
    return {
        "kind": "tls_error",
        "subkind": "other",
        "direction": g["who"],
        **_relay(g),
        "error": f"X509_digest={g['digest']}",
        "detail": f"CertFingerprintAlgorithm={g['alg']}",
    }


def _conv_dane(g: Groups) -> Fields:
    return {"kind": "tls_error", "subkind": "dane", "direction": "client", **_relay(g), "error": g["warning"]}


def _conv_tlsa(g: Groups) -> Fields:
    fields = g.get("fields") or split_fields(g["tail"], ("status",))
    host = re.sub(r"^_\d+\.", "", g["tlsa"]).rstrip(".").lower() or None
    return {
        "kind": "tls_error",
        "subkind": "tlsa",
        "direction": "client",
        "relay_host": host,
        "error": fields.get("status"),
        "detail": f"TLSA={g['tlsa']}, {g['tail']}",
    }


_CLIENT_RULESETS = ("tls_server", "tls_rcpt", "try_tls")


def _conv_reject(g: Groups) -> Fields:
    reject = g["reject"]
    code, required, actual = parse_reply(reject)
    return {
        "kind": "tls_reject",
        "ruleset": g["ruleset"],
        "direction": "client" if g["ruleset"] in _CLIENT_RULESETS else "server",
        **_relay(g),
        "arg1": g["arg1"],
        "arg2": g["arg2"],
        "reject": reject,
        "reply_code": code,
        "required_bits": required,
        "actual_bits": actual,
        "detail": "discard" if reject is None else (None if g["key"] == "reject" else g["key"]),
    }


_FROM_TERMINAL = ("relay",)
_TO_TERMINAL = ("stat",)


def convert_receipt(g: Groups) -> Fields:
    f = g.get("fields") or split_fields(g["tail"], _FROM_TERMINAL)
    sender = g["sender"].strip()
    if sender.startswith("<") and sender.endswith(">") and sender != "<>":
        sender = sender[1:-1]
    extra = [f"{k}={f[k]}" for k in ("bodytype", "auth") if k in f]
    return {
        "kind": "receipt",
        "direction": "server",
        **_relay(f),
        "sender": sender,
        "size": _int(f.get("size")),
        "nrcpts": _int(f.get("nrcpts")),
        "msgid": f.get("msgid"),
        "proto": f.get("proto"),
        "daemon": f.get("daemon"),
        "verify": f.get("tls_verify"),
        "version": f.get("tls_version"),
        "cipher": f.get("cipher"),
        "detail": ", ".join(extra) or None,
    }


def convert_delivery(g: Groups) -> Fields:
    f = g.get("fields") or split_fields(g["tail"], _TO_TERMINAL)
    stat, stat_text = split_stat(f.get("stat"))
    reply = f.get("reply")
    code, required, actual = parse_reply(reply)
    s_code, s_required, s_actual = parse_reply(stat_text)
    ctladdr = f.get("ctladdr")
    return {
        "kind": "delivery",
        "direction": "client",
        **_relay(f),
        "recipients": split_recipients(g["to"]),
        "mailer": f.get("mailer"),
        "dsn": f.get("dsn"),
        "stat": stat,
        "stat_text": stat_text,
        "reply": reply,
        "delay": f.get("delay"),
        "xdelay": f.get("xdelay"),
        "reply_code": code if code is not None else s_code,
        "required_bits": required if required is not None else s_required,
        "actual_bits": actual if actual is not None else s_actual,
        "verify": f.get("tls_verify"),
        "version": f.get("tls_version"),
        "cipher": f.get("cipher"),
        "detail": f"ctladdr={ctladdr}" if ctladdr else None,
    }


def _conv_did_not_issue(g: Groups) -> Fields:
    return {
        "kind": "session_end",
        "subkind": "did_not_issue",
        "direction": "server",
        **_relay(g),
        "daemon": g["daemon"],
        "detail": g["cmds"],
    }


def _conv_lost_input(g: Groups) -> Fields:
    return {
        "kind": "session_end",
        "subkind": "lost_input",
        "direction": "server",
        **_relay(g),
        "daemon": g["daemon"],
        "detail": g["cmd"],
    }


def _conv_timeout(g: Groups) -> Fields:
    phase = g["phase"]
    return {
        "kind": "session_end",
        "subkind": "timeout",
        "direction": "client" if phase.startswith("client") else "server",
        **_relay(g),
        "detail": phase,
    }


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
    .add_parse_action(partial(_fields_action, _FROM_TERMINAL))
    .set_name("receipt_line")
)
RECEIPT_PREFILTER = ("from=", ", size=")

delivery_line = (
    _rx(r"to=(?P<to>.*?), (?P<tail>(?:ctladdr|delay)=.*)")
    .add_parse_action(partial(_fields_action, _TO_TERMINAL))
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
    BodyRule("starttls", "starttls", STARTTLS_PREFILTER, starttls_summary, _conv_starttls),
    BodyRule("delivery", "delivery", DELIVERY_PREFILTER, delivery_line, convert_delivery, needs_qid=True),
    BodyRule("receipt", "receipt", RECEIPT_PREFILTER, receipt_line, convert_receipt, needs_qid=True),
    BodyRule("tls_reject", "tls_reject", REJECT_PREFILTER, tls_reject_line, _conv_reject),
    BodyRule("handshake", "tls_error", HANDSHAKE_PREFILTER, handshake_error, _conv_handshake),
    BodyRule("cert", "tls_cert", CERT_PREFILTER, cert_line, _conv_cert),
    BodyRule("io", "tls_error", IO_PREFILTER, io_error, _conv_io),
    BodyRule("openssl", "tls_error", OPENSSL_PREFILTER, openssl_error, _conv_openssl),
    BodyRule("did_not_issue", "session_end", DID_NOT_ISSUE_PREFILTER, did_not_issue, _conv_did_not_issue),
    BodyRule("lost_input", "session_end", LOST_INPUT_PREFILTER, lost_input, _conv_lost_input),
    BodyRule("timeout", "session_end", TIMEOUT_PREFILTER, input_timeout, _conv_timeout),
    BodyRule("cert_verify", "tls_cert", CERT_VERIFY_PREFILTER, cert_verify_line, _conv_cert_verify),
    BodyRule("dane", "tls_error", DANE_PREFILTER, dane_warning, _conv_dane),
    BodyRule("cert_name", "tls_error", CERT_NAME_PREFILTER, cert_name_error, _conv_cert_name),
    BodyRule("digest", "tls_error", DIGEST_PREFILTER, digest_warning, _conv_digest),
    BodyRule("file_unsafe", "tls_error", FILE_UNSAFE_PREFILTER, file_unsafe, _conv_unsafe),
    BodyRule("file_missing", "tls_error", FILE_MISSING_PREFILTER, file_missing, _conv_missing),
    BodyRule("error_text", "tls_error", ERROR_TEXT_PREFILTER, error_text, _conv_error_text),
    BodyRule("failed_kv", "tls_error", FAILED_KV_PREFILTER, failed_kv, _conv_error_text),
    BodyRule("prng", "tls_error", PRNG_PREFILTER, prng_error, _conv_error_text),
    BodyRule("tlsa", "tls_error", TLSA_PREFILTER, tlsa_line, _conv_tlsa),
    BodyRule("check_reject", "tls_reject", CHECK_REJECT_PREFILTER, tls_check_reject, _conv_reject),
)

#: A line can only be relevant when it contains one of these (checked before anything else).
PREFILTER: tuple[str, ...] = (
    "STARTTLS",
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
    r"|inittls|FIPSMode=|SSL_get_ex_new_index|host=|SSL_dane_enable|relay=.{0,300}?, (?:AltName=|tlsstate=)"
    r"|\w{1,40}=-?\d{1,11}, type=)"
    r"|STARTTLS: (?:info_callback|SSL3 alert|[^\s:]{1,64}:)"
    r"|STARTTLS=[\w-]{1,16}: (?!(?:\d{1,20}:)?error:|file )"
).set_name("noise")

#: every message expression as one MatchFirst (tests, diagrams; the hot path dispatches per rule)
message = pp.MatchFirst([r.expr for r in BODY_RULES]).set_name("message")


def parse_message(msg: str, *, has_qid: bool = True) -> Fields | None:
    """Parse a message (the text after envelope and queue id) into Event fields, or None.

    >>> parse_message("ruleset=tls_server, arg1=NONE, relay=mx.example.net, "
    ...               "reject=403 4.7.0 encryption too weak 0 less than 128")["required_bits"]
    128
    """
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
