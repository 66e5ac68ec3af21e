"""skopeo-style references."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.image.reference import LocalReference, RegistryReference, parse_reference
from scanner.model.errors import ReferenceError_


@pytest.mark.parametrize(
    "text,expected",
    [
        ("myreg.azurecr.io/samples/nginx:1.25", RegistryReference("myreg.azurecr.io", "samples/nginx", "1.25")),
        ("127.0.0.1:5000/app", RegistryReference("127.0.0.1:5000", "app", "latest")),
        ("localhost/a/b@sha256:" + "a" * 64, RegistryReference("localhost", "a/b", "", "sha256:" + "a" * 64)),
        (
            "docker://reg.example:443/x:v1@sha256:" + "b" * 64,
            RegistryReference("reg.example:443", "x", "v1", "sha256:" + "b" * 64),
        ),
        ("alpine:3.19", RegistryReference("docker.io", "library/alpine", "3.19")),
        ("oci:/some/layout:v2", LocalReference("oci", "/some/layout", "v2")),
        ("oci-archive:/x.tar", LocalReference("oci-archive", "/x.tar")),
        ("docker-archive:/x.tar:repo/name:tag", LocalReference("docker-archive", "/x.tar", "repo/name:tag")),
        ("dir:/rootfs", LocalReference("dir", "/rootfs")),
    ],
)
def test_parse(text: str, expected: object) -> None:
    assert parse_reference(text) == expected


def test_existing_path_with_colon_is_taken_whole(tmp_path: Path) -> None:
    odd = tmp_path / "a:b.tar"
    odd.write_bytes(b"")
    assert parse_reference(f"docker-archive:{odd}") == LocalReference("docker-archive", str(odd))


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "empty"),
        ("reg.io/app:bad tag", "invalid tag"),
        ("reg.io/App/x", "invalid repository component 'App'"),
        ("reg.io/app@sha256:123", "invalid digest"),
        ("oci:", "needs a path"),
    ],
)
def test_rejects(text: str, message: str) -> None:
    with pytest.raises(ReferenceError_, match=message):
        parse_reference(text)
