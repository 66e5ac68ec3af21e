"""Run inside the sandbox instead of the scanner: each mode tries one thing and prints what happened.

Standard library only; exit 0 with a one-word verdict on stdout, so the tests read plain results.
"""

from __future__ import annotations

import os
import socket
import sys
import time


def main(mode: str, *args: str) -> int:
    if mode == "connect":  # the TCP server the test runs on the host's 127.0.0.1
        try:
            with socket.create_connection((args[0], int(args[1])), timeout=3) as conn:
                conn.sendall(b"escaped")
        except OSError as exc:
            print(f"blocked {type(exc).__name__}: {exc}")
            return 0
        print("connected")
        return 0
    if mode == "env":
        for key, value in sorted(os.environ.items()):
            print(f"{key}={value}")
        return 0
    if mode == "write":
        try:
            with open(args[0], "w") as out:
                out.write("x")
        except OSError as exc:
            print(f"denied {exc.errno}")
            return 0
        print("written")
        return 0
    if mode == "uid":
        print(f"{os.getuid()} {os.geteuid()} {os.getgid()}")
        return 0
    if mode == "status":
        with open("/proc/self/status") as status:
            sys.stdout.write(status.read())
        return 0
    if mode == "memory":  # allocate and touch N MiB
        block = bytearray(int(args[0]) * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
        print("allocated")
        return 0
    if mode == "sleep":
        print(os.getpid(), flush=True)
        time.sleep(float(args[0]))
        print("woke")
        return 0
    if mode == "fork-sleep":  # a grandchild in its own session must die with the sandbox too
        if os.fork() == 0:
            os.setsid()
            time.sleep(float(args[0]))
            os._exit(0)
        time.sleep(float(args[0]))
        return 0
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
