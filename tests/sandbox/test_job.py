"""End to end: `acrguard job` (fetch here, parse in the real bubblewrap) against `acrguard sbom`."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from scanner.cli.job import main as job_main
from scanner.cli.main import main as acrguard_main
from tests import ocibuild
from tests.integration import realparts

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ARCHIVE = f"docker-archive:{FIXTURES / 'images' / 'fanal' / 'image3_gz_layers.tar'}"
APK_DB = b"P:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n\nP:busybox\nV:1.36.1-r5\nA:x86_64\no:busybox\n\n"
OS_RELEASE = b'ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n'


def run(entry: Any, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = entry(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def sbom(capsys: pytest.CaptureFixture[str], image: str, *extra: str) -> Any:
    code, out, err = run(acrguard_main, capsys, "sbom", image, "--format", "json", "--progress", "never", *extra)
    assert code == 0, err
    return json.loads(out)


def small_layout(root: Path) -> Path:
    layer = ocibuild.layer_tar(
        [ocibuild.Entry("etc/os-release", OS_RELEASE), ocibuild.Entry("lib/apk/db/installed", APK_DB)]
    )
    return ocibuild.write_layout(root, [ocibuild.Image([ocibuild.Layer(layer)])])


def test_job_on_an_image_archive_equals_sbom(bwrap: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(job_main, capsys, "job", ARCHIVE)
    assert code == 0, err
    assert json.loads(out) == sbom(capsys, ARCHIVE)
    assert json.loads(out)["packages"]


def test_job_on_a_real_registry_equals_sbom(bwrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = small_layout(tmp_path / "layout")
    try:
        with realparts.running_registry(tmp_path / "registry") as registry:
            realparts.run(
                ["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:latest", f"docker://{registry.host}/app:1"]
            )
            image = f"{registry.host}/app:1"
            code, out, err = run(job_main, capsys, "job", image, "--insecure")
            assert code == 0, err
            expected = sbom(capsys, image, "--insecure")
    except realparts.RealPartsError as exc:
        pytest.fail(f"real parts: {exc}", pytrace=False)
    doc = json.loads(out)
    assert doc == expected
    assert doc["image"]["reference"] == image and doc["image"]["digest"].startswith("sha256:")
    assert {p["name"] for p in doc["packages"]} == {"musl", "busybox"}


def test_registry_down_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    host = f"127.0.0.1:{realparts.closed_port()}"
    code, out, err = run(job_main, capsys, "job", f"{host}/app:1", "--insecure", "--limit", "max_blob_size=1000000")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("acrguard: fetch: ") and host in err


def test_gzip_bomb_stops_in_the_sandbox_with_one_line(
    bwrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tar = ocibuild.layer_tar([ocibuild.Entry("etc/os-release", OS_RELEASE), ocibuild.Entry("zeros", bytes(48 << 20))])
    layer = ocibuild.Layer(tar, blob=gzip.compress(tar, compresslevel=9, mtime=0))
    layout = ocibuild.write_layout(tmp_path / "bomb", [ocibuild.Image([layer])])
    code, out, err = run(job_main, capsys, "job", f"oci:{layout}", "--limit", "max_total_bytes=8388608")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "max_total_bytes" in err and err.startswith("acrguard: sandbox: ")


def test_memory_limit_ends_the_job_with_one_line(bwrap: str, capsys: pytest.CaptureFixture[str]) -> None:
    # 30 MB of address space is below what the scanner needs to parse any image (it needs about 50 MB).
    code, out, err = run(job_main, capsys, "job", ARCHIVE, "--job-limit", "memory_bytes=30000000")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "memory" in err, err


def test_runner_none_gives_the_same_inventory(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(job_main, capsys, "job", ARCHIVE, "--runner", "none")
    assert code == 0, err
    assert json.loads(out) == sbom(capsys, ARCHIVE)
