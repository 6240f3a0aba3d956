"""The records every layer shares: the `Event` of one log line, parse issues, and errors.

This module is the leaf of the package (standard library only). The field names of `Event`
are the public event schema of design.md; `read_log` uses them as column names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

#: The kinds of line tlslog keeps (any other line parses to ``None``).
KINDS = ("starttls", "tls_cert", "tls_error", "tls_reject", "receipt", "delivery", "session_end")

#: Protocol names in order of strength; ``TLSv1/SSLv3`` is what sendmail <= 8.14 logs for any
#: TLS 1.0-era suite. Unknown values are kept as ``"other"`` in frames.
TLS_VERSIONS = ("SSLv3", "TLSv1", "TLSv1/SSLv3", "TLSv1.1", "TLSv1.2", "TLSv1.3")


class Event(NamedTuple):
    """One TLS-relevant maillog line. Fields a line does not carry are ``None``.

    >>> from tlslog import parse_line
    >>> e = parse_line("Nov 22 03:04:12 vm sm-mta[16051]: STARTTLS=server, relay=localhost [127.0.0.1], "
    ...                "version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256")
    >>> e.kind, e.direction, e.relay_ip, e.cipher_bits
    ('starttls', 'server', '127.0.0.1', 256)
    """

    kind: str
    timestamp: datetime | None = None
    host: str | None = None
    program: str | None = None
    pid: int | None = None
    qid: str | None = None
    direction: str | None = None
    relay_host: str | None = None
    relay_ip: str | None = None
    version: str | None = None
    verify: str | None = None
    cipher: str | None = None
    alg_bits: int | None = None
    cipher_bits: int | None = None
    cert_subject: str | None = None
    cert_issuer: str | None = None
    verifymsg: str | None = None
    error: str | None = None
    ssl_error: int | None = None
    errno: int | None = None
    ruleset: str | None = None
    arg1: str | None = None
    arg2: str | None = None
    reject: str | None = None
    reply_code: int | None = None
    required_bits: int | None = None
    actual_bits: int | None = None
    sender: str | None = None
    recipients: tuple[str, ...] | None = None
    mailer: str | None = None
    dsn: str | None = None
    stat: str | None = None
    stat_text: str | None = None
    reply: str | None = None
    delay: str | None = None
    xdelay: str | None = None
    size: int | None = None
    nrcpts: int | None = None
    proto: str | None = None
    daemon: str | None = None
    msgid: str | None = None
    #: which line of its kind this is, e.g. ``handshake`` / ``read`` / ``openssl`` for ``tls_error``,
    #: ``did_not_issue`` / ``lost_input`` / ``timeout`` for ``session_end`` (see docs/grammar.md)
    subkind: str | None = None
    #: the rest of the line's information that has no field of its own (DANE suffixes, file names, phases)
    detail: str | None = None


#: Column names of the events frame, in order.
EVENT_FIELDS: tuple[str, ...] = Event._fields


@dataclass(frozen=True, slots=True)
class ParseIssue:
    """A line that looks like sendmail's but could not be read, or input that had to be repaired.

    ``lineno`` is 1-based (0 when the issue concerns the whole source); ``text`` is an excerpt.
    """

    source: str
    lineno: int
    reason: str
    text: str = ""

    def __str__(self) -> str:
        where = f"{self.source}:{self.lineno}" if self.lineno else self.source
        return f"{where}: {self.reason}" + (f": {self.text!r}" if self.text else "")


class Issues(tuple):
    """An immutable sequence of `ParseIssue`.

    pandas deep-copies ``DataFrame.attrs`` on every operation; being immutable, this returns itself from
    ``__deepcopy__`` so a long list of issues costs nothing downstream.
    """

    __slots__ = ()

    def __deepcopy__(self, memo: dict) -> Issues:
        return self


@dataclass(slots=True)
class ReadStats:
    """Counts that a read fills in as it goes; pass one to `iter_events(stats=...)`."""

    lines: int = 0
    events: int = 0
    issues: int = 0
    bytes: int = 0
    sources: list[str] = field(default_factory=list)


class TlsLogError(Exception):
    """Base of every error tlslog raises on purpose; the CLI prints it and exits 1."""


class InputError(TlsLogError):
    """A log source could not be read: missing, unreadable, not a log, or a truncated archive."""


class StrictParseError(TlsLogError):
    """Raised in strict mode at the first parse issue; carries it as ``issue``."""

    def __init__(self, issue: ParseIssue):
        super().__init__(str(issue))
        self.issue = issue


class CacheError(TlsLogError):
    """The columnar cache could not be read or written."""
