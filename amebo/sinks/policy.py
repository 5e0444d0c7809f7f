"""Which networks amebo may deliver to, checked on the address actually connected to.

Names are checked after resolution (so a name that resolves to a denied address is refused,
whatever it is called), and literal addresses before connecting. The default allows all:
amebo usually serves internal services. The hardened profile denies private, loopback,
link-local, carrier-grade NAT and cloud metadata ranges, for deployments where subscribers
are not trusted.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

HARDENED_DENY = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4",
    "240.0.0.0/4", "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "fc00::/7",
    "fe80::/10", "ff00::/8", "fd00:ec2::254/128",
)  # fmt: skip


class PolicyViolation(OSError):
    """The destination is denied by the outbound policy: retrying will not help."""


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    networks = []
    for value in values:
        value = value.strip()
        if value:
            networks.append(ipaddress.ip_network(value, strict=False))
    return tuple(networks)


@dataclasses.dataclass(frozen=True)
class NetworkPolicy:
    allow: tuple[Network, ...] = ()  # empty: everything not denied
    deny: tuple[Network, ...] = ()

    @classmethod
    def build(cls, allow: Iterable[str], deny: Iterable[str], hardened: bool) -> NetworkPolicy:
        denied = parse_networks([*deny, *(HARDENED_DENY if hardened else ())])
        return cls(allow=parse_networks(allow), deny=denied)

    @property
    def open(self) -> bool:
        return not self.allow and not self.deny

    def permits(self, address: Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.deny):
            return False
        return not self.allow or any(address in network for network in self.allow)
