"""Linked tables: TLS sessions, receipts (inbound messages), deliveries (outbound attempts). STUB."""

from __future__ import annotations


def sessions(events, **kwargs):
    raise NotImplementedError


def receipts(events, **kwargs):
    raise NotImplementedError


def deliveries(events, **kwargs):
    raise NotImplementedError
