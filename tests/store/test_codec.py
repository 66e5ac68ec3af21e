"""Exact round trips of real inventories and findings through the store's codec (and JSON)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from scanner.inventory.build import inventory
from scanner.model.codec import finding_from_dict, finding_to_dict, inventory_from_dict, inventory_to_dict
from scanner.model.types import Cvss, Finding, Inventory, OSInfo, Warning_

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _through_json(value: dict[str, object]) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(json.dumps(value))
    return loaded


@pytest.mark.parametrize(
    "ref",
    [
        "docker-archive:{}/images/fanal/image3_gz_layers.tar",
        "oci-archive:{}/images/dive/test-oci-gzip-image.tar",  # Unsupported: no OS, reason kept
    ],
)
def test_real_inventories_round_trip_exactly(ref: str) -> None:
    for inv in inventory(ref.format(FIXTURES)):
        assert inventory_from_dict(_through_json(inventory_to_dict(inv))) == inv


def test_every_inventory_field_survives(alpine_image: tuple[Inventory, list[Finding]]) -> None:
    inv = alpine_image[0]
    assert inv.image.layers and any(p.layer for p in inv.packages)
    pkg = replace(inv.packages[0], os_owned=True, metadata=(("epoch", "1"), ("licence", "MIT")))
    os_info = OSInfo("alpine", "3.10.2", "", "Alpine Linux", "Alpine 3.10", ("a", "b"), "/etc/os-release")
    edited = replace(
        inv,
        image=replace(inv.image, os=os_info, media_type="application/x", index_digest="sha256:ab"),
        packages=(pkg, *inv.packages[1:]),
        warnings=(Warning_("sha256:1", "member skipped"), Warning_("/x", "not parsed")),
    )
    back = inventory_from_dict(_through_json(inventory_to_dict(edited)))
    assert back == edited
    assert back.packages[0].metadata == (("epoch", "1"), ("licence", "MIT")) and back.packages[0].os_owned
    assert back.image.os == os_info and back.warnings == edited.warnings


def test_real_findings_round_trip_exactly(alpine_image: tuple[Inventory, list[Finding]]) -> None:
    findings = alpine_image[1]
    for finding in findings:
        assert finding_from_dict(_through_json(finding_to_dict(finding))) == finding
    extra = replace(
        findings[0],
        cvss=Cvss("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        disabled=True,
        disabled_by="rules/x.yaml",
        remediation="apk upgrade",
        references=("https://a", "https://b"),
    )
    assert finding_from_dict(_through_json(finding_to_dict(extra))) == extra
    whole = replace(extra, cvss=Cvss("3.1", "v", 7.0))
    doc = finding_to_dict(whole)
    doc["cvss"]["score"] = 7  # an integer after some JSON encoders
    assert finding_from_dict(doc).cvss == Cvss("3.1", "v", 7.0)


def test_unknown_codec_version_is_refused(alpine_image: tuple[Inventory, list[Finding]]) -> None:
    doc = inventory_to_dict(alpine_image[0])
    doc["codec"] = 99
    with pytest.raises(ValueError, match="codec version 99"):
        inventory_from_dict(doc)


def test_packages_share_the_image_layers_and_stay_exact(alpine_image: tuple[Inventory, list[Finding]]) -> None:
    inv = alpine_image[0]
    back = inventory_from_dict(_through_json(inventory_to_dict(inv)))
    assert back == inv
    # One LayerInfo per layer record: every package points at its image's layer object.
    by_index = {layer.index: layer for layer in back.image.layers}
    assert all(p.layer is by_index[p.layer.index] for p in back.packages if p.layer is not None)
    # A package whose layer record differs from the image's at the same index (not something the scanner
    # writes) still comes back as stored, and the packages after it are not confused by it.
    first, second, *rest = [p for p in inv.packages if p.layer is not None]
    assert first.layer is not None
    odd = replace(first, layer=replace(first.layer, created_by="RUN something else", size=1))
    edited = replace(inv, packages=(odd, second, *rest))
    again = inventory_from_dict(_through_json(inventory_to_dict(edited)))
    assert again == edited
    assert again.packages[0].layer == odd.layer and again.packages[1].layer == second.layer
