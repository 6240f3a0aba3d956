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
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import grammar
from .parse import bsd_time, classify, is_foreign, parse_event
from .records import EVENT_FIELDS, Event, ParseIssue

__all__ = ["RAW_SCHEMA", "parse_block", "raw_table", "re2"]

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
RAW_SCHEMA = pa.schema([*ROW_TYPE, pa.field("aware", pa.bool_())])

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
    return f"^(?P<head>{pattern})"


_BOUNDED = {"host": "{1,255}", "program": "{1,48}"}


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
_RECEIPT = _rule_pattern("receipt", {"sender": "{0,1000}"})
_DELIVERY = _rule_pattern("delivery", {})
# lines the syslog envelope may take first: rfc5424 wants "<", FortiMail "date=" / "time="
_SYSLOG_START = "^[A-Z0-9]"
_BSD_TS = (
    r"^(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>[0-9]{1,2}) (?P<h>[0-9]{2}):(?P<m>[0-9]{2}):(?P<s>[0-9]{2})"
    + (r"(?:\.(?P<frac>[0-9]{1,9}))?$")
)
_INTEGER = "^-?[0-9]{1,18}$"
_MONTHS = pa.array(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])


# -- public ------------------------------------------------------------------------------------------


def raw_table(events: Sequence[Event]) -> pa.Table:
    """Events as a raw events table (one C-level conversion; aware timestamps arrive in UTC).

    :raises TypeError: an event's values do not fit the field types.
    """
    try:
        rows = pa.array(events, type=ROW_TYPE, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise TypeError(f"events do not match the Event field types: {err}") from None
    aware = pa.array(
        [e.timestamp is not None and e.timestamp.tzinfo is not None for e in events], type=pa.bool_()
    )
    return pa.Table.from_arrays([*rows.flatten(), aware], schema=RAW_SCHEMA)


def parse_block(
    lines: Sequence[str], *, source: str, reference: datetime, first_lineno: int = 1, fast: bool = True
) -> tuple[pa.Table, list[ParseIssue]]:
    """Parse consecutive lines of one source into the raw events table and the lines' parse issues.

    Gives exactly what ``parse.parse_event`` and ``parse.classify`` give line by line (``fast=False``
    runs that path, for tests). ``reference`` dates BSD timestamps as in `tlslog.iter_events`.

    >>> table, issues = parse_block(["Nov 22 03:04:12 vm sm-mta[1]: STARTTLS=server, relay=x, "
    ...     "version=TLSv1.3, verify=OK, cipher=C, bits=256/256"],
    ...     source="x", reference=datetime(2026, 12, 1))
    >>> table.column("cipher_bits").to_pylist(), issues
    ([256], [])
    """
    if not fast or _ENVELOPE is None or not lines:
        return _slow(lines, range(len(lines)), source, reference, first_lineno)
    arr = pa.array(lines, type=pa.string())
    cand = np.flatnonzero(pc.match_substring_regex(arr, _PREFILTER).to_numpy(zero_copy_only=False))
    if not len(cand):
        return raw_table([]), []
    sub = arr.take(cand)
    ok = pc.and_(pc.string_is_ascii(sub), pc.match_substring_regex(sub, _SYSLOG_START))
    env = pc.extract_regex(pc.if_else(ok, sub, None), _ENVELOPE)
    matched = env.is_valid()
    for group, bound in _BOUNDED.items():
        size = pc.utf8_length(pc.struct_field(env, group))
        matched = pc.and_(matched, pc.less_equal(size, int(bound[3:-1])))
    matched = matched.fill_null(False).to_numpy(zero_copy_only=False)
    slow_rows = cand[~matched].tolist()
    idx = cand[matched]
    if not len(idx):
        return _slow(lines, slow_rows, source, reference, first_lineno)
    env = env.filter(matched)
    msg = _tails(sub.filter(matched), pc.utf8_length(pc.struct_field(env, "head")))
    env = pa.StructArray.from_arrays(
        [pc.struct_field(env, k) for k in ("ts", "host", "program", "pid", "qid")] + [msg],
        names=["ts", "host", "program", "pid", "qid", "msg"],
    )
    parts, rest = _bodies(env)
    tables = []
    for take, table in parts:
        tables.append(_with_envelope(table, env.take(take), idx[take], reference))
    # messages no rule read, and non-BSD timestamps: line by line (rare)
    slow_rows += idx[rest].tolist()
    fast_table = pa.concat_tables(tables) if tables else None
    if fast_table is not None:
        bad_ts = fast_table.column("_slow").to_numpy(zero_copy_only=False)
        if bad_ts.any():
            slow_rows += fast_table.column("_row").to_numpy()[bad_ts].tolist()
            fast_table = fast_table.filter(pa.array(~bad_ts))
    slow_table, issues = _slow(lines, sorted(slow_rows), source, reference, first_lineno, with_rows=True)
    if fast_table is None or not fast_table.num_rows:
        return slow_table.drop_columns(["_row"]), issues
    merged = pa.concat_tables([fast_table.drop_columns(["_slow"]), slow_table])
    order = pc.sort_indices(merged.column("_row"))
    return merged.take(order).drop_columns(["_row"]), issues


def _tails(text: pa.Array, start: pa.Array) -> pa.Array:
    """``text[i][start[i]:]`` for ASCII text without nulls: a string view into the same bytes, cast once."""
    text = pc.cast(text, pa.large_string()) if len(text) and text.nbytes >= 2**31 - 1 else text
    n = len(text)
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset : text.offset + n + 1]
    data = text.buffers()[2]
    first = offsets[:-1] + start.to_numpy(zero_copy_only=False).astype(np.int32)
    length = offsets[1:] - first
    views = np.zeros((n, 4), dtype=np.int32)
    views[:, 0] = length
    views[:, 3] = first  # buffer 0 at this offset (long strings)
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(1, dtype=np.uint8)
    as_bytes = views.view(np.uint8).reshape(n, 16)
    inline = length <= 12
    for j in range(12):  # a 4-byte prefix, or the whole string when it has at most 12 bytes
        byte = np.where(j < length, raw[np.minimum(first + j, len(raw) - 1)], 0).astype(np.uint8)
        as_bytes[:, 4 + j] = byte if j < 4 else np.where(inline, byte, as_bytes[:, 4 + j])
    view = pa.Array.from_buffers(pa.string_view(), n, [None, pa.py_buffer(views), data])
    return pc.cast(view, pa.string())


# -- the line-by-line path -------------------------------------------------------------------------


def _slow(
    lines: Sequence[str],
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
    for i in rows:
        line = lines[i]
        event = parse_event(line, None, reference)
        if event is not None:
            events.append(event)
            numbers.append(i)
            continue
        reason = classify(line)
        if reason is not None:
            issues.append(ParseIssue(source, first_lineno + i, reason, line[:200]))
    table = raw_table(events)
    if with_rows:
        table = table.append_column("_row", pa.array(numbers, type=pa.int64()))
    return table, issues


# -- bodies -----------------------------------------------------------------------------------------


def _bodies(env: pa.StructArray) -> tuple[list[tuple[np.ndarray, pa.Table]], np.ndarray]:
    """Tables of the messages the fast path reads (with the positions in ``env`` they belong to), and
    the positions left for the line-by-line path."""
    msg = pc.struct_field(env, "msg")
    qid = pc.struct_field(env, "qid")
    has_qid = pc.and_(pc.not_equal(qid, ""), pc.not_equal(qid, "NOQUEUE")).fill_null(False)
    foreign = _map_unique(pc.struct_field(env, "program"), lambda p: is_foreign(p), pa.bool_()).fill_null(
        False
    )
    ours = pc.invert(foreign)
    done = np.zeros(len(env), dtype=bool)
    parts = []
    ours_qid = pc.and_(has_qid, ours)
    for rule, convert in ((_DELIVERY, _deliveries), (_RECEIPT, _receipts)):
        if rule is None:
            continue
        pattern, start, bounds = rule
        maybe = pc.and_(ours_qid, pc.starts_with(msg, start)).to_numpy(zero_copy_only=False) & ~done
        rows = np.flatnonzero(maybe)
        if not len(rows):
            continue
        groups = pc.extract_regex(msg.take(rows), pattern)
        hit = groups.is_valid()
        for group, bound in bounds.items():
            hit = pc.and_(hit, pc.less_equal(pc.utf8_length(pc.struct_field(groups, group)), bound))
        hit = hit.fill_null(False).to_numpy(zero_copy_only=False)
        if hit.any():
            parts.append((rows[hit], convert(groups.filter(hit))))
            done[rows[hit]] = True
    # everything else: one grammar call per distinct (message, has queue id)
    left = np.flatnonzero(~done & ours.to_numpy(zero_copy_only=False))
    foreign_rows = np.flatnonzero(~done & foreign.to_numpy(zero_copy_only=False))
    if len(left):
        keyed = pc.binary_join_element_wise(
            pc.if_else(has_qid.take(left), "q", "-"), msg.take(left), ""
        ).dictionary_encode()
        results = [grammar.parse_message(k[1:], has_qid=k[0] == "q") for k in keyed.dictionary.to_pylist()]
        codes = keyed.indices.to_numpy(zero_copy_only=False)
        found = np.array([r is not None for r in results], dtype=bool)
        hit = found[codes]
        if hit.any():
            table = pa.Table.from_pylist([r or {} for r in results], schema=_body_schema())
            parts.append((left[hit], table.take(pa.array(codes[hit]))))
        rest = left[~hit]
    else:
        rest = left
    # a foreign program's lines are no event, and never an issue: nothing to do for them
    del foreign_rows
    return parts, rest


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
    enc = a.dictionary_encode()
    values = [fn(v) for v in enc.dictionary.to_pylist()]
    mapped = pa.array(values, type=type_)
    out = mapped.take(enc.indices)
    if a.null_count:
        out = pc.if_else(a.is_valid(), out, pa.scalar(fn(None), type_))
    return out


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
    code = _map_unique(head, lambda t: grammar.parse_reply(t)[0], pa.int64())
    weak = pc.match_substring(text, "encryption too weak ").fill_null(False).to_numpy(zero_copy_only=False)
    required = np.full(len(text), None, dtype=object)
    actual = np.full(len(text), None, dtype=object)
    if weak.any():
        for i in np.flatnonzero(weak):
            _, required[i], actual[i] = grammar.parse_reply(text[int(i)].as_py())
    return code, pa.array(required, type=pa.int64()), pa.array(actual, type=pa.int64())


def _split_stat(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """``grammar.split_stat`` on a column: the first ``:`` or `` (`` splits word and rest."""
    m = pc.extract_regex(text, r"^(?P<word>.*?)(?P<sep>:| \()(?P<rest>.*)$")
    has = m.is_valid()
    word = _none_if_empty(_strip(pc.struct_field(m, "word")))
    rest = _strip(pc.struct_field(m, "rest"))
    paren = pc.equal(pc.struct_field(m, "sep"), " (")
    rest = pc.if_else(paren, pc.replace_substring_regex(rest, r"\)$", ""), rest)
    rest = _none_if_empty(rest)
    empty = pc.or_(text.is_null(), pc.equal(text, "")).fill_null(True)
    null = pa.scalar(None, pa.string())
    stat = pc.if_else(empty, null, pc.if_else(has, word, _strip(text)))
    stat_text = pc.if_else(pc.or_(empty, pc.invert(has)).fill_null(True), null, rest)
    return stat, stat_text


def _column(n: int, **columns: pa.Array) -> pa.Table:
    schema = _body_schema()
    arrays = [columns.get(f.name, pa.nulls(n, f.type)) for f in schema]
    return pa.Table.from_arrays(
        [pc.cast(a, f.type) for a, f in zip(arrays, schema, strict=True)], schema=schema
    )


def _receipts(g: pa.StructArray) -> pa.Table:
    """``grammar.convert_receipt`` on a column of receipt matches."""
    n = len(g)
    head, relay = _cut(pc.struct_field(g, "tail"), "relay")
    host, ip = _relays(relay)
    sender = _map_unique(
        pc.struct_field(g, "sender"),
        lambda s: grammar.convert_receipt({"sender": s, "fields": {"x": ""}})["sender"],
        pa.string(),
    )
    body = pc.binary_join_element_wise("bodytype=", _field(head, "bodytype"), "")
    auth = pc.binary_join_element_wise("auth=", _field(head, "auth"), "")
    # (binary_join_element_wise's null_handling="skip" drops rows where every value is null)
    detail = pc.if_else(
        body.is_null(), auth, pc.if_else(auth.is_null(), body, pc.binary_join_element_wise(body, auth, ", "))
    )
    return _column(
        n,
        kind=pa.repeat("receipt", n), direction=pa.repeat("server", n), relay_host=host, relay_ip=ip,
        sender=sender, size=_int(_field(head, "size")), nrcpts=_int(_field(head, "nrcpts")),
        msgid=_field(head, "msgid"), proto=_field(head, "proto"), daemon=_field(head, "daemon"),
        verify=_field(head, "tls_verify"), version=_field(head, "tls_version"), cipher=_field(head, "cipher"),
        detail=detail,
    )  # fmt: skip


def _deliveries(g: pa.StructArray) -> pa.Table:
    """``grammar.convert_delivery`` on a column of delivery matches."""
    n = len(g)
    head, stat_value = _cut(pc.struct_field(g, "tail"), "stat")
    stat, stat_text = _split_stat(stat_value)
    reply = _field(head, "reply")
    code, required, actual = _reply(reply)
    s_code, s_required, s_actual = _reply(stat_text)
    host, ip = _relays(_field(head, "relay"))
    recipients = _map_unique(pc.struct_field(g, "to"), grammar.split_recipients, pa.list_(pa.string()))
    ctladdr = _none_if_empty(_field(head, "ctladdr"))
    return _column(
        n,
        kind=pa.repeat("delivery", n), direction=pa.repeat("client", n), relay_host=host, relay_ip=ip,
        recipients=recipients, mailer=_field(head, "mailer"), dsn=_field(head, "dsn"), stat=stat,
        stat_text=stat_text, reply=reply, delay=_field(head, "delay"), xdelay=_field(head, "xdelay"),
        reply_code=pc.coalesce(code, s_code), required_bits=pc.coalesce(required, s_required),
        actual_bits=pc.coalesce(actual, s_actual), verify=_field(head, "tls_verify"),
        version=_field(head, "tls_version"), cipher=_field(head, "cipher"),
        detail=pc.binary_join_element_wise("ctladdr=", ctladdr, ""),
    )  # fmt: skip


# -- envelope and timestamps -----------------------------------------------------------------------


def _with_envelope(body: pa.Table, env: pa.StructArray, rows: np.ndarray, reference: datetime) -> pa.Table:
    qid = pc.struct_field(env, "qid")
    qid = pc.if_else(pc.equal(qid, "NOQUEUE").fill_null(False), pa.scalar(None, pa.string()), qid)
    pid = pc.struct_field(env, "pid")
    pid = pc.cast(pc.if_else(pc.equal(pid, ""), pa.scalar(None, pa.string()), pid), pa.int64())
    stamps, slow = _bsd_stamps(pc.struct_field(env, "ts"), reference)
    columns = {
        "timestamp": stamps,
        "host": _none_if_empty(pc.struct_field(env, "host")),
        "program": pc.struct_field(env, "program"),
        "pid": pid,
        "qid": _none_if_empty(qid),
    }
    arrays = [columns[f.name] if f.name in columns else body.column(f.name) for f in ROW_TYPE]
    n = len(rows)
    return pa.Table.from_arrays(
        [*arrays, pa.repeat(False, n), pa.array(rows, type=pa.int64()), pa.array(slow)],
        schema=pa.schema([*RAW_SCHEMA, pa.field("_row", pa.int64()), pa.field("_slow", pa.bool_())]),
    )


def _bsd_stamps(ts: pa.Array, reference: datetime) -> tuple[pa.Array, np.ndarray]:
    """BSD timestamps dated like ``parse.bsd_time`` against ``reference``; the mask marks rows whose
    timestamp is of another kind (ISO) or whose year needs the line-by-line rule (a day the year
    changes in), left for the slow path."""
    n = len(ts)
    m = pc.extract_regex(ts, _BSD_TS)
    bsd = m.is_valid().to_numpy(zero_copy_only=False)
    empty = pc.equal(ts, "").fill_null(True).to_numpy(zero_copy_only=False)
    slow = ~bsd & ~empty  # ISO timestamps (or anything else): the line-by-line path
    day_key = pc.binary_join_element_wise(pc.struct_field(m, "mon"), pc.struct_field(m, "day"), " ")

    def year_of(key: str | None) -> int | None:
        if key is None:
            return None
        first = bsd_time(key + " 00:00:00", None, reference)
        last = bsd_time(key + " 23:59:59.999999", None, reference)
        if first is None and last is None:
            return -1  # no such day in any year tried
        if first is None or last is None or first.year != last.year:
            return -2  # the year depends on the time of day
        return first.year

    year = _map_unique(day_key, year_of, pa.int64()).fill_null(-1).to_numpy(zero_copy_only=False)
    year = np.where(bsd, year, -1)
    slow |= bsd & (year == -2)
    month = (
        pc.index_in(pc.struct_field(m, "mon"), value_set=_MONTHS).fill_null(-1).to_numpy(zero_copy_only=False)
        + 1
    )
    ints = {
        k: pc.cast(pc.struct_field(m, k), pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        for k in ("day", "h", "m", "s")
    }
    frac = pc.utf8_slice_codeunits(pc.utf8_rpad(pc.struct_field(m, "frac").fill_null(""), 6, "0"), 0, 6)
    micro = pc.cast(frac, pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    good = bsd & (year > 0) & (month > 0)
    good &= (ints["h"] < 24) & (ints["m"] < 60) & (ints["s"] < 60)
    out = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    if good.any():
        y = year[good].astype(np.int64) - 1970
        mo = month[good].astype(np.int64) - 1
        first_of_month = (np.array(y * 12 + mo, dtype="datetime64[M]")).astype("datetime64[D]")
        day = first_of_month + (ints["day"][good] - 1).astype("timedelta64[D]")
        clock = ((ints["h"][good] * 60 + ints["m"][good]) * 60 + ints["s"][good]) * 1_000_000 + micro[good]
        out[good] = day.astype("datetime64[us]") + clock.astype("timedelta64[us]")
    return pa.array(out, type=pa.timestamp("us"), from_pandas=True), slow
