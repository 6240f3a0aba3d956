#!/usr/bin/env python3
"""Deterministic generator of realistic sendmail 8.17.1 maillogs (Debian labels), with a truth record.

A small site, ``example.org``: its MX ``mx1`` (inbound, submissions, outbound, the MSP loopback hop), a second
MX ``mx2`` that relays to mx1, and an outbound relay ``out1`` for application servers. Lines follow
the project's sendmail-log-format reference (queue ids built from the UTC time, a per-process sequence and
the pid; STARTTLS lines without a queue id; ``tls_rcpt`` with one; client ``to=`` relays with a trailing dot).
The generator is a small discrete-event simulation: scenarios (an SMTP session, a queue run, a cron mail...)
push timed lines into per-host heaps, and lines are written in time order as the clock advances, so memory
stays flat however many lines are written. The truth record is written as scenarios run, never by parsing.

    python benchmarks/generate.py --lines 200000 --seed 1 --out week.log
    python benchmarks/generate.py --host mx2 --format rfc3339 --days 1 --out - --truth truth.json
    python benchmarks/generate.py --sample sample_logs --truth tests/data/sample_truth.json

This file is not part of the tlslog package and imports nothing from it.
"""

from __future__ import annotations

import argparse
import bisect
import calendar
import gzip
import heapq
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

US = 1_000_000
HOUR = 3600 * US
DAY = 24 * HOUR
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
QCHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxy"
LOOPBACK = "127.0.0.1"
QUEUE_RETURN = 2 * DAY  # the site's confTO_QUEUERETURN
QUEUE_WARN = 4 * HOUR  # sendmail's default Timeout.queuewarn
QUEUE_INTERVAL = 30 * 60 * US  # sm-mta -q30m
BOOT_ID = "3c9d2f1e0a7b4e21b5c6d7e8f9a0b1c2"
BOOT = 1_790_000_000_000_000  # journal monotonic clock origin (2026-09-21)
PRIO = {"info": 6, "notice": 5, "warning": 4}


def queue_id(t: int, seq: int, pid: int) -> str:
    """Queue id as queue.c assign_queueid() builds it: UTC time, a base-60 sequence and ``%06d`` pid.

    >>> queue_id(calendar.timegm((2026, 11, 22, 3, 4, 12)) * US, 36 * 60 + 10, 16051)
    '6AM34CaA016051'
    """
    sec = t // US
    head = _QID_HEAD.get(sec)
    if head is None:
        tm = time.gmtime(sec)
        head = (
            QCHARS[(tm.tm_year - 1900) % 60]
            + QCHARS[tm.tm_mon - 1]
            + QCHARS[tm.tm_mday]
            + QCHARS[tm.tm_hour]
            + QCHARS[tm.tm_min]
            + QCHARS[tm.tm_sec % 62]
        )
        if len(_QID_HEAD) > 4096:
            _QID_HEAD.clear()
        _QID_HEAD[sec] = head
    return f"{head}{QCHARS[seq // 60 % 60]}{QCHARS[seq % 60]}{pid:06d}"


_QID_HEAD: dict[int, str] = {}


def sm_delay(us: int) -> str:
    """sendmail's ``delay=`` format: ``[D+]HH:MM:SS``."""
    s = max(0, us // US)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{d}+{h:02d}:{m:02d}:{s:02d}" if d else f"{h:02d}:{m:02d}:{s:02d}"


# ------------------------------------------------------------------------------------------------------
# The world: TLS profiles and peers

# (weight, version, cipher, alg_bits, cipher_bits)
T13 = (
    (6, "TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, 256),
    (3, "TLSv1.3", "TLS_AES_128_GCM_SHA256", 128, 128),
    (1, "TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256", 256, 256),
)
T12 = (
    (5, "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384", 256, 256),
    (3, "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", 128, 128),
    (1, "TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384", 256, 256),
    (1, "TLSv1.2", "DHE-RSA-AES256-GCM-SHA384", 256, 256),
)
MIXED = ((3, *T13[0][1:]), (3, *T12[0][1:]), (1, *T12[1][1:]))
OLD = (
    (3, "TLSv1", "DES-CBC3-SHA", 168, 112),
    (2, "TLSv1", "RC4-SHA", 128, 128),
    (2, "TLSv1.1", "AES128-SHA", 128, 128),
    (1, "TLSv1", "AES256-SHA", 256, 256),
)
DES56 = ((1, "TLSv1", "DES-CBC-SHA", 56, 56),)


class Peer:
    """A remote site: how it connects to us (inbound) and how its MX answers (outbound)."""

    def __init__(
        self,
        domain: str,
        *,
        mx: str | None = None,
        mx_ip: str = "",
        out: tuple | None = T13,
        out_verify: tuple = (("OK", 1),),
        inbound: tuple = (),
        in_tls: tuple | None = T13,
        in_verify: tuple = (("NO", 1),),
        w_in: float = 0.0,
        w_out: float = 0.0,
        style: str = "postfix",
        policy: tuple | None = None,
        users: tuple = ("info", "sales", "j.smith", "anna", "support"),
    ):
        self.domain, self.mx, self.mx_ip = domain, mx, mx_ip
        self.out, self.inbound, self.in_tls = out, inbound, in_tls
        # verify values as (weight, value) for pick()
        self.out_verify = tuple((w, v) for v, w in out_verify)
        self.in_verify = tuple((w, v) for v, w in in_verify)
        self.w_in, self.w_out, self.style, self.policy, self.users = w_in, w_out, style, policy, users


def hosts_range(pattern: str, ip_pattern: str, lo: int, hi: int) -> tuple:
    return tuple((pattern % i if pattern else None, ip_pattern % i, False) for i in range(lo, hi))


PEERS = (
    Peer(
        "example.com",
        mx="mx.l.example.com",
        mx_ip="198.51.100.10",
        out=T13,
        out_verify=(("OK", 1),),
        inbound=hosts_range("mail-ot1-f%d.out.example.com", "198.51.100.%d", 40, 70)
        + hosts_range("mail-yw1-f%d.out.example.com", "IPv6:2001:db8:4860:4864:0:0:0:%x", 20, 30),
        in_tls=T13,
        in_verify=(("OK", 8), ("FAIL", 2)),
        w_in=10,
        w_out=9,
        style="google",
    ),
    Peer(
        "example.net",
        mx="example-net.mail.protection.example.net",
        mx_ip="198.51.100.20",
        out=T12,
        out_verify=(("OK", 3), ("FAIL", 1)),
        inbound=hosts_range("mail-%d.outbound.protection.example.net", "198.51.100.%d", 100, 120),
        in_tls=T12,
        in_verify=(("FAIL", 5), ("OK", 2)),
        w_in=7,
        w_out=6,
        style="exchange",
    ),
    Peer(
        "example.co.uk",
        mx="smtp.example.co.uk",
        mx_ip="203.0.113.30",
        out=MIXED,
        out_verify=(("FAIL", 1),),
        inbound=(
            ("smtp.example.co.uk", "203.0.113.30", False),
            ("smtp2.example.co.uk", "203.0.113.31", False),
        ),
        in_tls=MIXED,
        in_verify=(("NO", 1),),
        w_in=3,
        w_out=3,
        style="exim",
    ),
    Peer(
        "example.de",
        mx="mail.example.de",
        mx_ip="203.0.113.40",
        out=T13,
        out_verify=(("OK", 1), ("FAIL", 1)),
        inbound=(
            ("mail.example.de", "203.0.113.40", False),
            ("mail.example.de", "IPv6:2001:db8:0:0:0:0:0:5", False),
        ),
        in_tls=T13,
        in_verify=(("NO", 2), ("OK", 1)),
        w_in=3,
        w_out=3,
        style="postfix",
    ),
    Peer(
        "example.fr",
        mx="mx.example.fr",
        mx_ip="198.51.100.130",
        out=T12,
        out_verify=(("FAIL", 1),),
        inbound=(("out.example.fr", "198.51.100.131", False),),
        in_tls=T12,
        in_verify=(("NO", 1),),
        w_in=2,
        w_out=2,
        style="sendmail",
    ),
    Peer(
        "example.com.au",
        mx="mx.oldmail.example.com.au",
        mx_ip="203.0.113.60",
        out=None,
        inbound=(("mx.oldmail.example.com.au", "203.0.113.60", False),),
        in_tls=None,
        w_in=1,
        w_out=0.2,
        style="sendmail",
        policy=("encr", 128, ""),
    ),
    Peer(
        "example.jp",
        mx="mail.legacy.example.jp",
        mx_ip="203.0.113.70",
        out=DES56,
        out_verify=(("OK", 1),),
        inbound=(("mail.legacy.example.jp", "203.0.113.70", False),),
        in_tls=OLD,
        in_verify=(("NO", 1),),
        w_in=1,
        w_out=0.2,
        style="sendmail",
        policy=("encr", 128, ""),
    ),
    Peer(
        "example.ch",
        mx="mx.securebank.example.ch",
        mx_ip="198.51.100.140",
        out=T12,
        out_verify=(("OK", 1),),
        inbound=(("mx.securebank.example.ch", "198.51.100.140", False),),
        in_tls=T12,
        in_verify=(("OK", 1),),
        w_in=1,
        w_out=2,
        style="postfix",
        policy=("verify", 0, ""),
    ),
    Peer(
        "ministry.example",
        mx="relay.ministry.example",
        mx_ip="198.51.100.150",
        out=T12,
        out_verify=(("FAIL", 1),),
        inbound=(),
        w_out=0.4,
        style="postfix",
        policy=("verify", 0, "PERM+"),
    ),
    Peer(
        "example.it",
        mx="mx.flaky.example.it",
        mx_ip="203.0.113.80",
        out=MIXED,
        out_verify=(("FAIL", 1),),
        inbound=(("mx.flaky.example.it", "203.0.113.80", False),),
        in_tls=MIXED,
        in_verify=(("NO", 1),),
        w_in=1,
        w_out=1.5,
        style="postfix",
    ),
    Peer(
        "example.nl",
        mx="mail.example.nl",
        mx_ip="198.51.100.160",
        out=None,
        inbound=(("mail.example.nl", "198.51.100.160", False),),
        in_tls=None,
        w_in=1.5,
        w_out=1.2,
        style="exim",
    ),
    Peer(
        "example.se",
        mx="smtp.logistics.example.se",
        mx_ip="198.51.100.77",
        out=T12,
        out_verify=(("OK", 1),),
        inbound=(("smtp.logistics.example.se", "198.51.100.77", False),),
        in_tls=T12,
        in_verify=(("NO", 1),),
        w_in=1.2,
        w_out=0.8,
        style="postfix",
    ),
    Peer(
        "acme.example",
        mx="mx.acme.example",
        mx_ip="203.0.113.25",
        out=T12,
        out_verify=(("OK", 1),),
        inbound=(("mx.acme.example", "203.0.113.25", False),),
        in_tls=T12,
        in_verify=(("OK", 1),),
        w_in=1.5,
        w_out=1.5,
        style="sendmail",
        users=("orders", "billing", "k.tanaka"),
    ),
    Peer(
        "partner.example",
        mx="mx.partner.example",
        mx_ip="203.0.113.45",
        out=T13,
        out_verify=(("OK", 1),),
        inbound=(("mx.partner.example", "203.0.113.45", False),),
        in_tls=T13,
        in_verify=(("OK", 1),),
        w_in=1.5,
        w_out=2,
        style="postfix",
        users=("bob", "ops", "lena"),
    ),
    Peer(
        "lists.example",
        mx="mx.lists.example",
        mx_ip="198.51.100.170",
        out=T13,
        out_verify=(("FAIL", 1),),
        inbound=(("out.lists.example", "198.51.100.171", False),),
        in_tls=T13,
        in_verify=(("NOT", 0), ("NO", 1)),
        w_in=3,
        w_out=0.5,
        style="postfix",
    ),
    Peer(
        "smallshop.example",
        mx="mail.smallshop.example",
        mx_ip="203.0.113.88",
        out=OLD,
        out_verify=(("FAIL", 1),),
        inbound=(("mail.smallshop.example", "203.0.113.88", True),),
        in_tls=OLD,
        in_verify=(("NO", 1),),
        w_in=1,
        w_out=0.6,
        style="sendmail",
    ),
    Peer(
        "example.ca",
        mx="mx.example.ca",
        mx_ip="198.51.100.180",
        out=T13,
        out_verify=(("OK", 1),),
        inbound=(("mx.example.ca", "198.51.100.180", False),),
        in_tls=T13,
        in_verify=(("FAIL", 1),),
        w_in=1,
        w_out=1,
        style="postfix",
    ),
    Peer("dead.example", mx="mx.dead.example", mx_ip="", out=None, inbound=(), w_out=0.15),
)
PEER_BY_DOMAIN = {p.domain: p for p in PEERS}
SPAM_HOSTS = (
    ("203-0-113-%d.dyn.example.it", "203.0.113.%d", 150, 170, True),
    ("host-198-51-100-%d.cable.example.be", "198.51.100.%d", 200, 215, False),
    (None, "203.0.113.%d", 200, 230, False),
    ("ns%d.bulk-mailer.example.us", "198.51.100.%d", 220, 230, True),
)
SPAM_DOMAIN = {
    "dyn.example.it": "example.it",
    "cable.example.be": "example.be",
    "bulk-mailer.example.us": "example.us",
}
LOCAL_USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")
SUBMIT_HOSTS = (
    ("cpe-203-0-113-%d.res.example.io", "203.0.113.%d", 100, 110),
    (None, "IPv6:2001:db8:85a3:0:0:8a2e:370:%x", 1, 6),
)


def registrable(host: str | None, ip: str) -> str:
    """The peer domain of a relay as the tables define it (registrable domain, else the address)."""
    if not host:
        return ip
    if host == "localhost":
        return "localhost"
    for suffix, dom in SPAM_DOMAIN.items():
        if host.endswith(suffix):
            return dom
    for p in PEERS:
        if host == p.domain or host.endswith("." + p.domain):
            return p.domain
    parts = host.split(".")
    if parts[-2:] in (["co", "uk"], ["com", "au"]):
        return ".".join(parts[-3:])
    return ".".join(parts[-2:])


_CUM: dict[int, tuple[tuple, list[float]]] = {}


def pick(rng: random.Random, weighted: tuple) -> Any:
    """Choose an item of ``((weight, *values), ...)`` by weight; returns the whole item."""
    cached = _CUM.get(id(weighted))
    if cached is None or cached[0] is not weighted:
        acc, cum = 0.0, []
        for item in weighted:
            acc += item[0]
            cum.append(acc)
        cached = _CUM[id(weighted)] = (weighted, cum)
    cum = cached[1]
    return weighted[min(bisect.bisect_right(cum, rng.random() * cum[-1]), len(weighted) - 1)]


# ------------------------------------------------------------------------------------------------------
# Output


class Sink:
    """Formats and writes one host's lines; `targets` is ``[(until_us or None, file), ...]`` (rotation)."""

    def __init__(self, host: str, fmt: str, targets: list[tuple[int | None, IO[str]]]):
        self.host, self.fmt, self.targets = host, fmt, targets
        self.count = 0
        self.file_counts = [0] * len(targets)
        self._sec = -1
        self._prefix = ""
        self._buf: list[str] = []
        self._idx = 0
        self._cursor = 0
        self._day = -1
        self._dayprefix = ""

    def write(self, t: int, prog: str, pid: int | None, msg: str, prio: int) -> None:
        idx = self._idx
        while self.targets[idx][0] is not None and t >= self.targets[idx][0]:
            self.flush()
            idx = self._idx = idx + 1
        self.count += 1
        self.file_counts[idx] += 1
        sec = t // US
        tag = f"{prog}[{pid}]" if pid is not None else prog
        if self.fmt == "bsd":
            if sec != self._sec:
                day, rem = divmod(sec, 86400)
                if day != self._day:
                    tm = time.gmtime(sec)
                    self._day = day
                    self._dayprefix = f"{MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} "
                self._sec = sec
                self._prefix = (
                    f"{self._dayprefix}{rem // 3600:02d}:{rem // 60 % 60:02d}:{rem % 60:02d} {self.host} "
                )
            self._buf.append(f"{self._prefix}{tag}: {msg}\n")
        elif self.fmt == "rfc3339":
            if sec != self._sec:
                tm = time.gmtime(sec)
                self._sec = sec
                self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", tm)
            self._buf.append(f"{self._prefix}.{t % US:06d}+00:00 {self.host} {tag}: {msg}\n")
        else:
            self._buf.append(self._journal(t, prog, pid, msg, prio) + "\n")
        if len(self._buf) >= 4096:
            self.flush()

    def _journal(self, t: int, prog: str, pid: int | None, msg: str, prio: int) -> str:
        sec = t // US
        if sec != self._sec:
            tm = time.gmtime(sec)
            self._sec = sec
            self._prefix = (
                f"{MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} {tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} "
            )
        self._cursor += 1
        rec = {
            "__CURSOR": f"s=5f0c1d2e3a4b4c5d8e9f00112233aabb;i={self._cursor + 0x1A2B:x};b={BOOT_ID};"
            f"m={t - 1_700_000_000_000_000:x};t={t:x};x={self._cursor * 2654435761 % (1 << 64):x}",
            "__REALTIME_TIMESTAMP": str(t),
            "__MONOTONIC_TIMESTAMP": str(t - BOOT if t > BOOT else t % 10**12),
            "_BOOT_ID": BOOT_ID,
            "_TRANSPORT": "syslog",
            "PRIORITY": str(prio),
            "SYSLOG_FACILITY": "2",
            "SYSLOG_IDENTIFIER": prog,
        }
        if pid is not None:
            rec["SYSLOG_PID"] = str(pid)
        rec["SYSLOG_TIMESTAMP"] = self._prefix
        rec["MESSAGE"] = msg
        rec["_UID"] = "0"
        rec["_GID"] = "0"
        rec["_COMM"] = {"sm-mta": "sendmail-mta", "sm-msp-queue": "sendmail-msp"}.get(prog, prog)
        if pid is not None:
            rec["_PID"] = str(pid)
        rec["_SYSTEMD_UNIT"] = "sendmail.service" if prog.startswith("sm-") else f"{prog}.service"
        rec["_HOSTNAME"] = self.host
        return json.dumps(rec, separators=(",", ":"))

    def flush(self) -> None:
        if self._buf:
            self.targets[self._idx][1].write("".join(self._buf))
            self._buf.clear()


# ------------------------------------------------------------------------------------------------------
# The simulation


class Proc:
    """One sendmail process: its tag, pid and queue-id sequence (random start, +1 per new id)."""

    __slots__ = ("host", "n", "off", "pid", "prog")

    def __init__(self, host: Host, prog: str, pid: int):
        self.host, self.prog, self.pid = host, prog, pid
        self.off = int(host.sim.rng.random() * 3600)
        self.n = 0

    def qid(self, t: int) -> str:
        q = queue_id(t, (self.off + self.n) % 3600, self.pid)
        self.n += 1
        return q

    def log(self, t: int, msg: str, prio: int = 6) -> None:
        self.host.log(t, self.prog, self.pid, msg, prio)


class Msg:
    """A queued outbound message (part of one: the recipients for one peer)."""

    __slots__ = ("created", "next_try", "peer", "qid", "rcpts", "sender", "size", "tries", "warned")

    def __init__(self, qid: str, sender: str, rcpts: list[str], peer: Peer, size: int, created: int):
        self.qid, self.sender, self.rcpts, self.peer, self.size, self.created = (
            qid,
            sender,
            rcpts,
            peer,
            size,
            created,
        )
        self.tries = 0
        self.warned = False
        self.next_try = 0


class Host:
    """One syslog host: role, pid allocator, pending lines (a heap), and its deferred-mail queue."""

    def __init__(
        self, sim: Sim, name: str, role: str, fmt: str, ip: str, pid0: int, pid_max: int, rate: float
    ):
        self.sim, self.name, self.role, self.fmt, self.ip = sim, name, role, fmt, ip
        self.fqdn = f"{name}.example.org"
        self.next_pid, self.pid_max, self.rate = pid0, pid_max, rate
        self.lines: list[tuple] = []
        self.queue: list[Msg] = []
        self.sink: Sink | None = None
        self.opendkim = 733 + len(name) * 11
        self.restarted = False

    def pids(self, n: int = 1) -> int:
        """Allocate `n` consecutive pids (other processes take a few in between; wraps like Linux)."""
        p = self.next_pid + 1 + int(self.sim.rng.random() * 24)
        if p + n >= self.pid_max:
            p = 1000 + self.sim.rng.randint(1, 50)  # below 1000: long-lived daemons (opendkim...)
        self.next_pid = p + n - 1
        return p

    def proc(self, prog: str = "sm-mta", pid: int | None = None) -> Proc:
        return Proc(self, prog, self.pids() if pid is None else pid)

    def log(self, t: int, prog: str, pid: int | None, msg: str, prio: int = 6) -> None:
        heapq.heappush(self.lines, (t, self.sim.next_seq(), prog, pid, msg, prio))


class Sim:
    """Runs scenarios in time order over several hosts and records the truth as it goes."""

    def __init__(self, seed: int, start: int, days: float, max_lines: int | None = None, record: bool = True):
        self.rng = random.Random(seed)
        self.record = record
        self.start, self.end = start, start + int(days * DAY)
        self.max_lines = max_lines
        self.sched: list[tuple] = []
        self.hosts: dict[str, Host] = {}
        self._seq = 0
        self.truth: dict[str, list] = {"receipts": [], "deliveries": [], "sessions": [], "dsns": []}
        self.ts_fmt: dict[str, str] = {}
        self.written = 0
        # scenario clocks, relative to the start (the sample week starts on Monday 2026-11-09)
        self.acme_broken = (
            start + 2 * DAY + 9 * HOUR + 40 * 60 * US,
            start + 4 * DAY + 15 * HOUR + 20 * 60 * US,
        )
        self.bank_fixed = start + DAY + 12 * HOUR
        self.logistics_fixed = start + 3 * DAY + 10 * HOUR
        self.cn_mismatch_at = start + DAY + 14 * HOUR
        self.cn_mismatch_done = False
        self.mta_down = (start + DAY + 6 * HOUR + 25 * 60 * US, start + DAY + 6 * HOUR + 27 * 60 * US)

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def at(self, t: int, fn: Callable, *args: Any) -> None:
        heapq.heappush(self.sched, (t, self.next_seq(), fn, args))

    # -- truth ---------------------------------------------------------------------------------------------
    def ts(self, host: Host, t: int) -> str:
        secs = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // US))
        return secs if host.fmt == "bsd" else f"{secs}.{t % US:06d}+00:00"

    def session(
        self,
        host: Host,
        proc: Proc,
        t: int,
        direction: str,
        relay_host: str | None,
        relay_ip: str | None,
        tls: tuple | None,
        verify: str | None,
        outcome: str = "ok",
        cause: str | None = None,
        error: str | None = None,
    ) -> dict:
        if not self.record:
            return {
                "id": None,
                "messages": 0,
                "version": tls[1] if tls else None,
                "verify": verify,
                "cipher": tls[2] if tls else None,
                "cipher_bits": tls[4] if tls else None,
            }
        internal = relay_ip in (LOOPBACK, "::1") or relay_host == "localhost"
        rec = {
            "id": len(self.truth["sessions"]),
            "host": host.name,
            "direction": direction,
            "program": proc.prog,
            "pid": proc.pid,
            "timestamp": self.ts(host, t),
            "relay_host": relay_host,
            "relay_ip": relay_ip,
            "peer_domain": registrable(relay_host, relay_ip or ""),
            "outcome": outcome,
            "cause": cause,
            "error": error,
            "version": tls[1] if tls else None,
            "verify": verify,
            "cipher": tls[2] if tls else None,
            "alg_bits": tls[3] if tls else None,
            "cipher_bits": tls[4] if tls else None,
            "internal": internal,
            "messages": 0,
        }
        self.truth["sessions"].append(rec)
        return rec

    def receipt(
        self,
        host: Host,
        proc: Proc,
        t: int,
        qid: str,
        sender: str,
        client: tuple,
        sess: dict | None,
        proto: str | None,
        daemon: str | None,
        nrcpts: int,
        complete: bool = True,
        internal: bool | None = None,
    ) -> None:
        if not self.record:
            return
        relay_host, relay_ip = client[1], client[2]
        if sess is not None:
            sess["messages"] += 1
        self.truth["receipts"].append(
            {
                "host": host.name,
                "qid": qid,
                "program": proc.prog,
                "pid": proc.pid,
                "timestamp": self.ts(host, t),
                "sender": sender,
                "relay_host": relay_host,
                "relay_ip": relay_ip,
                "peer_domain": registrable(relay_host, relay_ip or "") if relay_ip or relay_host else None,
                "encrypted": sess is not None,
                "session": sess["id"] if sess else None,
                "version": sess["version"] if sess else None,
                "verify": sess["verify"] if sess else None,
                "cipher": sess["cipher"] if sess else None,
                "cipher_bits": sess["cipher_bits"] if sess else None,
                "internal": bool(internal if internal is not None else client[4]),
                "proto": proto,
                "daemon": daemon,
                "nrcpts": nrcpts,
                "complete": complete,
            }
        )

    def delivery(
        self,
        host: Host,
        proc: Proc,
        t: int,
        qid: str,
        rcpts: list[str],
        mailer: str,
        relay_host: str | None,
        relay_ip: str | None,
        status: str,
        stat: str,
        dsn: str | None,
        encrypted: bool | None,
        cause: str | None,
        sess: dict | None,
    ) -> None:
        if not self.record:
            return
        internal = relay_ip == LOOPBACK
        for r in rcpts:
            if sess is not None:
                sess["messages"] += 1
            tls_ok = encrypted and sess is not None
            self.truth["deliveries"].append(
                {
                    "host": host.name,
                    "qid": qid,
                    "program": proc.prog,
                    "pid": proc.pid,
                    "timestamp": self.ts(host, t),
                    "recipient": r.strip("<>"),
                    "mailer": mailer,
                    "relay_host": relay_host,
                    "relay_ip": relay_ip,
                    "peer_domain": registrable(relay_host, relay_ip or "")
                    if relay_host or relay_ip
                    else None,
                    "status": status,
                    "stat": stat,
                    "dsn": dsn,
                    "encrypted": encrypted,
                    "tls_failure": cause,
                    "session": sess["id"] if sess else None,
                    "version": sess["version"] if tls_ok else None,
                    "verify": sess["verify"] if tls_ok else None,
                    "cipher": sess["cipher"] if tls_ok else None,
                    "cipher_bits": sess["cipher_bits"] if tls_ok else None,
                    "internal": internal,
                }
            )

    # -- main loop -----------------------------------------------------------------------------------------
    def emit_until(self, t: int | None) -> None:
        for h in self.hosts.values():
            lines, sink = h.lines, h.sink
            while lines and (t is None or lines[0][0] < t):
                lt, _, prog, pid, msg, prio = heapq.heappop(lines)
                sink.write(lt, prog, pid, msg, prio)
                self.written += 1

    def run(self) -> None:
        for h in self.hosts.values():
            self.at(self.start + self.rng.randrange(60 * US), arrival, h)
            self.at(self.start + self.rng.randrange(QUEUE_INTERVAL), queue_run, h)
            if h.role == "mx1":  # the week's fixed cast: mail to the peers with policies or problems
                for day, hour, domain in FIXED_MAIL:
                    self.at(self.start + day * DAY + int(hour * HOUR), fixed_mail, h, domain)
        while self.sched:
            t, _, fn, args = heapq.heappop(self.sched)
            if self.max_lines is not None:
                if self.written >= self.max_lines:
                    break
            elif t >= self.end:
                break
            self.emit_until(t)
            fn(self, t, *args)
        self.emit_until(None)
        for h in self.hosts.values():
            h.sink.flush()


# ------------------------------------------------------------------------------------------------------
# Scenario helpers


def activity(t: int) -> float:
    """Relative traffic by hour of day and weekday (UTC site)."""
    tm = time.gmtime(t // US)
    hour = tm.tm_hour
    day = 0.35 if tm.tm_wday >= 5 else 1.0
    return day * (0.25 if hour < 6 else 1.3 if 8 <= hour < 18 else 0.7)


def jitter(sim: Sim, lo: float, hi: float) -> int:
    return int(sim.rng.uniform(lo, hi) * US)


def rand_id(
    rng: random.Random,
    n: int,
    alphabet: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
) -> str:
    return "".join(rng.choices(alphabet, k=n))


def msgid(sim: Sim, t: int, domain: str) -> str:
    tm = time.gmtime(t // US)
    return f"{time.strftime('%Y%m%d%H%M%S', tm)}.{sim.rng.getrandbits(40):010x}@{domain}"


def remote_reply(sim: Sim, peer: Peer, t: int, mid: str) -> str:
    rng = sim.rng
    if peer.style == "sendmail":
        return f"{queue_id(t, rng.randrange(3600), rng.randrange(1000, 99999))} Message accepted for delivery"
    if peer.style == "google":
        tag = rand_id(rng, 6, "abcdefghijklmnopqrstuvwxyz0123456789")
        return f"OK  {t // US} {tag}si{rng.randrange(10**6, 10**7)}.{rng.randrange(1, 999)} - gsmtp"
    if peer.style == "exchange":
        return f"<{mid}> [InternalId={rng.randrange(10**13, 10**14)}] Queued mail for delivery"
    if peer.style == "exim":
        return f"OK id={rand_id(rng, 6)}-{rand_id(rng, 6)}-{rand_id(rng, 2)}"
    return f"Ok: queued as {rand_id(rng, 15, 'BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789')}"


def client_of(sim: Sim, peer: Peer) -> tuple:
    """(relay as logged, relay_host, relay_ip, domain, internal) of an inbound connection from `peer`."""
    name, ip, forged = sim.rng.choice(peer.inbound)
    return relay_str(name, ip, forged), name, ip.removeprefix("IPv6:"), peer.domain, False


def relay_str(name: str | None, ip: str, forged: bool = False) -> str:
    s = f"{name} [{ip}]" if name else f"[{ip}]"
    return s + " (may be forged)" if forged else s


def spam_client(sim: Sim) -> tuple:
    pat, ippat, lo, hi, forged = sim.rng.choice(SPAM_HOSTS)
    i = sim.rng.randrange(lo, hi)
    name = pat % i if pat else None
    ip = ippat % i
    return relay_str(name, ip, forged and sim.rng.random() < 0.5), name, ip, registrable(name, ip), False


def spam_sender(sim: Sim) -> str:
    user = sim.rng.choice(("news", "info", "noreply", "promo", "a.b"))
    domain = sim.rng.choice(("deals.example.us", "offers.example.be", "win.example.it", "mailer.example.io"))
    return f"<{user}@{domain}>"


def starttls_line(who: str, relay: str, tls: tuple, verify: str) -> str:
    return (
        f"STARTTLS={who}, relay={relay}, version={tls[1]}, verify={verify}, cipher={tls[2]}, "
        f"bits={tls[3]}/{tls[4]}"
    )


def local_delivery(sim: Sim, host: Host, t: int, pid: int, qid: str, rcpts: list[str], size: int) -> int:
    """The forked child (pid+1) delivering an accepted message to local mailboxes."""
    child = Proc(host, "sm-mta", pid)
    for r in rcpts:
        t += jitter(sim, 0.02, 0.4)
        child.log(
            t,
            f"{qid}: to=<{r}>, delay=00:00:0{sim.rng.randrange(0, 3)}, xdelay=00:00:00, mailer=local, "
            f"pri={size + 30000 * len(rcpts) + 30000}, dsn=2.0.0, stat=Sent",
        )
    return t


# ------------------------------------------------------------------------------------------------------
# Inbound SMTP


def serve(
    sim: Sim,
    host: Host,
    t: int,
    client: tuple,
    *,
    tls: tuple | None = None,
    verify: str | None = None,
    messages: int = 1,
    end: str = "quit",
    daemon: str = "MTA",
    auth: str | None = None,
    accept_error: tuple | None = None,
    clt_reject: str | None = None,
    senders: tuple = (),
    rcpts: list[list[str]] | None = None,
    on_accept: Callable | None = None,
    mids: tuple = (),
) -> list[str]:
    """One SMTP session handled by a daemon child; returns the accepted queue ids."""
    proc = host.proc()
    relay = client[0]
    qid = proc.qid(t)
    sess = None
    t += jitter(sim, 0.05, 0.6)
    if accept_error is not None:
        failed, reason, ssl_err = accept_error
        proc.log(
            t,
            f"STARTTLS=server, error: accept failed={failed}, reason={reason}, SSL_error={ssl_err}, "
            f"errno=0, retry=-1, relay={relay}",
            PRIO["warning"],
        )
        sim.session(
            host, proc, t, "server", client[1], client[2], None, None, "failed", "handshake_failed", reason
        )
        t += jitter(sim, 0.01, 0.3)
        proc.log(t, f"{qid}: {relay} did not issue MAIL/EXPN/VRFY/ETRN during connection to {daemon}")
        return []
    if tls is not None:
        proc.log(t, starttls_line("server", relay, tls, verify))
        if clt_reject:
            sess = sim.session(
                host,
                proc,
                t,
                "server",
                client[1],
                client[2],
                tls,
                verify,
                "failed",
                "verify_failed",
                clt_reject,
            )
            proc.log(
                t,
                f"ruleset=tls_client, arg1={verify}, arg2=STARTTLS, relay={relay}, reject={clt_reject}",
                PRIO["notice"],
            )
            t += jitter(sim, 0.1, 1)
            proc.log(t, f"{qid}: {relay} did not issue MAIL/EXPN/VRFY/ETRN during connection to {daemon}")
            return []
        sess = sim.session(host, proc, t, "server", client[1], client[2], tls, verify)
        qid = proc.qid(t)
    if auth:
        t += jitter(sim, 0.05, 0.3)
        proc.log(
            t, f"AUTH=server, relay={relay}, authid={auth}, mech={sim.rng.choice(('PLAIN', 'LOGIN'))}, bits=0"
        )
    if end == "no_mail":
        t += jitter(sim, 0.3, 8)
        proc.log(t, f"{qid}: {relay} did not issue MAIL/EXPN/VRFY/ETRN during connection to {daemon}")
        return []
    if end == "timeout":
        t += 300 * US + jitter(sim, 0, 1)
        proc.log(t, f"{qid}: timeout waiting for input from {relay} during server cmd read", PRIO["notice"])
        proc.log(t, f"{qid}: {relay} did not issue MAIL/EXPN/VRFY/ETRN during connection to {daemon}")
        return []
    proto = ("ESMTPSA" if auth else "ESMTPS") if sess else ("ESMTPA" if auth else "ESMTP")
    accepted = []
    for i in range(messages):
        sender = senders[i % len(senders)] if senders else spam_sender(sim)
        to = rcpts[i] if rcpts else [f"{sim.rng.choice(LOCAL_USERS)}@example.org"]
        t += jitter(sim, 0.2, 2)
        if end == "relay_denied":
            bad = f"{sim.rng.choice(('admin', 'x'))}@example.{sim.rng.choice(('com', 'net'))}"
            proc.log(
                t,
                f"{qid}: ruleset=check_rcpt, arg1=<{bad}>, relay={relay}, reject=550 5.7.1 <{bad}>... "
                "Relaying denied. Proper authentication required.",
                PRIO["notice"],
            )
            t += jitter(sim, 0.2, 2)
            proc.log(
                t,
                f"{qid}: from={sender}, size=0, class=0, nrcpts=0, proto={proto}, daemon={daemon}, "
                f"relay={relay}",
            )
            sim.receipt(
                host, proc, t, qid, sender.strip("<>"), client, sess, proto, daemon, 0, complete=False
            )
            return []
        if end == "lost":
            t += jitter(sim, 0.5, 20)
            proc.log(t, f"{qid}: lost input channel from {relay} to {daemon} after rcpt", PRIO["notice"])
            proc.log(
                t,
                f"{qid}: from={sender}, size=0, class=0, nrcpts=1, proto={proto}, daemon={daemon}, "
                f"relay={relay}",
            )
            sim.receipt(
                host, proc, t, qid, sender.strip("<>"), client, sess, proto, daemon, 1, complete=False
            )
            return []
        size = (
            sim.rng.randrange(900, 60000) if sim.rng.random() < 0.9 else sim.rng.randrange(60000, 4_000_000)
        )
        mid = (
            mids[i]
            if i < len(mids)
            else msgid(sim, t, sender.strip("<>").rpartition("@")[2] or "example.org")
        )
        if daemon == "MTA" and host.role != "relay" and sim.rng.random() < 0.35:
            proc.log(
                t,
                f"{qid}: Milter insert (1): header: Authentication-Results: {host.fqdn};\\n\\tdkim=pass "
                f'(2048-bit key) header.d={client[3]} header.i=@{client[3]} header.b="{rand_id(sim.rng, 8)}"',
            )
        if daemon == "MTA" and sim.rng.random() < 0.2:
            proc.log(t, f"{qid}: Milter add: header: X-Spam-Status: No, score={sim.rng.uniform(-3, 4):.1f}")
        body = ", bodytype=8BITMIME" if sim.rng.random() < 0.4 else ""
        proc.log(
            t,
            f"{qid}: from={sender}, size={size}, class=0, nrcpts={len(to)}, msgid=<{mid}>{body}, "
            f"proto={proto}, daemon={daemon}, relay={relay}",
        )
        sim.receipt(host, proc, t, qid, sender.strip("<>"), client, sess, proto, daemon, len(to))
        if daemon == "MTA" and host.role != "relay" and sim.rng.random() < 0.5:
            host.log(
                t + jitter(sim, 0.01, 0.2),
                "opendkim",
                host.opendkim,
                f"{qid}: {relay.split(' (')[0]} not internal",
            )
            host.log(t + jitter(sim, 0.2, 0.3), "opendkim", host.opendkim, f"{qid}: not authenticated")
        accepted.append(qid)
        if on_accept is not None:
            on_accept(sim, host, t, proc.pid, qid, sender.strip("<>"), to, size, mid)
        qid = proc.qid(t)
    if sess is not None and sim.rng.random() < 0.03:
        proc.log(
            t + jitter(sim, 0.1, 0.5),
            "STARTTLS: write error=syscall error (-1), errno=104, "
            "get_error=error:00000000:lib(0)::reason(0), retry=99, ssl_err=5",
            PRIO["warning"],
        )
    return accepted


def deliver_locally(
    sim: Sim, host: Host, t: int, pid: int, qid: str, sender: str, to: list[str], size: int, mid: str
) -> None:
    """on_accept hook of an MX: the background child (pid+1) delivers to local users, or relays onward."""
    child_pid = child_of(host, pid)
    t += jitter(sim, 0.05, 0.5)
    if host.role == "mx2":
        relay_to_sibling(sim, host, t, child_pid, qid, sender, to, size, mid)
        return
    local = [r for r in to if r.endswith("@example.org")]
    remote = [r for r in to if not r.endswith("@example.org")]
    if local:
        t = local_delivery(sim, host, t, child_pid, qid, local, size)
    if remote:
        outbound_now(sim, host, t, Proc(host, "sm-mta", child_pid), qid, sender, remote, size)


def child_of(host: Host, pid: int) -> int:
    """The pid of a child forked by process `pid`: pid+1 when still free, else the next one."""
    if host.next_pid == pid:
        host.next_pid = pid + 1
        return pid + 1
    return host.pids()


def relay_to_sibling(
    sim: Sim, host: Host, t: int, pid: int, qid: str, sender: str, to: list[str], size: int, mid: str
) -> None:
    """mx2 passes what it accepted to the primary MX mx1 (a client TLS session, verify=OK)."""
    proc = Proc(host, "sm-mta", pid)
    tls = pick(sim.rng, T13)
    relay = "mx1.example.org."
    t += jitter(sim, 0.1, 0.5)
    proc.log(t, starttls_line("client", relay, tls, "OK"))
    sess = sim.session(host, proc, t, "client", "mx1.example.org", "192.0.2.25", tls, "OK")
    target = sim.hosts.get("mx1")
    t += jitter(sim, 0.2, 1)
    if target is not None:
        got = serve(
            sim,
            target,
            t - jitter(sim, 0.1, 0.15),
            ("mx2.example.org [192.0.2.26]", "mx2.example.org", "192.0.2.26", "example.org", False),
            tls=tls,
            verify="OK",
            senders=(f"<{sender}>",),
            rcpts=[to],
            on_accept=deliver_locally,
            mids=(mid,),
        )
        remote_q = got[0] if got else queue_id(t, 1, 9999)
    else:
        remote_q = queue_id(t, sim.rng.randrange(3600), sim.rng.randrange(1000, 30000))
    reply = f"{remote_q} Message accepted for delivery"
    proc.log(
        t,
        f"{qid}: to={','.join('<' + r + '>' for r in to)}, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, "
        f"pri={size + 30000 * len(to) + 30000}, relay={relay} [192.0.2.25], dsn=2.0.0, stat=Sent ({reply})",
    )
    sim.delivery(
        host,
        proc,
        t,
        qid,
        to,
        "esmtp",
        "mx1.example.org",
        "192.0.2.25",
        "sent",
        "Sent",
        "2.0.0",
        True,
        None,
        sess,
    )


# ------------------------------------------------------------------------------------------------------
# Outbound SMTP


def peer_state(sim: Sim, peer: Peer, t: int) -> tuple[str, str | None]:
    """('tls'|'plain'|'handshake'|'refused', detail) for a connection to the peer's MX at time t."""
    if peer.domain == "dead.example":
        return "refused", None
    if peer.domain == "acme.example" and sim.acme_broken[0] <= t < sim.acme_broken[1]:
        return "handshake", "sslv3 alert handshake failure"
    if peer.domain == "example.it" and sim.rng.random() < 0.15:
        return "handshake", "unexpected eof while reading"
    if peer.out is None:
        return "plain", None
    if sim.rng.random() < 0.01:
        return "refused", None
    return "tls", None


def smtp_deliver(sim: Sim, host: Host, proc: Proc, t: int, batch: list[Msg]) -> int:
    """One connection to a peer MX carrying the messages of `batch`; returns the end time."""
    peer = batch[0].peer
    rng = sim.rng
    state, detail = peer_state(sim, peer, t)
    mx, ip = peer.mx, peer.mx_ip
    relay_dot = mx + "."
    t += jitter(sim, 0.05, 1.2)
    sess = None
    reject = None  # (reply text, cause, bounce)
    encrypted: bool | None
    if state == "refused":
        word = (
            rng.choice(("Connection refused by", "Connection timed out with"))
            if peer.domain != "dead.example"
            else "Connection refused by"
        )
        for m in batch:
            proc.log(
                t,
                f"{m.qid}: to={fmt_rcpts(m)}, delay={sm_delay(t - m.created)}, xdelay=00:00:00, "
                "mailer=esmtp, "
                f"pri={prio(m)}, relay={relay_dot}, dsn=4.0.0, stat=Deferred: {word} {relay_dot}",
            )
            sim.delivery(
                host,
                proc,
                t,
                m.qid,
                m.rcpts,
                "esmtp",
                mx,
                None,
                "deferred",
                "Deferred",
                "4.0.0",
                None,
                None,
                None,
            )
            defer(sim, host, proc, t, m)
        return t
    if state == "handshake":
        proc.log(
            t,
            f"STARTTLS=client, error: connect failed=-1, reason={detail}, SSL_error=1, errno=0, retry=-1",
            PRIO["warning"],
        )
        sess = sim.session(host, proc, t, "client", mx, ip, None, None, "failed", "handshake_failed", detail)
        proc.log(
            t,
            f"ruleset=tls_server, arg1=SOFTWARE, relay={mx}, reject=454 4.7.0 TLS handshake failed.",
            PRIO["notice"],
        )
        for m in batch:
            t += jitter(sim, 0.01, 0.1)
            proc.log(
                t,
                f"{m.qid}: to={fmt_rcpts(m)}, delay={sm_delay(t - m.created)}, xdelay=00:00:01, "
                f"mailer=esmtp, pri={prio(m)}, relay={relay_dot} [{ip}], dsn=4.7.0, "
                "stat=Deferred: 454 4.7.0 TLS handshake failed.",
            )
            sim.delivery(
                host,
                proc,
                t,
                m.qid,
                m.rcpts,
                "esmtp",
                mx,
                ip,
                "deferred",
                "Deferred",
                "4.7.0",
                False,
                "handshake_failed",
                sess,
            )
            defer(sim, host, proc, t, m)
        return t
    policy = peer.policy
    if state == "plain":
        encrypted = False
        if policy and policy[0] == "encr":
            code = "503 5.7.0" if policy[2] == "PERM+" else "454 4.7.0"
            reject = (f"{code} encryption too weak 0 less than {policy[1]}", "not_offered", code[0] == "5")
            proc.log(t, f"ruleset=tls_server, arg1=NONE, relay={mx}, reject={reject[0]}", PRIO["notice"])
    else:
        encrypted = True
        tls = pick(rng, peer.out)
        verify = pick(rng, peer.out_verify)[1]
        if peer.domain == "example.ch" and t < sim.bank_fixed:
            verify = "FAIL"
        proc.log(t, starttls_line("client", relay_dot, tls, verify))
        sess = sim.session(host, proc, t, "client", mx, ip, tls, verify)
        if policy:
            code = "503 5.7.0" if policy[2] == "PERM+" else "454 4.7.0"
            if policy[0] == "encr" and tls[4] < policy[1]:
                reject = (
                    f"{code} encryption too weak {tls[4]} less than {policy[1]}",
                    "too_weak",
                    code[0] == "5",
                )
            elif policy[0] == "verify" and verify != "OK":
                text = {"FAIL": "authentication failed", "NO": "not authenticated"}[verify]
                reject = (f"{code} {text}", "verify_failed", code[0] == "5")
            if reject:
                proc.log(
                    t, f"ruleset=tls_server, arg1={verify}, relay={mx}, reject={reject[0]}", PRIO["notice"]
                )
                sess["outcome"], sess["cause"], sess["error"] = "failed", reject[1], reject[0]
    for m in batch:
        t += jitter(sim, 0.1, 1.5)
        head = (
            f"{m.qid}: to={fmt_rcpts(m)}, delay={sm_delay(t - m.created)}, "
            f"xdelay={sm_delay(jitter(sim, 0.3, 3))}, "
            f"mailer=esmtp, pri={prio(m)}, relay={relay_dot} [{ip}]"
        )
        if reject:
            dsn = reject[0].split()[1]
            if reject[2]:
                proc.log(t, f"{head}, dsn={dsn}, stat=Service unavailable")
                sim.delivery(
                    host,
                    proc,
                    t,
                    m.qid,
                    m.rcpts,
                    "esmtp",
                    mx,
                    ip,
                    "bounced",
                    "Service unavailable",
                    dsn,
                    encrypted,
                    reject[1],
                    sess,
                )
                bounce(sim, host, proc, t, m, "Service unavailable")
            else:
                proc.log(t, f"{head}, dsn={dsn}, stat=Deferred: {reject[0]}")
                sim.delivery(
                    host,
                    proc,
                    t,
                    m.qid,
                    m.rcpts,
                    "esmtp",
                    mx,
                    ip,
                    "deferred",
                    "Deferred",
                    dsn,
                    encrypted,
                    reject[1],
                    sess,
                )
                defer(sim, host, proc, t, m)
            continue
        if (
            encrypted
            and peer.domain == "partner.example"
            and not sim.cn_mismatch_done
            and t >= sim.cn_mismatch_at
            and len(m.rcpts) == 1
        ):
            sim.cn_mismatch_done = True
            proc.log(
                t,
                f"{m.qid}: ruleset=tls_rcpt, arg1={m.rcpts[0]}, relay={relay_dot}, reject=454 4.7.0 "
                f"CN {mx} does not match mail.partner.example",
                PRIO["notice"],
            )
            proc.log(t, f"{head}, dsn=4.2.0, stat=Deferred")
            sim.delivery(
                host,
                proc,
                t,
                m.qid,
                m.rcpts,
                "esmtp",
                mx,
                ip,
                "deferred",
                "Deferred",
                "4.2.0",
                True,
                "cn_mismatch",
                sess,
            )
            defer(sim, host, proc, t, m)
            continue
        x = rng.random()
        if x < 0.04 and m.tries == 0:
            reply = "451 4.7.1 Greylisting in action, please come back later"
            proc.log(t, f"{head}, dsn=4.7.1, reply={reply}, stat=Deferred: {reply}")
            sim.delivery(
                host,
                proc,
                t,
                m.qid,
                m.rcpts,
                "esmtp",
                mx,
                ip,
                "deferred",
                "Deferred",
                "4.7.1",
                encrypted,
                None,
                sess,
            )
            defer(sim, host, proc, t, m)
        elif x < 0.055 and len(m.rcpts) == 1 and m.tries == 0:
            reply = f"550 5.1.1 <{m.rcpts[0]}>... User unknown"
            proc.log(t, f"{head}, dsn=5.1.1, reply={reply}, stat=User unknown")
            sim.delivery(
                host,
                proc,
                t,
                m.qid,
                m.rcpts,
                "esmtp",
                mx,
                ip,
                "bounced",
                "User unknown",
                "5.1.1",
                encrypted,
                None,
                sess,
            )
            bounce(sim, host, proc, t, m, "User unknown")
        else:
            text = remote_reply(sim, peer, t, msgid(sim, m.created, m.sender.rpartition("@")[2]))
            proc.log(t, f"{head}, dsn=2.0.0, stat=Sent ({text})")
            sim.delivery(
                host, proc, t, m.qid, m.rcpts, "esmtp", mx, ip, "sent", "Sent", "2.0.0", encrypted, None, sess
            )
    return t


def fmt_rcpts(m: Msg) -> str:
    return ",".join(f"<{r}>" for r in m.rcpts)


def prio(m: Msg) -> int:
    return m.size + 30000 * len(m.rcpts) + 30000 + 90000 * m.tries


def defer(sim: Sim, host: Host, proc: Proc, t: int, m: Msg) -> None:
    """Keep a deferred message in the queue, or return it when it is too old (DSN)."""
    m.tries += 1
    if t - m.created >= QUEUE_RETURN:
        bounce(sim, host, proc, t, m, f"Cannot send message for {QUEUE_RETURN // DAY} days")
        return
    if t - m.created >= QUEUE_WARN and not m.warned:
        m.warned = True
        dsn_notice(sim, host, proc, t, m, "Warning: could not send message for past 4 hours")
    m.next_try = t + min(15 * 60 * US * 2 ** (m.tries - 1), 4 * HOUR)
    if m not in host.queue:
        host.queue.append(m)


def bounce(sim: Sim, host: Host, proc: Proc, t: int, m: Msg, text: str) -> None:
    if m in host.queue:
        host.queue.remove(m)
    dsn_notice(sim, host, proc, t, m, text)


def dsn_notice(sim: Sim, host: Host, proc: Proc, t: int, m: Msg, text: str) -> None:
    """``QID: NEWQID: DSN: text`` and the delivery of the DSN to the local sender."""
    new = proc.qid(t)
    t += jitter(sim, 0.01, 0.2)
    proc.log(t, f"{m.qid}: {new}: DSN: {text}")
    if sim.record:
        sim.truth["dsns"].append(
            {
                "host": host.name,
                "qid": m.qid,
                "dsn_qid": new,
                "timestamp": sim.ts(host, t),
                "text": text,
                "recipients": list(m.rcpts),
                "sender": m.sender,
            }
        )
    t += jitter(sim, 0.05, 0.4)
    proc.log(
        t,
        f"{new}: to=<{m.sender}>, delay=00:00:00, xdelay=00:00:00, mailer=local, pri={m.size + 60000}, "
        "dsn=2.0.0, stat=Sent",
    )


def outbound_now(
    sim: Sim, host: Host, t: int, proc: Proc, qid: str, sender: str, rcpts: list[str], size: int
) -> None:
    """Background delivery right after acceptance: one connection per recipient domain."""
    by_domain: dict[str, list[str]] = {}
    for r in rcpts:
        by_domain.setdefault(r.split("@", 1)[1], []).append(r)
    for dom, rs in by_domain.items():
        m = Msg(qid, sender, rs, PEER_BY_DOMAIN[dom], size, t)
        if sim.rng.random() < 0.02:  # load average above QueueLA: queue only
            proc.log(
                t,
                f"{qid}: to={fmt_rcpts(m)}, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri={prio(m)}, "
                "stat=queued",
            )
            sim.delivery(
                host, proc, t, qid, rs, "esmtp", None, None, "queued", "queued", None, None, None, None
            )
            m.next_try = t
            host.queue.append(m)
            continue
        t = smtp_deliver(sim, host, proc, t, [m]) + jitter(sim, 0.05, 0.3)


def queue_run(sim: Sim, t: int, host: Host) -> None:
    """sm-mta's periodic queue runner: retries due messages, grouped by peer (connection caching)."""
    sim.at(t + QUEUE_INTERVAL, queue_run, host)
    due = [m for m in host.queue if m.next_try <= t]
    if not due:
        return
    proc = host.proc()
    groups: dict[str, list[Msg]] = {}
    for m in due:
        groups.setdefault(m.peer.domain, []).append(m)
    t += jitter(sim, 0.1, 2)
    for batch in groups.values():
        for m in batch:
            host.queue.remove(m)
        t = smtp_deliver(sim, host, proc, t, batch) + jitter(sim, 0.1, 1)


# ------------------------------------------------------------------------------------------------------
# Scenarios


OUT_PEERS = tuple((p.w_out, p) for p in PEERS if p.w_out)
IN_PEERS = tuple((p.w_in, p) for p in PEERS if p.w_in)
SUBMIT_TLS = T13 + T12
NOISE_TLS = T12 + OLD


def out_peer(sim: Sim) -> Peer:
    return pick(sim.rng, OUT_PEERS)[1]


def in_peer(sim: Sim) -> Peer:
    return pick(sim.rng, IN_PEERS)[1]


def sc_inbound(sim: Sim, host: Host, t: int) -> None:
    """A message from a peer (TLS as the peer offers it, or none)."""
    peer = in_peer(sim)
    client = client_of(sim, peer)
    if peer.in_tls is None:
        tls = verify = None
    else:
        tls = pick(sim.rng, peer.in_tls)
        verify = "NOT" if host.role == "mx2" else pick(sim.rng, peer.in_verify)[1]
    if peer.domain == "example.se" and host.role == "mx1" and t < sim.logistics_fixed:
        serve(sim, host, t, client, tls=tls, verify="NO", clt_reject="454 4.7.0 not authenticated")
        return
    if peer.domain == "example.se" and host.role == "mx1":
        verify = "OK"
    if tls is not None and tls[1] in ("TLSv1", "TLSv1.1") and sim.rng.random() < 0.25:
        serve(sim, host, t, client, accept_error=(-1, "no shared cipher", 1))
        if sim.rng.random() < 0.6:
            t += jitter(sim, 5, 40)
            serve(sim, host, t, client, on_accept=deliver_locally)
        return
    n = 1 if sim.rng.random() < 0.9 else 2
    rc = [
        [f"{u}@example.org" for u in sim.rng.sample(LOCAL_USERS, 1 if sim.rng.random() < 0.85 else 3)]
        for _ in range(n)
    ]
    users = [f"<{u}@{peer.domain}>" for u in peer.users]
    serve(
        sim,
        host,
        t,
        client,
        tls=tls,
        verify=verify,
        messages=n,
        senders=tuple(sim.rng.sample(users, n)),
        rcpts=rc,
        on_accept=deliver_locally,
    )


def sc_noise_inbound(sim: Sim, host: Host, t: int) -> None:
    """Scanners, spammers and broken clients: sessions that end without (accepted) mail."""
    client = spam_client(sim)
    x = sim.rng.random()
    if x < 0.22:
        ip = client[2]
        proc = host.proc()
        dnsbl = f"550 5.7.1 Mail from {ip} refused - see http://dnsbl.example/query?ip={ip}"
        name = client[1] or f"[{ip}]"
        proc.log(
            t,
            f"ruleset=check_relay, arg1={name}, arg2={ip}, relay={client[0]}, reject={dnsbl}",
            PRIO["notice"],
        )
    elif x < 0.32:
        reason = sim.rng.choice(
            (
                ("unexpected eof while reading", 1),
                ("wrong version number", 1),
                ("http request", 1),
                ("unknown", 5),
            )
        )
        serve(sim, host, t, client, accept_error=(-1, reason[0], reason[1]))
    elif x < 0.52:
        tls = pick(sim.rng, NOISE_TLS) if sim.rng.random() < 0.5 else None
        serve(sim, host, t, client, tls=tls, verify="NOT" if host.role == "mx2" else "NO", end="no_mail")
    elif x < 0.62:
        serve(sim, host, t, client, end="lost")
    elif x < 0.72:
        serve(sim, host, t, client, end="timeout")
    elif x < 0.85:
        serve(sim, host, t, client, end="relay_denied")
    else:
        # spam that gets through, in clear or over TLS
        tls = pick(sim.rng, T12) if sim.rng.random() < 0.5 else None
        serve(
            sim,
            host,
            t,
            client,
            tls=tls,
            verify="NOT" if host.role == "mx2" else "NO",
            on_accept=deliver_locally,
        )


def sc_submission(sim: Sim, host: Host, t: int, to_domain: str | None = None) -> None:
    """A user submits on port 587 (STARTTLS + AUTH); the background child delivers (often outbound)."""
    pat, ippat, lo, hi = sim.rng.choice(SUBMIT_HOSTS)
    i = sim.rng.randrange(lo, hi)
    name = pat % i if pat else None
    ip = ippat % i
    client = (
        relay_str(name, ip),
        name,
        ip.removeprefix("IPv6:"),
        registrable(name, ip.removeprefix("IPv6:")),
        False,
    )
    user = sim.rng.choice(LOCAL_USERS)
    rcpts: list[str] = []
    for _ in range(1 if sim.rng.random() < 0.75 else sim.rng.randrange(2, 4)):
        p = out_peer(sim)
        r = f"{sim.rng.choice(p.users)}@{p.domain}"
        if r not in rcpts:
            rcpts.append(r)
    if to_domain is not None:
        rcpts = [f"{sim.rng.choice(PEER_BY_DOMAIN[to_domain].users)}@{to_domain}"]
    if sim.rng.random() < 0.15:
        rcpts.append(f"{sim.rng.choice(LOCAL_USERS)}@example.org")
    serve(
        sim,
        host,
        t,
        client,
        tls=pick(sim.rng, SUBMIT_TLS),
        verify="NO",
        daemon="MSA",
        auth=user,
        senders=(f"<{user}@example.org>",),
        rcpts=[rcpts],
        on_accept=deliver_locally,
    )


def sc_cron(sim: Sim, host: Host, t: int) -> None:
    """Command-line submission via the MSP: sendmail[pid] -> loopback STARTTLS -> sm-mta child -> delivery."""
    user = sim.rng.choice(("root", "root", "www-data", "backup"))
    external = sim.rng.random() < 0.3
    rcpt = f"admin@{out_peer(sim).domain}" if external else "root"
    msp = host.proc("sendmail", host.pids(3))
    size = sim.rng.randrange(400, 5000)
    qa = msp.qid(t)
    mid = f"{time.strftime('%Y%m%d%H%M', time.gmtime(t // US))}.{qa}@{host.fqdn}"
    msp.log(t, f"{qa}: from={user}, size={size}, class=0, nrcpts=1, msgid=<{mid}>, relay={user}@localhost")
    sim.receipt(host, msp, t, qa, user, ("", None, None, None, True), None, None, None, 1, internal=True)
    hop_rcpt = rcpt if external else "root"
    t += jitter(sim, 0.05, 0.3)
    if sim.mta_down[0] <= t < sim.mta_down[1]:
        msp.log(
            t,
            f"{qa}: to={hop_rcpt}, ctladdr={user} (0/0), delay=00:00:00, xdelay=00:00:00, mailer=relay, "
            f"pri={size + 30000}, relay=[127.0.0.1], dsn=4.0.0, "
            "stat=Deferred: Connection refused by [127.0.0.1]",
        )
        sim.delivery(
            host,
            msp,
            t,
            qa,
            [hop_rcpt],
            "relay",
            None,
            LOOPBACK,
            "deferred",
            "Deferred",
            "4.0.0",
            None,
            None,
            None,
        )
        sim.at(t + 30 * 60 * US + jitter(sim, 0, 30), msp_retry, host, qa, user, hop_rcpt, rcpt, size, mid, t)
        return
    msp_hop(sim, host, t, msp, qa, user, hop_rcpt, rcpt, size, mid, t)


def msp_retry(
    sim: Sim,
    t: int,
    host: Host,
    qa: str,
    user: str,
    hop_rcpt: str,
    rcpt: str,
    size: int,
    mid: str,
    created: int,
) -> None:
    runner = host.proc("sm-msp-queue", host.pids(3))
    msp_hop(sim, host, t, runner, qa, user, hop_rcpt, rcpt, size, mid, created, tries=1)


def msp_hop(
    sim: Sim,
    host: Host,
    t: int,
    msp: Proc,
    qa: str,
    user: str,
    hop_rcpt: str,
    rcpt: str,
    size: int,
    mid: str,
    created: int,
    tries: int = 0,
) -> None:
    mta = Proc(host, "sm-mta", msp.pid + 1)
    tls = T13[0]
    mta.log(t, starttls_line("server", "localhost [127.0.0.1]", tls, "OK"))
    ssess = sim.session(host, mta, t, "server", "localhost", LOOPBACK, tls, "OK")
    t += jitter(sim, 0.001, 0.05)
    msp.log(t, starttls_line("client", "[127.0.0.1]", tls, "OK"))
    csess = sim.session(host, msp, t, "client", None, LOOPBACK, tls, "OK")
    mta.qid(t)
    qb = mta.qid(t)
    t += jitter(sim, 0.01, 0.1)
    full = rcpt if "@" in rcpt else f"{rcpt}@{host.fqdn}"
    mta.log(
        t,
        f"{qb}: from=<{user}@{host.fqdn}>, size={size + 400}, class=0, nrcpts=1, msgid=<{mid}>, "
        f"proto=ESMTPS, daemon=MTA, relay=localhost [127.0.0.1]",
    )
    sim.receipt(
        host,
        mta,
        t,
        qb,
        f"{user}@{host.fqdn}",
        ("", "localhost", LOOPBACK, "localhost", True),
        ssess,
        "ESMTPS",
        "MTA",
        1,
    )
    t += jitter(sim, 0.001, 0.05)
    msp.log(
        t,
        f"{qa}: to={hop_rcpt}, ctladdr={user} (0/0), delay={sm_delay(t - created)}, xdelay=00:00:00, "
        f"mailer=relay, pri={size + 30000 + 90000 * tries}, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, "
        f"stat=Sent ({qb} Message accepted for delivery)",
    )
    sim.delivery(
        host, msp, t, qa, [hop_rcpt], "relay", None, LOOPBACK, "sent", "Sent", "2.0.0", True, None, csess
    )
    child = Proc(host, "sm-mta", msp.pid + 2)
    t += jitter(sim, 0.02, 0.3)
    if "@" in rcpt:
        outbound_now(sim, host, t, child, qb, f"{user}@{host.fqdn}", [rcpt], size + 400)
    else:
        child.log(
            t,
            f"{qb}: to=<{full}>, ctladdr=<{user}@{host.fqdn}> (0/0), delay=00:00:00, xdelay=00:00:00, "
            f"mailer=local, pri={size + 30400}, dsn=2.0.0, stat=Sent",
        )


def sc_list(sim: Sim, host: Host, t: int) -> None:
    """A mailing-list message: local members, and a clone (owner-team) for the external members."""
    peer = in_peer(sim)
    if peer.in_tls is None:
        return
    client = client_of(sim, peer)
    tls = pick(sim.rng, peer.in_tls)

    def expand(
        sim: Sim, host: Host, t: int, pid: int, qid: str, sender: str, to: list[str], size: int, mid: str
    ) -> None:
        child = Proc(host, "sm-mta", child_of(host, pid))
        t += jitter(sim, 0.05, 0.3)
        members = sim.rng.sample(LOCAL_USERS, 3)
        t = local_delivery(sim, host, t, child.pid, qid, [f"{u}@example.org" for u in members], size)
        p = out_peer(sim)
        clone = Proc(host, "sm-mta", pid).qid(t)
        host.log(t, "sm-mta", pid, f"{qid}: {clone}: clone: owner=owner-team")
        outbound_now(
            sim,
            host,
            t + jitter(sim, 0.1, 0.4),
            child,
            clone,
            "owner-team@example.org",
            [f"{sim.rng.choice(p.users)}@{p.domain}"],
            size,
        )

    serve(
        sim,
        host,
        t,
        client,
        tls=tls,
        verify=pick(sim.rng, peer.in_verify)[1],
        senders=(f"<{peer.users[0]}@{peer.domain}>",),
        rcpts=[["team@example.org"]],
        on_accept=expand,
    )


def sc_dovecot(sim: Sim, host: Host, t: int) -> None:
    user = sim.rng.choice(LOCAL_USERS)
    _pat, ippat, lo, hi = SUBMIT_HOSTS[0]
    ip = ippat % sim.rng.randrange(lo, hi)
    proto = sim.rng.choice(("imap", "imap", "pop3"))
    host.log(
        t,
        "dovecot",
        None,
        f"{proto}-login: Login: user=<{user}>, method=PLAIN, rip={ip}, lip={host.ip}, "
        f"mpid={host.pids()}, TLS, session=<{rand_id(sim.rng, 16)}>",
    )
    if sim.rng.random() < 0.5:
        host.log(
            t + jitter(sim, 30, 900),
            "dovecot",
            None,
            f"{proto}({user})<{rand_id(sim.rng, 16)}>: Logged out in={sim.rng.randrange(100, 9000)} "
            f"out={sim.rng.randrange(500, 900000)}",
        )


def sc_app(sim: Sim, host: Host, t: int) -> None:
    """out1: an application server hands over a message over TLS (client certificate, verify=OK)."""
    n = sim.rng.randrange(1, 5)
    name = f"app{n}.example.org"
    ip = f"192.0.2.{40 + n}" if n != 4 else "IPv6:2001:db8:0:0:0:0:0:2a"
    client = (relay_str(name, ip), name, ip.removeprefix("IPv6:"), "example.org", False)
    rcpts = []
    for _ in range(1 if sim.rng.random() < 0.8 else 2):
        p = out_peer(sim)
        rcpts.append(f"{sim.rng.choice(p.users)}@{p.domain}")
    if sim.rng.random() < 0.1:
        rcpts = [f"{sim.rng.choice(LOCAL_USERS)}@example.org"]

    def forward(
        sim: Sim, host: Host, t: int, pid: int, qid: str, sender: str, to: list[str], size: int, mid: str
    ) -> None:
        child = Proc(host, "sm-mta", child_of(host, pid))
        t += jitter(sim, 0.05, 0.4)
        if to[0].endswith("@example.org"):
            relay_to_mx1(sim, host, t, child, qid, sender, to, size, mid)
        else:
            outbound_now(sim, host, t, child, qid, sender, to, size)

    serve(
        sim,
        host,
        t,
        client,
        tls=pick(sim.rng, T13),
        verify="OK",
        senders=(f"<{sim.rng.choice(('noreply', 'billing', 'alerts'))}@example.org>",),
        rcpts=[rcpts],
        on_accept=forward,
    )


def relay_to_mx1(
    sim: Sim, host: Host, t: int, proc: Proc, qid: str, sender: str, to: list[str], size: int, mid: str
) -> None:
    tls = pick(sim.rng, T13)
    proc.log(t, starttls_line("client", "mx1.example.org.", tls, "OK"))
    sess = sim.session(host, proc, t, "client", "mx1.example.org", "192.0.2.25", tls, "OK")
    t += jitter(sim, 0.2, 0.8)
    target = sim.hosts.get("mx1")
    remote_q = None
    if target is not None:
        got = serve(
            sim,
            target,
            t - jitter(sim, 0.05, 0.15),
            ("out1.example.org [192.0.2.30]", "out1.example.org", "192.0.2.30", "example.org", False),
            tls=tls,
            verify="OK",
            senders=(f"<{sender}>",),
            rcpts=[to],
            on_accept=deliver_locally,
            mids=(mid,),
        )
        remote_q = got[0] if got else None
    remote_q = remote_q or queue_id(t, sim.rng.randrange(3600), sim.rng.randrange(1000, 30000))
    proc.log(
        t,
        f"{qid}: to={','.join('<' + r + '>' for r in to)}, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, "
        f"pri={size + 30000 * len(to) + 30000}, relay=mx1.example.org. [192.0.2.25], dsn=2.0.0, "
        f"stat=Sent ({remote_q} Message accepted for delivery)",
    )
    sim.delivery(
        host,
        proc,
        t,
        qid,
        to,
        "esmtp",
        "mx1.example.org",
        "192.0.2.25",
        "sent",
        "Sent",
        "2.0.0",
        True,
        None,
        sess,
    )


def sc_restart(sim: Sim, host: Host, t: int) -> None:
    proc = host.proc()
    proc.log(t, "restarting /usr/sbin/sendmail-mta due to signal")
    new = host.proc()
    new.log(t + 2 * 60 * US, "starting daemon (8.17.1.9): SMTP+queueing@00:30:00")


FIXED_MAIL = (  # (day from the start, hour, recipient domain) of submissions on mx1
    (0, 10.1, "example.jp"),
    (2, 15.3, "example.jp"),
    (0, 11.2, "example.com.au"),
    (0, 9.6, "example.ch"),
    (1, 10.4, "ministry.example"),
    (1, 16.1, "dead.example"),
    (2, 10.5, "acme.example"),
    (2, 14.2, "acme.example"),
    (3, 9.3, "acme.example"),
    (3, 16.8, "acme.example"),
    (4, 8.9, "acme.example"),
    (4, 17.5, "acme.example"),
    (1, 15.9, "partner.example"),
    (4, 11.1, "example.it"),
)


def fixed_mail(sim: Sim, t: int, host: Host, domain: str) -> None:
    sc_submission(sim, host, t, domain)


SCENARIOS = {
    # role: ((weight, scenario), ...)
    "mx1": (
        (40, sc_inbound),
        (22, sc_noise_inbound),
        (18, sc_submission),
        (8, sc_cron),
        (2, sc_list),
        (6, sc_dovecot),
    ),
    "mx2": ((45, sc_inbound), (45, sc_noise_inbound), (5, sc_dovecot)),
    "relay": ((85, sc_app), (8, sc_noise_inbound), (5, sc_cron)),
}


def arrival(sim: Sim, t: int, host: Host) -> None:
    """Start one scenario, and schedule the next arrival (Poisson, modulated by time of day)."""
    rate = host.rate * activity(t)
    sim.at(t + int(sim.rng.expovariate(rate) * US) + 1, arrival, host)
    if host.role == "mx1" and not host.restarted and t >= sim.mta_down[0] - 60 * US:
        host.restarted = True
        sc_restart(sim, host, sim.mta_down[0])
        sc_cron(sim, host, sim.mta_down[0] + 30 * US)
        return
    fn = pick(sim.rng, SCENARIOS[host.role])[1]
    fn(sim, host, t)


# ------------------------------------------------------------------------------------------------------
# Front ends

ROLES = {  # name: (role, ip, first pid, pid_max, scenarios per second at activity 1.0)
    "mx1": ("mx1", "192.0.2.25", 4000, 32768, 0.0011),
    "mx2": ("mx2", "192.0.2.26", 21000, 32768, 0.0003),
    "out1": ("relay", "192.0.2.30", 1_210_000, 4_194_304, 0.0004),
}
LINES_PER_SCENARIO = {"mx1": 4.95, "mx2": 5.5, "relay": 6.0}


def parse_day(s: str) -> int:
    y, m, d = (int(x) for x in s.split("-"))
    return calendar.timegm((y, m, d, 0, 0, 0)) * US


def make_host(sim: Sim, name: str, fmt: str, rate_scale: float = 1.0) -> Host:
    role, ip, pid0, pid_max, rate = ROLES.get(name, ROLES["mx1"])
    h = Host(sim, name, role, fmt, ip, pid0, pid_max, rate * rate_scale)
    sim.hosts[name] = h
    sim.ts_fmt[name] = fmt
    return h


def truth_document(sim: Sim, meta: dict) -> dict:
    tr = sim.truth

    def count(rows: list[dict], *keys: str) -> dict:
        out: dict[str, int] = {}
        for r in rows:
            k = "/".join(str(r[key]) for key in keys)
            out[k] = out.get(k, 0) + 1
        return dict(sorted(out.items()))

    totals = {
        "receipts": len(tr["receipts"]),
        "receipts_by_host_encrypted_internal": count(tr["receipts"], "host", "encrypted", "internal"),
        "deliveries": len(tr["deliveries"]),
        "deliveries_by_status": count(tr["deliveries"], "status"),
        "deliveries_by_encrypted": count(tr["deliveries"], "encrypted"),
        "deliveries_by_tls_failure": count([d for d in tr["deliveries"] if d["tls_failure"]], "tls_failure"),
        "sessions": len(tr["sessions"]),
        "sessions_by_direction_outcome_cause": count(tr["sessions"], "direction", "outcome", "cause"),
        "dsns": len(tr["dsns"]),
    }
    return {**meta, "totals": totals, **tr}


def run_single(args: argparse.Namespace) -> dict:
    start = parse_day(args.start)
    scale = 1.0
    role = ROLES.get(args.host, ROLES["mx1"])[0]
    if args.lines:
        per_day = role_rate(args.host) * 86400 * 0.72 * LINES_PER_SCENARIO[role]
        scale = args.lines / (per_day * args.days)
    sim = Sim(args.seed, start, args.days, args.lines, record=bool(args.truth))
    host = make_host(sim, args.host, args.format, scale)
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
    try:
        host.sink = Sink(args.host, args.format, [(None, out)])
        sim.run()
    finally:
        if out is not sys.stdout:
            out.close()
        else:
            out.flush()
    return truth_document(
        sim,
        {
            "generator": meta_of(args),
            "files": {args.out: {"host": args.host, "format": args.format, "lines": host.sink.count}},
        },
    )


def role_rate(name: str) -> float:
    return ROLES.get(name, ROLES["mx1"])[4]


def meta_of(args: argparse.Namespace) -> dict:
    return {
        "tool": "benchmarks/generate.py",
        "seed": args.seed,
        "start": args.start,
        "days": args.days,
        "sendmail": "8.17.1.9",
        "timezone": "UTC",
        "timestamps": "as a reader sees them: BSD naive, to the second; others ISO, microseconds, +00:00",
    }


def run_sample(args: argparse.Namespace) -> dict:
    """The sample_logs/ set: mx1 (BSD, rotated), mx2 (RFC 3339), out1 (journal JSON), one week."""
    out = Path(args.sample)
    out.mkdir(parents=True, exist_ok=True)
    start = parse_day(args.start)
    sim = Sim(args.seed, start, args.days)
    mx1 = make_host(sim, "mx1", "bsd")
    mx2 = make_host(sim, "mx2", "rfc3339")
    out1 = make_host(sim, "out1", "journal")
    split = start + 3 * DAY
    f_old = open(out / "maillog.1.tmp", "w", encoding="utf-8", newline="\n")  # noqa: SIM115
    f_new = open(out / "maillog", "w", encoding="utf-8", newline="\n")  # noqa: SIM115
    f_mx2 = open(out / "mail.log", "w", encoding="utf-8", newline="\n")  # noqa: SIM115
    f_out1 = open(out / "sm-mta.journal.json", "w", encoding="utf-8", newline="\n")  # noqa: SIM115
    mx1.sink = Sink("mx1", "bsd", [(split, f_old), (None, f_new)])
    mx2.sink = Sink("mx2", "rfc3339", [(None, f_mx2)])
    out1.sink = Sink("out1", "journal", [(None, f_out1)])
    try:
        sim.run()
    finally:
        for f in (f_old, f_new, f_mx2, f_out1):
            f.close()
    raw = (out / "maillog.1.tmp").read_bytes()
    with (
        open(out / "maillog.1.gz", "wb") as fz,
        gzip.GzipFile(filename="", mode="wb", fileobj=fz, mtime=0) as gz,
    ):
        gz.write(raw)
    (out / "maillog.1.tmp").unlink()
    files = {
        "maillog.1.gz": {"host": "mx1", "format": "bsd", "lines": mx1.sink.file_counts[0], "days": "Mon-Wed"},
        "maillog": {"host": "mx1", "format": "bsd", "lines": mx1.sink.file_counts[1], "days": "Thu-Sun"},
        "mail.log": {"host": "mx2", "format": "rfc3339", "lines": mx2.sink.count},
        "sm-mta.journal.json": {"host": "out1", "format": "journal", "lines": out1.sink.count},
    }
    return truth_document(sim, {"generator": meta_of(args), "files": files})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate a deterministic, realistic sendmail 8.17.1 maillog.")
    ap.add_argument("--format", choices=("bsd", "rfc3339", "journal"), default="bsd")
    ap.add_argument("--lines", type=int, default=None, help="about this many lines (whole scenarios)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", default="2026-11-09", help="first day, UTC (YYYY-MM-DD)")
    ap.add_argument("--days", type=float, default=7)
    ap.add_argument("--host", default="mx1", help="mx1 (MX + submissions), mx2 (secondary MX), out1 (relay)")
    ap.add_argument("--out", default="-", help="output file, '-' for stdout")
    ap.add_argument("--truth", default=None, help="write the truth record (JSON) here")
    ap.add_argument("--sample", default=None, metavar="DIR", help="write the whole sample_logs set into DIR")
    args = ap.parse_args(argv)
    doc = run_sample(args) if args.sample else run_single(args)
    if args.truth:
        Path(args.truth).parent.mkdir(parents=True, exist_ok=True)
        with open(args.truth, "w", encoding="utf-8", newline="\n") as f:
            write_truth(doc, f)
    return 0


def write_truth(doc: dict, f: IO[str]) -> None:
    """JSON with one record per line in the lists (small diffs, greppable)."""
    parts = []
    for key, value in doc.items():
        if isinstance(value, list):
            rows = ",\n".join("  " + json.dumps(r, separators=(", ", ": ")) for r in value)
            parts.append(f" {json.dumps(key)}: [\n{rows}\n ]" if value else f" {json.dumps(key)}: []")
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(value, indent=2)}")
    f.write("{\n" + ",\n".join(parts) + "\n}\n")


if __name__ == "__main__":
    sys.exit(main())
