"""`db import` and `db update` show what they are doing on a terminal (a pseudo-terminal here), nothing
otherwise; downloads report their bytes against the Content-Length."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from scanner.vulndb.download import DOWNLOAD_PROGRESS, fetch
from tests.httpserving import serving

ROOT = Path(__file__).resolve().parents[2]
KEV = ROOT / "tests" / "fixtures" / "kev" / "known_exploited_vulnerabilities.json"
EPSS = ROOT / "tests" / "fixtures" / "epss" / "epss_scores-2026-09-29.csv"


def _on_terminal(args: list[str]) -> tuple[int, str, str]:
    """Runs acrguard with stderr on a pseudo-terminal; (exit code, stdout, what the terminal showed)."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "160", "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", *args], stdout=subprocess.PIPE, stderr=slave, cwd=ROOT, env=env, text=True
    )
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    out = proc.stdout.read() if proc.stdout else ""
    os.close(master)
    return proc.wait(timeout=120), out, shown.decode(errors="replace")


def test_import_shows_each_source_on_a_terminal(tmp_path: Path) -> None:
    code, out, shown = _on_terminal(["db", "import", str(KEV), str(EPSS), "--db", str(tmp_path / "v.sqlite")])
    assert code == 0 and "13 records" in out
    assert "importing 1/2" in shown and "importing 2/2" in shown


def test_nothing_is_drawn_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scanner", "db", "import", str(KEV), "--db", str(tmp_path / "v.sqlite")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and done.stderr == ""


def test_downloads_report_their_bytes(tmp_path: Path) -> None:
    body = KEV.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    seen: list[tuple[int, int | None]] = []
    token = DOWNLOAD_PROGRESS.set(lambda _url, done, total: seen.append((done, total)))
    try:
        with serving(Handler) as url, fetch(f"{url}/kev.json", tmp_path) as got:
            assert got.size == len(body)
    finally:
        DOWNLOAD_PROGRESS.reset(token)
    assert seen and seen[-1] == (len(body), len(body))


def test_a_scan_draws_its_layer_bar_on_stderr_while_stdout_is_piped() -> None:
    code, out, shown = _on_terminal(["sbom", f"docker-archive:{ROOT / 'samples' / 'alpine-3.10-app.tar'}"])
    assert code == 0 and out.startswith("{")  # the SBOM, unmixed
    assert "layers" in shown
