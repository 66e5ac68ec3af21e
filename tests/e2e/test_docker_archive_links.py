"""`docker save` archives whose layer.tar members are links, built here with tarfile: Docker before 25 wrote
a repeated layer once and a symlink (`../<id>/layer.tar`) in every other directory holding it; tar writers
may store a repeat as a hard link. Both are followed to the content they name; a link leading outside the
archive is refused in one line, never reinterpreted as a member."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import assert_nothing_escaped, one_line_error
from tests.ocibuild import Entry, layer_tar, sha

OS_RELEASE = b'ID=alpine\nVERSION_ID=3.10.1\nPRETTY_NAME="Alpine Linux v3.10"\n'
# Layer A installs musl 1.1.22-r2; layer B upgrades it and adds zlib; A again (the repeat) puts A's database
# back, so the image holds musl 1.1.22-r2 alone, attributed to the third layer. A link read as anything but
# A's bytes would change that.
LAYER_A = layer_tar(
    [
        Entry("etc/alpine-release", b"3.10.1\n"),
        Entry("etc/os-release", OS_RELEASE),
        Entry("lib/apk/db/installed", b"P:musl\nV:1.1.22-r2\nA:x86_64\no:musl\n\n"),
    ]
)
LAYER_B = layer_tar(
    [Entry("lib/apk/db/installed", b"P:musl\nV:1.1.22-r3\nA:x86_64\no:musl\n\nP:zlib\nV:1.2.11-r1\nA:x86_64\n\n")]
)
ID_A, ID_B, ID_REPEAT = "a" * 64, "b" * 64, "c" * 64


def _file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _link(tar: tarfile.TarFile, name: str, kind: bytes, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    tar.addfile(info)


def docker_save(path: Path, repeat: tuple[bytes, str] | None, extra: dict[str, bytes] | None = None) -> Path:
    """A legacy `docker save` archive of the image A, B, A: its third layer.tar is a link (`repeat`: kind
    and target) or, without one, a copy of A's."""
    layers = [f"{ID_A}/layer.tar", f"{ID_B}/layer.tar", f"{ID_REPEAT}/layer.tar"]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha(LAYER_A), sha(LAYER_B), sha(LAYER_A)]},
            "history": [{"created_by": "A"}, {"created_by": "B"}, {"created_by": "A again"}],
        }
    ).encode()
    config_name = sha(config).split(":")[1] + ".json"
    manifest = [{"Config": config_name, "RepoTags": ["test/links:1"], "Layers": layers}]
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (extra or {}).items():
            _file(tar, name, data)
        _file(tar, layers[0], LAYER_A)
        _file(tar, layers[1], LAYER_B)
        if repeat is None:
            _file(tar, layers[2], LAYER_A)
        else:
            _link(tar, layers[2], *repeat)
        _file(tar, config_name, config)
        _file(tar, "manifest.json", json.dumps(manifest).encode())
    return path


def packages(run: Any) -> list[tuple[str, str, int, str]]:
    assert run.code == 0, run.err
    return sorted((p["name"], p["version"], p["layer"]["index"], p["layer"]["diff_id"]) for p in run.json()["packages"])


EXPECTED = [("musl", "1.1.22-r2", 2, sha(LAYER_A))]


def test_a_copied_repeat_is_the_baseline(acrguard: Any, tmp_path: Path) -> None:
    assert packages(acrguard("sbom", f"docker-archive:{docker_save(tmp_path / 'copy.tar', None)}")) == EXPECTED


@pytest.mark.parametrize(
    "repeat",
    [
        (tarfile.SYMTYPE, f"../{ID_A}/layer.tar"),  # as Docker wrote them
        (tarfile.SYMTYPE, f"./../{ID_B}/../{ID_A}/./layer.tar"),  # the same place, the long way round
        (tarfile.LNKTYPE, f"{ID_A}/layer.tar"),  # a hard link names its target from the archive's root
    ],
    ids=["symlink", "winding-symlink", "hard-link"],
)
def test_a_linked_repeat_reads_the_layer_it_names(acrguard: Any, tmp_path: Path, repeat: tuple[bytes, str]) -> None:
    archive = docker_save(tmp_path / "linked.tar", repeat)
    assert packages(acrguard("sbom", f"docker-archive:{archive}")) == EXPECTED


def test_a_symlink_to_a_symlink_is_followed(acrguard: Any, tmp_path: Path) -> None:
    # The repeat links to a link in another directory, which links to A's layer.
    archive = docker_save(tmp_path / "chain.tar", (tarfile.SYMTYPE, "../d/layer.tar"))
    with tarfile.open(archive, "a") as tar:
        _link(tar, "d/layer.tar", tarfile.SYMTYPE, f"../{ID_A}/layer.tar")
    assert packages(acrguard("sbom", f"docker-archive:{archive}")) == EXPECTED


@pytest.mark.parametrize(
    "repeat",
    [
        (tarfile.SYMTYPE, "/etc/passwd"),
        (tarfile.SYMTYPE, "../../etc/passwd"),
        # Would land on a member if the climb above the root were ignored: refused all the same.
        (tarfile.SYMTYPE, f"../../{ID_A}/layer.tar"),
        (tarfile.LNKTYPE, f"../{ID_A}/layer.tar"),
        (tarfile.LNKTYPE, "/etc/passwd"),
    ],
    ids=["absolute", "climbing", "climbing-onto-a-member", "hard-link-climbing", "hard-link-absolute"],
)
def test_a_link_leading_outside_the_archive_is_refused(acrguard: Any, sandbox: Path, repeat: tuple[bytes, str]) -> None:
    archive = docker_save(sandbox / "hostile.tar", repeat, extra={"etc/passwd": b"root:x:0:0::/root:/bin/sh\n"})
    line = one_line_error(acrguard("sbom", f"docker-archive:{archive}"))
    assert f"member {ID_REPEAT}/layer.tar links outside the archive ({repeat[1]})" in line, line
    assert_nothing_escaped(sandbox)


def test_a_link_loop_is_refused(acrguard: Any, sandbox: Path) -> None:
    archive = docker_save(sandbox / "loop.tar", (tarfile.SYMTYPE, "../d/layer.tar"))
    with tarfile.open(archive, "a") as tar:
        _link(tar, "d/layer.tar", tarfile.SYMTYPE, f"../{ID_REPEAT}/layer.tar")
    line = one_line_error(acrguard("sbom", f"docker-archive:{archive}"))
    assert f"member {ID_REPEAT}/layer.tar: too many links" in line, line
    assert_nothing_escaped(sandbox)
