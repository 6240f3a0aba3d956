"""Memory settings for the processes tlslog owns: the command line's and the parsing workers'.

A library caller (a notebook) keeps its own allocator; `own_process` is for a process that runs one
read and report. Arrow's system allocator hands freed memory back when asked (`release`), which
mimalloc does not do well enough to keep a 2M-line read under 1 GB. glibc's malloc then keeps what is
freed for reuse instead of unmapping it at once: every block mapped afresh is zeroed page by page by
the kernel at its first touch, which was a fifth of a cold read's CPU time. All threads share one
arena: what the report's linking frees, the cache's writer (another thread) can reuse, where each kept
its own (25 MiB less at a 2M-line read's peak).

>>> release()  # between steps that free much: hand the allocator's spare memory back
"""

from __future__ import annotations

import ctypes
import sys

import pyarrow as pa

__all__ = ["own_process", "release", "release_scratch"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # <malloc.h>
#: Blocks up to this size come from malloc's heap (glibc's largest), not from a mapping of their own.
MMAP_THRESHOLD = 32 << 20
#: Freed memory at the heap's top is kept up to this much until `release` (malloc_trim) is called.
TRIM_THRESHOLD = 1 << 30


def own_process() -> None:
    """Use Arrow's system allocator, and on glibc let malloc keep freed memory until `release`, in one
    arena for all threads (call it before starting threads)."""
    pa.set_memory_pool(pa.system_memory_pool())
    if sys.platform != "linux":
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # another C library (musl has no mallopt)
        return
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    mallopt(_M_ARENA_MAX, 1)


def release() -> None:
    """Hand the memory Arrow's allocator keeps spare back to the system."""
    pa.default_memory_pool().release_unused()


def release_scratch() -> None:
    """`release`, between parse batches, unless Arrow's system allocator is in use (as `own_process`
    sets): malloc then gives the next batch the same memory (handing it back and touching it again
    costs the kernel a page fault a page)."""
    if pa.default_memory_pool().backend_name != "system":
        release()
