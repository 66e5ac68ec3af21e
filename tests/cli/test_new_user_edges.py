"""What a new user trips over on the command line: each mistake is one line naming what was wrong, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "alpine-3.10-app.tar"


def test_no_arguments_print_the_usage() -> None:
    done = subprocess.run([sys.executable, "-m", "scanner"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: acrguard") and "scan" in done.stderr and "serve" in done.stderr


@pytest.mark.parametrize("port", ["99999", "65536", "-1", "x"])
def test_serve_refuses_ports_out_of_range(acrguard: Any, port: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        acrguard("serve", "--port", port)
    assert exit_.value.code == 2


def test_a_port_error_is_one_line_naming_the_port() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scanner", "serve", "--port", "99999"], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr) == (
        2,
        "acrguard: argument --port: 99999 is not a port number (1-65535, or 0: any free port)\n",
    )


def test_a_bare_path_is_not_pulled_from_a_registry(acrguard: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "image.tar").write_bytes(SAMPLE.read_bytes())
    run = acrguard("scan", "image.tar")
    assert run.code == 2
    assert (
        run.err
        == "acrguard: image.tar is a local file: did you mean docker-archive:image.tar or oci-archive:image.tar?\n"
    )
    run = acrguard("sbom", "missing.tar.gz")
    assert run.code == 2 and "(no such file either): did you mean docker-archive:missing.tar.gz" in run.err
    (tmp_path / "layout").mkdir()
    assert "did you mean oci:layout or dir:layout?" in acrguard("sbom", "layout").err


def test_a_platform_the_image_does_not_have_is_refused(acrguard: Any) -> None:
    run = acrguard("sbom", f"docker-archive:{SAMPLE}", "--platform", "linux/arm64")
    assert run.code == 2 and run.out == ""
    assert run.err.endswith("the image is linux/amd64, not linux/arm64 (--platform); it has no other platform\n")
    assert acrguard("sbom", f"docker-archive:{SAMPLE}", "--platform", "linux/amd64").code == 0


def test_an_output_file_that_cannot_be_written_is_one_line_without_exception_names(acrguard: Any) -> None:
    run = acrguard("sbom", f"docker-archive:{SAMPLE}", "-o", "/nonexistent/dir/out.json")
    assert (run.code, run.err) == (2, "acrguard: /nonexistent/dir/out.json: no such file or directory\n")


def test_counts_are_in_words(acrguard: Any) -> None:
    run = acrguard("sbom", f"docker-archive:{SAMPLE}:@3")
    assert run.err.endswith("archive holds 1 image, no @3\n")


def test_importing_a_file_with_no_records_fails(acrguard: Any, tmp_path: Path) -> None:
    bogus = tmp_path / "not-an-advisory.json"
    bogus.write_text(json.dumps({"hello": "world"}))
    db = tmp_path / "vulndb.sqlite"
    run = acrguard("db", "import", str(bogus), "--db", str(db))
    assert run.code == 2
    assert f"acrguard: {bogus}: no advisory, CVE, KEV or EPSS records in it (1 file skipped" in run.err
    assert not db.with_name("vulndb.sqlite.lock").exists()


def test_db_commands_leave_no_lock_file_behind(acrguard: Any, tmp_path: Path) -> None:
    db = tmp_path / "vulndb.sqlite"
    kev = ROOT / "tests" / "fixtures" / "kev" / "known_exploited_vulnerabilities.json"
    assert acrguard("db", "import", str(kev), "--db", str(db)).code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vulndb.sqlite"]
    # A failed update (nothing listens on the mirror) leaves the database and no lock file.
    env = {"ACRGUARD_KEV_URL": "http://127.0.0.1:9/kev.json", "ACRGUARD_EPSS_URL": "http://127.0.0.1:9/epss.csv.gz"}
    done = subprocess.run(
        [sys.executable, "-m", "scanner", "db", "update", "--db", str(db), "--feed", "kev"],
        capture_output=True, text=True, timeout=120, env={**os.environ, **env}, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vulndb.sqlite"]
