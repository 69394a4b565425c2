"""Which network addresses a restricted run may reach: public ones, and whatever
``FM_LAB_HTTP_ALLOW`` names. Loopback, private, link-local, shared (CGNAT), multicast,
reserved, unspecified and cloud metadata addresses are refused, and so are the metadata
services' host names, whatever they resolve to.

>>> Allowance.parse(()).problem(ipaddress.ip_address("169.254.169.254"))
'a cloud metadata address'
>>> Allowance.parse(("10.0.0.0/8",)).problem(ipaddress.ip_address("10.1.2.3")) is None
True
"""

from __future__ import annotations

import fnmatch
import ipaddress
from dataclasses import dataclass

from fm_lab.security.policy import HTTP_ALLOW_ENV, PolicySettingError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_ADDRESSES: frozenset[Address] = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
    "169.254.170.2",  # AWS ECS task metadata
    "fd00:ec2::254",  # AWS over IPv6
    "100.100.100.200",  # Alibaba Cloud
    "192.0.0.192",  # Oracle Cloud
))
METADATA_HOSTS = frozenset({
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data",
    "instance-data.ec2.internal", "metadata.azure.com", "metadata.platformequinix.com",
})

_CATEGORIES = (  # the first that applies names a refused address
    ("is_loopback", "a loopback"),
    ("is_unspecified", "an unspecified"),
    ("is_link_local", "a link-local"),
    ("is_multicast", "a multicast"),
    ("is_private", "a private"),
    ("is_reserved", "a reserved"),
)


def normal_host(host: str) -> str:
    """A host name as compared: lower case, no trailing dot, no IPv6 brackets."""
    return host.strip().strip("[]").rstrip(".").lower()


def category(address: Address) -> str | None:
    """What kind of non-public address ``address`` is ("a private address"), or None for a
    public one. An IPv4 address inside IPv6 (``::ffff:10.0.0.1``) is judged as IPv4."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for attribute, name in _CATEGORIES:
        if getattr(address, attribute):
            return f"{name} address"
    if not address.is_global:
        return "a non-public address"  # shared CGNAT space, documentation ranges, ...
    return None


@dataclass(frozen=True)
class Allowance:
    """What ``FM_LAB_HTTP_ALLOW`` allows: host names (``intranet.example``,
    ``*.corp.example``) and networks (``10.1.2.3``, ``10.0.0.0/8``, ``fd00::/8``)."""

    hosts: tuple[str, ...]
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, entries: tuple[str, ...], setting: str = HTTP_ALLOW_ENV) -> Allowance:
        """Read allow-list entries; an entry with ``/`` that is no network is refused
        (:class:`PolicySettingError` naming ``setting``)."""
        hosts: list[str] = []
        networks: list[Network] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(normal_host(entry), strict=False))
            except ValueError:
                if "/" in entry:
                    raise PolicySettingError(
                        f"{setting} entry {entry!r} is not a network (e.g. 10.0.0.0/8)"
                    ) from None
                hosts.append(normal_host(entry))
        return cls(tuple(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        """Whether the host name is allow-listed (then any address it resolves to is)."""
        name = normal_host(host)
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.hosts)

    def problem(self, address: Address) -> str | None:
        """Why ``address`` is refused ("a private address"), or None if it may be reached."""
        if any(address.version == net.version and address in net for net in self.networks):
            return None
        return category(address)
