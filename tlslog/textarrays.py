"""Arrow ``string`` arrays over raw bytes: where each string lies in its buffer, and views of pieces of it.

The fast path cuts lines into envelope, message and fields by byte positions. These helpers turn
positions back into ``string`` arrays over the same buffer, copying only the bytes kept.

>>> lines = pa.array(["ab: x", "cd: yy"])
>>> starts, ends, data = bounds(lines)
>>> view(data, starts + 4, ends - starts - 4).to_pylist()
['x', 'yy']
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["bounds", "even", "only", "pieces", "sizes", "view"]


def only(text: pa.Array, keep: np.ndarray) -> pa.Array:
    """``text`` with the rows not kept null, over the same buffers (no copy)."""
    bits = np.concatenate([np.zeros(text.offset, dtype=bool), keep]) if text.offset else keep
    validity = pa.py_buffer(np.packbits(bits, bitorder="little"))
    return pa.Array.from_buffers(text.type, len(text), [validity, *text.buffers()[1:]], offset=text.offset)


def bounds(text: pa.Array) -> tuple[np.ndarray, np.ndarray, pa.Buffer | None]:
    """Byte start and end of each string in its data buffer (a ``string`` array), and the buffer."""
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset : text.offset + len(text) + 1]
    offsets = offsets.astype(np.int64)
    return offsets[:-1], offsets[1:], text.buffers()[2]


def sizes(text: pa.Array) -> np.ndarray:
    """Byte length of each string (a ``string`` array; 0 for a null)."""
    starts, ends, _ = bounds(text)
    return np.where(text.is_valid().to_numpy(zero_copy_only=False), ends - starts, 0)


def view(
    data: pa.Buffer | None, starts: np.ndarray, lengths: np.ndarray, *, valid: np.ndarray | None = None
) -> pa.Array:
    """Strings ``data[starts[i] : starts[i] + lengths[i]]`` as one ``string`` array, for pieces that
    follow each other in ``data`` without overlapping (each starts at or after the end of the one before).

    The pieces and the gaps between them make one string array over the same bytes; taking every
    other element copies out the pieces.
    """
    return pieces(data, starts, lengths).take(even(len(starts), valid))


def pieces(data: pa.Buffer | None, starts: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """Piece ``i`` of `view` at element ``2 * i`` (no copy)."""
    n = len(starts)
    size = 0 if data is None else data.size
    ends = starts + lengths
    if n and ((lengths < 0).any() or starts[0] < 0 or ends[-1] > size or (starts[1:] < ends[:-1]).any()):
        raise AssertionError("pieces out of order or out of bounds")  # never: it would read other memory
    offsets = np.empty(2 * n + 1, dtype=np.int32)
    offsets[0:-1:2] = starts
    offsets[1::2] = ends
    offsets[-1] = ends[-1] if n else 0
    buffer = data if data is not None else pa.py_buffer(b"")
    return pa.StringArray.from_buffers(2 * n, pa.py_buffer(offsets), buffer)


def even(n: int, valid: np.ndarray | None = None, index: np.ndarray | None = None) -> pa.Array:
    """Indices ``2 * i`` (``index``: of those rows; -1 or not ``valid``: null)."""
    at = np.arange(n, dtype=np.int64) if index is None else index
    mask = at < 0 if valid is None else (at < 0) | ~valid
    return pa.array(2 * at, mask=mask if mask.any() else None)
