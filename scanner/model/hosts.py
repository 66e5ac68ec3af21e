"""What a host name says about where it is (pure): loopback hosts are this machine, where test stand-ins and local
mirrors may speak plain HTTP."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """`localhost`, or a loopback address (127.0.0.0/8, ::1); never a name that might resolve elsewhere."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
