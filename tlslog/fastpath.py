"""Columnar fast path: a block of lines to the raw events table, with the grammar's own regexes.

The grammar (pyparsing) stays the one definition of the log language. This module derives a
columnar reader from its pieces and gives the same events as `parse.parse_event` line by line:

- the prefilter is ``grammar.PREFILTER`` as one RE2 alternation (``pyarrow.compute``);
- the envelope is ``grammar.syslog_envelope.re`` without its no-timestamp branch, translated to RE2
  (`re2`); it is applied only to ASCII lines that start like a syslog timestamp, where RE2 and
  Python's ``re`` match alike (``\\d``, ``\\w``, ``\\s`` spelled out);
- ``from=`` and ``to=`` messages (unique per line) use the receipt and delivery rules' regexes and
  vectorised versions of their converters: ``split_fields`` becomes one RE2 extraction per key, and
  the grammar's helpers (``split_relay``, ``split_recipients``, ``parse_reply``) run once per distinct value;
- every other message is parsed once per distinct text with ``grammar.parse_message`` (STARTTLS
  summaries repeat per peer and cost one call per peer, not per line);
- whatever the fast path does not recognise (non-ASCII, other envelopes, ISO timestamps...) goes
  through the pyparsing path line by line.

tests/test_fastpath.py proves both paths give identical tables on every sample, corpus and generated line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import grammar, textarrays
from .parse import classify, is_foreign, parse_event, timestamp_issue
from .records import EVENT_FIELDS, Event, ParseIssue
from .stamps import timestamps

__all__ = ["DICTIONARY_FIELDS", "RAW_SCHEMA", "parse_block", "raw_table", "re2"]

_INT_FIELDS = (
    "pid", "alg_bits", "cipher_bits", "ssl_error", "errno", "reply_code", "required_bits", "actual_bits",
    "size", "nrcpts",
)  # fmt: skip
_TYPES = {name: pa.int64() for name in _INT_FIELDS} | {
    "timestamp": pa.timestamp("us"),
    "recipients": pa.list_(pa.string()),
}
#: The raw events table: the `Event` fields (aware timestamps in UTC, naive ones as wall-clock time) and
#: ``aware`` (the line's timestamp carried an offset). `frames` turns it into the typed frame.
ROW_TYPE = pa.struct([(name, _TYPES.get(name, pa.string())) for name in EVENT_FIELDS])
#: Text fields dictionary-encoded in the raw events table: those with few distinct values (categoricals
#: in the frame), then peers and delays that repeat, and rare ones (codes cost half an empty string's
#: offset). A smaller table to hold while parsing, to send back from workers and to cache; the frame
#: gets plain ``str`` columns for the latter.
DICTIONARY_FIELDS = (
    "kind", "host", "program", "direction", "version", "verify", "cipher", "mailer", "stat", "proto",
    "daemon", "ruleset", "subkind", "dsn",
    "relay_host", "relay_ip", "delay", "xdelay",
    "reply", "reject", "error", "verifymsg", "cert_subject", "cert_issuer", "arg1", "arg2",
)  # fmt: skip
_DICTIONARY = pa.dictionary(pa.int32(), pa.string())
_PLAIN_SCHEMA = pa.schema([*ROW_TYPE, pa.field("aware", pa.bool_())])
# other text as large_string: pandas' ``str`` columns keep such an array as it is (no copy)
RAW_SCHEMA = pa.schema(
    [
        pa.field(f.name, _DICTIONARY if f.name in DICTIONARY_FIELDS else pa.large_string())
        if f.type == pa.string()
        else f
        for f in _PLAIN_SCHEMA
    ]
)

# -- regular expressions: Python re -> RE2 --------------------------------------------------------

# Python's str whitespace within ASCII; RE2's \s lacks \v and \x1c-\x1f.
_PY_SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
_CLASS = {"d": "0-9", "w": "0-9A-Za-z_", "s": r"\t-\r\x1c-\x1f "}


def re2(pattern: str) -> str:
    """Translate a Python regex to RE2 with the same meaning on ASCII text.

    ``\\d``, ``\\w``, ``\\s`` become explicit ASCII classes (Python's are Unicode-aware, and its
    ``\\s`` includes ``\\v`` and ``\\x1c-\\x1f``), ``\\uXXXX`` becomes ``\\x{XXXX}``.

    :raises ValueError: the pattern uses what RE2 lacks (lookaround, backreferences).

    >>> re2(r"(?P<pid>\\d{1,10})[\\w.]")
    '(?P<pid>[0-9]{1,10})[0-9A-Za-z_.]'
    """
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            e = pattern[i + 1]
            if e in _CLASS:
                out.append(_CLASS[e] if in_class else f"[{_CLASS[e]}]")
            elif e in "DWS":
                if in_class:
                    raise ValueError(f"negated class \\{e} inside a set: {pattern!r}")
                out.append(f"[^{_CLASS[e.lower()]}]")
            elif e == "u":
                out.append(f"\\x{{{pattern[i + 2 : i + 6]}}}")
                i += 4
            elif e.isdigit() and e != "0":
                raise ValueError(f"backreference in {pattern!r}")
            else:
                out.append(c + e)
            i += 2
            continue
        if in_class:
            if c == "]" and out[-1] not in ("[", "[^"):
                in_class = False
            out.append(c)
        elif c == "[":
            in_class = True
            if pattern.startswith("[^", i):
                out.append("[^")
                i += 2
                continue
            out.append(c)
        elif pattern.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
            raise ValueError(f"lookaround in {pattern!r}")
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _envelope_pattern() -> str | None:
    """The grammar's syslog envelope for lines with a timestamp, as RE2, without the message.

    The branch for lines without a timestamp (lookarounds) is dropped: where the timestamp branch
    matches, Python takes it too. The host and tag bounds (``{1,255}``, ``{1,48}``) become ``+`` and
    are checked on the result: RE2 slows down a lot on wide counted repeats, and when the unbounded
    match keeps within the bounds it is also the bounded pattern's (first-match semantics).
    """
    no_ts = rf"|(?!{grammar.QID_RE}\[)(?={grammar.TAG_RE}\[))"
    source = grammar.syslog_envelope.re.pattern
    msg = "(?P<msg>(?s:.*))"
    if source.count(no_ts) != 1 or not source.endswith(msg):
        return None  # the grammar changed shape: everything takes the pyparsing path
    try:
        pattern = re2(source.replace(no_ts, ")").removesuffix(msg))
    except ValueError:
        return None
    for group, bound in _BOUNDED.items():
        head = f"(?P<{group}>"
        at = pattern.find(head)
        end = pattern.find(bound, at)
        if at < 0 or end < 0 or pattern.count(head) != 1:
            return None
        pattern = pattern[:end] + "+" + pattern[end + len(bound) :]
    pattern = pattern.replace("(?P<pri>", "(?:")  # unused: one group less, faster extraction
    return f"^(?P<head>{pattern})"


_BOUNDED = {"host": "{1,255}", "program": "{1,48}"}
_ENVELOPE_FIELDS = ("ts", "host", "program", "pid", "qid", "part", "npart")


def _rule_pattern(name: str, lazy: dict[str, str]) -> tuple[str, str, dict[str, int]] | None:
    """A body rule's regex as RE2, its literal start, and the lazy ``.{0,N}?`` groups made ``.*?``
    (checked against N afterwards, as for the envelope)."""
    rule = next(r for r in grammar.BODY_RULES if r.name == name)
    try:
        pattern = re2(rule.expr.re.pattern)
    except ValueError:
        return None
    bounds = {}
    for group, bound in lazy.items():
        piece = f"(?P<{group}>.{bound}?)"
        if pattern.count(piece) != 1:
            return None
        pattern = pattern.replace(piece, f"(?P<{group}>.*?)")
        bounds[group] = int(bound[3:-1])
    start = pattern[: pattern.index("(")]
    return pattern, start, bounds


_PREFILTER = "|".join(re.escape(p) for p in grammar.PREFILTER)
_ENVELOPE = _envelope_pattern()
# The common shape of that envelope: `Mmm dd hh:mm:ss host tag[pid]: ` and a queue id or not. Where it
# matches, `_ENVELOPE` matches alike, unless the message goes on with what its prefix reads (spaces,
# `[ID ...]`, `[n]: `, `NOQUEUE: `, `QID[n]: `): `_READS_ON`. Four groups at most and no choice a byte
# does not settle: RE2 runs it one-pass.
_COMMON = (
    "^"
    + re2(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d (?P<host>[^\s\[\]]+) (?P<program>[\w.@/-]+)")
    + re2(rf"\[(?P<pid>\d{{1,10}})\]: (?:(?P<qid>{grammar.QID_RE}): +)?")
    if _ENVELOPE is not None
    else None
)
_READS_ON = "^(?:[ \\[]|" + re2(rf"(?:{grammar.QID_RE}|NOQUEUE)") + "[\\[:])"
_RECEIPT = _rule_pattern("receipt", {"sender": "{0,1000}"})
_DELIVERY = _rule_pattern("delivery", {})
# lines the syslog envelope may take first (ASCII, starting with [A-Z0-9]): rfc5424 wants "<", FortiMail
# "date=" / "time="
_SYSLOG_START = np.zeros(256, dtype=bool)
_SYSLOG_START[[*range(ord("A"), ord("Z") + 1), *range(ord("0"), ord("9") + 1)]] = True
_INTEGER = "^-?[0-9]{1,18}$"
_REPLY_START = "^[2-5]"  # where a reply code can be (values._REPLY); other texts have none


# -- public ------------------------------------------------------------------------------------------


def raw_table(events: Sequence[Event]) -> pa.Table:
    """Events as a raw events table (one C-level conversion; aware timestamps arrive in UTC).

    :raises TypeError: an event's values do not fit the field types.
    """
    return _compact(_plain_table(events))


def _plain_table(events: Sequence[Event]) -> pa.Table:
    try:
        rows = pa.array(events, type=ROW_TYPE, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise TypeError(f"events do not match the Event field types: {err}") from None
    aware = pa.array(
        [e.timestamp is not None and e.timestamp.tzinfo is not None for e in events], type=pa.bool_()
    )
    return pa.Table.from_arrays([*rows.flatten(), aware], schema=_PLAIN_SCHEMA)


def _compact(table: pa.Table) -> pa.Table:
    """A table built with plain strings in `RAW_SCHEMA`: `DICTIONARY_FIELDS` dictionary-encoded, other
    text as large strings."""
    for at, field in enumerate(RAW_SCHEMA):
        if table.schema.field(at).type == field.type:
            continue
        column = table.column(at)
        column = column.dictionary_encode() if field.type == _DICTIONARY else column.cast(field.type)
        table = table.set_column(at, field.name, column)
    return table


def parse_block(
    lines: Sequence[str] | pa.StringArray,
    *,
    source: str,
    reference: datetime,
    first_lineno: int = 1,
    fast: bool = True,
) -> tuple[pa.Table, list[ParseIssue]]:
    """Parse consecutive lines of one source (strings, or an Arrow ``string`` array of them) into the raw
    events table and the lines' parse issues.

    Gives exactly what ``parse.parse_event`` and ``parse.classify`` give line by line (``fast=False``
    runs that path, for tests). ``reference`` dates BSD timestamps as in `tlslog.iter_events`.

    >>> table, issues = parse_block(["Nov 22 03:04:12 vm sm-mta[1]: STARTTLS=server, relay=x, "
    ...     "version=TLSv1.3, verify=OK, cipher=C, bits=256/256"],
    ...     source="x", reference=datetime(2026, 12, 1))
    >>> table.column("cipher_bits").to_pylist(), issues
    ([256], [])
    """
    table, issues = _parse_block(lines, source, reference, first_lineno, fast)
    return _compact(table), issues  # (a no-op on the columnar path's tables)


def _parse_block(
    lines: Sequence[str] | pa.StringArray, source: str, reference: datetime, first_lineno: int, fast: bool
) -> tuple[pa.Table, list[ParseIssue]]:
    arr = lines if isinstance(lines, pa.Array) else pa.array(lines, type=pa.string())
    if not fast or _ENVELOPE is None or not len(arr):
        return _slow(arr, range(len(arr)), source, reference, first_lineno)
    if isinstance(arr, pa.ChunkedArray) or arr.nbytes >= 2**31 - 1:  # string offsets are 32-bit: halve it
        half = len(lines) // 2
        return _joined(
            parse_block(lines[:half], source=source, reference=reference, first_lineno=first_lineno),
            parse_block(lines[half:], source=source, reference=reference, first_lineno=first_lineno + half),
        )
    wanted = pc.match_substring_regex(arr, _PREFILTER).to_numpy(zero_copy_only=False)
    if not wanted.any():
        return _plain_table([]), []
    # the envelope runs on wanted ASCII syslog lines only: the others are null in a view of the same bytes
    fields, head, matched = _envelopes(arr, wanted & _syslog_ascii(arr))
    slow_rows = np.flatnonzero(wanted & ~matched).tolist()
    idx = np.flatnonzero(matched)
    if not len(idx):
        return _slow(arr, slow_rows, source, reference, first_lineno)
    starts, ends, data = textarrays.bounds(arr)
    begin = np.minimum(starts[idx] + head[idx], ends[idx])
    msg = textarrays.view(data, begin, ends[idx] - begin)
    env = pa.StructArray.from_arrays(
        [fields[k].filter(matched) for k in _ENVELOPE_FIELDS] + [msg], names=[*_ENVELOPE_FIELDS, "msg"]
    )
    parts, unread, keys = _bodies(env)
    issues = _unread_issues(arr, idx, unread, keys, source, first_lineno)
    fast_table = _assembled(parts, env, idx, reference)
    # timestamps the columns leave (a day the year changes in, odd ISO ones): line by line
    if fast_table is not None:
        bad_ts = fast_table.column("_slow").to_numpy(zero_copy_only=False)
        fast_table = fast_table.drop_columns(["_slow"])
        if bad_ts.any():
            slow_rows += fast_table.column("_row").to_numpy()[bad_ts].tolist()
            fast_table = fast_table.filter(pa.array(~bad_ts))
    if not slow_rows:
        return (_plain_table([]) if fast_table is None else fast_table.drop_columns(["_row"])), issues
    slow_table, slow_issues = _slow(arr, sorted(slow_rows), source, reference, first_lineno, with_rows=True)
    slow_table = _compact(slow_table)
    if slow_issues:
        issues = sorted(issues + slow_issues, key=lambda x: x.lineno)
    if fast_table is None or not fast_table.num_rows:
        return slow_table.drop_columns(["_row"]), issues
    merged = pa.concat_tables([fast_table, slow_table])
    return _reordered(merged.drop_columns(["_row"]), pc.sort_indices(merged.column("_row"))), issues


def _envelopes(
    arr: pa.StringArray, candidates: np.ndarray
) -> tuple[dict[str, pa.Array], np.ndarray, np.ndarray]:
    """The envelope fields (`_ENVELOPE_FIELDS`, ``""`` where a group did not take part) of the candidate
    lines, the envelope's length in bytes, and whether the fast path reads the line (it has an envelope
    within the host and tag bounds).

    `_COMMON` reads the usual shape at 0.2 us a line, where RE2 runs `_ENVELOPE` (eight groups, not
    one-pass) at 0.6; the lines it misses, and those where the full envelope might read further
    (`_READS_ON`), take `_ENVELOPE`.
    """
    if _COMMON is None:
        return _full_envelopes(arr, candidates)
    starts, ends, data = textarrays.bounds(arr)
    common = pc.extract_regex(textarrays.only(arr, candidates), _COMMON)
    ok = common.is_valid().to_numpy(zero_copy_only=False)
    fields = {k: pc.struct_field(common, k) for k in ("host", "program", "pid", "qid")}
    size = {k: textarrays.sizes(v) for k, v in fields.items()}
    for group, bound in _BOUNDED.items():
        ok &= size[group] <= int(bound[3:-1])
    has_qid = ok & (size["qid"] > 0)
    # "Mmm dd hh:mm:ss " host " " tag "[" pid "]: " (qid ": ")
    head = size["host"] + size["program"] + size["pid"] + 21 + np.where(has_qid, size["qid"] + 2, 0)
    at = starts + head
    codes = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(1, dtype=np.uint8)
    more = np.flatnonzero(has_qid)  # `: +` took every space after the queue id
    while len(more):
        more = more[(at[more] < ends[more]) & (codes[np.minimum(at[more], len(codes) - 1)] == ord(" "))]
        at[more] += 1
    head = at - starts
    no_qid = np.flatnonzero(ok & ~has_qid)
    if len(no_qid):
        rest = textarrays.pieces(data, at[no_qid], ends[no_qid] - at[no_qid])
        reads_on = pc.match_substring_regex(rest, _READS_ON).to_numpy(zero_copy_only=False)[::2]
        ok[no_qid[reads_on]] = False
    fields["ts"] = textarrays.view(data, starts, np.minimum(ends - starts, 15))
    fields["part"] = fields["npart"] = pa.repeat(pa.scalar("", pa.string()), len(arr))
    miss = candidates & ~ok
    if not miss.any():
        return fields, head, ok
    full, full_head, full_ok = _full_envelopes(arr, miss)
    keep = pa.array(ok)
    fields = {k: pc.if_else(keep, fields[k], full[k]) for k in _ENVELOPE_FIELDS}
    return fields, np.where(ok, head, full_head), ok | full_ok


def _full_envelopes(
    arr: pa.StringArray, rows: np.ndarray
) -> tuple[dict[str, pa.Array], np.ndarray, np.ndarray]:
    """`_envelopes` with `_ENVELOPE` alone."""
    env = pc.extract_regex(textarrays.only(arr, rows), _ENVELOPE)
    matched = env.is_valid()
    for group, bound in _BOUNDED.items():
        size = pc.utf8_length(pc.struct_field(env, group))
        matched = pc.and_(matched, pc.less_equal(size, int(bound[3:-1])))
    matched = matched.fill_null(False).to_numpy(zero_copy_only=False)
    head = pc.utf8_length(pc.struct_field(env, "head")).fill_null(0).to_numpy(zero_copy_only=False)
    return {k: pc.struct_field(env, k) for k in _ENVELOPE_FIELDS}, head.astype(np.int64), matched


def _syslog_ascii(arr: pa.StringArray) -> np.ndarray:
    """Which lines are ASCII and start with one of `_SYSLOG_START`, from the bytes (one pass over the
    buffer, where ``string_is_ascii`` and a regex took two: 0.08 -> 0.01 us a line)."""
    starts, ends, data = textarrays.bounds(arr)
    codes = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)
    if not len(codes) or arr.null_count:
        return np.zeros(len(arr), dtype=bool)
    ok = (ends > starts) & _SYSLOG_START[codes[np.minimum(starts, len(codes) - 1)]]
    text = codes[starts[0] : ends[-1]] if len(arr) else codes[:0]
    if text.max(initial=0) >= 0x80:  # some line is not ASCII
        ok[np.searchsorted(starts, starts[0] + np.flatnonzero(text >= 0x80), side="right") - 1] = False
    return ok


def _assembled(
    parts: list[tuple[np.ndarray, pa.Table]], env: pa.StructArray, idx: np.ndarray, reference: datetime
) -> pa.Table | None:
    """The parts' bodies and their envelopes as one table in line order, in `RAW_SCHEMA` (plus
    ``_row``, the line, and ``_slow``, a timestamp left to the line-by-line path).

    Each column is compacted (dictionary-encoded, or large strings) before it is put in order, so
    the reordering moves dictionary codes rather than strings.
    """
    if not parts:
        return None
    at = np.concatenate([take for take, _ in parts])
    order = np.argsort(at, kind="stable")
    hit = at[order]
    body = pa.concat_tables([table for _, table in parts])
    envelope = _envelope_columns(
        pa.StructArray.from_arrays(
            [pc.struct_field(env, k).take(pa.array(hit)) for k in _ENVELOPE_FIELDS], names=_ENVELOPE_FIELDS
        ),
        reference,
    )
    n, taken = len(order), pa.array(order)
    columns = []
    for field in RAW_SCHEMA:
        if field.name in envelope:
            column = envelope[field.name]
            columns.append(
                column.dictionary_encode() if field.type == _DICTIONARY else column.cast(field.type)
            )
            continue
        column = body.column(field.name)
        if column.null_count == len(column):
            columns.append(pa.nulls(n, field.type))
            continue
        if field.type == _DICTIONARY:
            column = column.dictionary_encode()
        elif column.type != field.type:
            column = column.cast(field.type)
        columns.append(column.take(taken).combine_chunks())
    columns += [pa.array(idx[hit], type=pa.int64()), pa.array(envelope["_slow"])]
    schema = pa.schema([*RAW_SCHEMA, pa.field("_row", pa.int64()), pa.field("_slow", pa.bool_())])
    return pa.Table.from_arrays(columns, schema=schema)


def _reordered(table: pa.Table, order: pa.Array) -> pa.Table:
    """``table.take(order)``; columns without a value are not gathered."""
    columns = [
        pa.nulls(len(order), col.type) if col.null_count == len(col) else col.take(order)
        for col in table.columns
    ]
    return pa.Table.from_arrays(columns, schema=table.schema)


def _joined(*parts: tuple[pa.Table, list[ParseIssue]]) -> tuple[pa.Table, list[ParseIssue]]:
    return pa.concat_tables([t for t, _ in parts]), [i for _, found in parts for i in found]


def _unread_issues(
    lines: pa.StringArray,
    idx: np.ndarray,
    unread: np.ndarray,
    keys: np.ndarray,
    source: str,
    first_lineno: int,
) -> list[ParseIssue]:
    """Issues of our messages no rule read (a foreign program's lines are never one): ``classify``
    depends on the queue id, part and message only, so one line per key stands for all."""
    if not len(unread):
        return []
    distinct, first = np.unique(keys, return_index=True)
    reasons = [classify(lines[int(idx[unread[i]])].as_py()) for i in first]
    found = np.array([r is not None for r in reasons], dtype=bool)
    at = np.searchsorted(distinct, keys)
    issues = []
    for i in np.flatnonzero(found[at]):
        row = int(idx[unread[i]])
        issues.append(ParseIssue(source, first_lineno + row, reasons[at[i]], lines[row].as_py()[:200]))
    return issues


# -- the line-by-line path -------------------------------------------------------------------------


def _slow(
    lines: pa.StringArray,
    rows: Sequence[int],
    source: str,
    reference: datetime,
    first_lineno: int,
    *,
    with_rows: bool = False,
) -> tuple[pa.Table, list[ParseIssue]]:
    events: list[Event] = []
    numbers: list[int] = []
    issues: list[ParseIssue] = []
    texts = lines.take(pa.array(rows, type=pa.int64())).to_pylist() if len(rows) else []
    for i, line in zip(rows, texts, strict=True):
        event = parse_event(line, None, reference)
        if event is not None:
            events.append(event)
            numbers.append(i)
        reason = classify(line) if event is None else timestamp_issue(line, event)
        if reason is not None:
            issues.append(ParseIssue(source, first_lineno + i, reason, line[:200]))
    table = _plain_table(events)
    if with_rows:
        table = table.append_column("_row", pa.array(numbers, type=pa.int64()))
    return table, issues


# -- bodies -----------------------------------------------------------------------------------------


def _bodies(env: pa.StructArray) -> tuple[list[tuple[np.ndarray, pa.Table]], np.ndarray, np.ndarray]:
    """Tables of the messages the fast path reads (with the positions in ``env`` they belong to), and
    the positions of our messages no rule read, with a key per distinct (queue id?, part, message)."""
    msg = pc.struct_field(env, "msg")
    part = pc.binary_join_element_wise(pc.struct_field(env, "part"), pc.struct_field(env, "npart"), "/")
    qid = pc.struct_field(env, "qid")
    has_qid = pc.and_(pc.not_equal(qid, ""), pc.not_equal(qid, "NOQUEUE")).fill_null(False)
    foreign = _map_unique(pc.struct_field(env, "program"), lambda p: is_foreign(p), pa.bool_()).fill_null(
        False
    )
    ours = pc.invert(foreign)
    done = np.zeros(len(env), dtype=bool)
    parts = []
    ours_qid = pc.and_(has_qid, ours)
    for rule, convert, fields in ((_DELIVERY, _deliveries, _TO_FIELDS), (_RECEIPT, _receipts, _FROM_FIELDS)):
        if rule is None:
            continue
        pattern, start, bounds = rule
        maybe = pc.and_(ours_qid, pc.starts_with(msg, start)).to_numpy(zero_copy_only=False) & ~done
        rows = np.flatnonzero(maybe)
        if not len(rows):
            continue
        fast, values = _split_fields(msg.take(rows), fields)
        if fast.any():
            keep = pa.array(fast)
            parts.append((rows[fast], convert({k: v.filter(keep) for k, v in values.items()})))
            done[rows[fast]] = True
            rows = rows[~fast]
            if not len(rows):
                continue
        groups = pc.extract_regex(msg.take(rows), pattern)
        hit = groups.is_valid()
        for group, bound in bounds.items():
            hit = pc.and_(hit, pc.less_equal(pc.utf8_length(pc.struct_field(groups, group)), bound))
        hit = hit.fill_null(False).to_numpy(zero_copy_only=False)
        if hit.any():
            parts.append((rows[hit], convert(_rule_fields(groups.filter(hit), fields))))
            done[rows[hit]] = True
    # everything else: one grammar call per distinct (message, has queue id)
    left = np.flatnonzero(~done & ours.to_numpy(zero_copy_only=False))
    if len(left):
        keyed = pc.binary_join_element_wise(
            pc.if_else(has_qid.take(left), "q", "-"), part.take(left), ":", msg.take(left), ""
        ).dictionary_encode()
        results = [_message(k) for k in keyed.dictionary.to_pylist()]
        codes = keyed.indices.to_numpy(zero_copy_only=False)
        found = np.array([r is not None for r in results], dtype=bool)
        hit = found[codes]
        if hit.any():
            table = pa.Table.from_pylist([r or {} for r in results], schema=_body_schema())
            parts.append((left[hit], table.take(pa.array(codes[hit]))))
        return parts, left[~hit], codes[~hit]
    return parts, left, np.zeros(0, dtype=np.int64)


_MESSAGES: dict[str, dict[str, Any] | None] = {}  # parse_message per key, across blocks
_MAX_MESSAGES = 200_000


def _message(key: str) -> dict[str, Any] | None:
    """``grammar.parse_message`` of a ``"q" | "-"`` + part/npart + ``":"`` + message key, remembered."""
    if key in _MESSAGES:
        return _MESSAGES[key]
    if len(_MESSAGES) >= _MAX_MESSAGES:
        _MESSAGES.clear()
    found = _MESSAGES[key] = grammar.parse_message(key.split(":", 1)[1], has_qid=key[0] == "q")
    return found


def _body_schema() -> pa.Schema:
    return pa.schema([f for f in ROW_TYPE if f.name not in ("timestamp", "host", "program", "pid", "qid")])


def _strip(a: pa.Array) -> pa.Array:
    return pc.utf8_trim(a, characters=_PY_SPACE)


def _none_if_empty(a: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(a, ""), pa.scalar(None, pa.string()), a)


def _int(a: pa.Array) -> pa.Array:
    good = pc.match_substring_regex(a, _INTEGER)
    return pc.cast(pc.if_else(good, a, None), pa.int64())


def _field(tail: pa.Array, key: str) -> pa.Array:
    """``split_fields(tail)[key]`` for a key before the terminal one (first occurrence wins)."""
    return pc.struct_field(
        pc.extract_regex(tail, rf"(?:^|, ){key}=(?P<v>.*?)(?:, [A-Za-z_]{{1,24}}=|$)"), "v"
    )


def _cut(tail: pa.Array, terminal: str) -> tuple[pa.Array, pa.Array]:
    """The text before the terminal key and the terminal key's value (the rest of the text)."""
    m = pc.extract_regex(tail, rf"^(?P<head>.*?), {terminal}=(?P<value>.*)$")
    has = m.is_valid()
    return pc.if_else(has, pc.struct_field(m, "head"), tail), pc.if_else(
        has, pc.struct_field(m, "value"), None
    )


def _map_unique(a: pa.Array, fn: Callable[[Any], Any], type_: pa.DataType) -> pa.Array:
    """``fn`` of every value, computed once per distinct value (nulls become ``fn(None)``)."""
    enc = pc.dictionary_encode(a, null_encoding="encode")
    return pa.array([fn(v) for v in enc.dictionary.to_pylist()], type=type_).take(enc.indices)


def _relays(relay: pa.Array) -> tuple[pa.Array, pa.Array]:
    pairs = _map_unique(
        relay,
        lambda t: dict(zip(("h", "i"), grammar.split_relay(t), strict=True)),
        pa.struct([("h", pa.string()), ("i", pa.string())]),
    )
    return pc.struct_field(pairs, "h"), pc.struct_field(pairs, "i")


def _reply(text: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """``parse_reply`` per row: the code depends on the first 14 characters only (the reply regex
    reads at most 13 and looks at one more); the bits of "encryption too weak" lines row by row."""
    head = pc.utf8_slice_codeunits(text, 0, 14)
    head = pc.if_else(pc.match_substring_regex(head, _REPLY_START), head, pa.scalar(None, pa.string()))
    code = _map_unique(head, lambda t: grammar.parse_reply(t)[0], pa.int64())
    weak = pc.match_substring(text, "encryption too weak ").fill_null(False).to_numpy(zero_copy_only=False)
    required = np.full(len(text), None, dtype=object)
    actual = np.full(len(text), None, dtype=object)
    if weak.any():
        for i in np.flatnonzero(weak):
            _, required[i], actual[i] = grammar.parse_reply(text[int(i)].as_py())
    return code, pa.array(required, type=pa.int64()), pa.array(actual, type=pa.int64())


def _split_stat(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """``grammar.split_stat`` on a column: the first ``:`` or `` (`` splits word and rest (byte offsets)."""
    colon = pc.find_substring(text, ":").fill_null(-1).to_numpy(zero_copy_only=False)
    paren = pc.find_substring(text, " (").fill_null(-1).to_numpy(zero_copy_only=False)
    by_colon = (colon >= 0) & ((paren < 0) | (colon < paren))
    has = by_colon | (paren >= 0)
    at = np.where(by_colon, colon, np.maximum(paren, 0))
    starts, ends, data = textarrays.bounds(text)
    word = _none_if_empty(_strip(textarrays.view(data, starts, at, valid=has)))
    rest_start = np.where(has, starts + at + np.where(by_colon, 1, 2), ends)
    rest = _strip(textarrays.view(data, rest_start, ends - rest_start, valid=has))
    paren_first = pa.array(has & ~by_colon)
    rest = _none_if_empty(pc.if_else(paren_first, pc.replace_substring_regex(rest, r"\)$", ""), rest))
    empty = pc.or_(text.is_null(), pc.equal(text, "")).fill_null(True)
    null = pa.scalar(None, pa.string())
    split = pa.array(has)
    stat = pc.if_else(empty, null, pc.if_else(split, word, _strip(text)))
    stat_text = pc.if_else(pc.or_(empty, pc.invert(split)), null, rest)
    return stat, stat_text


def _column(n: int, **columns: pa.Array) -> pa.Table:
    schema = _body_schema()
    arrays = [columns.get(f.name, pa.nulls(n, f.type)) for f in schema]
    return pa.Table.from_arrays(
        [pc.cast(a, f.type) for a, f in zip(arrays, schema, strict=True)], schema=schema
    )


def _receipts(f: dict[str, pa.Array]) -> pa.Table:
    """``grammar.convert_receipt`` on field columns (``from``: the sender, the terminal ``relay``)."""
    n = len(f["from"])
    host, ip = _relays(f["relay"])
    sender = _map_unique(
        f["from"],
        lambda s: grammar.convert_receipt({"sender": s, "fields": {"x": ""}})["sender"],
        pa.string(),
    )
    body = pc.binary_join_element_wise("bodytype=", f["bodytype"], "")
    auth = pc.binary_join_element_wise("auth=", f["auth"], "")
    # (binary_join_element_wise's null_handling="skip" drops rows where every value is null)
    detail = pc.if_else(
        body.is_null(), auth, pc.if_else(auth.is_null(), body, pc.binary_join_element_wise(body, auth, ", "))
    )
    return _column(
        n,
        kind=pa.repeat("receipt", n), direction=pa.repeat("server", n), relay_host=host, relay_ip=ip,
        sender=sender, size=_int(f["size"]), nrcpts=_int(f["nrcpts"]), msgid=f["msgid"], proto=f["proto"],
        daemon=f["daemon"], verify=f["tls_verify"], version=f["tls_version"], cipher=f["cipher"],
        detail=detail,
    )  # fmt: skip


def _deliveries(f: dict[str, pa.Array]) -> pa.Table:
    """``grammar.convert_delivery`` on field columns (``to``: the recipients, the terminal ``stat``)."""
    n = len(f["to"])
    stat, stat_text = _split_stat(f["stat"])
    reply = f["reply"]
    code, required, actual = _reply(reply)
    s_code, s_required, s_actual = _reply(stat_text)
    host, ip = _relays(f["relay"])
    recipients = _map_unique(f["to"], grammar.split_recipients, pa.list_(pa.string()))
    ctladdr = _none_if_empty(f["ctladdr"])
    return _column(
        n,
        kind=pa.repeat("delivery", n), direction=pa.repeat("client", n), relay_host=host, relay_ip=ip,
        recipients=recipients, mailer=f["mailer"], dsn=f["dsn"], stat=stat,
        stat_text=stat_text, reply=reply, delay=f["delay"], xdelay=f["xdelay"],
        reply_code=pc.coalesce(code, s_code), required_bits=pc.coalesce(required, s_required),
        actual_bits=pc.coalesce(actual, s_actual), verify=f["tls_verify"],
        version=f["tls_version"], cipher=f["cipher"],
        detail=pc.binary_join_element_wise("ctladdr=", ctladdr, ""),
    )  # fmt: skip


# -- key=value fields ------------------------------------------------------------------------------


class _Fields(NamedTuple):
    """A ``lead=value, key=value, ..., terminal=rest`` message: what `grammar.split_fields` reads."""

    lead: str  #: the rule's first key (its value is the rule's own group)
    group: str  #: the rule's group for the lead value
    firsts: tuple[str, ...]  #: keys the rule's tail may start with
    terminal: str  #: the key that takes the rest of the text
    keys: tuple[str, ...]  #: the other keys the converter reads
    bound: int | None  #: most characters of the lead value (the rule's ``{0,N}``)


_TO_FIELDS = _Fields(
    "to", "to", ("ctladdr", "delay"), "stat",
    ("ctladdr", "delay", "xdelay", "mailer", "tls_verify", "tls_version", "cipher", "relay", "dsn", "reply"),
    None,
)  # fmt: skip
_FROM_FIELDS = _Fields(
    "from", "sender", ("size",), "relay",
    ("size", "nrcpts", "msgid", "bodytype", "proto", "daemon", "tls_verify", "tls_version", "cipher", "auth"),
    1000,
)  # fmt: skip
_KEY = "^[A-Za-z_]{1,24}="  # what follows ", " where split_fields cuts


def _rule_fields(groups: pa.StructArray, spec: _Fields) -> dict[str, pa.Array]:
    """Field columns of rule matches, one RE2 extraction per key (rows `_split_fields` leaves)."""
    head, rest = _cut(pc.struct_field(groups, "tail"), spec.terminal)
    out = {key: _field(head, key) for key in spec.keys}
    out[spec.lead] = pc.struct_field(groups, spec.group)
    out[spec.terminal] = rest
    return out


def _split_fields(msg: pa.Array, spec: _Fields) -> tuple[np.ndarray, dict[str, pa.Array]]:
    """Field columns of ASCII messages cut at every ``", "``, and the rows where that is exact.

    A row is exact when every piece from the second to the terminal key's starts with ``key=``:
    then each ``", "`` there is one where `grammar.split_fields` cuts, and the lead value ends
    where the rule's lazy group ends (the second piece's key is one the tail may start with).
    """
    n = len(msg)
    pieces = pc.split_pattern(msg, ", ")
    counts = pc.list_value_length(pieces).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.list_flatten(pieces)
    starts, ends, data = textarrays.bounds(flat)
    m = len(flat)
    row = np.repeat(np.arange(n), counts)
    first = np.zeros(n, dtype=np.int64)
    np.cumsum(counts[:-1], out=first[1:])
    at = np.arange(m) - first[row]  # piece number within its row
    eq = np.maximum(pc.find_substring(flat, "=").to_numpy(zero_copy_only=False), 0)
    names = [spec.lead, spec.terminal, *spec.keys, *(k for k in spec.firsts if k not in spec.keys)]
    # a piece with a known name before its first "=" is key-like (the names are letters and "_")
    code = pc.index_in(textarrays.view(data, starts, eq), value_set=pa.array(names)).fill_null(-1)
    code = code.to_numpy(zero_copy_only=False)
    # the terminal: the first piece after the lead with its key
    term = np.full(n, -1, dtype=np.int64)
    t = np.flatnonzero((code == 1) & (at >= 1))
    t = t[_first_of_runs(row[t])]
    term[row[t]] = t
    last = np.where(term >= 0, term - 1, first + counts - 1)  # the last piece before the terminal
    head = (at >= 1) & (np.arange(m) <= last[row])
    unknown = np.flatnonzero(head & (code < 0))
    keylike = pc.match_substring_regex(flat.take(unknown), _KEY).to_numpy(zero_copy_only=False)
    fast = np.bincount(row[unknown[~keylike]], minlength=n) == 0
    second = np.minimum(first + 1, m - 1)
    firsts = [names.index(k) for k in spec.firsts]
    fast &= (counts >= 2) & np.isin(code[second], firsts)
    values = textarrays.pieces(data, np.minimum(starts + eq + 1, ends), np.maximum(ends - starts - eq - 1, 0))
    out = {spec.lead: values.take(textarrays.even(n, index=first)) if m else pa.nulls(n, pa.string())}
    if spec.bound is not None:
        fast &= (ends[first] - starts[first] - eq[first] - 1 if m else 0) <= spec.bound
    for i, key in enumerate(spec.keys, start=2):
        sel = np.flatnonzero(head & (code == i))
        sel = sel[_first_of_runs(row[sel])]
        idx = np.full(n, -1, dtype=np.int64)
        idx[row[sel]] = sel
        out[key] = values.take(textarrays.even(n, index=idx))
    # the terminal's value runs to the end of the message: its offset there from the pieces before it
    before = np.zeros(m, dtype=np.int64)
    np.cumsum(ends[:-1] - starts[:-1] + 2, out=before[1:])
    has = term >= 0
    text_starts, text_ends, text_data = textarrays.bounds(msg)
    begin = np.where(has, before[np.maximum(term, 0)] - before[first] + len(spec.terminal) + 1, 0)
    begin = np.minimum(begin + text_starts, text_ends)
    out[spec.terminal] = textarrays.view(text_data, begin, text_ends - begin, valid=has)
    return fast, out


def _first_of_runs(rows: np.ndarray) -> np.ndarray:
    """Mask of the first element of each run of equal values in a sorted array."""
    keep = np.ones(len(rows), dtype=bool)
    keep[1:] = rows[1:] != rows[:-1]
    return keep


# -- envelope and timestamps -----------------------------------------------------------------------


def _envelope_columns(env: pa.StructArray, reference: datetime) -> dict[str, Any]:
    """The envelope's event columns, ``aware``, and ``_slow`` (timestamps left to the line-by-line path)."""
    qid = pc.struct_field(env, "qid")
    qid = pc.if_else(pc.equal(qid, "NOQUEUE").fill_null(False), pa.scalar(None, pa.string()), qid)
    pid = pc.struct_field(env, "pid")
    pid = pc.cast(pc.if_else(pc.equal(pid, ""), pa.scalar(None, pa.string()), pid), pa.int64())
    stamps, aware, slow = timestamps(pc.struct_field(env, "ts"), reference)
    return {
        "timestamp": stamps,
        "host": _none_if_empty(pc.struct_field(env, "host")),
        "program": pc.struct_field(env, "program"),
        "pid": pid,
        "qid": _none_if_empty(qid),
        "aware": aware,
        "_slow": slow,
    }
