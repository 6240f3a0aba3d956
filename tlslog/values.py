"""Field values of sendmail log messages, as plain Python (no pyparsing): split, decode, normalise.

The grammar's converters and the columnar fast path share these, so both read a value the same way.

>>> split_relay("root@Mail.Example.COM. [IPv6:2001:db8:0:0:0:0:0:1] (may be forged)")
('mail.example.com', '2001:db8::1')
>>> parse_reply("403 4.7.0 encryption too weak 0 less than 128")
(403, 128, 0)
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

__all__ = ["parse_reply", "split_fields", "split_recipients", "split_relay", "split_stat", "xtext_decode"]

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

    STARTTLS lines cut the value at 100 characters: an address cut short is dropped (None), not kept
    in the host name.

    >>> split_relay("root@Mail.Example.COM. [IPv6:2001:db8:0:0:0:0:0:1] (may be forged)")
    ('mail.example.com', '2001:db8::1')
    >>> split_relay("mx.example.com [198.5")
    ('mx.example.com', None)
    """
    if not text:
        return None, None
    t = text.strip()
    if (i := t.rfind(" (")) >= 0 and "(may be forged)".startswith(t[i + 1 :]):
        t = t[:i].rstrip()
    ip = None
    if t.endswith("]") and (i := t.rfind("[")) >= 0:
        ip = _normal_ip(t[i + 1 : -1])
        t = t[:i].rstrip()
    if t.startswith("[") and t.endswith("]"):
        ip = ip or _normal_ip(t[1:-1])
        t = ""
    if (i := t.find("[")) >= 0 and "]" not in t[i:]:  # cut inside the address
        t = t[:i].rstrip()
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
    """``to=`` list -> tuple of addresses without angle brackets; the ``[more]`` that ends a list sendmail
    split over several lines is not an address.

    >>> split_recipients("<a@x>,<b@y>,root")
    ('a@x', 'b@y', 'root')
    >>> split_recipients("<a@x>,<b@y>, [more]")
    ('a@x', 'b@y')
    """
    found = (a.strip() for a in _ADDR.findall(text))
    return tuple(a.removeprefix("<").removesuffix(">") for a in found if a and a != "[more]")
