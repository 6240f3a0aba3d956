"""Coverage and breakdowns (STUB: being written)."""

from __future__ import annotations


def coverage(events, **kwargs):
    raise NotImplementedError


def by_peer(events, **kwargs):
    raise NotImplementedError


def by_version(events, **kwargs):
    raise NotImplementedError


def by_cipher(events, **kwargs):
    raise NotImplementedError


def by_verify(events, **kwargs):
    raise NotImplementedError
