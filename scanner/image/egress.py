"""The registry client's outbound connections: the name is resolved here, every address it resolves to is
checked, and the socket connects to one of the checked addresses.

Loopback, private, link-local (the cloud metadata service at 169.254.169.254), shared, multicast, reserved
and unspecified addresses are refused unless the host is one of the explicitly configured registries
(`RegistryAccess`): a redirect (ACR sends blob downloads to storage hosts), or a registry's name, cannot turn
the scanner against the network it runs in.

DNS rebinding: each connection resolves the name once, here, and connects to the literal address that was
checked; nothing resolves it again, while TLS still verifies the certificate (and sends SNI) for the name.
Proxies from the environment are not used (requests' `trust_env` is off): through a proxy the address
connected to would be the proxy's, not the one checked. That also keeps requests from adding credentials
from ~/.netrc.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection
from urllib3.util.retry import Retry

from scanner.image.registry_options import RegistryAccess
from scanner.model.errors import RegistryError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EgressRefused(RegistryError):
    """A connection the registry client will not make: to a non-public address of a host not configured."""


def address_class(ip: IPAddress) -> str | None:
    """Why an address is not public ("loopback", "private", ...), None when it is. IPv4 addresses carried in
    IPv6 ones (mapped, 6to4, Teredo, NAT64) are judged as the IPv4 address they lead to."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return address_class(embedded)
    for name, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return name
    return None if ip.is_global else "non-public"


def split_host_port(host: str, default_port: int) -> tuple[str, int]:
    """`host[:port]` (IPv6 in brackets) as (host in lower case without brackets, port)."""
    text = host.strip().lower()
    if text.startswith("["):
        name, _, rest = text[1:].partition("]")
        return name, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else default_port
    name, sep, port = text.rpartition(":")
    if sep and port.isdigit():
        return name, int(port)
    return text, default_port


@dataclass(frozen=True)
class Egress:
    """Where the registry client may connect: any public address, and any address at all for the hosts
    (name, port) explicitly configured."""

    configured: frozenset[tuple[str, int]] = frozenset()

    @classmethod
    def for_registries(cls, access: RegistryAccess) -> Egress:
        return cls(frozenset(split_host_port(r.host, 80 if r.insecure else 443) for r in access.registries))

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of `host` to connect to, every one checked: EgressRefused when any is not public
        and the host is not configured (a name with one bad address among good ones is refused whole: the
        next resolution could pick the bad one). socket.gaierror when the name does not resolve."""
        name = host.strip("[]").lower().rstrip(".")
        found: list[str] = []
        for *_, sockaddr in socket.getaddrinfo(name, port, type=socket.SOCK_STREAM):
            address = str(sockaddr[0]).split("%")[0]
            if address not in found:
                found.append(address)
        if (name, port) in self.configured:
            return found
        for address in found:
            why = address_class(ipaddress.ip_address(address))
            if why is not None:
                raise EgressRefused(
                    f"refused to connect to {name}:{port}: it resolves to {address}, a {why} address, and only "
                    "configured registries may be reached at non-public addresses"
                )
        return found


def _connect(conn: HTTPConnection, egress: Egress) -> socket.socket:
    """urllib3's `_new_conn`, resolving through `egress` and connecting to the checked address itself."""
    try:
        addresses = egress.addresses(conn._dns_host, conn.port)
    except socket.gaierror as err:
        raise NameResolutionError(conn.host, conn, err) from err
    error: OSError | None = None
    for address in addresses:
        try:
            return connection.create_connection(
                (address, conn.port),
                conn.timeout,
                source_address=conn.source_address,
                socket_options=conn.socket_options,
            )
        except TimeoutError as err:
            raise ConnectTimeoutError(conn, f"Connection to {conn.host} timed out. (timeout={conn.timeout})") from err
        except OSError as err:
            error = err
    raise NewConnectionError(conn, f"Failed to establish a new connection: {error}")


def _pool_classes(egress: Egress) -> dict[str, type[HTTPConnectionPool]]:
    class CheckedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _connect(self, egress)

    class CheckedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _connect(self, egress)

    class CheckedHTTPPool(HTTPConnectionPool):
        ConnectionCls = CheckedHTTPConnection

    class CheckedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = CheckedHTTPSConnection

    return {"http": CheckedHTTPPool, "https": CheckedHTTPSPool}


class _CheckedAdapter(HTTPAdapter):
    def __init__(self, egress: Egress) -> None:
        self._pools = _pool_classes(egress)  # before super().__init__, which makes the pool manager
        # No retries and no redirects at this level: azure-core's pipeline retries and redirects (and drops
        # the Authorization header when it does), as with its own adapter.
        super().__init__(max_retries=Retry(total=False, redirect=False, raise_on_status=False))

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        raise EgressRefused("registry connections are made directly, never through a proxy")


def egress_session(egress: Egress) -> requests.Session:
    """A requests session whose every connection goes through `egress`."""
    session = requests.Session()
    session.trust_env = False
    adapter = _CheckedAdapter(egress)
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    return session
