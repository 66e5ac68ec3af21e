"""Ports of the servers the tests start, without the race of picking a free port and binding it later.

A server told to listen on port 0 gets a port from the kernel that nobody else can take; the port it got is
read back from /proc (the listening sockets the process holds), so it is that server's and no other's.
`closed_port` keeps its socket bound (never listening): connections are refused, and nothing else can
start listening there while the test runs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's `st` column
_HELD: list[socket.socket] = []  # the sockets behind `closed_port`, bound until the test process ends


def listening_ports(pid: int) -> set[int]:
    """The TCP ports the process `pid` listens on (IPv4 and IPv6), from its fds and /proc/PID/net/tcp*."""
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    except OSError:
        return set()
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == _LISTEN and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def wait_listening(
    process: subprocess.Popen[bytes], what: str, context: Callable[[], str] = str, timeout: float = 120
) -> int:
    """The one port `process` listens on, once it does; fails naming `what` (and `context()`) if the process
    exits first, or after a generous `timeout` (a bound against hanging, not a speed requirement)."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited {process.returncode} before listening: {context()}")
        ports = listening_ports(process.pid)
        if len(ports) == 1:
            return ports.pop()
        if len(ports) > 1:
            raise AssertionError(f"{what} listens on several ports {sorted(ports)}; expected one: {context()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not listen within {timeout:.0f} s: {context()}")
        time.sleep(0.02)


def closed_port() -> int:
    """A port on 127.0.0.1 that refuses connections for as long as the tests run: its socket stays bound
    without listening, so no other process can take the port and answer in its place."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    _HELD.append(sock)
    port: int = sock.getsockname()[1]
    return port
