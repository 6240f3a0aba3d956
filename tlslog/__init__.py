"""tlslog: read sendmail's maillog and answer what postmasters ask about STARTTLS.

>>> import tlslog
>>> df = tlslog.read_log("sample_logs/")                          # doctest: +SKIP
>>> tlslog.coverage(df, by="week")                                 # doctest: +SKIP

Charts live in ``tlslog.charts`` (imported explicitly, it pulls in matplotlib).
"""

from .failures import failures
from .linking import deliveries, receipts, sessions
from .metrics import by_cipher, by_peer, by_verify, by_version, coverage
from .records import Event, InputError, ParseIssue, ReadStats, StrictParseError, TlsLogError

# The reader (pyparsing, the fast path, workers, cache) is imported on first use: a report served
# from the result cache never needs it (PEP 562).
_LAZY = {"read_log": "frames", "iter_events": "parse", "parse_line": "parse"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
