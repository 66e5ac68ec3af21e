"""The registry client's address checks: which addresses count as public, and that a connection goes only to
a checked address (loopback listeners only; every other address is judged without connecting)."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from scanner.image.egress import Egress, EgressRefused, address_class, egress_session, split_host_port
from scanner.image.reference import parse_registry_reference
from scanner.image.registry import RegistrySource
from scanner.image.registry_options import Registry, RegistryAccess, RegistryOptions
from scanner.model.errors import RegistryError
from tests.security.registry_fakes import sink


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
        ("127.0.0.1", "loopback"),
        ("127.5.6.7", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("192.0.2.1", "private"),  # documentation range
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:a00:1::1", "private"),  # 6to4 of 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("64:ff9b::808:808", None),  # NAT64 of 8.8.8.8
    ],
)
def test_which_addresses_are_public(address: str, why: str | None) -> None:
    assert address_class(ipaddress.ip_address(address)) == why


def test_host_and_port_of_a_registry() -> None:
    assert split_host_port("Reg.Example", 443) == ("reg.example", 443)
    assert split_host_port("reg.example:5000", 443) == ("reg.example", 5000)
    assert split_host_port("[::1]:5000", 443) == ("::1", 5000)
    assert split_host_port("[::1]", 80) == ("::1", 80)


def test_only_configured_hosts_may_resolve_to_a_private_address() -> None:
    egress = Egress.for_registries(
        RegistryAccess((Registry("127.0.0.1:5000", insecure=True), Registry("localhost"), Registry("[::1]:6000")))
    )
    assert egress.addresses("127.0.0.1", 5000) == ["127.0.0.1"]
    assert "127.0.0.1" in egress.addresses("localhost", 443)
    assert egress.addresses("::1", 6000) == ["::1"]
    # The same host on another port, or over the other scheme's default port, is not what was configured.
    for host, port in (("127.0.0.1", 5001), ("localhost", 80), ("127.0.0.2", 5000)):
        with pytest.raises(EgressRefused, match="a loopback address, and only configured registries"):
            egress.addresses(host, port)


def test_a_refused_address_gets_no_connection() -> None:
    with sink() as found:
        port = found.host.split(":")[1]
        session = egress_session(Egress())
        for url in (f"http://127.0.0.1:{port}/v2/", f"http://localhost:{port}/v2/", f"https://127.0.0.1:{port}/"):
            with pytest.raises(EgressRefused):
                session.get(url, timeout=5)
        # Configured, the same listener is reached (through the checked address).
        allowed = egress_session(Egress(frozenset({("127.0.0.1", int(port))})))
        assert allowed.get(f"http://127.0.0.1:{port}/v2/", timeout=5).status_code == 401
    assert found.connections == 1


def test_environment_proxies_and_netrc_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    with sink() as proxy, sink() as registry:
        monkeypatch.setenv("HTTP_PROXY", f"http://{proxy.host}")
        monkeypatch.setenv("http_proxy", f"http://{proxy.host}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        host, port = registry.host.split(":")
        session = egress_session(Egress(frozenset({(host, int(port))})))
        assert session.get(f"http://{registry.host}/v2/", timeout=5).status_code == 401
        with pytest.raises(EgressRefused, match="never through a proxy"):
            session.get(f"http://{registry.host}/v2/", proxies={"http": f"http://{proxy.host}"}, timeout=5)
    assert (proxy.connections, registry.connections) == (0, 1)


def test_a_name_that_does_not_resolve_is_a_registry_that_cannot_be_reached() -> None:
    with pytest.raises(socket.gaierror):
        Egress().addresses("no-such-host.invalid", 443)
    options = RegistryOptions(RegistryAccess((Registry("no-such-host.invalid"),)), retries=0)
    source = RegistrySource(parse_registry_reference("no-such-host.invalid/app:1"), options)
    try:
        with pytest.raises(RegistryError, match=r"^no-such-host.invalid/app:1: manifest: cannot reach the registry"):
            source.root()
    finally:
        source.close()
