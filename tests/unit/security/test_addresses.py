"""Which addresses a restricted run may reach."""

from __future__ import annotations

import ipaddress

import pytest

from fm_lab.security.addresses import Allowance, category
from fm_lab.security.policy import PolicySettingError


@pytest.mark.parametrize(("address", "expected"), [
    ("127.0.0.1", "a loopback address"),
    ("127.8.9.10", "a loopback address"),
    ("::1", "a loopback address"),
    ("0.0.0.0", "an unspecified address"),
    ("::", "an unspecified address"),
    ("10.0.0.1", "a private address"),
    ("172.16.5.4", "a private address"),
    ("192.168.1.1", "a private address"),
    ("fc00::1", "a private address"),
    ("169.254.169.254", "a cloud metadata address"),
    ("fd00:ec2::254", "a cloud metadata address"),
    ("100.100.100.200", "a cloud metadata address"),
    ("169.254.1.1", "a link-local address"),
    ("fe80::1", "a link-local address"),
    ("224.0.0.1", "a multicast address"),
    ("ff02::1", "a multicast address"),
    ("240.0.0.1", "a private address"),  # reserved, which Python counts as private
    ("100.64.0.1", "a non-public address"),  # shared (CGNAT) space
    ("::ffff:127.0.0.1", "a loopback address"),  # IPv4 inside IPv6
    ("::ffff:169.254.169.254", "a cloud metadata address"),
    ("8.8.8.8", None),
    ("2606:4700:4700::1111", None),
])
def test_addresses_are_classified(address, expected):
    assert category(ipaddress.ip_address(address)) == expected


def test_the_allow_list_takes_networks_addresses_and_host_names():
    allowance = Allowance.parse(("10.0.0.0/8", "127.0.0.1", "[::1]", "*.corp.example",
                                 "Intranet."))
    assert allowance.problem(ipaddress.ip_address("10.9.9.9")) is None
    assert allowance.problem(ipaddress.ip_address("127.0.0.1")) is None
    assert allowance.problem(ipaddress.ip_address("::1")) is None
    assert allowance.problem(ipaddress.ip_address("127.0.0.2")) == "a loopback address"
    assert allowance.problem(ipaddress.ip_address("169.254.169.254")) is not None
    assert allowance.allows_host("api.corp.example") and allowance.allows_host("intranet")
    assert not allowance.allows_host("corp.example") and not allowance.allows_host("evil")


def test_a_bad_network_in_the_allow_list_is_one_clear_line():
    with pytest.raises(PolicySettingError, match=r"FM_LAB_HTTP_ALLOW entry '10\.0\.0\.0/33' "
                       r"is not a network"):
        Allowance.parse(("10.0.0.0/33",))
