"""tlslog: read sendmail's maillog and answer what postmasters ask about STARTTLS.

>>> import tlslog
>>> df = tlslog.read_log("sample_logs/")                          # doctest: +SKIP
>>> tlslog.coverage(df, by="week")                                 # doctest: +SKIP

Charts live in ``tlslog.charts`` (imported explicitly, it pulls in matplotlib).
"""

from .failures import failures
from .frames import read_log
from .linking import deliveries, receipts, sessions
from .metrics import by_cipher, by_peer, by_verify, by_version, coverage
from .parse import iter_events, parse_line
from .records import Event, InputError, ParseIssue, ReadStats, StrictParseError, TlsLogError

__all__ = [
    "Event",
    "InputError",
    "ParseIssue",
    "ReadStats",
    "StrictParseError",
    "TlsLogError",
    "by_cipher",
    "by_peer",
    "by_verify",
    "by_version",
    "coverage",
    "deliveries",
    "failures",
    "iter_events",
    "parse_line",
    "read_log",
    "receipts",
    "sessions",
]
