"""Bytes to lines: blocks of a byte stream cut into Arrow arrays of decoded text lines.

The common block (UTF-8 text, no control bytes) becomes an array straight from its bytes; anything else
is decoded line by line, and the damage (invalid UTF-8, binary data, NUL runs, overlong lines) is
reported through `SourceState`, capped per kind, never raised.

>>> import io
>>> state = SourceState("x", print)
>>> [a.to_pylist() for a in decode_blocks(io.BytesIO(b"one\\ntwo\\n").read, state)]
[['one', 'two']]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa

from .records import ParseIssue

__all__ = ["CHUNK", "MAX_LINE", "SourceState", "decode_blocks", "looks_like_text"]

#: Longer lines are cut to this many bytes.
MAX_LINE = 65536
#: Bytes read at a time: blocks of ~5k lines, cheap to cut into Arrow arrays, and progress every MB.
CHUNK = 1 << 20

_ISSUE_CAP = 20
# Bytes that may appear in text: printable ASCII, tab, CR, LF and every byte of a UTF-8 sequence.
_TEXT_BYTES = bytes(range(0x20, 0x7F)) + b"\t\n\r" + bytes(range(0x80, 0x100))
_BOM = "\ufeff".encode()
_NEWLINE = ord("\n")
_SUMMARY = {
    "binary": "lines of binary data skipped",
    "long": "long lines truncated",
    "nul": "runs of NUL bytes skipped",
    "json": "JSON records not understood",
}


def looks_like_text(sample: bytes) -> bool:
    if b"\0" in sample:
        return False
    bad = len(sample.translate(None, _TEXT_BYTES)) + sample.decode("utf-8", "replace").count("\ufffd")
    return bad * 10 <= len(sample)


class SourceState:
    """Per-source bookkeeping: lines yielded so far and issues, capped per kind."""

    def __init__(self, name: str, on_issue: Callable[[ParseIssue], None] | None):
        self.name = name
        self.on_issue = on_issue
        self.lineno = 0
        self.counts: dict[str, int] = {}
        self.bad_utf8 = 0
        self.first_bad_utf8 = 0
        self.pending_nuls = 0

    def issue(self, kind: str, lineno: int, reason: str, text: str = "") -> None:
        n = self.counts[kind] = self.counts.get(kind, 0) + 1
        if n <= _ISSUE_CAP and self.on_issue is not None:
            self.on_issue(ParseIssue(self.name, lineno, reason, text))

    def finish(self) -> None:
        if self.pending_nuls:
            self.issue("nul", self.lineno + 1, f"{self.pending_nuls} NUL bytes at the end skipped")
            self.pending_nuls = 0
        if self.bad_utf8:
            first, n = self.first_bad_utf8, self.bad_utf8
            lines = "line has" if n == 1 else "lines have"
            self._emit(first, f"{n} {lines} invalid UTF-8 (shown as U+FFFD), the first is line {first}")
        for kind, n in self.counts.items():
            if n > _ISSUE_CAP:
                self._emit(0, f"{n} {_SUMMARY[kind]} in all; only the first {_ISSUE_CAP} were reported")
        self.bad_utf8 = 0
        self.counts = {}

    def _emit(self, lineno: int, reason: str) -> None:
        if self.on_issue is not None:
            self.on_issue(ParseIssue(self.name, lineno, reason))


def decode_blocks(read: Callable[[int], bytes], state: SourceState) -> Iterator[pa.StringArray]:
    """Read big chunks and cut them into arrays of decoded lines; overlong lines never build up in memory."""
    carry = b""
    long_head: bytes | None = None  # the start of a line too long to keep, whose end is being skipped
    long_len = 0
    while chunk := read(CHUNK):
        if long_head is not None:
            i = chunk.find(b"\n")
            if i < 0:
                long_len += len(chunk)
                continue
            yield pa.array([_line(long_head, state, long_len + i)], type=pa.string())
            long_head, chunk = None, chunk[i + 1 :]
        data = carry + chunk if carry else chunk
        i = data.rfind(b"\n")
        if i < 0:
            carry = data
        else:
            carry = data[i + 1 :]
            yield _decode_block(data[: i + 1], state)
        if carry[:1] == b"\0":  # a run of NULs (copytruncate, a crash): drop it, keep the text after it
            stripped = carry.lstrip(b"\0")
            state.pending_nuls += len(carry) - len(stripped)
            carry = stripped
        if len(carry) > MAX_LINE:
            long_head, long_len, carry = carry[: MAX_LINE + 4], len(carry), b""
    if long_head is not None:
        yield pa.array([_line(long_head, state, long_len)], type=pa.string())
    elif carry:
        yield _decode_block(carry + b"\n", state)


def _decode_block(body: bytes, state: SourceState) -> pa.StringArray:
    """Lines of `body` (which ends with a newline) as one Arrow array.

    The common case (UTF-8 text without control bytes, CRs, NUL runs, overlong lines or a byte-order
    mark) builds the array straight from the bytes: no Python string per line. Anything else is decoded
    line by line by `_line`, which reports the damage.
    """
    if not state.pending_nuls and not (state.lineno == 0 and body.startswith(_BOM)):
        codes = np.frombuffer(body, dtype=np.uint8)
        ends = np.flatnonzero(codes == _NEWLINE)
        starts = np.concatenate(([0], ends[:-1] + 1))
        if len(ends) and int((ends - starts).max()) <= MAX_LINE and _clean(body, codes, len(ends)):
            offsets = np.concatenate(([0], ends - np.arange(len(ends)))).astype(np.int32)
            lines = pa.StringArray.from_buffers(
                len(ends), pa.py_buffer(offsets), pa.py_buffer(body.replace(b"\n", b""))
            )
            if _utf8(codes, lines):
                state.lineno += len(lines)
                return lines
    raw_lines = body.split(b"\n")
    del raw_lines[-1]
    return pa.array([_line(b, state) for b in raw_lines], type=pa.string())


def _utf8(codes: np.ndarray, lines: pa.StringArray) -> bool:
    """Whether the text is UTF-8 (ASCII is, and a max is five times faster than Arrow's validation)."""
    if codes.max(initial=0) < 0x80:
        return True
    try:
        lines.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _clean(body: bytes, codes: np.ndarray, newlines: int) -> bool:
    """No control bytes (DEL and CR included) but newlines and tabs. (Counting the bytes below 0x20 in
    numpy is four times faster than ``translate``, which is left for blocks with tabs.)"""
    if b"\x7f" in body:
        return False
    if np.count_nonzero(codes < 0x20) == newlines:
        return True
    return not body.translate(None, _TEXT_BYTES) and b"\r" not in body


def _line(b: bytes, state: SourceState, length: int | None = None) -> str:
    """Decode one line the careful way; `length` is the true length of a line already cut to MAX_LINE."""
    state.lineno += 1
    lineno = state.lineno
    original = b
    if b.endswith(b"\r"):
        b = b[:-1]
    nuls = state.pending_nuls
    if b[:1] == b"\0":
        stripped = b.lstrip(b"\0")
        nuls += len(b) - len(stripped)
        b = stripped
    state.pending_nuls = 0
    length = len(b) if length is None else length
    if length > MAX_LINE:
        cut = MAX_LINE
        while len(b) > cut > MAX_LINE - 3 and 0x80 <= b[cut] < 0xC0:  # don't cut a UTF-8 sequence in two
            cut -= 1
        b = b[:cut]
        # old Mac line ends (CR only) make a whole file one line: say so, rather than only "truncated"
        hint = "; its CRs look like line ends: convert them with tr '\\r' '\\n'" if b.count(b"\r") > 8 else ""
        state.issue("long", lineno, f"line of {length} bytes truncated to {MAX_LINE}{hint}", _excerpt(b))
    try:
        s = b.decode("utf-8")
        replaced = 0
    except UnicodeDecodeError:
        s = b.decode("utf-8", "replace")
        replaced = s.count("\ufffd")
    if lineno == 1 and s.startswith("\ufeff"):
        s = s[1:]
    if b"\0" in b or (len(b.translate(None, _TEXT_BYTES)) + replaced) * 10 > 3 * len(s):
        state.issue("binary", lineno, "binary data", _excerpt(original))
        return ""
    if nuls:
        state.issue("nul", lineno, f"{nuls} NUL bytes skipped (a gap left by copytruncate or a crash?)")
    if replaced:
        state.bad_utf8 += 1
        state.first_bad_utf8 = state.first_bad_utf8 or lineno
    return s


def _excerpt(b: bytes, n: int = 60) -> str:
    return repr(b[:n])[2:-1]
