"""JSON-lines logs as syslog lines: ``journalctl -o json`` records and rsyslog's JSON template.

Each record becomes ``"{ISO 8601 time} {host} {tag}[{pid}]: {message}"``, which the grammar reads like any
other syslog line; a record that cannot be read becomes ``""`` and a report through ``on_error``.

>>> record_line({"time": "2026-03-03T13:16:18+01:00", "hostname": "mx", "programname": "sm-mta",
...              "procid": "17209", "msg": " STARTTLS=client, relay=..."})
'2026-03-03T13:16:18+01:00 mx sm-mta[17209]: STARTTLS=client, relay=...'
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["record_line", "record_lines"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RSYSLOG_TIME_KEYS = ("time", "timereported", "timestamp", "@timestamp", "timegenerated")
_PID = re.compile(r"[0-9]{1,10}")  # as the grammar's envelope reads it
_SURROGATE = re.compile("[\ud800-\udfff]")  # what a lone JSON escape such as "\\ud800" decodes to


def record_lines(texts: list[str], lineno: int, on_error: Callable[[int, str, str], None]) -> list[str]:
    """One syslog line per JSON text (``""`` for a blank or unreadable one); `lineno` numbers the first.

    ``on_error(lineno, reason, excerpt)`` is called for every text that is not a journal or rsyslog record.
    """
    out = []
    for n, s in enumerate(texts, lineno):
        if not s or s.isspace():
            out.append("")
            continue
        try:
            record = json.loads(s)
            if not isinstance(record, dict):
                raise ValueError(f"a JSON {type(record).__name__}, not an object")
            out.append(record_line(record))
            if _not_utf8(record.get("MESSAGE")):
                on_error(n, "a MESSAGE that is not UTF-8 (shown as U+FFFD)", s[:60])
        except (ValueError, TypeError, AttributeError, RecursionError, OverflowError) as e:
            on_error(n, f"not a journal or rsyslog JSON record: {e}", s[:60])
            out.append("")
    return out


def _not_utf8(message: object) -> bool:
    """Whether a journald MESSAGE kept as a list of byte values is not valid UTF-8."""
    if not isinstance(message, list):
        return False
    try:
        bytes(message).decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def record_line(r: dict[str, Any]) -> str:
    """One journald (``journalctl -o json``) or rsyslog JSON record as a syslog line with an ISO timestamp.

    :raises ValueError: the record has no message or no time.
    """
    if "MESSAGE" in r or "__REALTIME_TIMESTAMP" in r:
        message = r.get("MESSAGE")
        if message is None:
            raise ValueError("no MESSAGE (journalctl prints null for fields over 4096 bytes; use --all)")
        if isinstance(message, list):  # journald keeps non-UTF-8 messages as a list of byte values
            message = bytes(message).decode("utf-8", "replace")
        micros = r.get("_SOURCE_REALTIME_TIMESTAMP") or r.get("__REALTIME_TIMESTAMP")
        if micros is None:
            raise ValueError("no __REALTIME_TIMESTAMP")
        when = (_EPOCH + timedelta(microseconds=int(micros))).astimezone().isoformat(timespec="microseconds")
        host = r.get("_HOSTNAME") or "-"
        tag = r.get("SYSLOG_IDENTIFIER") or r.get("_COMM") or "-"
        pid = r.get("SYSLOG_PID") or r.get("_PID")
    else:
        message = r.get("msg", r.get("message"))
        if message is None:
            raise ValueError("no MESSAGE or msg field")
        message = message[1:] if message.startswith(" ") else message
        when = next((r[k] for k in _RSYSLOG_TIME_KEYS if k in r), None)
        if when is None:
            raise ValueError("no time field")
        host = r.get("hostname") or r.get("host") or r.get("fromhost") or "-"
        tag = r.get("programname")
        pid = r.get("procid")
        if not tag:
            tag = str(r.get("syslogtag") or "-").rstrip(":")
            pid = None
    if "\n" in message or "\r" in message:
        message = " ".join(message.splitlines())
    # a process id the syslog envelope could not hold ("abc", "-3", 20 digits) is left out, not the record
    head = f"{when} {host} {tag}[{pid}]:" if _PID.fullmatch(str(pid)) else f"{when} {host} {tag}:"
    return _SURROGATE.sub("\ufffd", f"{head} {message}")  # lone surrogates are not UTF-8: Arrow refuses them
