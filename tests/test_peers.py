"""Peer domains by the Public Suffix List, and the internal-hosts test."""

from __future__ import annotations

import math

import pytest

from tlslog.peers import InternalHosts, peer_domain


@pytest.mark.parametrize(
    ("host", "ip", "expected"),
    [
        ("mx2.mail.example.co.uk", None, "example.co.uk"),
        ("gmail-smtp-in.l.google.com.", None, "google.com"),  # client side: trailing dot
        ("aspmx.l.google.com.", "173.194.79.26", "google.com"),
        ("173-8-135-25-SFBA.hfc.comcastbusiness.net", "173.8.135.25", "comcastbusiness.net"),
        ("MTA6.AM0.YahooDNS.net", None, "yahoodns.net"),
        ("mail.example.com.netsolmail.net.", None, "netsolmail.net"),
        ("ign-com.mail.eo.outlook.com.", "216.32.180.22", "outlook.com"),
        # ICANN suffixes only: an EC2 name belongs to amazonaws.com, not to itself
        ("ec2-198-51-100-7.compute-1.amazonaws.com", None, "amazonaws.com"),
        ("mail.city.kawasaki.jp", None, "city.kawasaki.jp"),  # exception rule !city.kawasaki.jp
        ("mx.example.unknowntld", None, "example.unknowntld"),
        ("example.org", None, "example.org"),
    ],
)
def test_registrable_domain(host, ip, expected):
    assert peer_domain(host, ip) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", "localhost"),
        ("localhost.", "localhost"),
        ("mailhub", "mailhub"),
        ("co.uk", "co.uk"),
        ("com", "com"),
    ],
)
def test_public_suffix_or_single_label_is_its_own_domain(host, expected):
    assert peer_domain(host) == expected


def test_no_host_gives_the_address():
    assert peer_domain(None, "184.21.104.253") == "184.21.104.253"
    assert peer_domain("", "192.0.2.1") == "192.0.2.1"
    # sendmail >= 8.15 logs IPv6 uncompressed by default; the same peer must give one key
    assert peer_domain(None, "2001:db8:0:0:0:0:0:1") == "2001:db8::1"
    assert peer_domain(None, "IPv6:2001:DB8::1") == "2001:db8::1"


def test_address_literal_as_host_gives_the_address():
    assert peer_domain("[127.0.0.1]", "127.0.0.1") == "127.0.0.1"


def test_nothing_known_gives_none():
    assert peer_domain(None, None) is None
    assert peer_domain(math.nan, math.nan) is None


def test_ident_user_is_not_part_of_the_name():
    assert peer_domain("root@localhost") == "localhost"


@pytest.mark.parametrize(
    ("host", "ip"),
    [
        ("localhost", "127.0.0.1"),
        (None, "127.0.0.1"),
        (None, "127.1.2.3"),
        (None, "::1"),
        (None, "IPv6:0:0:0:0:0:0:0:1"),
        (None, "::ffff:127.0.0.1"),
        ("localhost.localdomain", None),
        ("LOCALHOST.", None),
        ("[127.0.0.1]", None),  # client-side relay to a bracketed smart host
        ("root@localhost", None),
    ],
)
def test_loopback_is_always_internal(host, ip):
    assert InternalHosts().is_internal(host, ip)


def test_external_peers_are_not_internal():
    internal = InternalHosts()
    assert not internal.is_internal("gmail-smtp-in.l.google.com.", "173.194.76.26")
    assert not internal.is_internal(None, "198.51.100.7")
    assert not internal.is_internal(None, None)


def test_listed_names_addresses_and_networks():
    internal = InternalHosts(["10.0.0.0/8", "2001:db8:25::/48", "192.0.2.10", "mx2.example.org"])
    assert internal.is_internal(None, "10.20.30.40")
    assert internal.is_internal("relay.corp.example", "10.0.0.1")
    assert internal.is_internal(None, "2001:db8:25:0:0:0:0:7")
    assert internal.is_internal(None, "192.0.2.10")
    assert not internal.is_internal(None, "192.0.2.11")
    assert internal.is_internal("mx2.example.org.", "198.51.100.9")
    assert internal.is_internal("MX2.Example.ORG", None)
    assert not internal.is_internal("mx3.example.org", "198.51.100.9")
    assert not internal.is_internal(None, "11.0.0.1")


@pytest.mark.parametrize("suffix", [".example.org", "*.example.org"])
def test_suffix_forms_match_the_domain_and_below(suffix):
    internal = InternalHosts([suffix])
    assert internal.is_internal("mx2.example.org", None)
    assert internal.is_internal("a.b.example.org.", None)
    assert internal.is_internal("example.org", None)
    assert not internal.is_internal("badexample.org", None)
    assert not internal.is_internal("example.org.evil.example", None)


def test_a_single_string_is_one_entry():
    assert InternalHosts("10.0.0.0/8").is_internal(None, "10.9.9.9")


def test_coerce_keeps_an_instance_and_builds_from_entries():
    internal = InternalHosts(["192.0.2.0/24"])
    assert InternalHosts.coerce(internal) is internal
    assert InternalHosts.coerce(("192.0.2.0/24",)).is_internal(None, "192.0.2.5")
    assert InternalHosts.coerce(None).is_internal("localhost", None)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("10.0.0.0/33", "not a valid network"),
        ("10.0.0.300", "not a valid IP address"),
        ("2001:db8::zz", "not a valid IP address"),
        ("mail host", "not a host name"),
        ("*", "not a host name"),
        ("", "empty"),
    ],
)
def test_invalid_entries_raise_value_error(entry, message):
    with pytest.raises(ValueError, match=message):
        InternalHosts([entry])
