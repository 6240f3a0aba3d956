"""TLS-caused deferrals and bounces (STUB: being written)."""

from __future__ import annotations


def failures(events, **kwargs):
    raise NotImplementedError
