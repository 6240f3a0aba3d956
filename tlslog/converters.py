"""Converters from the grammar's named groups to `Event` fields (plain Python, no pyparsing).

Each ``convert_*`` function takes the ``groupdict()`` of one message rule's match and returns `Event`
fields with a ``kind`` (None drops the line). The grammar's `BodyRule` table pairs every expression with
its converter, and the fast path calls the same functions. ``from=`` / ``to=`` groups may carry the
key=value tail already split as ``fields``; without it the converter splits ``tail`` itself.

>>> convert_timeout({"relay": "mx.example.net [192.0.2.1]", "phase": "client greeting"})["direction"]
'client'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .values import parse_reply, split_fields, split_recipients, split_relay, split_stat, xtext_decode

Groups = Mapping[str, Any]
Fields = dict[str, Any]

_INTEGER = re.compile(r"-?\d{1,18}")


def _int(text: str | None) -> int | None:
    return int(text) if text and _INTEGER.fullmatch(text) else None


def _relay(g: Groups, key: str = "relay") -> Fields:
    host, ip = split_relay(g.get(key))
    return {"relay_host": host, "relay_ip": ip}


def _who(who: str | None) -> str | None:
    return who if who in ("server", "client") else None


def convert_starttls(g: Groups) -> Fields:
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


def convert_cert(g: Groups) -> Fields:
    return {
        "kind": "tls_cert",
        "subkind": "cert",
        "direction": g["who"],
        "cert_subject": xtext_decode(g["subject"]),
        "cert_issuer": xtext_decode(g["issuer"]),
        "verifymsg": g["verifymsg"],
    }


def convert_cert_verify(g: Groups) -> Fields:
    layer = g["layer"] or ""
    return {
        "kind": "tls_cert",
        "subkind": "cert_verify",
        "cert_subject": g["dn"] or None,
        "verifymsg": g["reason"],
        "detail": f"{layer + ' ' if layer else ''}depth={g['depth']}, state={g['state']}",
    }


def convert_handshake(g: Groups) -> Fields:
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


def convert_io(g: Groups) -> Fields:
    errno, retry, ssl_err = g["errno"], g["retry"], g["ssl_err"]
    if g["op"] == "read" and errno is None and g["get_error"] is None and None not in (retry, ssl_err):
        # 8.13-8.14's short read error printed errno as retry= and the retry count as ssl_err= (reference 4.3)
        errno, retry, ssl_err = retry, ssl_err, None
    parts = [
        f"{k}={v}"
        for k, v in (("ret", g["ret"]), ("get_error", g["get_error"]), ("retry", retry))
        if v is not None
    ]
    return {
        "kind": "tls_error",
        "subkind": g["op"],
        "error": g["err"].strip() or None,
        "ssl_error": _int(ssl_err),
        "errno": _int(errno),
        "detail": ", ".join(parts) or None,
    }


def convert_openssl(g: Groups) -> Fields:
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


def convert_error_text(g: Groups) -> Fields:
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


def convert_server_error(g: Groups) -> Fields:
    return {"kind": "tls_error", "subkind": "other", "direction": "server", "error": g["text"]}


def convert_starttls_tempfailed(g: Groups) -> Fields:
    return {
        "kind": "tls_error",
        "subkind": "other",
        "direction": "server",
        **_relay(g),
        "error": f"STARTTLS {g['text']}",
        "detail": g["arg"] or None,
    }


def convert_unsafe(g: Groups) -> Fields:
    return {
        "kind": "tls_error",
        "subkind": "file",
        "direction": _who(g["who"]),
        "error": f"unsafe: {g['why']}",
        "detail": g["file"],
    }


def convert_missing(g: Groups) -> Fields:
    return {"kind": "tls_error", "subkind": "file", "error": f"{g['what']} missing", "detail": g["what"]}


def convert_cert_name(g: Groups) -> Fields:
    return {
        "kind": "tls_error",
        "subkind": "cert_name",
        "direction": g["who"],
        **_relay(g),
        "error": g["status"],
        "detail": f"field={g['field']}",
    }


def convert_digest(g: Groups) -> Fields:
    return {
        "kind": "tls_error",
        "subkind": "other",
        "direction": g["who"],
        **_relay(g),
        "error": f"X509_digest={g['digest']}",
        "detail": f"CertFingerprintAlgorithm={g['alg']}",
    }


def convert_dane(g: Groups) -> Fields:
    return {"kind": "tls_error", "subkind": "dane", "direction": "client", **_relay(g), "error": g["warning"]}


def convert_tlsa(g: Groups) -> Fields:
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


def convert_reject(g: Groups) -> Fields:
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


#: the key that takes the rest of a ``from=`` / ``to=`` tail (``terminal`` of `split_fields`)
FROM_TERMINAL = ("relay",)
TO_TERMINAL = ("stat",)


def convert_receipt(g: Groups) -> Fields:
    f = g.get("fields") or split_fields(g["tail"], FROM_TERMINAL)
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
    f = g.get("fields") or split_fields(g["tail"], TO_TERMINAL)
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


def convert_did_not_issue(g: Groups) -> Fields:
    return {
        "kind": "session_end",
        "subkind": "did_not_issue",
        "direction": "server",
        **_relay(g),
        "daemon": g["daemon"],
        "detail": g["cmds"],
    }


def convert_lost_input(g: Groups) -> Fields:
    return {
        "kind": "session_end",
        "subkind": "lost_input",
        "direction": "server",
        **_relay(g),
        "daemon": g["daemon"],
        "detail": g["cmd"],
    }


def convert_timeout(g: Groups) -> Fields:
    phase = g["phase"]
    return {
        "kind": "session_end",
        "subkind": "timeout",
        "direction": "client" if phase.startswith("client") else "server",
        **_relay(g),
        "detail": phase,
    }
