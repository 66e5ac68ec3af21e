"""Files wanted only by name are kept only when they start with their detectors' magic: an image full of
extensionless files that are no binaries (data, scripts) must not fill the capture budget and fail the scan,
now that Go binaries are looked for anywhere."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

from tests.inventory.detectors.test_golang import UMOCI_BUILDINFO, elf
from tests.ocibuild import Entry, Image, Layer, layer_tar, write_layout

CAPTURE_BOUND = 1_000_000


def _image(tmp_path: Path, *entries: Entry) -> str:
    layout = write_layout(tmp_path / "layout", [Image([Layer(layer_tar(list(entries)), compression="none")])])
    return f"oci:{layout}"


def test_extensionless_data_is_not_captured_and_the_go_binary_still_is(acrguard: Any, tmp_path: Path) -> None:
    # Three 600 kB extensionless files that are not ELF: over the capture bound together, were they kept.
    data = [Entry(f"opt/data/blob{i}", bytes([65 + i]) * 600_000) for i in range(3)]
    image = _image(tmp_path, *data, Entry("opt/app/bin/server", elf(UMOCI_BUILDINFO), mode=0o755))
    run = acrguard("sbom", image, "--format", "json", "--limit", f"max_captured_bytes={CAPTURE_BOUND}")
    assert run.code == 0, run.err
    packages = json.loads(run.out)["packages"]
    assert {p["locations"][0] for p in packages} == {"/opt/app/bin/server"}
    assert {p["evidence"] for p in packages} == {"binary"}


def test_an_elf_file_over_the_capture_bound_still_stops_the_scan(acrguard: Any, tmp_path: Path) -> None:
    # The bound itself still holds for what is kept: ELF files are captured and counted.
    binaries = [Entry(f"opt/app/bin/tool{i}", elf(UMOCI_BUILDINFO) + b"\0" * 600_000) for i in range(3)]
    run = acrguard("sbom", _image(tmp_path, *binaries), "--limit", f"max_captured_bytes={CAPTURE_BOUND}")
    assert run.code != 0
    assert "max_captured_bytes" in run.err


def test_a_hard_link_to_a_file_without_the_magic_is_no_warning(acrguard: Any, tmp_path: Path) -> None:
    # Debian's /usr/bin/uncompress is a hard link to the gunzip shell script: neither is a program to read.
    script = Entry("usr/bin/gunzip", b'#!/bin/sh\nexec gzip -d "$@"\n', mode=0o755)
    link = Entry("usr/bin/uncompress", kind=tarfile.LNKTYPE, linkname="usr/bin/gunzip")
    run = acrguard("sbom", _image(tmp_path, script, link), "--format", "json")
    assert run.code == 0, run.err
    assert json.loads(run.out)["warnings"] == []
