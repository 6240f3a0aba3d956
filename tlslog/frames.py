"""Events to a typed pandas DataFrame (STUB: being written)."""

from __future__ import annotations


def read_log(paths, **kwargs):
    raise NotImplementedError
