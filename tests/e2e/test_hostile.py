"""Hostile input: every file of the hostile corpus, and attacks synthesised here, gives either a
contained result or exit 2 with one line naming the layer and member — and nothing is written outside
the scratch area."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
import zstandard

from tests.e2e.conftest import FIXTURES, assert_nothing_escaped, one_line_error
from tests.ocibuild import Entry, Image, Layer, layer_tar, sha, write_layout

HOSTILE = FIXTURES / "hostile"
RAW_LAYERS = {
    "scalibr-unpack/escape.tar",
    "claircore-tarfs/bad_name.tar",
    "claircore-tarfs/concat.tar",
    "claircore-tarfs/known/oddlayer.tar",
    "zip-slip/zip-slip-win.tar",
    "zip-slip/zip-slip.tar",
    "fanal/opq.tar",
    "fanal/opq2.tar",
    "fanal/osreleaselink.tar",
}
ERRORS = {  # archive-level problems: exit 2, one line, this text
    "scalibr-layerscanning/empty.tar": "no manifest.json",
    "ggcr/tarball/no_manifest.tar": "no manifest.json",
    "ggcr/tarball/null_manifest.tar": "manifest.json is not a non-empty list",
    "ggcr/tarball/test_link.tar": "archive holds 2 images",
}
CORPUS = sorted(str(p.relative_to(HOSTILE)) for p in HOSTILE.rglob("*.tar"))


def wrap(tmp: Path, *layers: bytes, name: str = "layout") -> str:
    write_layout(tmp / name, [Image([Layer(b, "none" if b[:2] != b"\x1f\x8b" else "gzip") for b in layers])])
    return f"oci:{tmp / name}"


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_file_is_contained_or_rejected_in_one_line(acrguard: Any, sandbox: Path, name: str) -> None:
    path = HOSTILE / name
    ref = wrap(sandbox, path.read_bytes()) if name in RAW_LAYERS else f"docker-archive:{path}"
    run = acrguard("sbom", ref)
    if name in ERRORS:
        assert ERRORS[name] in one_line_error(run)
    else:
        assert run.code == 0, run.err
        doc = run.json()
        assert doc["status"] in ("Scanned", "Unsupported")
        for warning in doc["warnings"]:
            assert "\n" not in warning and warning.startswith(("layer ", "/"))
    assert_nothing_escaped(sandbox)


def test_zip_slip_member_is_named_in_a_warning(acrguard: Any, sandbox: Path) -> None:
    doc = acrguard("sbom", wrap(sandbox, (HOSTILE / "zip-slip/zip-slip.tar").read_bytes())).json()
    assert any("tmp/evil.txt" in w and "escapes the image root" in w for w in doc["warnings"])


def test_trampoline_escape_stays_inside(acrguard: Any, sandbox: Path) -> None:
    doc = acrguard("sbom", wrap(sandbox, (HOSTILE / "scalibr-unpack/escape.tar").read_bytes())).json()
    # trampoline -> . folds every climb back into the root: /escape names /tmp inside the image.
    assert doc["status"] == "Unsupported"
    assert_nothing_escaped(sandbox)


def test_os_release_through_relative_link(acrguard: Any, sandbox: Path) -> None:
    doc = acrguard("sbom", wrap(sandbox, (HOSTILE / "fanal/osreleaselink.tar").read_bytes())).json()
    assert doc["image"]["os"] is not None and doc["image"]["os"]["id"]


def test_symlink_loop_on_a_wanted_path_is_contained(acrguard: Any, sandbox: Path) -> None:
    layer = layer_tar(
        [
            Entry("etc/os-release", kind=tarfile.SYMTYPE, linkname="/usr/lib/os-release"),
            Entry("usr/lib/os-release", kind=tarfile.SYMTYPE, linkname="../../etc/os-release"),
            Entry("lib", kind=tarfile.SYMTYPE, linkname="lib"),
            Entry("lib/apk/db/installed", b"P:x\nV:1\n"),
        ]
    )
    run = acrguard("sbom", wrap(sandbox, layer))
    doc = run.json()
    assert doc["status"] == "Unsupported"
    assert any("too many levels of symbolic links" in w and "lib/apk/db/installed" in w for w in doc["warnings"])
    assert any(w.startswith("/etc/os-release") for w in doc["warnings"])
    assert_nothing_escaped(sandbox)


def test_devices_fifos_and_hardlink_escapes_are_skipped(acrguard: Any, sandbox: Path) -> None:
    layer = layer_tar(
        [
            Entry("etc/alpine-release", b"3.19.0\n"),
            Entry("dev/sda", kind=tarfile.BLKTYPE, devmajor=8),
            Entry("dev/null", kind=tarfile.CHRTYPE, devmajor=1),
            Entry("run/fifo", kind=tarfile.FIFOTYPE),
            Entry("lib/apk/db/installed", kind=tarfile.LNKTYPE, linkname="../../../../etc/shadow"),
            Entry("etc/passwd-link", kind=tarfile.LNKTYPE, linkname="/etc/passwd"),
        ]
    )
    doc = acrguard("sbom", wrap(sandbox, layer)).json()
    warnings = "\n".join(doc["warnings"])
    assert "member 'dev/sda'" in warnings and "device or fifo" in warnings
    assert "member 'run/fifo'" in warnings
    assert "member 'lib/apk/db/installed'" in warnings and "hard link target escapes" in warnings
    assert doc["image"]["os"]["id"] == "alpine"
    assert_nothing_escaped(sandbox)


def test_hardlink_to_captured_file_keeps_content(acrguard: Any, sandbox: Path) -> None:
    layer = layer_tar(
        [
            Entry("etc/alpine-release", b"3.18.4\n"),
            Entry("usr/lib/os-release", kind=tarfile.LNKTYPE, linkname="etc/alpine-release"),
        ]
    )
    doc = acrguard("sbom", wrap(sandbox, layer)).json()
    assert doc["image"]["os"]["version"] == "3.18.4"


def test_gzip_bomb_layer_is_stopped_by_the_byte_budget(acrguard: Any, sandbox: Path) -> None:
    big = layer_tar([Entry("zeros", b"\0" * 60_000_000)])
    write_layout(sandbox / "g", [Image([Layer(big, "gzip")])])
    run = acrguard("sbom", f"oci:{sandbox / 'g'}", "--limit", "max_total_bytes=20000000")
    line = one_line_error(run)
    assert "decompression bomb" in line and "layer sha256:" in line
    assert_nothing_escaped(sandbox)


def test_zstd_bomb_layer_is_stopped(acrguard: Any, sandbox: Path) -> None:
    big = layer_tar([Entry("zeros", b"\0" * 60_000_000)])
    bomb = zstandard.ZstdCompressor(level=19).compress(big)
    write_layout(sandbox / "z", [Image([Layer(big, "zstd", blob=bomb)])])
    run = acrguard("sbom", f"oci:{sandbox / 'z'}", "--limit", "max_total_bytes=20000000")
    assert "decompression bomb" in one_line_error(run)


def test_member_count_limit(acrguard: Any, sandbox: Path) -> None:
    layer = layer_tar([Entry(f"f{i}", b"") for i in range(50)])
    run = acrguard("sbom", wrap(sandbox, layer), "--limit", "max_members=20")
    assert "more than 20 tar members" in one_line_error(run)


def test_oversized_wanted_file_is_not_read(acrguard: Any, sandbox: Path) -> None:
    layer = layer_tar([Entry("etc/alpine-release", b"3.19.0\n"), Entry("lib/apk/db/installed", b"P:a\nV:1\n" * 100)])
    doc = acrguard("sbom", wrap(sandbox, layer), "--limit", "max_file_size=100").json()
    assert any("over max_file_size" in w and "lib/apk/db/installed" in w for w in doc["warnings"])
    assert doc["packages"] == []


def test_truncated_gzip_layer_names_the_layer(acrguard: Any, sandbox: Path) -> None:
    blob = gzip.compress(layer_tar([Entry("etc/alpine-release", b"3.19.0\n" * 5000)]))[:-40]
    tar = layer_tar([Entry("x", b"")])
    write_layout(sandbox / "t", [Image([Layer(tar, "gzip", blob=blob, diff_id=sha(tar))])])
    line = one_line_error(acrguard("sbom", f"oci:{sandbox / 't'}"))
    assert f"layer {sha(blob)}" in line and "truncated" in line


def test_truncated_tar_inside_valid_gzip(acrguard: Any, sandbox: Path) -> None:
    tar = layer_tar([Entry("etc/alpine-release", b"3.19.0\n" * 5000)])[:3000]
    write_layout(sandbox / "t", [Image([Layer(tar, "gzip")])])
    line = one_line_error(acrguard("sbom", f"oci:{sandbox / 't'}"))
    assert "not a valid tar stream" in line and "etc/alpine-release" in line


def test_manifest_pointing_to_missing_blob(acrguard: Any, sandbox: Path) -> None:
    layer = Layer(layer_tar([Entry("a", b"1")]))
    write_layout(sandbox / "m", [Image([layer], omit_blobs={sha(layer.blob)})])
    line = one_line_error(acrguard("sbom", f"oci:{sandbox / 'm'}"))
    assert f"layer {sha(layer.blob)}: missing from the layout" in line and "oci:" in line


def test_blob_digest_and_size_mismatch(acrguard: Any, sandbox: Path) -> None:
    layer = Layer(layer_tar([Entry("a", b"1")]))
    tampered = Layer(layer.tar, blob=layer.blob, declared_digest="sha256:" + "1" * 64)
    write_layout(sandbox / "d", [Image([tampered], extra_blobs={"sha256:" + "1" * 64: layer.blob})])
    assert "does not match sha256:1111" in one_line_error(acrguard("sbom", f"oci:{sandbox / 'd'}"))
    lying = Layer(layer.tar, blob=layer.blob, declared_size=len(layer.blob) + 7)
    write_layout(sandbox / "s", [Image([lying])])
    assert "the manifest declares" in one_line_error(acrguard("sbom", f"oci:{sandbox / 's'}"))


def test_diff_id_mismatch_is_rejected(acrguard: Any, sandbox: Path) -> None:
    tar = layer_tar([Entry("a", b"1")])
    write_layout(sandbox / "x", [Image([Layer(tar, diff_id="sha256:" + "2" * 64)])])
    assert "does not match diff_id" in one_line_error(acrguard("sbom", f"oci:{sandbox / 'x'}"))


def test_two_tars_concatenated_with_end_markers(acrguard: Any, sandbox: Path) -> None:
    first = layer_tar([Entry("etc/alpine-release", b"3.19.0\n")])
    hidden = layer_tar([Entry("lib/apk/db/installed", b"P:hidden\nV:1\n")])
    doc = acrguard("sbom", wrap(sandbox, first + hidden)).json()
    # As Go's archive/tar (and so Docker) stops at the first end-of-archive, so do we, and say so.
    assert doc["packages"] == []
    assert any("data after the end of the tar archive" in w for w in doc["warnings"])


def test_non_utf8_member_names_are_printable_in_output(acrguard: Any, sandbox: Path) -> None:
    doc = acrguard("sbom", wrap(sandbox, (HOSTILE / "claircore-tarfs/bad_name.tar").read_bytes())).json()
    assert doc["status"] == "Unsupported"


def test_bad_references_and_paths(acrguard: Any, sandbox: Path) -> None:
    assert "no such file or directory" in one_line_error(acrguard("sbom", "oci:/nonexistent/layout"))
    assert "invalid tag" in one_line_error(acrguard("sbom", "127.0.0.1:1/repo:bad tag!"))
    assert "unknown limit" in one_line_error(acrguard("sbom", "oci:/x", "--limit", "nope=1"))
    not_tar = sandbox / "cwd" / "junk.tar"
    not_tar.write_bytes(os.urandom(4096))
    assert "not a readable tar archive" in one_line_error(acrguard("sbom", f"docker-archive:{not_tar}"))
    not_tar.unlink()


def test_oversized_pax_header_is_refused_in_one_line(acrguard: Any, sandbox: Path) -> None:
    """A 64 MiB pax record (a few hundred KB of gzip) would be read into memory whole by tarfile."""
    info = tarfile.TarInfo("etc/alpine-release")
    info.size = 7
    info.pax_headers = {"comment": "x" * (64 << 20)}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(b"3.19.0\n"))
    tar_bytes = out.getvalue()
    write_layout(sandbox / "p", [Image([Layer(tar_bytes, "gzip", blob=gzip.compress(tar_bytes, 1))])])
    line = one_line_error(acrguard("sbom", f"oci:{sandbox / 'p'}"))
    assert "not a valid tar stream" in line and "tar header records over 1048576 bytes" in line
    assert_nothing_escaped(sandbox)
