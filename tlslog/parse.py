"""Lines to events: `parse_line` for one line, `iter_events` for files and directories.

The grammar (`tlslog.grammar`) splits a line into strings; this module adds what needs context:
the timestamp as a `datetime` (with the year of BSD timestamps inferred), the `Event` record, and
the difference between a line that is not TLS-relevant (``None``) and one that looks like sendmail's
but does not parse (a `ParseIssue`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta

from . import grammar, sources
from .records import Event, ParseIssue, ReadStats, StrictParseError

__all__ = ["classify", "iter_events", "parse_line"]

_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_ONE_DAY = timedelta(days=1)
_FRACTION = re.compile(r"([.,])(\d{6})\d+")

#: Programs that share the maillog but are not sendmail (their ``to=``/``from=`` are not ours).
_FOREIGN = re.compile(
    r"(?:postfix|dovecot|opendkim|opendmarc|amavis|exim|spamd|spamassassin|clamd|clamav|rspamd|saslauthd"
    r"|courier|cyrus|qmail|postgrey|sqlgrey|policyd|milter-greylist|mimedefang|imapd|pop3d|sshd|cron|kernel)",
    re.IGNORECASE,
)
_MAYBE_OURS = re.compile(r"STARTTLS[=:]|ruleset=(?:tls_|try_tls)|TLSA=")


def is_foreign(program: str | None) -> bool:
    return program is not None and ("/" in program or _FOREIGN.match(program) is not None)


class FixedYear(datetime):
    """A reference time that fixes the year of every BSD timestamp (``year=``): the last instant of it."""


def bsd_time(ts: str, year: int | None, reference: datetime | None) -> datetime | None:
    mon, day, clock = ts.split()
    month = _MONTHS.get(mon)
    if month is None:
        return None
    hms, _, frac = clock.partition(".")
    h, m, s = (int(x) for x in hms.split(":"))
    micro = int(frac[:6].ljust(6, "0")) if frac else 0
    if year is not None:
        try:
            return datetime(year, month, int(day), h, m, s, micro)
        except ValueError:
            return None
    ref = reference or datetime.now()
    if ref.tzinfo is not None:
        ref = ref.astimezone().replace(tzinfo=None)
    years = (ref.year,) if isinstance(reference, FixedYear) else range(ref.year, ref.year - 5, -1)
    for y in years:
        try:
            stamp = datetime(y, month, int(day), h, m, s, micro)
        except ValueError:  # Feb 29 in a common year, or a day that does not exist
            continue
        if stamp - ref <= _ONE_DAY:
            return stamp
    return None


def timestamp_of(ts: str | None, year: int | None, reference: datetime | None) -> datetime | None:
    if not ts:
        return None
    try:
        if ts[0].isdigit():
            return datetime.fromisoformat(_FRACTION.sub(r"\1\2", ts).replace(",", "."))
        return bsd_time(ts, year, reference)
    except ValueError:
        return None


def parse_event(line: str, year: int | None, reference: datetime | None) -> Event | None:
    if not any(p in line for p in grammar.PREFILTER):
        return None
    env = grammar.parse_envelope(line)
    if is_foreign(env["program"]):
        return None
    fields = grammar.parse_message(env["msg"], has_qid=env["qid"] is not None)
    if fields is None:
        return None
    return Event(
        timestamp=timestamp_of(env["ts"], year, reference),
        host=env["host"],
        program=env["program"],
        pid=env["pid"],
        qid=env["qid"],
        **fields,
    )


def parse_line(line: str, *, year: int | None = None) -> Event | None:
    """Parse one maillog line; ``None`` when it is not a TLS-relevant sendmail line. Never raises.

    :param year: the year of BSD timestamps (which have none); by default inferred against now
        (a date more than a day in the future belongs to the previous year).

    >>> e = parse_line("Dec  6 14:06:30 mx sm-mta[3306]: STARTTLS=server, relay=[184.21.104.253], "
    ...                "version=TLSv1/SSLv3, verify=NO, cipher=RC4-MD5, bits=128/128", year=2012)
    >>> e.kind, e.relay_host, e.relay_ip, e.timestamp.year
    ('starttls', None, '184.21.104.253', 2012)
    """
    return parse_event(line, year, None)


def classify(line: str) -> str | None:
    """Why a line that gave no event is a parse issue, or None when it is simply not relevant.

    A line is an issue when it comes from sendmail (or has no envelope) and its message starts the way
    sendmail's TLS, ``from=`` and ``to=`` lines start, yet no rule read it. Continuation parts
    (``QID[2]: ...``), known noise and other programs' lines are not issues.

    >>> classify("Nov 22 03:04:12 vm sm-mta[1]: STARTTLS=server, relay=x, version=TLSv1.3")
    'unrecognised STARTTLS line'
    """
    if not any(p in line for p in grammar.PREFILTER):
        return None
    env = grammar.parse_envelope(line)
    if is_foreign(env["program"]) or (env["part"] or 0) > 1:
        return None
    msg = grammar.without_syserr(env["msg"])
    if _MAYBE_OURS.match(msg):
        if grammar.NOISE.re.match(msg):
            return None
        if msg.startswith("ruleset="):
            return "unrecognised TLS ruleset line"
        return "unrecognised TLSA line" if msg.startswith("TLSA=") else "unrecognised STARTTLS line"
    if env["qid"] is not None and env["part"] is None:
        if msg.startswith("from="):
            return "unrecognised from= line"
        if msg.startswith("to="):
            return "unrecognised to= line"
    return None


def timestamp_issue(line: str, event: Event) -> str | None:
    """``"invalid timestamp"`` when the line's envelope has a timestamp that names no time (``Feb 30``,
    ``25:61:00``, an unknown month): its event is kept, without a time. None otherwise."""
    if event.timestamp is not None or not grammar.parse_envelope(line)["ts"]:
        return None
    return "invalid timestamp"


def reference_time(source: sources.Source, year: int | None) -> datetime:
    """What a source's BSD timestamps are dated against: its end, or with ``year`` the last instant of
    that year, so that every date falls in it (as `parse_line` gives), whatever the file's date."""
    if year is None:
        return source.reference
    return FixedYear(year, 12, 31, 23, 59, 59, 999999)


def iter_events(
    paths: str | os.PathLike | Iterable[str | os.PathLike] | None,
    *,
    year: int | None = None,
    strict: bool = False,
    on_issue: Callable[[ParseIssue], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    stats: ReadStats | None = None,
) -> Iterator[Event]:
    """Read files, directories or ``-`` and yield the events of their TLS-relevant lines, in order.

    BSD timestamps get the year of the file's end (its mtime), minus one for dates more than a day
    after it (a December line in a file that ends in January); with ``year``, every one gets that year.

    :param strict: raise `StrictParseError` at the first line that looks like sendmail's but does
        not parse, instead of passing a `ParseIssue` to ``on_issue``.
    :param stats: a `ReadStats` to fill in (lines, events, issues, bytes, sources).
    :raises InputError: a path is missing or unreadable.
    :raises StrictParseError: with ``strict=True``.

    >>> for event in iter_events("/var/log/maillog", year=2026):      # doctest: +SKIP
    ...     print(event.kind, event.relay_host)
    """
    st = stats if stats is not None else ReadStats()

    def report(issue: ParseIssue) -> None:
        st.issues += 1
        if on_issue is not None:
            on_issue(issue)

    def progress(nbytes: int) -> None:
        st.bytes += nbytes
        if on_progress is not None:
            on_progress(nbytes)

    for source in sources.expand(paths):
        st.sources.append(source.name)
        reference = reference_time(source, year)
        lines = sources.read_lines(source, on_progress=progress, on_issue=report)
        for lineno, line in enumerate(lines, 1):
            st.lines += 1
            event = parse_event(line, None, reference)
            reason = classify(line) if event is None else timestamp_issue(line, event)
            if reason is not None:
                issue = ParseIssue(source.name, lineno, reason, line[:200])
                if strict:
                    st.issues += 1
                    raise StrictParseError(issue)
                report(issue)
            if event is not None:
                st.events += 1
                yield event
